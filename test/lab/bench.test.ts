// Benchmarks on real labs: iperf3, ping and sockperf in the lab's namespaces,
// the underlay in the same run, the path's MTUs read from the kernel, servers
// stopped by PID, a valid results file, and nothing left behind. Short
// settings: this checks the measuring, not the figures.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

// Every test file runs in one mocha process with one state dir and prefix: a
// file must not change them, or labs it spawns would be recorded where the
// other files (and clean) do not look.
const { LabInstance } = await import('../../src/runner/runner.js');
const { QuietReporter } = await import('../../src/runner/reporter.js');
const { requireBuilt, ROOT } = await import('../../src/lab/paths.js');
const { listNetns } = await import('../../src/net/netns.js');
const { NAME_PREFIX } = await import('../../src/lab/state.js');
const { benchLab } = await import('../../src/bench/run.js');
const { benchTools } = await import('../../src/bench/lab.js');
const { readResult, writeResult } = await import('../../src/bench/results.js');

const run = promisify(execFile);

describe('lab: bench', function () {
  // A lab and a benchmark on a machine others share: minutes at worst.
  this.timeout(300_000);
  let dir: string;
  before(async () => {
    requireBuilt();
    await benchTools(true, () => undefined);
    dir = mkdtempSync(join(tmpdir(), 'cnilab-bench-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // The five tests are split over the two cases to keep this file short.
  it('flannel-vxlan: TCP and request/response on the underlay, same-node and cross-node pairs; the MTUs along each path; servers stopped by PID', async () => {
    const inst = LabInstance.open('flannel-vxlan', { name: 'bench-vxlan' }, new QuietReporter());
    await inst.up();
    let result;
    try {
      result = await benchLab({ backend: inst.backend, lab: inst.lab, pods: inst.pods.list(), labFile: inst.file }, { repeat: 2, minRepeat: 2, durationS: 0.2, ciTargetPct: 3, pin: true, mirrored: true, tests: ['tcp', 'rr'] });
      expect(inst.state.state.processes.map((p) => p.name).filter((n) => /iperf3|sockperf/.test(n)), 'benchmark servers still recorded').to.deep.equal([]);
    } finally {
      await inst.down();
    }
    const file = writeResult(result, dir);
    const back = readResult(file);
    expect(back.pairs.map((p) => `${p.name}:${p.kind}`)).to.deep.equal(['underlay:underlay', 'same-node:same-node', 'cross-node:cross-node']);
    for (const p of back.pairs) {
      for (const m of ['tcp.gbps', 'tcp.cpuMsPerGbit']) {
        expect(p.metrics[m]?.values, `${p.name} ${m}`).to.have.length(2);
        expect(p.metrics[m].median, `${p.name} ${m}`).to.be.greaterThan(0);
        expect(p.metrics[m].ci.lo, `${p.name} ${m}`).to.be.at.most(p.metrics[m].median);
      }
      // request/response: one sockperf run per pair, cut into time windows
      for (const m of ['rr.p50Us', 'rr.p90Us', 'rr.p99Us']) {
        expect(p.metrics[m]?.n, `${p.name} ${m}`).to.be.within(6, 8);
        expect(p.metrics[m].median, `${p.name} ${m}`).to.be.greaterThan(0);
      }
      expect(p.metrics['rr.p99Us'].median).to.be.at.least(p.metrics['rr.p50Us'].median);
    }
    expect(back.warmup!.map((w) => w.pair)).to.deep.equal(['underlay', 'same-node', 'cross-node']);
    expect(back.settings.mirrored, 'mirrored runs recorded, so --rerun repeats them').to.equal(true);
    expect(back.labFile!.path).to.equal('labs/flannel-vxlan.yaml');
    expect(back.labFile!.content).to.equal(readFileSync(join(ROOT, 'labs/flannel-vxlan.yaml'), 'utf8'));
    expect(back.host.load.during.length).to.be.greaterThan(0);
    if (back.host.cpus >= 2) expect(back.host.pinning).to.deep.equal({ client: 'CPU 0', server: 'CPU 1' });
    const hops = (name: string) => back.pairs.find((p) => p.name === name)!.path.map((h) => `${h.where} ${h.ifname} ${h.kind} ${h.mtu}`);
    expect(hops('cross-node')).to.deep.equal([
      'nginx-0 (master) eth0 veth 1450',
      'master flannel.1 vxlan 1450',
      'master eth0 veth 1500',
      'worker cni0 bridge 1450',
      'nginx-1 (worker) eth0 veth 1450',
    ]);
    expect(hops('same-node')).to.deep.equal(['nginx-0 (master) eth0 veth 1450', 'master cni0 bridge 1450', 'nginx-2 (master) eth0 veth 1450']);
    expect(hops('underlay')).to.deep.equal(['master eth0 veth 1500', 'worker eth0 veth 1500']);
    expect(back.pairs[0].path[0].offloads).to.have.property('tso');
    expect(back.pairs[0].path[0].queues!.tx).to.be.at.least(1);
    expect(back.topology.nodes[0].links.map((l) => l.ifname).sort()).to.deep.equal(['cni0', 'eth0', 'flannel.1']);
    expect(back.versions.iperf3).to.match(/^iperf 3\./);
    expect(back.versions.sockperf).to.match(/sockperf/);
    expect(listNetns().filter((n) => n.startsWith(`${NAME_PREFIX}bench-vxlan-`))).to.deep.equal([]);
  });

  it('`cnilab bench` (4 TCP streams, UDP, ping on flannel-host-gw) writes the results file and the comparison (Markdown and HTML) and tears the lab down; `--rerun` repeats it', async () => {
    const results = join(dir, 'cli');
    const { stdout } = await run(
      process.execPath,
      [join(ROOT, 'dist/cli.js'), 'bench', 'flannel-host-gw', '--name', 'bench-hostgw', '--repeat', '2', '--duration', '0.2', '--tests', 'tcp4,udp,ping', '--results-dir', results, '--json'],
      { env: { ...process.env, NO_COLOR: '1' } },
    );
    const out = JSON.parse(stdout) as { labs: { lab: string; status: string; file: string }[]; report: { markdown: string; html: string } };
    expect(out.labs.map((l) => `${l.lab}:${l.status}`)).to.deep.equal(['flannel-host-gw:ok']);
    const r = readResult(out.labs[0].file);
    expect(r.settings.tests).to.deep.equal(['tcp4', 'udp', 'ping']);
    expect(r.pairs.map((p) => p.name)).to.deep.equal(['underlay', 'same-node', 'cross-node']);
    for (const p of r.pairs) {
      expect(Object.keys(p.metrics).sort(), p.name).to.deep.equal(['ping.p50Us', 'ping.p90Us', 'ping.p99Us', 'tcp4.cpuMsPerGbit', 'tcp4.gbps', 'udp.gbps', 'udp.jitterUs', 'udp.lossPct']);
      expect(p.metrics['tcp4.gbps'].median, p.name).to.be.greaterThan(0);
      expect(p.metrics['udp.lossPct'].median, p.name).to.be.within(0, 100);
    }
    // host-gw: no tunnel, the full 1500 bytes end to end
    expect(r.pairs.find((p) => p.name === 'cross-node')!.path.every((h) => h.mtu === 1500)).to.equal(true);
    expect(readFileSync(out.report.markdown, 'utf8')).to.match(/\| \*\*flannel-host-gw\*\* \| route \| underlay \(reference\) \|/);
    expect(existsSync(out.report.html)).to.equal(true);
    expect(listNetns().filter((n) => n.startsWith(`${NAME_PREFIX}bench-hostgw-`))).to.deep.equal([]);

    const again = await run(process.execPath, [join(ROOT, 'dist/cli.js'), 'bench', '--rerun', out.labs[0].file, '--name', 'bench-hostgw', '--results-dir', results, '--json'], { env: { ...process.env, NO_COLOR: '1' } });
    const rr = JSON.parse(again.stdout) as { rerunOf: string; file: string; figures: number; moved: unknown[] };
    expect(rr.figures).to.be.greaterThan(0);
    const second = readResult(resolve(rr.file));
    expect(second.rerunOf).to.equal(rr.rerunOf);
    expect(second.settings).to.deep.equal(r.settings);
    expect(second.labFile!.sha256).to.equal(r.labFile!.sha256);
  });
});
