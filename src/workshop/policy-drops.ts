// Which NetworkPolicy dropped a trace's pings, from the kernel's own counters,
// read on every node before and after the ping:
//   iptables (calico): the DROP rule at the end of each endpoint chain
//     (src/policy/felix.ts); its comment names the policies that isolate the pod;
//   BPF (cilium): the drops map, per endpoint, direction and reason
//     (bpf/policy.h); the agent's policy.json names the pod and its policies.
import { chainCounters } from '../net/iptables.js';
import { dumpMap } from '../net/bpf.js';
import { DROP_COMMENT } from '../policy/felix.js';
import { decodeDrop, DROP_REASONS } from '../datapaths/cilium/maps.js';
import type { CompiledPolicy } from '../policy/cilium.js';
import { AGENT_POLICY } from '../datapaths/cilium/install.js';
import type { Backend } from '../topologies/backend.js';
import { targetOf } from './inspect.js';

export interface PolicyDrop {
  node: string;
  /** What counted the drop: an iptables chain, or the BPF drops map. */
  counter: string;
  direction: 'ingress' | 'egress';
  /** The pod, `<namespace>/<name>`, when the counter says which. */
  pod?: string;
  /** The policies that select the pod in that direction, `<namespace>/<name>`. */
  policies: string[];
  packets: number;
}

type Counts = Map<string, PolicyDrop>;

async function iptablesDrops(backend: Backend, node: string, counts: Counts): Promise<void> {
  const rules = await chainCounters(targetOf(backend, { kind: 'node', name: node, node }), 'filter').catch(() => []);
  for (const r of rules) {
    const m = /^-A (cali-([tf])w-\S+) .*--comment "?Drop if no policies passed packet \(([^)]*)\)/.exec(r.rule);
    if (!m || !r.rule.includes(DROP_COMMENT)) continue;
    counts.set(`${node} ${m[1]}`, { node, counter: `iptables chain ${m[1]}`, direction: m[2] === 't' ? 'ingress' : 'egress', policies: m[3].split(', '), packets: r.packets });
  }
}

async function bpfDrops(backend: Backend, node: string, counts: Counts): Promise<void> {
  const text = await backend.readFile(node, AGENT_POLICY).catch(() => undefined);
  if (!text) return;
  const state = (JSON.parse(text) as CompiledPolicy).state;
  const entries = await dumpMap(backend.nodePath(node, '/sys/fs/bpf/cilium/maps/drops')).catch(() => []);
  for (const e of entries) {
    const d = decodeDrop(e.key, e.value);
    const ep = state.find((s) => s.ifindex === d.ifindex);
    counts.set(`${node} bpf ${d.ifindex} ${d.dir} ${d.reason}`, {
      node,
      counter: `BPF drops map (endpoint ifindex ${d.ifindex}, reason ${d.reason} ${DROP_REASONS[d.reason] ?? ''})`.replace(' )', ')'),
      direction: d.dir,
      ...(ep ? { pod: ep.pod } : {}),
      policies: ep?.[d.dir] ?? [],
      packets: d.packets,
    });
  }
}

/** The policy drop counters on every node (none where no policy engine runs). */
export async function policyDropCounters(backend: Backend, nodes: string[]): Promise<Counts> {
  const counts: Counts = new Map();
  for (const node of nodes) {
    await iptablesDrops(backend, node, counts);
    await bpfDrops(backend, node, counts);
  }
  return counts;
}

/** The counters that moved between two readings, with how much. */
export function newPolicyDrops(before: Counts, after: Counts): PolicyDrop[] {
  return [...after].filter(([key, a]) => a.packets > (before.get(key)?.packets ?? 0)).map(([key, a]) => ({ ...a, packets: a.packets - (before.get(key)?.packets ?? 0) }));
}
