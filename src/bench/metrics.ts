// The metrics a benchmark records, by test. One catalogue for the bench, the
// results schema and the report, so a name means the same thing everywhere.

import type { BenchTest } from '../lab/bench-block.js';

export { BENCH_TESTS, type BenchTest } from '../lab/bench-block.js';

export interface MetricInfo {
  test: BenchTest;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Shown as a multiple of the underlay in the comparison (throughput and latency are; loss is not). */
  ratio: boolean;
}

export const METRICS = {
  'tcp.gbps': { test: 'tcp', label: 'TCP, 1 stream', unit: 'Gb/s', better: 'higher', ratio: true },
  'tcp.cpuMsPerGbit': { test: 'tcp', label: 'CPU per Gbit (TCP, 1 stream)', unit: 'ms', better: 'lower', ratio: true },
  'tcp.retransmits': { test: 'tcp', label: 'TCP retransmits (1 stream)', unit: '', better: 'lower', ratio: false },
  'tcp4.gbps': { test: 'tcp4', label: 'TCP, 4 streams', unit: 'Gb/s', better: 'higher', ratio: true },
  'tcp4.cpuMsPerGbit': { test: 'tcp4', label: 'CPU per Gbit (TCP, 4 streams)', unit: 'ms', better: 'lower', ratio: true },
  'udp.gbps': { test: 'udp', label: 'UDP received', unit: 'Gb/s', better: 'higher', ratio: false },
  'udp.lossPct': { test: 'udp', label: 'UDP loss', unit: '%', better: 'lower', ratio: false },
  'udp.jitterUs': { test: 'udp', label: 'UDP jitter', unit: 'µs', better: 'lower', ratio: false },
  'ping.p50Us': { test: 'ping', label: 'ping RTT p50', unit: 'µs', better: 'lower', ratio: true },
  'ping.p90Us': { test: 'ping', label: 'ping RTT p90', unit: 'µs', better: 'lower', ratio: true },
  'ping.p99Us': { test: 'ping', label: 'ping RTT p99', unit: 'µs', better: 'lower', ratio: true },
  'rr.p50Us': { test: 'rr', label: 'TCP request/response p50', unit: 'µs', better: 'lower', ratio: true },
  'rr.p90Us': { test: 'rr', label: 'TCP request/response p90', unit: 'µs', better: 'lower', ratio: true },
  'rr.p99Us': { test: 'rr', label: 'TCP request/response p99', unit: 'µs', better: 'lower', ratio: true },
} as const satisfies Record<string, MetricInfo>;

export type MetricName = keyof typeof METRICS;
export const METRIC_NAMES = Object.keys(METRICS) as MetricName[];

export function metricInfo(name: string): MetricInfo | undefined {
  return (METRICS as Record<string, MetricInfo>)[name];
}
