// iptables (nft backend) in one network namespace: the masquerade chain a
// bridge network sets up per container, and its removal.
import { createHash } from 'node:crypto';
import { inNetns, run, type Netns } from './exec.js';

/** CNI-<24 hex>: unique per network and container, like the reference plugins' chain names. */
export function masqChainName(network: string, containerId: string): string {
  return 'CNI-' + createHash('sha256').update(`${network}\0${containerId}`).digest('hex').slice(0, 24);
}

/** Masquerade traffic from `address` leaving `subnet`; one iptables-restore call. */
export async function addMasquerade(netns: Netns, chain: string, address: string, subnet: string, comment: string): Promise<void> {
  const c = `-m comment --comment "${comment.replace(/"/g, '')}"`;
  const rules = [
    '*nat',
    `:${chain} - [0:0]`,
    `-A ${chain} -d ${subnet} ${c} -j ACCEPT`,
    `-A ${chain} ! -d 224.0.0.0/4 ${c} -j MASQUERADE`,
    `-A POSTROUTING -s ${address} ${c} -j ${chain}`,
    'COMMIT',
    '',
  ].join('\n');
  await run(inNetns(netns, 'iptables-restore', ['--noflush', '-w']), { input: rules });
}

/** Remove the chain and every POSTROUTING jump to it; a missing chain is fine. */
export async function removeMasquerade(netns: Netns, chain: string): Promise<void> {
  const listing = await run(inNetns(netns, 'iptables', ['-w', '-t', 'nat', '-S', 'POSTROUTING']), { allowFailure: true });
  const jumps = listing.stdout.split('\n').filter((l) => l.startsWith('-A POSTROUTING') && l.endsWith(`-j ${chain}`));
  const exists = (await run(inNetns(netns, 'iptables', ['-w', '-t', 'nat', '-S', chain]), { allowFailure: true })).exitCode === 0;
  if (!jumps.length && !exists) return;
  const lines = ['*nat', ...jumps.map((l) => l.replace(/^-A /, '-D ')), ...(exists ? [`-F ${chain}`, `-X ${chain}`] : []), 'COMMIT', ''];
  await run(inNetns(netns, 'iptables-restore', ['--noflush', '-w']), { input: lines.join('\n') });
}

export async function natRules(netns: Netns): Promise<string[]> {
  const r = await run(inNetns(netns, 'iptables', ['-w', '-t', 'nat', '-S']), { allowFailure: true });
  return r.stdout.split('\n').filter(Boolean);
}

/** Append a rule unless the same rule is there already (iptables -C). */
export async function ensureRule(netns: Netns, table: string, chain: string, rule: string[]): Promise<void> {
  const check = await run(inNetns(netns, 'iptables', ['-w', '-t', table, '-C', chain, ...rule]), { allowFailure: true });
  if (check.exitCode === 0) return;
  await run(inNetns(netns, 'iptables', ['-w', '-t', table, '-A', chain, ...rule]));
}
