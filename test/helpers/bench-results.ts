// Schema-valid benchmark results built in memory, for tests of the comparison,
// the gate and the report (the measuring itself is tested on real labs).
import { METRICS, type MetricName } from '../../src/bench/metrics.js';
import { RESULT_SCHEMA_VERSION, type BenchResult } from '../../src/bench/results.js';
import { figureStats } from '../../src/bench/stats.js';

type PairValues = Partial<Record<MetricName, number[]>>;

export interface FakeOptions {
  lab?: string;
  mode?: string;
  backend?: string;
  startedAt?: string;
  hostClass?: string;
  underlay?: PairValues;
  crossNode?: PairValues;
  sameNode?: PairValues;
}

/** Typical figures: cross-node at about 70% of the underlay, tight spreads. */
export const TYPICAL = {
  underlay: { 'tcp.gbps': [15.2, 15.8, 16.1], 'tcp4.gbps': [18.0, 18.4, 18.9], 'rr.p50Us': [30, 31, 33], 'rr.p99Us': [80, 95, 120], 'ping.p50Us': [60, 62, 64], 'udp.lossPct': [0, 0, 0], 'tcp.cpuMsPerGbit': [100, 104, 110] },
  crossNode: { 'tcp.gbps': [10.6, 11.0, 11.3], 'tcp4.gbps': [12.5, 13.0, 13.4], 'rr.p50Us': [45, 46, 48], 'rr.p99Us': [110, 130, 160], 'ping.p50Us': [90, 92, 95], 'udp.lossPct': [0, 0.1, 0], 'tcp.cpuMsPerGbit': [140, 150, 152] },
  sameNode: { 'tcp.gbps': [15.0, 15.9, 16.4], 'tcp4.gbps': [17.8, 18.6, 19.0], 'rr.p50Us': [29, 31, 34], 'rr.p99Us': [85, 90, 140], 'ping.p50Us': [58, 61, 66], 'udp.lossPct': [0, 0, 0], 'tcp.cpuMsPerGbit': [98, 105, 112] },
} satisfies Record<string, PairValues>;

const metrics = (values: PairValues) =>
  Object.fromEntries(
    Object.entries(values).map(([name, vs]) => [name, { unit: METRICS[name as MetricName].unit, better: METRICS[name as MetricName].better, values: vs!, ...figureStats(vs!) }]),
  );

const hop = (where: string, ifname: string, kind: string, mtu: number) => ({ where, ifname, kind, mtu, offloads: { tso: true, gso: true, gro: false } });

export function fakeResult(o: FakeOptions = {}): BenchResult {
  const lab = o.lab ?? 'flannel-vxlan';
  const startedAt = o.startedAt ?? '2026-01-01T00:00:00.000Z';
  const overlay = lab.includes('vxlan');
  const podMtu = overlay ? 1450 : 1500;
  const tunnel = overlay ? [{ ifname: 'flannel.1', kind: 'vxlan', mtu: 1450 }] : [];
  return {
    schemaVersion: RESULT_SCHEMA_VERSION,
    lab,
    mode: o.mode ?? (overlay ? 'overlay' : 'route'),
    description: `${lab} for tests`,
    backend: o.backend ?? 'netns',
    startedAt,
    finishedAt: startedAt,
    settings: { repeat: 3, minRepeat: 3, durationS: 2, ciTargetPct: 3, udpRate: '300M', tests: ['tcp', 'tcp4', 'udp', 'ping', 'rr'], pin: true },
    host: { kernel: '6.1.0-test', arch: 'x64', cpus: 2, class: o.hostClass ?? 'test-cpu ×2 x64 netns', load: { before: 0.5, during: [0.6], after: 0.7 } },
    versions: { cnilab: '0.1.0', node: 'v20.0.0', iperf3: 'iperf 3.12', sockperf: 'sockperf, version 3.7' },
    git: { commit: '0123456789abcdef0123456789abcdef01234567', dirty: false },
    topology: {
      underlay: '192.168.10.0/24',
      nodes: ['master', 'worker'].map((name, i) => ({
        name,
        address: `192.168.10.${210 + i * 10}`,
        links: [{ ifname: 'eth0', kind: 'veth', mtu: 1500 }, ...tunnel, { ifname: 'cni0', kind: 'bridge', mtu: podMtu }],
      })),
      pods: [
        { name: 'nginx-0', node: 'master', ip: '10.10.0.2' },
        { name: 'nginx-1', node: 'worker', ip: '10.10.1.2' },
        { name: 'nginx-2', node: 'master', ip: '10.10.0.3' },
      ],
    },
    pairs: [
      {
        name: 'underlay',
        kind: 'underlay',
        client: { node: 'master', ip: '192.168.10.210' },
        server: { node: 'worker', ip: '192.168.10.220' },
        path: [hop('master', 'eth0', 'veth', 1500), hop('worker', 'eth0', 'veth', 1500)],
        metrics: metrics(o.underlay ?? TYPICAL.underlay),
      },
      {
        name: 'same-node',
        kind: 'same-node',
        client: { node: 'master', pod: 'nginx-0', ip: '10.10.0.2' },
        server: { node: 'master', pod: 'nginx-2', ip: '10.10.0.3' },
        path: [hop('nginx-0 (master)', 'eth0', 'veth', podMtu), hop('master', 'cni0', 'bridge', podMtu), hop('nginx-2 (master)', 'eth0', 'veth', podMtu)],
        metrics: metrics(o.sameNode ?? TYPICAL.sameNode),
      },
      {
        name: 'cross-node',
        kind: 'cross-node',
        client: { node: 'master', pod: 'nginx-0', ip: '10.10.0.2' },
        server: { node: 'worker', pod: 'nginx-1', ip: '10.10.1.2' },
        path: [
          hop('nginx-0 (master)', 'eth0', 'veth', podMtu),
          ...(overlay ? [hop('master', 'flannel.1', 'vxlan', 1450)] : []),
          hop('master', 'eth0', 'veth', 1500),
          hop('worker', 'cni0', 'bridge', podMtu),
          hop('nginx-1 (worker)', 'eth0', 'veth', podMtu),
        ],
        metrics: metrics(o.crossNode ?? TYPICAL.crossNode),
      },
    ],
    notes: [],
  };
}

/** Every value of one metric scaled: a run made slower or faster on purpose. */
export function scaled(values: PairValues, metric: MetricName, factor: number): PairValues {
  return { ...values, [metric]: values[metric]!.map((v) => v * factor) };
}
