import { expect } from 'chai';
import { parseIperf3, parsePing, parseSockperf, parseSockperfLog, ToolOutputError } from '../../src/bench/parse.js';
import { median, overlaps, quantile, spread } from '../../src/bench/stats.js';
import { parseOffloads } from '../../src/bench/environment.js';
import { planBench, BenchPlanError, NothingToMeasureError } from '../../src/bench/plan.js';
import { meanOfRuns, pinningFor, rateGbps, windowsOf } from '../../src/bench/run.js';
import { LabFileError } from '../../src/lab/lab-file.js';
import { parseLab } from '../../src/datapaths/index.js';
import type { PodRecord } from '../../src/lab/state.js';

// Trimmed from real iperf3 3.12 --json reports (one TCP, one UDP at -b 1G).
const IPERF_TCP = JSON.stringify({
  start: { test_start: { protocol: 'TCP', num_streams: 1, duration: 2 } },
  end: {
    sum_sent: { seconds: 2.013755, bytes: 432406528, bits_per_second: 1717811860.9, retransmits: 13, sender: true },
    sum_received: { seconds: 2.027472, bytes: 432406528, bits_per_second: 1706189887.7, sender: true },
    cpu_utilization_percent: { host_total: 12.41, host_user: 0.33, host_system: 12.09, remote_total: 17.64, remote_user: 0.4, remote_system: 17.24 },
  },
});
const IPERF_UDP = JSON.stringify({
  start: { test_start: { protocol: 'UDP', num_streams: 1, blksize: 1398, duration: 2, target_bitrate: 1000000000 } },
  end: {
    sum_sent: { seconds: 2.0023, bytes: 32050548, bits_per_second: 128054928.8, jitter_ms: 0, lost_packets: 0, packets: 22926, lost_percent: 0, sender: true },
    sum_received: { seconds: 2.002407, bytes: 29265732, bits_per_second: 116922212.1, jitter_ms: 0.0289, lost_packets: 1922, packets: 22856, lost_percent: 8.3835, sender: false },
    cpu_utilization_percent: { host_total: 32.88, remote_total: 11.3 },
  },
});

const PING = `PING 10.10.1.2 (10.10.1.2) 56(84) bytes of data.
64 bytes from 10.10.1.2: icmp_seq=1 ttl=62 time=0.068 ms
64 bytes from 10.10.1.2: icmp_seq=2 ttl=62 time=0.034 ms
64 bytes from 10.10.1.2: icmp_seq=4 ttl=62 time=0.030 ms

--- 10.10.1.2 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 29ms
rtt min/avg/max/mdev = 0.030/0.044/0.068/0.017 ms
`;

const SOCKPERF = `sockperf: \x1b[2;35m== version #3.7-no.git == \x1b[0m
sockperf: [Total Run] RunTime=2.001 sec; Warm up time=400 msec; SentMessages=14927; ReceivedMessages=14926
sockperf: \x1b[2;35m====> avg-rtt=144.028 (std-dev=619.306)\x1b[0m
sockperf: Summary: Round trip is 144.028 usec
sockperf: \x1b[2;35mTotal 10739 observations\x1b[0m; each percentile contains 107.39 observations
sockperf: ---> <MAX> observation = 26145.534
sockperf: ---> percentile 99.999 = 26145.534
sockperf: ---> percentile 99.990 = 14628.639
sockperf: ---> percentile 99.900 = 6981.296
sockperf: ---> percentile 99.000 = 2941.719
sockperf: ---> percentile 90.000 =   75.419
sockperf: ---> percentile 75.000 =   65.100
sockperf: ---> percentile 50.000 =   52.868
sockperf: ---> percentile 25.000 =   47.067
sockperf: ---> <MIN> observation =   34.944
`;

describe('bench: tool output', () => {
  it('iperf3 TCP: received Gb/s, retransmits, and CPU ms per transferred gigabit from both ends', () => {
    const r = parseIperf3(IPERF_TCP);
    expect(r.gbps).to.be.closeTo(1.706, 0.001);
    expect(r.retransmits).to.equal(13);
    expect(r.udp).to.equal(undefined);
    // (12.41 + 17.64)% of 2.027 s = 609 ms of CPU for 3.459 Gbit
    expect(r.cpuMsPerGbit).to.be.closeTo(176.1, 0.5);
  });

  it('iperf3 UDP: loss and jitter from the receiver, and what the sender managed', () => {
    const r = parseIperf3(IPERF_UDP);
    expect(r.udp).to.deep.equal({ lossPct: 8.3835, jitterMs: 0.0289, packets: 22856 });
    expect(r.sentGbps).to.be.closeTo(0.128, 0.001);
    expect(r.gbps).to.be.closeTo(0.117, 0.001);
  });

  it('iperf3 errors come out with iperf3\'s own message', () => {
    expect(() => parseIperf3(JSON.stringify({ start: {}, end: {}, error: 'unable to connect to server: Connection refused' }))).to.throw(ToolOutputError, /Connection refused/);
    expect(() => parseIperf3('iperf3: error')).to.throw(ToolOutputError, /not JSON/);
  });

  it('ping: every round trip in µs, percentiles and loss', () => {
    const r = parsePing(PING);
    expect(r.samples).to.deep.equal([68, 34, 30]);
    expect(r.lossPct).to.equal(25);
    expect(r.p50).to.equal(34);
    expect(() => parsePing('PING x\n\n--- x ping statistics ---\n3 packets transmitted, 0 received, 100% packet loss')).to.throw(ToolOutputError, /no replies/);
  });

  it('sockperf ping-pong: p50, p90 and p99 of the round trip, colour codes and all', () => {
    expect(parseSockperf(SOCKPERF)).to.deep.equal({ observations: 10739, p50: 52.868, p90: 75.419, p99: 2941.719 });
    expect(() => parseSockperf('sockperf: error')).to.throw(ToolOutputError, /observations/);
  });

  it('ethtool -k: the offloads that matter, fixed or not', () => {
    const text = 'Features for eth0:\nrx-checksumming: on\ntx-checksumming: on\n\ttx-checksum-ipv4: off [fixed]\nscatter-gather: on\ntcp-segmentation-offload: off\ngeneric-segmentation-offload: on\ngeneric-receive-offload: off [fixed]\nlarge-receive-offload: off [fixed]\n';
    expect(parseOffloads(text)).to.deep.equal({ rxCsum: true, txCsum: true, sg: true, tso: false, gso: true, gro: false });
  });

  it('rates as iperf3 reads them', () => {
    expect(rateGbps('300M')).to.equal(0.3);
    expect(rateGbps('1G')).to.equal(1);
    expect(() => rateGbps('fast')).to.throw(/not a rate/);
  });
});

describe('bench: statistics', () => {
  it('median and quantiles interpolate between neighbours', () => {
    expect(median([3, 1, 2])).to.equal(2);
    expect(median([4, 1, 2, 3])).to.equal(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.9)).to.be.closeTo(4.6, 1e-9);
  });
  it('two spreads that overlap are within noise; apart they are a difference', () => {
    expect(overlaps(spread([10, 12, 14]), spread([13, 15, 16]))).to.equal(true);
    expect(overlaps(spread([10, 11, 12]), spread([13, 15, 16]))).to.equal(false);
  });
});

describe('bench: sockperf per-message log', () => {
  const log = (rows: [number, number][]) =>
    ['sockperf: Starting test...', '------------------------------', 'packet, txTime(sec), rxTime(sec), rtt(usec)', '------------------------------', ...rows.map(([tx, rtt], i) => `${i}, ${tx.toFixed(9)}, ${(tx + rtt / 1e6).toFixed(9)}, ${rtt.toFixed(3)}`)].join('\n');
  it('cuts the run into windows of send time, percentiles per window', () => {
    // 0.0–0.5 s at 10 µs, 0.5–1.0 s at 30 µs
    const rows: [number, number][] = Array.from({ length: 1000 }, (_, i) => [100 + i / 1000, i < 500 ? 10 : 30]);
    const w = parseSockperfLog(log(rows), 2);
    expect(w.map((x) => [x.observations, x.p50])).to.deep.equal([
      [500, 10],
      [500, 30],
    ]);
    expect(parseSockperfLog(log(rows), 8)).to.have.length(8);
  });
  it('no per-message lines is a tool error that quotes the output', () => {
    expect(() => parseSockperfLog('sockperf: Invalid 24 val.', 8)).to.throw(ToolOutputError, /Invalid 24/);
  });
});

describe('bench: ping windows', () => {
  it('one run of 100 echoes becomes 8 windows of consecutive echoes, none lost or repeated', () => {
    const w = windowsOf(Array.from({ length: 100 }, (_, i) => i), 8);
    expect(w.map((x) => x.length)).to.deep.equal([12, 13, 12, 13, 12, 13, 12, 13]);
    expect(w.flat()).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));
    expect(windowsOf([5, 6], 8)).to.deep.equal([[5], [6]]);
  });
});

describe('bench: mirrored runs', () => {
  it("a repetition's figure is the mean of the pair's runs; retransmits add up; a figure one run lacks comes from the others", () => {
    const m = meanOfRuns([
      { 'tcp.gbps': 4, 'tcp.cpuMsPerGbit': 10, 'tcp.retransmits': 3 },
      { 'tcp.gbps': 6, 'tcp.cpuMsPerGbit': 20, 'tcp.retransmits': 1, 'udp.jitterUs': Number.NaN },
    ]);
    expect(m).to.deep.equal({ 'tcp.gbps': 5, 'tcp.cpuMsPerGbit': 15, 'tcp.retransmits': 4 });
    expect(meanOfRuns([{ 'udp.gbps': 1, 'udp.lossPct': 2 }, { 'udp.gbps': 3 }])).to.deep.equal({ 'udp.gbps': 2, 'udp.lossPct': 2 });
  });
});

describe('bench: pinning', () => {
  it('client and server on distinct CPUs where there are two, nothing pinned on one or when asked not to', () => {
    expect(pinningFor(2, true)).to.deep.equal({ client: 0, server: 1 });
    expect(pinningFor(1, true)).to.equal(undefined);
    expect(pinningFor(8, false)).to.equal(undefined);
  });
});

const LAB = `name: t
description: t
mode: overlay
topology:
  underlay: 192.168.10.0/24
  nodes:
    - { name: master, address: 192.168.10.210 }
    - { name: worker, address: 192.168.10.220 }
network: { plugin: flannel, podCIDR: 10.10.0.0/16, backend: vxlan }
workloads:
  - { name: nginx, image: nginx, replicas: 3 }
`;

const pods: PodRecord[] = [
  { name: 'nginx-0', node: 'master', ip: '10.10.0.2', netns: '', workload: 'nginx', status: 'Running', containerId: 'a' },
  { name: 'nginx-1', node: 'worker', ip: '10.10.1.2', netns: '', workload: 'nginx', status: 'Running', containerId: 'b' },
  { name: 'nginx-2', node: 'master', ip: '10.10.0.3', netns: '', workload: 'nginx', status: 'Running', containerId: 'c' },
];

describe('bench: what a lab measures', () => {
  it('without a bench block: the underlay between the nodes, a same-node pair and a cross-node pair', () => {
    const plan = planBench(parseLab(LAB, 't.yaml'), pods);
    expect(plan.pairs.map((p) => [p.name, p.kind, p.client.pod ?? p.client.node, p.server.pod ?? p.server.node])).to.deep.equal([
      ['underlay', 'underlay', 'master', 'worker'],
      ['same-node', 'same-node', 'nginx-0', 'nginx-2'],
      ['cross-node', 'cross-node', 'nginx-0', 'nginx-1'],
    ]);
    expect(plan.pairs[0].server.ip).to.equal('192.168.10.220');
    expect(plan.tests).to.deep.equal(['tcp', 'tcp4', 'udp', 'ping', 'rr']);
  });

  it('pairs start from pods in name order, whatever order they started in', () => {
    const plan = planBench(parseLab(LAB, 't.yaml'), [pods[1], pods[2], pods[0]]);
    expect(plan.pairs.map((p) => `${p.client.pod ?? p.client.node}>${p.server.pod ?? p.server.node}`)).to.deep.equal(['master>worker', 'nginx-0>nginx-2', 'nginx-0>nginx-1']);
  });

  it('a bench block names its pairs and tests; the underlay reference is always there', () => {
    const lab = parseLab(`${LAB}bench:\n  pairs:\n    - { name: across, client: nginx-1, server: nginx-2 }\n  tests: [tcp, rr]\n  udpRate: 1G\n`, 't.yaml');
    const plan = planBench(lab, pods);
    expect(plan.pairs.map((p) => p.name)).to.deep.equal(['underlay', 'across']);
    expect(plan.pairs[0].client.node).to.equal('worker'); // the same two nodes as the pair
    expect(plan.tests).to.deep.equal(['tcp', 'rr']);
    expect(plan.udpRate).to.equal('1G');
  });

  it('a bench block naming a pod the lab does not have is an error with file, line and field', () => {
    const text = `${LAB}bench:\n  pairs:\n    - { name: across, client: nginx-0, server: nginx-7 }\n`;
    expect(() => parseLab(text, 'bad.yaml')).to.throw(LabFileError, /^bad\.yaml:14: bench\.pairs\[0\]\.server: no pod named "nginx-7" \(pods: nginx-0, nginx-1, nginx-2\)/);
    expect(() => parseLab(`${LAB}bench:\n  tests: [tcp, bogus]\n`, 'bad.yaml')).to.throw(LabFileError, /bench\.tests\[1\]/);
    expect(() => parseLab(`${LAB}bench:\n  pairs:\n    - { name: underlay, client: nginx-0, server: nginx-1 }\n`, 'bad.yaml')).to.throw(LabFileError, /reference pair/);
  });

  it('where pod addresses repeat across nodes (NAT between hosts) no cross-node pair is measured by address', () => {
    const natted: PodRecord[] = [
      { ...pods[0], ip: '172.17.0.2' },
      { ...pods[1], ip: '172.17.0.2' },
    ];
    expect(() => planBench(parseLab(LAB, 't.yaml'), natted)).to.throw(NothingToMeasureError, /no two pods share a node, and pod addresses repeat across nodes/);
    const lab = parseLab(`${LAB}bench:\n  pairs:\n    - { name: across, client: nginx-0, server: nginx-1 }\n`, 't.yaml');
    expect(() => planBench(lab, natted)).to.throw(BenchPlanError, /nginx-1's address 172\.17\.0\.2 is not unique in this lab/);
  });

  it('a pair with a pod that is not running is named', () => {
    const lab = parseLab(`${LAB}bench:\n  pairs:\n    - { name: across, client: nginx-0, server: nginx-1 }\n`, 't.yaml');
    expect(() => planBench(lab, pods.slice(0, 1))).to.throw(BenchPlanError, /"nginx-1", which is not running/);
  });
});

const DUAL_LAB = `name: t
description: t
mode: overlay
topology:
  underlay: 192.168.10.0/24
  underlayV6: fd00:192:168:10::/64
  nodes:
    - { name: master, address: 192.168.10.210, addressV6: 'fd00:192:168:10::210' }
    - { name: worker, address: 192.168.10.220, addressV6: 'fd00:192:168:10::220' }
network: { plugin: flannel, podCIDR: 10.10.0.0/16, podCIDRv6: 'fd00:10::/48', backend: vxlan }
workloads:
  - { name: nginx, image: nginx, replicas: 3 }
`;
const dualPods: PodRecord[] = pods.map((p, i) => ({ ...p, ip6: ['fd00:10::2', 'fd00:10:0:1::2', 'fd00:10::3'][i] }));

describe('bench: a dual-stack lab', () => {
  it('measures every pair over both families; the IPv6 underlay is node to node on the IPv6 addresses', () => {
    const plan = planBench(parseLab(DUAL_LAB, 't.yaml'), dualPods);
    expect(plan.pairs.map((p) => [p.name, p.kind, p.family, p.client.ip, p.server.ip])).to.deep.equal([
      ['underlay', 'underlay', 4, '192.168.10.210', '192.168.10.220'],
      ['same-node', 'same-node', 4, '10.10.0.2', '10.10.0.3'],
      ['cross-node', 'cross-node', 4, '10.10.0.2', '10.10.1.2'],
      ['underlay-v6', 'underlay', 6, 'fd00:192:168:10::210', 'fd00:192:168:10::220'],
      ['same-node-v6', 'same-node', 6, 'fd00:10::2', 'fd00:10::3'],
      ['cross-node-v6', 'cross-node', 6, 'fd00:10::2', 'fd00:10:0:1::2'],
    ]);
  });

  it('a bench block may keep one family; IPv6 on a lab without it is an error naming what is missing', () => {
    const v6only = planBench(parseLab(`${DUAL_LAB}bench:\n  families: [6]\n`, 't.yaml'), dualPods);
    expect(v6only.pairs.map((p) => p.name)).to.deep.equal(['underlay-v6', 'same-node-v6', 'cross-node-v6']);
    expect(planBench(parseLab(`${DUAL_LAB}bench:\n  families: [4]\n`, 't.yaml'), dualPods).pairs.every((p) => p.family === 4)).to.equal(true);
    // IPv4-only pods on the same lab: IPv4 pairs only, unless IPv6 is asked for.
    expect(planBench(parseLab(DUAL_LAB, 't.yaml'), pods).pairs.map((p) => p.family)).to.deep.equal([4, 4, 4]);
    expect(() => planBench(parseLab(`${LAB}bench:\n  families: [6]\n`, 't.yaml'), pods)).to.throw(BenchPlanError, /families: \[6\] asked, but lab t has no IPv6 underlay/);
    expect(() => parseLab(`${DUAL_LAB}bench:\n  families: [4, 4]\n`, 'bad.yaml')).to.throw(LabFileError, /bench\.families/);
  });
});
