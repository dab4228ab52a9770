// Parsers for what the measurement tools print: iperf3 --json, ping, sockperf.
// Pure functions, so every format quirk is pinned by a unit test.
import { quantile } from './stats.js';

export class ToolOutputError extends Error {
  constructor(tool: string, problem: string, output: string) {
    super(`${tool}: ${problem}; output began: ${JSON.stringify(output.slice(0, 300))}`);
    this.name = 'ToolOutputError';
  }
}

export interface Iperf3Result {
  /** Received throughput in Gb/s (what arrived, not what was sent). */
  gbps: number;
  /** What the client sent, Gb/s (for UDP: shows whether the sender kept the asked rate). */
  sentGbps: number;
  seconds: number;
  retransmits?: number;
  /** CPU time (user + system) of both iperf3 processes per transferred gigabit, in ms. */
  cpuMsPerGbit?: number;
  udp?: { lossPct: number; jitterMs: number; packets: number };
}

interface IperfSum {
  seconds: number;
  bytes: number;
  bits_per_second: number;
  retransmits?: number;
  jitter_ms?: number;
  lost_packets?: number;
  packets?: number;
  lost_percent?: number;
}

export function parseIperf3(stdout: string): Iperf3Result {
  let doc: { error?: string; end?: { sum_sent?: IperfSum; sum_received?: IperfSum; sum?: IperfSum; cpu_utilization_percent?: { host_total: number; remote_total: number } }; start?: { test_start?: { protocol?: string } } };
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new ToolOutputError('iperf3', 'not JSON', stdout);
  }
  if (doc.error) throw new ToolOutputError('iperf3', doc.error, stdout);
  const end = doc.end;
  const received = end?.sum_received ?? end?.sum;
  const sent = end?.sum_sent ?? end?.sum;
  if (!received || !sent) throw new ToolOutputError('iperf3', 'no end.sum_received in the report', stdout);
  const udp = doc.start?.test_start?.protocol === 'UDP';
  const gbits = (received.bytes * 8) / 1e9;
  const cpu = end?.cpu_utilization_percent;
  return {
    gbps: received.bits_per_second / 1e9,
    sentGbps: sent.bits_per_second / 1e9,
    seconds: received.seconds,
    retransmits: sent.retransmits,
    cpuMsPerGbit: cpu && gbits > 0 ? (((cpu.host_total + cpu.remote_total) / 100) * received.seconds * 1000) / gbits : undefined,
    udp: udp ? { lossPct: received.lost_percent ?? 0, jitterMs: received.jitter_ms ?? 0, packets: received.packets ?? 0 } : undefined,
  };
}

export interface LatencyPercentiles {
  p50: number;
  p90: number;
  p99: number;
}

export interface PingResult extends LatencyPercentiles {
  /** Every round trip, in microseconds. */
  samples: number[];
  lossPct: number;
}

/** `ping -n` output: one "time=0.050 ms" per reply, then the loss summary. */
export function parsePing(stdout: string): PingResult {
  const samples = [...stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
  const summary = /(\d+) packets transmitted, (\d+) received/.exec(stdout);
  if (!summary) throw new ToolOutputError('ping', 'no "packets transmitted" summary', stdout);
  if (samples.length === 0) throw new ToolOutputError('ping', 'no replies', stdout);
  const [sent, got] = [Number(summary[1]), Number(summary[2])];
  return { samples, lossPct: ((sent - got) / sent) * 100, p50: quantile(samples, 0.5), p90: quantile(samples, 0.9), p99: quantile(samples, 0.99) };
}

export interface SockperfResult extends LatencyPercentiles {
  observations: number;
}

/** `sockperf ping-pong --full-rtt`: percentiles of the round trip, in microseconds. */
export function parseSockperf(stdout: string): SockperfResult {
  const text = stdout.replace(/\x1b\[[0-9;]*m/g, '');
  const pct = (p: string) => {
    const m = new RegExp(`percentile ${p.replace('.', '\\.')} =\\s*([\\d.]+)`).exec(text);
    if (!m) throw new ToolOutputError('sockperf', `no "percentile ${p}" line`, text);
    return Number(m[1]);
  };
  const observations = Number(/Total (\d+) observations/.exec(text)?.[1] ?? NaN);
  if (!Number.isFinite(observations)) throw new ToolOutputError('sockperf', 'no "Total N observations" line', text);
  return { observations, p50: pct('50.000'), p90: pct('90.000'), p99: pct('99.000') };
}

export interface SockperfWindow extends LatencyPercentiles {
  observations: number;
}

/**
 * `sockperf --full-log` lines ("packet, txTime(sec), rxTime(sec), rtt(usec)")
 * cut into `windows` equal spans of send time; the round-trip percentiles of
 * each (empty windows are left out).
 */
export function parseSockperfLog(stdout: string, windows: number): SockperfWindow[] {
  const rows = [...stdout.matchAll(/^\s*\d+,\s*([\d.]+),\s*([\d.]+),\s*([\d.]+)\s*$/gm)].map((m) => ({ tx: Number(m[1]), rtt: Number(m[3]) }));
  if (rows.length === 0) throw new ToolOutputError('sockperf', 'no per-message lines in the --full-log output', stdout.replace(/\x1b\[[0-9;]*m/g, ''));
  const t0 = rows.reduce((a, r) => Math.min(a, r.tx), Infinity);
  const span = rows.reduce((a, r) => Math.max(a, r.tx), -Infinity) - t0 || 1;
  const buckets: number[][] = Array.from({ length: windows }, () => []);
  for (const r of rows) buckets[Math.min(windows - 1, Math.floor(((r.tx - t0) / span) * windows))].push(r.rtt);
  return buckets.filter((b) => b.length).map((b) => ({ observations: b.length, p50: quantile(b, 0.5), p90: quantile(b, 0.9), p99: quantile(b, 0.99) }));
}
