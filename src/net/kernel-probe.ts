// Which link kinds a node's kernel can make, asked on the node itself (a machine
// of its own over ssh: its kernel is not this one). The kernel answers in a
// scratch namespace made for the question and removed after it; the node's own
// links are never touched.
import { LINK_KINDS } from './link-kinds.js';
import { shArgv, shQuote } from './node-scripts.js';
import type { RunsCommands } from './target.js';

/** The link kinds among `features` the kernel where `target` runs lacks, tried in the namespace `scratch`. */
export async function missingLinkKindsOn(target: RunsCommands, features: string[], scratch: string): Promise<string[]> {
  const tries = features.map((f, i) => {
    const probe = LINK_KINDS[f]?.probe;
    if (!probe) throw new Error(`preflight does not know how to test kernel feature "${f}" (src/net/link-kinds.ts)`);
    return `ip -n "$1" ${probe(`pf${i}`, 'pfparent').map(shQuote).join(' ')} >/dev/null 2>&1 || echo ${shQuote(f)}`;
  });
  const script = [
    'PATH="$PATH:/usr/sbin:/sbin"',
    'ip netns add "$1" || exit 1',
    // Attached kinds (macvlan, vlan, ipvlan) need a parent link: a bridge is always there to lean on.
    'ip -n "$1" link add pfparent type bridge >/dev/null 2>&1',
    ...tries,
    'ip netns del "$1"',
  ].join('\n');
  const r = await target.run(shArgv(script, scratch), { allowFailure: true });
  if (r.exitCode !== 0) throw new Error(`cannot try kernel features on ${target.label}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout.split('\n').filter(Boolean);
}
