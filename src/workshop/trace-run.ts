// `cnilab trace` on a running lab: a first ping so that neighbour entries are
// resolved, the tables read once, the walk with the kernel's own `ip route get`
// in each namespace, and with --capture a tcpdump on every interface of the path
// (started and stopped by PID) counting the packets that really passed.
import { rmSync } from 'node:fs';
import { Ip } from '../net/ip.js';
import type { LabState } from '../lab/state.js';
import type { Backend, Started } from '../topologies/backend.js';
import { inspectLab, targetOf } from './inspect.js';
import { familyOf, type Family } from '../net/ipnet.js';
import { nsById, ownerOfAddress, primaryAddress, uplinkAddress, type NetModel, type NsView } from './model.js';
import { walk, type Hop, type TraceEnd, type TracePath, type Tunnel } from './trace.js';
import { newPolicyDrops, policyDropCounters, type PolicyDrop } from './policy-drops.js';
import { sleep } from '../util/wait.js';
import { answeringPod, findService, translationText } from './services.js';

export interface TraceOptions {
  capture?: boolean;
  /** Pings sent while capturing. */
  count?: number;
  /** Which family to follow; by default the destination address's, or IPv4 between names. */
  family?: Family;
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
  /** A trace to a service: its frontend, the pod it was translated to, and how that pod was found. */
  service?: { name: string; frontend: string; mode: string; endpoint: string; chosen: 'answered' | 'first-endpoint' };
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

/** A pod or node name (its address of `family`), or (as the destination) an address in the lab. */
export function resolveEnd(model: NetModel, what: string, family: Family = 4): TraceEnd | undefined {
  const ns = nsById(model, `pod/${what}`) ?? model.namespaces.find((n) => n.kind === 'node' && n.name === what);
  if (ns) {
    const ip = ns.kind === 'pod' ? primaryAddress(ns, family) : uplinkAddress(model, ns, family);
    return ip ? { ns: ns.id, ip } : undefined;
  }
  const owner = ownerOfAddress(model, what);
  return owner ? { ns: owner.ns.id, ip: what } : undefined;
}

export class TraceTargetError extends Error {}

/**
 * The families to follow between two ends: the one asked for, the destination
 * address's, or (between names) every family both ends have an address of.
 */
export function traceFamilies(model: NetModel, fromName: string, toName: string, asked?: Family): Family[] {
  if (asked) return [asked];
  const fam = familyOf(toName);
  if (fam) return [fam];
  const both = ([4, 6] as const).filter((f) => resolveEnd(model, fromName, f) && resolveEnd(model, toName, f));
  return both.length ? [...both] : [4];
}

/** Trace every family `traceFamilies` picks, one after the other (their captures must not count each other's pings). */
export async function traceLabFamilies(backend: Backend, state: LabState, nodes: string[], fromName: string, toName: string, opts: TraceOptions = {}): Promise<TraceReport[]> {
  const families = opts.family ? [opts.family] : traceFamilies(await inspectLab(backend, state, nodes), fromName, toName);
  const out: TraceReport[] = [];
  for (const family of families) out.push(await traceLab(backend, state, nodes, fromName, toName, { ...opts, family }));
  return out;
}

export async function traceLab(backend: Backend, state: LabState, nodes: string[], fromName: string, toName: string, opts: TraceOptions = {}): Promise<TraceReport> {
  const names = () => `pods: ${state.pods.map((p) => p.name).join(', ')}; nodes: ${nodes.join(', ')}`;
  let model = await inspectLab(backend, state, nodes);
  const family = opts.family ?? familyOf(toName) ?? 4;
  const from = resolveEnd(model, fromName, family);
  const svc = findService(model.services, toName);
  let service: TraceReport['service'];
  if (svc && from && family === 4) {
    // Which pod the proxy sends this client to: ask the service once and see which pod answers.
    const port = svc.ports.find((p) => p.protocol === 'TCP') ?? svc.ports[0];
    const body = port.protocol === 'TCP' ? (await execIn(backend, nsById(model, from.ns)!, ['curl', '-s', '--max-time', '3', `http://${svc.clusterIP}:${port.port}/`])).stdout : '';
    const answered = answeringPod(body, svc);
    const endpoint = answered ?? svc.endpoints[0]?.pod;
    if (!endpoint) throw new TraceTargetError(`service ${svc.namespace}/${svc.name} has no endpoints: nothing to trace to`);
    const proxy = model.services!.proxies.find((p) => p.node === nsById(model, from.ns)!.node) ?? model.services!.proxies[0];
    service = { name: `${svc.namespace}/${svc.name}`, frontend: `${svc.clusterIP}:${port.port}/${port.protocol}`, mode: proxy?.mode ?? '?', endpoint, chosen: answered ? 'answered' : 'first-endpoint' };
    toName = endpoint;
  }
  const to = resolveEnd(model, toName, family);
  const named = state.pods.some((p) => p.name === fromName) || nodes.includes(fromName);
  const v = family === 6 ? 'IPv6' : 'IPv4';
  if (!named) throw new TraceTargetError(`no pod or node named "${fromName}" in ${state.lab} (${names()})`);
  if (!from) throw new TraceTargetError(`${fromName} has no ${v} address in ${state.lab}`);
  if (!to && resolveEnd(model, toName, family === 6 ? 4 : 6)) throw new TraceTargetError(`${toName} has no ${v} address in ${state.lab}`);
  if (!to) throw new TraceTargetError(`no pod or node named "${toName}", and no address ${toName} in ${state.lab} (${names()})`);
  const src = nsById(model, from.ns)!;

  // One ping first: neighbour entries along the way get resolved, as they would be for real traffic.
  const before = await policyDropCounters(backend, nodes);
  let ping = await execIn(backend, src, ['ping', '-c', '1', '-W', '2', to.ip]);
  let policyDrops = ping.exitCode === 0 ? [] : newPolicyDrops(before, await policyDropCounters(backend, nodes));
  // On a busy machine a first echo can wait out its 2 s behind neighbour resolution: unless a policy
  // counted it dropped (a definite answer), one more before calling the path broken.
  if (ping.exitCode !== 0 && !policyDrops.length) {
    ping = await execIn(backend, src, ['ping', '-c', '1', '-W', '3', to.ip]);
    policyDrops = ping.exitCode === 0 ? [] : newPolicyDrops(before, await policyDropCounters(backend, nodes));
  }
  model = await inspectLab(backend, state, nodes);
  const path = await walk(model, kernelOracle(backend, model), from, to);
  if (svc && service) insertTranslation(model, path, svc, service, to);
  const report: TraceReport = { ...path, reachable: ping.exitCode === 0, ...(policyDrops.length ? { policyDrops } : {}), ...(service ? { service } : {}) };
  if (opts.capture) report.capture = await captureAlong(backend, model, report, opts.count ?? 3);
  return report;
}

/** The service's translation, where the packet first reaches the source's node (PREROUTING, or the BPF program on its lxc device). */
function insertTranslation(model: NetModel, path: TracePath, svc: Parameters<typeof translationText>[1], service: NonNullable<TraceReport['service']>, to: TraceEnd): void {
  const node = nsById(model, path.from.ns)!.node;
  const nodeNs = nsById(model, node);
  const proxy = model.services?.proxies.find((p) => p.node === node);
  const t = translationText(service.mode, svc, { pod: service.endpoint, ip: to.ip }, nodeNs?.nat, proxy?.bpfMaps);
  let at = path.hops.findIndex((h) => h.at === node);
  // A BPF program where the packet arrives runs before the nat table: the translation comes after it.
  while (at >= 0 && path.hops[at + 1]?.at === node && path.hops[at + 1].kind === 'bpf') at++;
  const hop: Hop = { at: node, kind: 'nat', text: `${service.frontend} of ${service.name}: ${t.text}`, kernel: t.kernel };
  path.hops.splice(at < 0 ? 0 : at + 1, 0, hop);
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

/** tcpdump's match for an echo request: ICMPv6 type 128 right after the fixed IPv6 header. */
const ECHO = { 4: 'icmp[icmptype] == icmp-echo', 6: 'icmp6 and ip6[40] == 128' } as const;

/**
 * The same inside a VXLAN packet: the pod's IP header starts after the outer IP
 * header (20 bytes for IPv4 without options, 40 for IPv6), UDP (8), VXLAN (8)
 * and the inner Ethernet header (14).
 */
function echoInsideVxlan(outer: Family, inner: Family): string {
  const [proto, base] = outer === 6 ? ['ip6', 40 + 30] : ['ip', 20 + 30];
  return inner === 6 ? `${proto}[${base + 6}] == 58 and ${proto}[${base + 40}] == 128` : `${proto}[${base + 9}] == 1 and ${proto}[${base + 20}] == 8`;
}

/** tcpdump's filter for the packets of this trace at one point: the pings themselves (from `src` there), or the tunnel packets around them. */
export function captureFilter(path: TracePath, layer: 'inner' | 'outer', src = path.from.ip): string {
  const family = path.family ?? familyOf(path.to.ip) ?? 4;
  if (layer === 'inner') return `${ECHO[family]} and src host ${src} and dst host ${path.to.ip}`;
  const t: Tunnel | undefined = path.tunnels[0];
  if (!t) return `src host ${path.from.ip} and dst host ${path.to.ip}`;
  const udp = `udp and src host ${t.src} and dst host ${t.dst}${t.port ? ` and dst port ${t.port}` : ''}`;
  // A ping inside VXLAN: match the echo request in the envelope, not just any UDP between the nodes
  // (a slow node's late segments of earlier traffic would count as pings).
  const outer = familyOf(t.dst) ?? 4;
  return t.via === 'vxlan' ? `${udp} and ${echoInsideVxlan(outer, family)}` : udp;
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
  // Off the path the source may have been rewritten: match the pings by their destination alone.
  const filters = points.map((p) => (p.beyond ? `${ECHO[path.family ?? 4]} and dst host ${path.to.ip}` : captureFilter(path, p.layer, p.src)));
  try {
    for (const [i, p] of points.entries()) {
      const argv = ['tcpdump', '-n', '-l', '--immediate-mode', '-i', p.device, filters[i]];
      const name = `${tag}-${i}`;
      started.push(await targetOfNs(backend, p.ns).start(name, argv));
    }
    for (let i = 0; i < 250 && !(await readLogs()).every((l) => l.includes('listening on')); i++) await sleep(20);
    const unready = started.filter((_, i) => !logs[i].includes('listening on'));
    if (unready.length) throw new Error(`tcpdump did not start listening within 5 s: ${unready.map((s) => logs[started.indexOf(s)].trim() || s.log).join('; ')}`);
    const src = nsById(model, path.from.ns)!;
    const ping = await execIn(backend, src, ['ping', '-c', String(count), '-i', '0.2', '-W', '2', path.to.ip]);
    const received = Number(/(\d+) (?:packets )?received/.exec(ping.stdout)?.[1] ?? 0);
    for (const s of started) await backend.stop(s);
    await readLogs();
    const seen = points.map((_, i) => packetsSeen(logs[i]));
    points.forEach((p, i) => {
      for (const h of p.hops) Object.assign(h, { packets: seen[i], filter: filters[i] });
    });
    const onPath = points.filter((p) => !p.beyond);
    const beyond = points.flatMap((p, i) => (p.beyond && seen[i] > 0 ? [{ at: p.ns.id, device: p.device, packets: seen[i] }] : []));
    // Every ping passed every hop. More is not less: on a slow machine a late packet of
    // earlier traffic between the same pods (a ping another command left running) matches too.
    return { sent: count, received, allSeen: onPath.every((p) => (p.hops[0].packets ?? 0) >= count), ...(path.delivered ? {} : { beyond }) };
  } finally {
    for (const s of started) {
      await backend.stop(s);
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
