// The workshop and the benchmark on a live dual-stack lab (flannel-vxlan-dual):
// the diagram carries the IPv6 side read from the kernel, a trace over IPv6
// counts the pings inside VXLAN over the IPv6 underlay, and the benchmark
// measures both families, each against the underlay of its own family.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabInstance } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { benchLab } from '../../src/bench/run.js';
import { benchTools } from '../../src/bench/lab.js';
import { readResult, writeResult } from '../../src/bench/results.js';
import { compareResults } from '../../src/report/compare.js';
import { renderMarkdown } from '../../src/report/markdown.js';
import type { NetModel } from '../../src/workshop/model.js';
import type { TraceReport } from '../../src/workshop/trace-run.js';
import { leftovers } from '../helpers/lab.js';

const CLI = join(ROOT, 'dist', 'cli.js');
const INSTANCE = 'dualview';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

describe('lab: flannel-vxlan-dual in the diagram, trace and bench', function () {
  this.timeout(300_000);
  let inst: LabInstance;
  let dir: string;

  before(async () => {
    requireBuilt();
    await benchTools(true, () => undefined);
    dir = mkdtempSync(join(tmpdir(), 'cnilab-dual-'));
    inst = LabInstance.open('flannel-vxlan-dual', { name: INSTANCE }, new QuietReporter());
    await inst.up();
  });

  after(async () => {
    await inst?.down();
    rmSync(dir, { recursive: true, force: true });
    expect(leftovers(INSTANCE)).to.deep.equal([]);
  });

  it('diagram --json: IPv6 addresses, ip -6 routes, the NDP and FDB entries of flannel-v6.1, the IPv6 underlay', async () => {
    const r = await cli(['diagram', INSTANCE, '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const m = JSON.parse(r.stdout) as NetModel;
    const pod = m.namespaces.find((n) => n.id === 'pod/nginx-1')!;
    const ip6 = inst.pods.list().find((p) => p.name === 'nginx-1')!.ip6!;
    expect(pod.links.find((l) => l.name === 'eth0')!.addresses6).to.deep.equal([`${ip6}/64`]);
    expect(m.underlayV6).to.equal('fd00:192:168:10::/64');
    const master = m.namespaces.find((n) => n.id === 'master')!;
    const v6dev = master.links.find((l) => l.name === 'flannel-v6.1')!;
    expect(v6dev.vxlan?.local).to.equal('fd00:192:168:10::210');
    // The route to the worker's /64, its next hop resolved by a permanent NDP entry, and that MAC's VTEP on the IPv6 underlay.
    const route = master.routes6!.find((x) => x.dev === 'flannel-v6.1' && x.gateway)!;
    expect(route.dst).to.equal('fd00:10:0:1::/64');
    const neigh = master.neighbours.find((n) => n.dst === route.gateway && n.dev === 'flannel-v6.1')!;
    expect(neigh.lladdr).to.match(/^[0-9a-f:]{17}$/);
    expect(master.fdb.find((f) => f.mac === neigh.lladdr && f.ifname === 'flannel-v6.1')?.dst).to.equal('fd00:192:168:10::220');
    expect(m.nodeRoutes.find((x) => x.node === 'master' && x.family === 6)).to.include({ toNode: 'worker', how: 'VXLAN VNI 1 via flannel-v6.1 → [fd00:192:168:10::220]:8472' });
  });

  it('trace -6 --capture --json: every hop by ip -6 route get, the pings counted inside VXLAN on both uplinks of the IPv6 underlay', async () => {
    const r = await cli(['trace', '-6', 'nginx-0', 'nginx-1', '--capture', '--count', '2', '--json', '--lab', INSTANCE]);
    expect(r.code, r.stderr + r.stdout.slice(0, 2000)).to.equal(0);
    const t = JSON.parse(r.stdout) as TraceReport;
    expect(t.family).to.equal(6);
    expect(t.delivered).to.equal(true);
    expect(t.tunnels).to.deep.equal([{ via: 'vxlan', src: 'fd00:192:168:10::210', dst: 'fd00:192:168:10::220', port: 8472, vni: 1 }]);
    expect(t.hops.filter((h) => h.kernel?.includes('route get')).every((h) => h.kernel!.startsWith('ip -6 route get'))).to.equal(true);
    const outer = t.hops.filter((h) => h.layer === 'outer');
    expect(outer.map((h) => `${h.at} ${h.device}`)).to.deep.equal(['master eth0', 'worker eth0']);
    for (const h of outer) {
      expect(h.filter).to.include('ip6[76] == 58 and ip6[110] == 128');
      expect(h.packets, `${h.at} ${h.device}`).to.be.at.least(2);
    }
    expect(t.hops.find((h) => h.kind === 'decap')?.device).to.equal('flannel-v6.1');
    expect(t.capture).to.include({ sent: 2, received: 2, allSeen: true });
  });

  it('trace without -4/-6 follows both families between dual-stack pods', async () => {
    const r = await cli(['trace', 'nginx-0', 'nginx-1', '--json', '--lab', INSTANCE]);
    expect(r.code, r.stderr).to.equal(0);
    const t = JSON.parse(r.stdout) as TraceReport & { ipv6: TraceReport };
    expect([t.family, t.delivered, t.ipv6.family, t.ipv6.delivered]).to.deep.equal([4, true, 6, true]);
  });

  it('bench (tcp, ping): both families side by side, each against the underlay of its own family, in a valid results file', async () => {
    const result = await benchLab({ backend: inst.backend, lab: inst.lab, pods: inst.pods.list(), labFile: inst.file }, { repeat: 2, minRepeat: 2, durationS: 0.1, ciTargetPct: 3, pin: true, tests: ['tcp', 'ping'] });
    const back = readResult(writeResult(result, dir));
    expect(back.pairs.map((p) => `${p.name}:${p.family}`)).to.deep.equal(['underlay:4', 'same-node:4', 'cross-node:4', 'underlay-v6:6', 'same-node-v6:6', 'cross-node-v6:6']);
    const under6 = back.pairs.find((p) => p.name === 'underlay-v6')!;
    expect([under6.client.ip, under6.server.ip]).to.deep.equal(['fd00:192:168:10::210', 'fd00:192:168:10::220']);
    expect(back.pairs.find((p) => p.name === 'cross-node-v6')!.path.map((h) => h.ifname)).to.include('flannel-v6.1');
    for (const p of back.pairs) {
      for (const m of ['tcp.gbps', 'ping.p50Us']) expect(p.metrics[m]?.median, `${p.name} ${m}`).to.be.greaterThan(0);
    }
    const rows = compareResults([{ file: 'x.json', result: back }]).sections[0].rows;
    const cross6 = rows.find((r) => r.pair === 'cross-node-v6')!.cells['tcp.gbps']!;
    const ratios = back.pairs.find((p) => p.name === 'cross-node-v6')!.metrics['tcp.gbps'].values.map((v, i) => v / under6.metrics['tcp.gbps'].values[i]);
    expect(cross6.ratio).to.be.closeTo(ratios.reduce((a, b) => a + b) / ratios.length, 1e-9); // the median of two
    expect(renderMarkdown(compareResults([{ file: 'x.json', result: back }]))).to.include('cross-node · IPv6');
  });
});
