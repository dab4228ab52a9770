// What a kernel can do, asked where it runs (this machine, or a machine of its
// own over ssh: its kernel is not this one): which link kinds it makes, and
// whether it runs tc BPF programs. The kernel answers in a scratch namespace made
// for the question and removed after it; the machine's own links are never touched.
import { readFileSync } from 'node:fs';
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

/**
 * Whether the kernel where `target` runs runs tc BPF programs: a clsact qdisc and
 * `probeObject` (a trivial classifier compiled here, sent over as base64) attached
 * to a veth in the scratch namespace. Returns the missing features, named. tc
 * loads the object in a private mount namespace, so the BPF filesystem it mounts
 * for that is gone when it exits; the object's copy there is removed.
 */
export async function missingTcBpfOn(target: RunsCommands, probeObject: string, scratch: string): Promise<string[]> {
  const script = [
    'PATH="$PATH:/usr/sbin:/sbin"',
    'obj=$(mktemp) || exit 1',
    'base64 -d > "$obj" && ip netns add "$1" || { rm -f "$obj"; exit 1; }',
    'first() { echo "$1" | head -n 1; }',
    'ip -n "$1" link add pf0 type veth peer name pf1',
    'if ! err=$(ip netns exec "$1" tc qdisc add dev pf0 clsact 2>&1); then echo "clsact $(first "$err")"',
    'elif ! err=$(ip netns exec "$1" unshare --mount --propagation private tc filter add dev pf0 ingress bpf direct-action obj "$obj" sec tc 2>&1); then echo "filter $(first "$err")"',
    'fi',
    'ip netns del "$1"; rm -f "$obj"',
  ].join('\n');
  const r = await target.run(shArgv(script, scratch), { input: readFileSync(probeObject).toString('base64'), allowFailure: true });
  if (r.exitCode !== 0) throw new Error(`cannot try tc BPF programs on ${target.label}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [what, ...why] = l.split(' ');
      return what === 'clsact' ? `tc clsact qdisc (sch_clsact: ${why.join(' ')})` : `BPF tc classifiers (cls_bpf and the bpf() syscall: ${why.join(' ')})`;
    });
}
