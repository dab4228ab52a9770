// ipset (Debian's ipset) in one network namespace: sets of addresses that
// iptables rules match with `-m set`. A set is refilled by building a
// temporary one and swapping it in, so a rule never sees it half-filled.
import { inNetns, run, type Netns } from './exec.js';

export interface IpsetSpec {
  name: string;
  /** hash:net takes addresses and networks; `<cidr> nomatch` cuts a network out. */
  type: 'hash:net' | 'hash:ip';
  members: string[];
}

const TEMP = 'cnilab-tmp';

async function restore(netns: Netns, lines: string[]): Promise<void> {
  if (!lines.length) return;
  await run(inNetns(netns, 'ipset', ['restore']), { input: lines.join('\n') + '\n' });
}

/** The names of the sets that exist, those starting with `prefix`. */
export async function ipsetNames(netns: Netns, prefix = ''): Promise<string[]> {
  const r = await run(inNetns(netns, 'ipset', ['list', '-n']));
  return r.stdout.split('\n').filter((n) => n && n.startsWith(prefix));
}

/** Create or refill each set, in one ipset restore. */
export async function syncIpsets(netns: Netns, sets: IpsetSpec[]): Promise<void> {
  const lines: string[] = [];
  for (const s of sets) {
    lines.push(`create ${s.name} ${s.type} family inet -exist`);
    lines.push(`create ${TEMP} ${s.type} family inet -exist`, `flush ${TEMP}`);
    for (const m of s.members) lines.push(`add ${TEMP} ${m}`);
    lines.push(`swap ${TEMP} ${s.name}`, `destroy ${TEMP}`);
  }
  await restore(netns, lines);
}

/** Remove sets no rule uses any more; a missing one is fine. */
export async function destroyIpsets(netns: Netns, names: string[]): Promise<void> {
  const existing = new Set(await ipsetNames(netns));
  await restore(netns, names.filter((n) => existing.has(n)).map((n) => `destroy ${n}`));
}

/** A set's members as the kernel holds them. */
export async function ipsetMembers(netns: Netns, name: string): Promise<string[]> {
  const r = await run(inNetns(netns, 'ipset', ['list', '-o', 'save', name]));
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith(`add ${name} `))
    .map((l) => l.slice(`add ${name} `.length));
}
