// What a lab's benchmark measures: its `bench:` block (pod pairs, tests), or
// the default: a same-node pair, a cross-node pair, and always the raw
// underlay, node to node, as the reference every mode is held against. On a
// dual-stack lab every pair is measured over both families, each held against
// the underlay of its own family (the IPv6 underlay for IPv6 pairs).
import type { Lab } from '../lab/lab-file.js';
import type { PodRecord } from '../lab/state.js';
import { BENCH_TESTS, type BenchTest } from './metrics.js';
import type { BenchBlock } from '../lab/bench-block.js';
import type { Family } from '../net/ipnet.js';
export { benchSchema, type BenchBlock } from '../lab/bench-block.js';

/** Low enough that a sender on a busy 2-core machine still reaches it: loss is compared at the same offered load. */
export const DEFAULT_UDP_RATE = '100M';

export interface Endpoint {
  node: string;
  pod?: string;
  ip: string;
}

export interface PlannedPair {
  name: string;
  kind: 'underlay' | 'same-node' | 'cross-node';
  /** The IP family of the addresses below; IPv6 pairs are named "<name>-v6". */
  family: Family;
  client: Endpoint;
  server: Endpoint;
}

export interface BenchPlan {
  pairs: PlannedPair[];
  tests: BenchTest[];
  udpRate: string;
}

export class BenchPlanError extends Error {}

/** The lab has no pod pair that can be measured here (one pod per node, addresses that repeat across nodes). */
export class NothingToMeasureError extends BenchPlanError {}

const podEndpoint = (p: PodRecord): Endpoint => ({ node: p.node, pod: p.name, ip: p.ip! });

/** The pairs and tests to run, from the lab's block or the defaults, against the pods that are up. */
export function planBench(lab: Lab, pods: PodRecord[], block: BenchBlock | undefined = lab.bench): BenchPlan {
  // In name order (nginx-0, nginx-1, …, nginx-10), not in the order the pods happened to start.
  const running = pods.filter((p) => p.ip).sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  const byName = (name: string) => {
    const p = running.find((x) => x.name === name);
    if (!p) throw new BenchPlanError(`bench pair names pod "${name}", which is not running (pods: ${running.map((x) => x.name).join(', ') || 'none'})`);
    return p;
  };
  // Where pod addresses repeat across nodes (docker's bridge: NAT between hosts), a client would reach
  // a pod of its own node under the server's address: such a pair would measure the wrong path.
  const reachable = (s: PodRecord) => !running.some((p) => p !== s && p.ip === s.ip);
  const pairs: PlannedPair[] = [];
  if (block?.pairs) {
    for (const bp of block.pairs) {
      const [c, s] = [byName(bp.client), byName(bp.server)];
      if (!reachable(s)) throw new BenchPlanError(`bench pair "${bp.name}": ${s.name}'s address ${s.ip} is not unique in this lab, so ${c.name} cannot reach it by address`);
      pairs.push({ name: bp.name, kind: c.node === s.node ? 'same-node' : 'cross-node', family: 4, client: podEndpoint(c), server: podEndpoint(s) });
    }
  } else {
    // The client: the first pod that shares its node with another, so both pairs can start from it.
    const first = running.find((p) => running.some((q) => q !== p && q.node === p.node)) ?? running[0];
    const sameNode = first && running.find((p) => p !== first && p.node === first.node && reachable(p));
    const crossNode = first && running.find((p) => p.node !== first.node && reachable(p));
    if (sameNode) pairs.push({ name: 'same-node', kind: 'same-node', family: 4, client: podEndpoint(first), server: podEndpoint(sameNode) });
    if (crossNode) pairs.push({ name: 'cross-node', kind: 'cross-node', family: 4, client: podEndpoint(first), server: podEndpoint(crossNode) });
  }
  if (!pairs.length) {
    throw new NothingToMeasureError(
      `lab ${lab.name} has no pod pair to measure: ${running.length < 2 ? 'fewer than two pods' : 'no two pods share a node, and pod addresses repeat across nodes'}; name pairs in a bench block`,
    );
  }
  // The reference: the same two nodes as the (first) cross-node pair, on their underlay addresses.
  const across = pairs.find((p) => p.kind === 'cross-node');
  const nodes = lab.topology.nodes;
  const clientNode = nodes.find((n) => n.name === (across?.client.node ?? nodes[0].name))!;
  const serverNode = across ? nodes.find((n) => n.name === across.server.node)! : nodes.find((n) => n !== clientNode);
  if (!serverNode) throw new BenchPlanError(`lab ${lab.name} has one node; the underlay reference needs two`);
  pairs.unshift({
    name: 'underlay',
    kind: 'underlay',
    family: 4,
    client: { node: clientNode.name, ip: clientNode.address },
    server: { node: serverNode.name, ip: serverNode.address },
  });
  return { pairs: withFamilies(lab, running, pairs, block?.families), tests: [...(block?.tests ?? BENCH_TESTS)], udpRate: block?.udpRate ?? DEFAULT_UDP_RATE };
}

/**
 * The IPv4 pairs, then the same pairs over IPv6 where every node has an IPv6
 * underlay address and every pod of a pair an IPv6 address (by default; or as
 * the block's `families` asks, which refuses a family the lab cannot carry).
 */
function withFamilies(lab: Lab, pods: PodRecord[], pairs: PlannedPair[], families?: Family[]): PlannedPair[] {
  const v6Of = (e: Endpoint): Endpoint | undefined => {
    const ip = e.pod ? pods.find((p) => p.name === e.pod)?.ip6 : lab.topology.nodes.find((n) => n.name === e.node)?.addressV6;
    return ip ? { ...e, ip } : undefined;
  };
  const v6 = pairs.map((p) => {
    const [client, server] = [v6Of(p.client), v6Of(p.server)];
    return client && server ? { ...p, name: p.kind === 'underlay' ? 'underlay-v6' : `${p.name}-v6`, family: 6 as const, client, server } : undefined;
  });
  const canV6 = v6.every(Boolean);
  if (families?.includes(6) && !canV6) {
    const why = !lab.topology.underlayV6 ? 'has no IPv6 underlay (topology.underlayV6)' : 'has pods without an IPv6 address';
    throw new BenchPlanError(`bench families: [6] asked, but lab ${lab.name} ${why}`);
  }
  const want = families ?? (canV6 ? [4, 6] : [4]);
  return [...(want.includes(4) ? pairs : []), ...(want.includes(6) ? (v6 as PlannedPair[]) : [])];
}
