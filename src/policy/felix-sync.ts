// Applies what felix.ts renders to the node the code runs on: ipsets first,
// then only the chains whose rules changed (the others keep their counters),
// then the hooks from FORWARD and INPUT, then sets no rule uses any more.
import { chainNames, ensureRuleFirst, replaceChains } from '../net/iptables.js';
import { destroyIpsets, ipsetNames, syncIpsets } from '../net/ipset.js';
import { HOOKS, renderNode, type LocalEndpoint, type Rendered } from './felix.js';
import type { Netns } from '../net/exec.js';

export interface SyncSummary {
  endpoints: number;
  chainsWritten: number;
  chainsRemoved: number;
  ipsets: number;
}

export class FelixSync {
  private chains = new Map<string, string>();
  private sets = new Map<string, string>();

  constructor(private readonly netns: Netns = undefined) {}

  async sync(local: LocalEndpoint[]): Promise<SyncSummary> {
    const r: Rendered = renderNode(local);
    const changedSets = r.ipsets.filter((s) => this.sets.get(s.name) !== s.members.join(','));
    await syncIpsets(
      this.netns,
      changedSets.map((s) => ({ name: s.name, type: 'hash:net', members: s.members })),
    );
    for (const s of changedSets) this.sets.set(s.name, s.members.join(','));

    const existing = await chainNames(this.netns, 'filter', 'cali-');
    const write = new Map([...r.chains].filter(([name, rules]) => this.chains.get(name) !== rules.join('\n') || !existing.includes(name)));
    const remove = existing.filter((c) => !r.chains.has(c));
    await replaceChains(this.netns, 'filter', write, remove);
    for (const [name, rules] of write) this.chains.set(name, rules.join('\n'));
    for (const c of remove) this.chains.delete(c);
    // In order: FORWARD reads cali-FORWARD first, then the accept its mark asks for.
    for (const [i, h] of HOOKS.entries()) await ensureRuleFirst(this.netns, 'filter', h.chain, h.rule, HOOKS.slice(0, i).filter((o) => o.chain === h.chain).length + 1);

    const wanted = new Set(r.ipsets.map((s) => s.name));
    const stale = (await ipsetNames(this.netns, 'cali40')).filter((n) => !wanted.has(n));
    await destroyIpsets(this.netns, stale);
    for (const n of stale) this.sets.delete(n);
    return { endpoints: local.length, chainsWritten: write.size, chainsRemoved: remove.length, ipsets: r.ipsets.length };
  }
}
