// `cnilab trace` on a running lab: a first ping so that neighbour entries are
// resolved, the tables read once, the walk with the kernel's own `ip route get`
// in each namespace, and with --capture a tcpdump on every interface of the path
// (started and stopped by PID) counting the packets that really passed.
import { rmSync } from 'node:fs';
import { Ip } from '../net/ip.js';
import type { LabState } from '../lab/state.js';
import type { Backend, Started } from '../topologies/backend.js';
import { inspectLab, targetOf } from './inspect.js';
import { nsById, ownerOfAddress, primaryAddress, uplink, type NetModel, type NsView } from './model.js';
import { walk, type Hop, type TraceEnd, type TracePath, type Tunnel } from './trace.js';
import { newPolicyDrops, policyDropCounters, type PolicyDrop } from './policy-drops.js';
import { sleep } from '../util/wait.js';

export interface TraceOptions {
  capture?: boolean;
  /** Pings sent while capturing. */
  count?: number;
}

export interface TraceReport extends TracePath {
  /** Whether the first ping got an answer. */
  reachable: boolean;
  /** NetworkPolicy drop counters the first ping moved: which pod's policies dropped it, on which node. */
  policyDrops?: PolicyDrop[];
  /**
   * With --capture: pings sent, and whether every capture point saw all of them.
   * When the walk stopped short, `beyond` lists the other interfaces of the lab
   * where the pings were seen all the same (a BPF datapath the tables do not show).
   */
  capture?: { sent: number; received: number; allSeen: boolean; beyond?: { at: string; device: string; packets: number }[] };
}

const targetOfNs = (backend: Backend, ns: NsView) => targetOf(backend, { kind: ns.kind, name: ns.name, node: ns.node });

function execIn(backend: Backend, ns: NsView, argv: string[]) {
  return targetOfNs(backend, ns).run(argv, { allowFailure: true });
}

/** The kernel's `ip route get`, asked in the namespace of a model entry. */
export function kernelOracle(backend: Backend, model: NetModel) {
  return {
    routeGet: (id: string, dst: string, opts: { from?: string; iif?: string }) => {
      const ns = nsById(model, id)!;
      return new Ip(targetOfNs(backend, ns)).routeGet(dst, opts);
    },
  };
}

/** A pod or node name, or (as the destination) an address in the lab. */
export function resolveEnd(model: NetModel, what: string): TraceEnd | undefined {
  const ns = nsById(model, `pod/${what}`) ?? model.namespaces.find((n) => n.kind === 'node' && n.name === what);
  if (ns) {
    const ip = ns.kind === 'pod' ? primaryAddress(ns) : uplink(model, ns)?.addresses[0]?.split('/')[0];
    return ip ? { ns: ns.id, ip } : undefined;
  }
  const owner = ownerOfAddress(model, what);
  return owner ? { ns: owner.ns.id, ip: what } : undefined;
}

export class TraceTargetError extends Error {}

export async function traceLab(backend: Backend, state: LabState, nodes: string[], fromName: string, toName: string, opts: TraceOptions = {}): Promise<TraceReport> {
  const names = () => `pods: ${state.pods.map((p) => p.name).join(', ')}; nodes: ${nodes.join(', ')}`;
  let model = await inspectLab(backend, state, nodes);
  const from = resolveEnd(model, fromName);
  const to = resolveEnd(model, toName);
  const named = state.pods.some((p) => p.name === fromName) || nodes.includes(fromName);
  if (!from || !named) throw new TraceTargetError(`no pod or node named "${fromName}" in ${state.lab} (${names()})`);
  if (!to) throw new TraceTargetError(`no pod or node named "${toName}", and no address ${toName} in ${state.lab} (${names()})`);
  const src = nsById(model, from.ns)!;

  // One ping first: neighbour entries along the way get resolved, as they would be for real traffic.
  const before = await policyDropCounters(backend, nodes);
  const ping = await execIn(backend, src, ['ping', '-c', '1', '-W', '2', to.ip]);
  const policyDrops = ping.exitCode === 0 ? [] : newPolicyDrops(before, await policyDropCounters(backend, nodes));
  model = await inspectLab(backend, state, nodes);
  const path = await walk(model, kernelOracle(backend, model), from, to);
  const report: TraceReport = { ...path, reachable: ping.exitCode === 0, ...(policyDrops.length ? { policyDrops } : {}) };
  if (opts.capture) report.capture = await captureAlong(backend, model, report, opts.count ?? 3);
  return report;
}

interface Point {
  ns: NsView;
  device: string;
  layer: 'inner' | 'outer';
  src?: string;
  hops: Hop[];
  /** Not on the walked path: listened on to find where the pings go when the walk stopped short. */
  beyond?: boolean;
}

/** tcpdump's filter for the packets of this trace at one point: the pings themselves (from `src` there), or the tunnel packets around them. */
export function captureFilter(path: TracePath, layer: 'inner' | 'outer', src = path.from.ip): string {
  if (layer === 'inner') return `icmp[icmptype] == icmp-echo and src host ${src} and dst host ${path.to.ip}`;
  const t: Tunnel | undefined = path.tunnels[0];
  if (!t) return `src host ${path.from.ip} and dst host ${path.to.ip}`;
  return `udp and src host ${t.src} and dst host ${t.dst}${t.port ? ` and dst port ${t.port}` : ''}`;
}

/** Listen on every interface of the path, ping, stop each capture by its PID, and count what each one saw. */
async function captureAlong(backend: Backend, model: NetModel, path: TracePath, count: number): Promise<TraceReport['capture']> {
  const points: Point[] = [];
  for (const h of path.hops) {
    if (!h.device || !h.layer) continue;
    const existing = points.find((p) => p.ns.id === h.at && p.device === h.device && p.layer === h.layer && p.src === h.src);
    if (existing) existing.hops.push(h);
    else points.push({ ns: nsById(model, h.at)!, device: h.device, layer: h.layer, src: h.src, hops: [h] });
  }
  if (!path.delivered) {
    for (const ns of model.namespaces) {
      for (const l of ns.links) {
        if (l.kind === 'loopback' || !l.up || points.some((p) => p.ns.id === ns.id && p.device === l.name)) continue;
        points.push({ ns, device: l.name, layer: 'inner', hops: [], beyond: true });
      }
    }
  }
  const tag = `trace-${process.pid}-${Date.now()}`;
  const started: Started[] = [];
  // Each tcpdump's log is on its node: read through the backend.
  const logs: string[] = [];
  const readLogs = async () => {
    for (const [i, s] of started.entries()) logs[i] = (await targetOfNs(backend, points[i].ns).readFile(s.log)) ?? '';
    return logs;
  };
  try {
    for (const [i, p] of points.entries()) {
      // Off the path the source may have been rewritten: match the pings by their destination alone.
      const filter = p.beyond ? `icmp[icmptype] == icmp-echo and dst host ${path.to.ip}` : captureFilter(path, p.layer, p.src);
      const argv = ['tcpdump', '-n', '-l', '--immediate-mode', '-i', p.device, filter];
      const name = `${tag}-${i}`;
      started.push(await targetOfNs(backend, p.ns).start(name, argv));
    }
    for (let i = 0; i < 250 && !(await readLogs()).every((l) => l.includes('listening on')); i++) await sleep(20);
    const unready = started.filter((_, i) => !logs[i].includes('listening on'));
    if (unready.length) throw new Error(`tcpdump did not start listening within 5 s: ${unready.map((s) => logs[started.indexOf(s)].trim() || s.log).join('; ')}`);
    const src = nsById(model, path.from.ns)!;
    const ping = await execIn(backend, src, ['ping', '-c', String(count), '-i', '0.2', '-W', '2', path.to.ip]);
    const received = Number(/(\d+) (?:packets )?received/.exec(ping.stdout)?.[1] ?? 0);
    for (const s of started) await backend.stop(s.pid);
    await readLogs();
    const seen = points.map((_, i) => packetsSeen(logs[i]));
    points.forEach((p, i) => {
      for (const h of p.hops) h.packets = seen[i];
    });
    const onPath = points.filter((p) => !p.beyond);
    const beyond = points.flatMap((p, i) => (p.beyond && seen[i] > 0 ? [{ at: p.ns.id, device: p.device, packets: seen[i] }] : []));
    return { sent: count, received, allSeen: onPath.every((p) => p.hops[0].packets === count), ...(path.delivered ? {} : { beyond }) };
  } finally {
    for (const s of started) {
      await backend.stop(s.pid);
      rmSync(s.log, { force: true });
    }
  }
}

/**
 * What tcpdump reports when it stops. "received by filter" is the kernel's own
 * count of packets that matched (on Linux), including any tcpdump had not read
 * yet when it was stopped; "captured" is the fallback.
 */
export function packetsSeen(log: string): number {
  const byFilter = /(\d+) packets? received by filter/.exec(log)?.[1];
  const captured = /(\d+) packets? captured/.exec(log)?.[1];
  return Number(byFilter ?? captured ?? NaN);
}
