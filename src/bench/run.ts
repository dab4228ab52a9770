// One lab's benchmark. Servers start once per endpoint and stay up for every
// repetition. Each pair is warmed up until two short TCP runs agree (by
// observation, not by time); that rate sizes the runs that follow. Then test
// by test, repetition by repetition, every pair runs back to back (each
// repetition starting with the next pair), so the underlay and the paths held
// against it see the same moment of a shared machine. A test stops as soon as
// every figure's 95% interval, and every paired ratio's, is narrow enough,
// after `minRepeat` and at most `repeat` repetitions.
import { cpus, loadavg } from 'node:os';
import type { Backend } from '../topologies/backend.js';
import type { Lab } from '../lab/lab-file.js';
import type { PodRecord } from '../lab/state.js';
import { endpointLabel, Server } from './endpoint.js';
import { busyBetween, cpuCounters, gitCommit, hostInfo, labFileRecord, PathProbe, toolVersions, topologyOf } from './environment.js';
import { METRICS, type BenchTest, type MetricName } from './metrics.js';
import { planBench, type Endpoint, type PlannedPair } from './plan.js';
import { RESULT_SCHEMA_VERSION, type BenchResult } from './results.js';
import { figureStats, median, medianInterval, quantile, relativeHalfWidth } from './stats.js';
import { iperf3, ping, requestResponse, serverArgv, udpWindow, UDP_WINDOW, type Pinning } from './tools.js';
import { sweepMessageSizes } from './sweep.js';

export interface BenchSettings {
  /** The most repetitions of a test. */
  repeat: number;
  /** The fewest repetitions of a test before it may stop early. */
  minRepeat: number;
  /** Seconds per throughput measurement: a target, met by sizing the bytes sent from the observed rate. */
  durationS: number;
  /** Stop a test once every figure's 95% interval is within ± this percentage of its median. */
  ciTargetPct: number;
  /** Pin client and server to distinct CPUs where there are two or more. */
  pin: boolean;
  /** Overrides the lab's list of tests. */
  tests?: BenchTest[];
  /** Also sweep message sizes on the underlay and the cross-node pair. */
  sweep?: boolean;
  /**
   * Each repetition runs the pairs forward then backward (A B C C B A), each run half
   * as long, and keeps the mean of a pair's two runs: a machine that drifts during the
   * repetition moves the underlay and the path alike, and two runs average out some noise.
   */
  mirrored?: boolean;
}

/** 6: the fewest repetitions whose min..max is a 95% interval of the median (96.9%); 8 at most, so a busy machine costs a third more, not twice. */
export const DEFAULT_SETTINGS: BenchSettings = { repeat: 8, minRepeat: 6, durationS: 0.2, ciTargetPct: 3, pin: true, mirrored: true };

/** Time windows a request/response run is cut into: its repetitions. */
export const RR_WINDOWS = 8;
/**
 * Echo requests per pair and their spacing: 10 ms apart, so each echo finds an
 * idle path (closer spacing keeps the CPUs awake and measures something else).
 * One run per pair, cut into RR_WINDOWS windows like request/response.
 */
export const PING_COUNT = 100;
export const PING_INTERVAL_S = 0.01;
/** The most warm-up runs per pair, and how close two must agree to call the pair warm. */
const WARMUP_MAX_RUNS = 5;
const WARMUP_AGREE = 0.1;
/** The first warm-up run sends this much: short on any path, long enough to show a rate. */
const PROBE_BYTES = 16 * 2 ** 20;

export interface BenchTarget {
  backend: Backend;
  lab: Lab;
  pods: PodRecord[];
  /** The lab file, recorded in the result so the run can be repeated. */
  labFile?: string;
}

type Measured = Partial<Record<MetricName, number>>;

/** The figure a test's early stop watches (the others follow it). */
const WATCHED: Record<RepeatedTest, MetricName> = { tcp: 'tcp.gbps', tcp4: 'tcp4.gbps', udp: 'udp.gbps' };

/** The tests repeated until their intervals are narrow; ping and rr are one run per pair, cut into windows. */
type RepeatedTest = Exclude<BenchTest, 'rr' | 'ping'>;

const gb = (v: number | undefined) => (v === undefined ? '?' : `${v.toFixed(2)} Gb/s`);
const us = (v: number | undefined) => (v === undefined ? '?' : `${v.toFixed(0)} µs`);

/** Client on the first CPU, server on the second; nothing pinned on one CPU. */
export function pinningFor(cpuCount: number, wanted: boolean): Pinning | undefined {
  return wanted && cpuCount >= 2 ? { client: 0, server: 1 } : undefined;
}

export async function benchLab(target: BenchTarget, settings: BenchSettings, log: (msg: string) => void = () => undefined): Promise<BenchResult> {
  const { backend, lab, pods } = target;
  const startedAt = new Date().toISOString();
  const loadBefore = loadavg()[0];
  const loadDuring: number[] = [];
  const countersBefore = cpuCounters();
  const plan = planBench(lab, pods);
  const tests = settings.tests ?? plan.tests;
  // The nodes' CPUs, not this machine's: a VM or a host may have fewer.
  const nodeCpus = await Promise.all(lab.topology.nodes.map(async (n) => Number((await backend.node(n.name).run(['nproc'], { allowFailure: true })).stdout.trim()) || cpus().length));
  const pin = pinningFor(Math.min(...nodeCpus), settings.pin);
  const minRepeat = Math.min(settings.minRepeat, settings.repeat);
  const notes: string[] = [];
  const node = (name: string) => lab.topology.nodes.find((n) => n.name === name)!;
  const addressFor = (p: PlannedPair) => (name: string) => (p.family === 6 ? node(name).addressV6! : node(name).address);
  // Each pair is held against the underlay of its own family, measured in the same repetition.
  const refOf = (p: PlannedPair) => plan.pairs.find((q) => q.kind === 'underlay' && q.family === p.family)!;
  // sockperf before 3.8 speaks IPv4 only.
  const rrPairs = plan.pairs.filter((p) => p.family === 4);
  if (tests.includes('rr') && rrPairs.length < plan.pairs.length) notes.push('rr: sockperf measures IPv4 pairs only (it has no IPv6 before version 3.8)');

  const probe = new PathProbe(backend);
  const paths = await Promise.all(plan.pairs.map((p) => probe.path(p, addressFor(p))));
  const topology = await topologyOf(probe, lab, pods);
  if (probe.ethtoolMissing) notes.push('ethtool is not installed: offloads were not recorded');
  notes.push(...probe.unrouted);
  if (minRepeat < 2) notes.push('one repetition: no spread was measured, so every ratio here is within noise');
  else if (minRepeat < 6) notes.push(`${minRepeat} repetitions: min..max covers the median with ${(medianInterval(Array.from({ length: minRepeat }, (_, i) => i)).level * 100).toFixed(1)}%, not 95%`);

  const values = new Map<string, Map<MetricName, number[]>>(plan.pairs.map((p) => [p.name, new Map()]));
  const record = (pair: string, m: Measured) => {
    for (const [name, v] of Object.entries(m) as [MetricName, number | undefined][]) {
      if (v === undefined || !Number.isFinite(v)) continue;
      const list = values.get(pair)!;
      list.set(name, [...(list.get(name) ?? []), v]);
    }
  };
  // Each pair's rate at the end of its warm-up; a run sends what the pair's last rates for that test
  // (or, before any, the warm-up rate) carry in durationS.
  const rates = new Map<string, number>();
  const bytesFor = (pair: PlannedPair, test: 'tcp' | 'tcp4' | 'udp', durationS: number) => {
    // Before a test's first run, the pair's latest single-stream rate (which may have fallen far
    // below the warm-up's, e.g. once a shaper's burst is spent), else the warm-up's.
    const seen = values.get(pair.name)!;
    const gbps = test === 'udp' ? rateGbps(plan.udpRate) : median(seen.get(WATCHED[test])?.slice(-3) ?? seen.get('tcp.gbps')?.slice(-3) ?? [rates.get(pair.name) ?? 1]);
    return Math.max(2 ** 20, (gbps * 1e9 * durationS) / 8);
  };
  // Generous: a run sized from one rate may meet a machine that just got much busier.
  const timeoutS = Math.max(30, settings.durationS * 60);

  const udpSent = new Map<string, number[]>();
  const window = tests.includes('udp') ? await udpWindow(backend, lab.topology.nodes.map((n) => n.name)) : { bytes: UDP_WINDOW };
  if (window.limitedBy) notes.push(`udp: socket buffers of ${window.bytes} bytes, not ${UDP_WINDOW} (${window.limitedBy}): the loss may include the receiver's own socket drops`);
  const measure = async (test: RepeatedTest, pair: PlannedPair, durationS: number): Promise<Measured> => {
    const { client, server } = pair;
    switch (test) {
      case 'tcp':
      case 'tcp4': {
        const r = await iperf3(backend, client, server, { bytes: bytesFor(pair, test, durationS), streams: test === 'tcp4' ? 4 : 1, pin, timeoutS });
        return test === 'tcp'
          ? { 'tcp.gbps': r.gbps, 'tcp.cpuMsPerGbit': r.cpuMsPerGbit, 'tcp.retransmits': r.retransmits }
          : { 'tcp4.gbps': r.gbps, 'tcp4.cpuMsPerGbit': r.cpuMsPerGbit };
      }
      case 'udp': {
        const r = await iperf3(backend, client, server, { bytes: bytesFor(pair, test, durationS), udpRate: plan.udpRate, window: window.bytes, pin, timeoutS });
        udpSent.set(pair.name, [...(udpSent.get(pair.name) ?? []), r.sentGbps]);
        // What arrived at the offered load: on a short run the receiver's own clock includes its set-up.
        return { 'udp.gbps': r.sentGbps * (1 - (r.udp?.lossPct ?? 0) / 100), 'udp.lossPct': r.udp?.lossPct, 'udp.jitterUs': r.udp && r.udp.jitterMs * 1000 };
      }
    }
  };

  /** Every watched figure, and every paired ratio to the underlay, within the target. */
  const narrow = (test: RepeatedTest) => {
    const metric = WATCHED[test];
    const target = settings.ciTargetPct / 100;
    return plan.pairs.every((p) => {
      const ref = values.get(refOf(p).name)!.get(metric);
      const vs = values.get(p.name)!.get(metric);
      if (!vs?.length) return true;
      if (relativeHalfWidth(medianInterval(vs), median(vs)) > target) return false;
      if (p.kind === 'underlay' || !ref || ref.length !== vs.length || !METRICS[metric].ratio) return true;
      const ratios = vs.map((v, i) => v / ref[i]);
      return relativeHalfWidth(medianInterval(ratios), median(ratios)) <= target;
    });
  };

  const warmup: NonNullable<BenchResult['warmup']> = [];
  let sweep: BenchResult['sweep'];
  const repetitions: Record<string, number> = {};
  const servers = await startServers(backend, plan.pairs, tests, pin, settings.sweep);
  try {
    if (tests.some((t) => t !== 'ping') || settings.sweep) {
      // Warm by observation: short TCP runs until two in a row agree; the last rate sizes what follows.
      for (const pair of plan.pairs) {
        const seen: number[] = [];
        let bytes = PROBE_BYTES;
        while (seen.length < WARMUP_MAX_RUNS) {
          const r = await iperf3(backend, pair.client, pair.server, { bytes, pin, timeoutS: 60 });
          seen.push(r.gbps);
          bytes = Math.max(2 ** 20, (r.gbps * 1e9 * settings.durationS) / 8);
          const prev = seen.at(-2);
          if (seen.length >= 3 && prev !== undefined && Math.abs(r.gbps / prev - 1) <= WARMUP_AGREE) break;
        }
        rates.set(pair.name, seen.at(-1)!);
        warmup.push({ pair: pair.name, gbps: seen });
        if (seen.length === WARMUP_MAX_RUNS) notes.push(`${pair.name}: TCP had not settled after ${WARMUP_MAX_RUNS} warm-up runs (${seen.map((g) => g.toFixed(2)).join(', ')} Gb/s)`);
      }
      log(`warm-up: ${warmup.map((w) => `${w.pair} ${w.gbps.length} runs`).join(' · ')}`);
    }
    for (const test of tests) {
      if (test === 'ping') {
        for (const pair of plan.pairs) {
          const r = await ping(backend, pair.client, pair.server, { count: PING_COUNT, intervalS: PING_INTERVAL_S, pin });
          if (r.lossPct > 0) notes.push(`${pair.name}: ping lost ${r.lossPct.toFixed(1)}% of its requests`);
          for (const w of windowsOf(r.samples, RR_WINDOWS)) record(pair.name, { 'ping.p50Us': quantile(w, 0.5), 'ping.p90Us': quantile(w, 0.9), 'ping.p99Us': quantile(w, 0.99) });
        }
        repetitions.ping = RR_WINDOWS;
        loadDuring.push(loadavg()[0]);
        log(`ping ${plan.pairs.map((p) => `${p.name} p50 ${us(median(values.get(p.name)!.get('ping.p50Us') ?? [NaN]))}`).join(' · ')} (${RR_WINDOWS} windows)`);
        continue;
      }
      if (test === 'rr') {
        const windows = await requestResponse(backend, rrPairs, { windows: RR_WINDOWS, pin });
        for (const pair of rrPairs) for (const w of windows.get(pair.name) ?? []) record(pair.name, { 'rr.p50Us': w.p50, 'rr.p90Us': w.p90, 'rr.p99Us': w.p99 });
        repetitions.rr = Math.min(...rrPairs.map((p) => windows.get(p.name)?.length ?? 0));
        loadDuring.push(loadavg()[0]);
        log(`rr   ${rrPairs.map((p) => `${p.name} p50 ${us(median(values.get(p.name)!.get('rr.p50Us') ?? [NaN]))}`).join(' · ')} (${RR_WINDOWS} windows)`);
        continue;
      }
      for (let rep = 1; rep <= settings.repeat; rep++) {
        // Each repetition starts with the next pair, so a machine getting busier or quieter during
        // a repetition does not always favour the pair measured last.
        const order = plan.pairs.map((_, i) => plan.pairs[(i + rep - 1) % plan.pairs.length]);
        const passes = settings.mirrored ? [order, [...order].reverse()] : [order];
        const runs = new Map<string, Measured[]>(order.map((p) => [p.name, []]));
        for (const pass of passes) for (const pair of pass) runs.get(pair.name)!.push(await measure(test, pair, settings.durationS / passes.length));
        const line: string[] = [];
        for (const pair of order) {
          const m = meanOfRuns(runs.get(pair.name)!);
          record(pair.name, m);
          line.push(`${pair.name} ${headline(test, m)}`);
        }
        loadDuring.push(loadavg()[0]);
        log(`${test.padEnd(4)} ${rep}: ${line.join(' · ')}`);
        repetitions[test] = rep;
        if (rep >= minRepeat && narrow(test)) break;
      }
    }
    if (settings.sweep) {
      const family = plan.pairs[0].family;
      const swept = plan.pairs.filter((p) => p.family === family && (p.kind === 'underlay' || p.kind === 'cross-node')).slice(0, 2);
      if (swept.length === 2) sweep = await sweepMessageSizes(backend, swept, { durationS: settings.durationS, pin, log });
      else notes.push('no cross-node pair: no message-size sweep');
    }
  } finally {
    for (const s of servers) await s.stop();
  }
  for (const test of tests) {
    if (test !== 'rr' && test !== 'ping' && repetitions[test] === settings.repeat && settings.repeat > minRepeat) notes.push(`${test}: still wider than ±${settings.ciTargetPct}% after ${settings.repeat} repetitions`);
  }
  // A sender that cannot reach the asked rate is CPU-bound: its loss figure is at a lower load than asked.
  for (const [pair, sent] of udpSent) {
    const short = sent.filter((g) => g < rateGbps(plan.udpRate) * 0.9);
    if (short.length) notes.push(`${pair}: the UDP sender reached ${Math.min(...sent).toFixed(2)}–${Math.max(...sent).toFixed(2)} Gb/s of the ${plan.udpRate}b/s asked (CPU-bound) in ${short.length} of ${sent.length} repetitions`);
  }
  const host = hostInfo(backend.kind);
  const busy = busyBetween(countersBefore, cpuCounters());

  return {
    schemaVersion: RESULT_SCHEMA_VERSION,
    lab: lab.name,
    mode: lab.mode,
    description: lab.description,
    backend: backend.kind,
    startedAt,
    finishedAt: new Date().toISOString(),
    settings: { repeat: settings.repeat, minRepeat, durationS: settings.durationS, ciTargetPct: settings.ciTargetPct, udpRate: plan.udpRate, tests, pin: settings.pin, ...(settings.sweep ? { sweep: true } : {}), mirrored: settings.mirrored ?? false },
    ...(target.labFile ? { labFile: labFileRecord(target.labFile) } : {}),
    host: {
      ...host,
      load: { before: loadBefore, during: loadDuring, after: loadavg()[0] },
      busyPct: busy.busyPct,
      netRxSoftirqs: busy.netRxSoftirqs,
      ...(pin ? { pinning: { client: `CPU ${pin.client}`, server: `CPU ${pin.server}` } } : {}),
    },
    versions: await toolVersions(),
    git: await gitCommit(),
    topology,
    pairs: plan.pairs.map((p, i) => ({
      name: p.name,
      kind: p.kind,
      family: p.family,
      client: p.client,
      server: p.server,
      path: paths[i],
      metrics: Object.fromEntries([...values.get(p.name)!.entries()].map(([name, vs]) => [name, { unit: METRICS[name].unit, better: METRICS[name].better, values: vs, ...figureStats(vs) }])),
    })),
    warmup,
    ...(sweep ? { sweep } : {}),
    notes: [...new Set(notes)],
  };
}

/** Consecutive samples in `n` windows of (nearly) equal count. */
export function windowsOf(samples: number[], n: number): number[][] {
  const k = Math.min(n, samples.length);
  return Array.from({ length: k }, (_, i) => samples.slice(Math.floor((i * samples.length) / k), Math.floor(((i + 1) * samples.length) / k)));
}

/** A repetition's figures from a pair's runs in it: the mean of each, retransmits added up (the runs share the time). */
export function meanOfRuns(runs: Measured[]): Measured {
  const out: Measured = {};
  const names = new Set(runs.flatMap((r) => Object.keys(r) as MetricName[]));
  for (const name of names) {
    const vs = runs.map((r) => r[name]).filter((v): v is number => v !== undefined && Number.isFinite(v));
    if (!vs.length) continue;
    const sum = vs.reduce((a, v) => a + v, 0);
    out[name] = name.endsWith('.retransmits') ? sum : sum / vs.length;
  }
  return out;
}

function headline(test: RepeatedTest, m: Measured): string {
  switch (test) {
    case 'tcp':
      return gb(m['tcp.gbps']);
    case 'tcp4':
      return gb(m['tcp4.gbps']);
    case 'udp':
      return `${gb(m['udp.gbps'])}, ${(m['udp.lossPct'] ?? 0).toFixed(1)}% lost`;
  }
}

/** "300M" → 0.3 (Gb/s), as iperf3 reads -b. */
export function rateGbps(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)$/.exec(rate);
  if (!m) throw new Error(`"${rate}" is not a rate such as 300M`);
  return (Number(m[1]) * { '': 1, K: 1e3, M: 1e6, G: 1e9 }[m[2] as '' | 'K' | 'M' | 'G']) / 1e9;
}

/** One iperf3 and (for request/response) one sockperf server per distinct server endpoint, up for the whole run. */
async function startServers(backend: Backend, pairs: PlannedPair[], tests: BenchTest[], pin: Pinning | undefined, sweep = false): Promise<Server[]> {
  const endpoints = new Map<string, Endpoint>(pairs.map((p) => [endpointLabel(p.server), p.server]));
  const wanted = [...(tests.some((t) => t !== 'rr') || sweep ? (['iperf3'] as const) : []), ...(tests.includes('rr') ? (['sockperf'] as const) : [])];
  const started: Server[] = [];
  try {
    for (const ep of endpoints.values()) {
      for (const name of wanted) {
        const s = serverArgv(name, pin);
        started.push(await Server.start(backend, ep, `${name}-server`, s.argv, s.port));
      }
    }
    return started;
  } catch (e) {
    for (const s of started) await s.stop();
    throw e;
  }
}
