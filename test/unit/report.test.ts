import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { latestPerLab, loadResults, readResult, ResultFileError, writeResult } from '../../src/bench/results.js';
import { compareResults, formatCell } from '../../src/report/compare.js';
import { runGate, gateMessage } from '../../src/report/gate.js';
import { renderMarkdown } from '../../src/report/markdown.js';
import { renderHtml } from '../../src/report/html.js';
import { expectedRatio, sweepView } from '../../src/report/sweep.js';
import { compareRuns, meanLoad, renderMoves } from '../../src/report/rerun.js';
import { renderServicesHtml, type ServicesBenchRow } from '../../src/report/services-html.js';
import { decades } from '../../src/report/curves.js';
import { figureStats } from '../../src/bench/stats.js';
import { fakeResult, scaled, TYPICAL } from '../helpers/bench-results.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../src/cli.ts');

/** The CLI through tsx, so the test needs no build; resolves with the exit code instead of throwing. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...process.env, NO_COLOR: '1' } });
    return { code: 0, ...r };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('results files', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cnilab-results-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('are written as results/<lab>/<timestamp>.json and read back unchanged', () => {
    const r = fakeResult({ startedAt: '2026-03-04T05:06:07.890Z' });
    const file = writeResult(r, dir);
    expect(file).to.equal(join(dir, 'flannel-vxlan', '2026-03-04T05-06-07Z.json'));
    expect(readResult(file)).to.deep.equal(r);
  });

  it('a file that breaks the schema is named with the field', () => {
    const bad = { ...fakeResult(), schemaVersion: 3 };
    mkdirSync(join(dir, 'x'));
    writeFileSync(join(dir, 'x', 'a.json'), JSON.stringify(bad));
    expect(() => readResult(join(dir, 'x', 'a.json'))).to.throw(ResultFileError, /a\.json: schemaVersion: /);
    const missing = fakeResult() as Record<string, unknown>;
    delete missing.host;
    expect(() => writeResult(missing as never, dir)).to.throw(ResultFileError, /host/);
  });

  it('a version-1 file (results/ holds some) is read and converted: intervals from its values, no lab file', () => {
    const stored = loadResults(join(import.meta.dirname, '../../results/flannel-vxlan'));
    expect(stored.every((s) => s.error === undefined)).to.equal(true);
    const v1 = stored.filter((s) => s.file.includes('2026-11-24'));
    expect(v1).to.have.length(1);
    const r = v1[0].result!;
    expect(r.schemaVersion).to.equal(2);
    expect(r.labFile).to.equal(undefined);
    const tcp = r.pairs.find((p) => p.kind === 'underlay')!.metrics['tcp.gbps'];
    expect(tcp.n).to.equal(tcp.values.length);
    expect([tcp.ci.lo, tcp.ci.hi]).to.deep.equal([Math.min(...tcp.values), Math.max(...tcp.values)]);
    expect(r.host.load.during).to.deep.equal([]);
    const broken = JSON.parse(readFileSync(stored[0].file, 'utf8'));
    delete broken.pairs[0].metrics['tcp.gbps'].median;
    mkdirSync(join(dir, 'x'));
    writeFileSync(join(dir, 'x', 'old.json'), JSON.stringify(broken));
    expect(() => readResult(join(dir, 'x', 'old.json'))).to.throw(ResultFileError, /old\.json: \(schema version 1\) pairs\[0\]\.metrics\.tcp\.gbps\.median/);
  });

  it('the newest run per lab and backend is the one compared', () => {
    writeResult(fakeResult({ startedAt: '2026-01-01T00:00:00.000Z' }), dir);
    const newer = writeResult(fakeResult({ startedAt: '2026-01-02T00:00:00.000Z' }), dir);
    writeResult(fakeResult({ lab: 'flannel-host-gw', startedAt: '2026-01-01T00:00:00.000Z' }), dir);
    const latest = latestPerLab(loadResults(dir));
    expect(latest.map((s) => [s.result!.lab, s.file])).to.deep.equal([
      ['flannel-host-gw', join(dir, 'flannel-host-gw', '2026-01-01T00-00-00Z.json')],
      ['flannel-vxlan', newer],
    ]);
  });
});

describe('comparison', () => {
  it('shows each path as a multiple of its own run\'s underlay, repetition by repetition', () => {
    const c = compareResults([{ file: 'a.json', result: fakeResult() }]);
    const cross = c.sections[0].rows.find((r) => r.pair === 'cross-node')!;
    expect(c.sections[0].rows.map((r) => r.kind)).to.deep.equal(['underlay', 'cross-node', 'same-node']);
    // per repetition: 10.6/15.2, 11.0/15.8, 11.3/16.1 → the median is the first
    expect(cross.cells['tcp.gbps']!.ratio).to.be.closeTo(10.6 / 15.2, 1e-9);
    expect(cross.cells['tcp.gbps']!.ratioCi!.hi).to.be.closeTo(11.3 / 16.1, 1e-9);
    expect(cross.cells['tcp.gbps']!.ratioCi!.level).to.equal(0.75);
    expect(cross.cells['tcp.gbps']!.withinNoise).to.equal(false);
    expect(formatCell(cross.cells['tcp.gbps'])).to.equal('11.0 Gb/s · 0.70× [0.70–0.70]');
  });

  it('never calls a ratio whose interval includes 1.00× a difference', () => {
    const c = compareResults([{ file: 'a.json', result: fakeResult() }]);
    const same = c.sections[0].rows.find((r) => r.pair === 'same-node')!;
    // paired ratios 0.99, 1.01, 1.02: the interval includes 1.00
    expect(same.cells['tcp.gbps']!.withinNoise).to.equal(true);
    expect(formatCell(same.cells['tcp.gbps'])).to.equal('15.9 Gb/s · within noise (1.01× [0.99–1.02])');
    const md = renderMarkdown(c);
    const sameLine = md.split('\n').find((l) => l.includes('| same-node |'))!;
    expect(sameLine).to.include('within noise');
    expect(sameLine).not.to.match(/· 1\.0\d×/);
  });

  it('a machine that slowed down between repetitions does not hide a difference that every repetition shows', () => {
    const r = fakeResult({ underlay: { 'tcp.gbps': [16, 8, 4] }, crossNode: { 'tcp.gbps': [11, 5.6, 2.7] }, sameNode: { 'tcp.gbps': [15, 8.5, 3.9] } });
    const rows = compareResults([{ file: 'a.json', result: r }]).sections[0].rows;
    const cell = (pair: string) => rows.find((x) => x.pair === pair)!.cells['tcp.gbps']!;
    expect(cell('cross-node').withinNoise).to.equal(false); // 0.69, 0.70, 0.68: below 1 every time
    expect(formatCell(cell('cross-node'))).to.equal('5.60 Gb/s · 0.69× [0.68–0.70]');
    expect(cell('same-node').withinNoise).to.equal(true); // 0.94, 1.06, 0.98: both sides of 1
  });

  it('a single repetition shows ratios but never a difference', () => {
    const r = fakeResult({ underlay: { 'tcp.gbps': [16] }, crossNode: { 'tcp.gbps': [8] }, sameNode: { 'tcp.gbps': [15] } });
    const cell = compareResults([{ file: 'a.json', result: r }]).sections[0].rows.find((x) => x.pair === 'cross-node')!.cells['tcp.gbps']!;
    expect(cell.ratio).to.equal(0.5);
    expect(formatCell(cell)).to.equal('8.00 Gb/s · within noise (0.50× [0.50–0.50])');
  });

  it('without one value per repetition on both sides, the quotient of the two intervals decides', () => {
    const r = fakeResult({ underlay: { 'tcp.gbps': [15, 16] }, crossNode: { 'tcp.gbps': [10, 11, 12] }, sameNode: { 'tcp.gbps': [14, 15.5, 17] } });
    const rows = compareResults([{ file: 'a.json', result: r }]).sections[0].rows;
    expect(rows.find((x) => x.pair === 'cross-node')!.cells['tcp.gbps']!.withinNoise).to.equal(false);
    expect(rows.find((x) => x.pair === 'same-node')!.cells['tcp.gbps']!.withinNoise).to.equal(true);
  });

  it('Markdown has a row per path, the MTUs along each path, and skipped labs with the reason', () => {
    const c = compareResults([{ file: 'a.json', result: fakeResult() }], { skipped: [{ lab: 'calico-ipip', reason: 'skipped: this kernel lacks ipip' }] });
    const md = renderMarkdown(c);
    expect(md).to.match(/\| \*\*flannel-vxlan\*\* \| overlay \| underlay \(reference\) \| 15\.8 Gb\/s \|/);
    expect(md).to.include('flannel-vxlan cross-node: nginx-0 (master) eth0 1450 → master flannel.1 1450 → master eth0 1500');
    expect(md).to.include('- calico-ipip: skipped: this kernel lacks ipip');
  });
});

describe('regression gate', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cnilab-gate-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const current = () => ({ file: join(dir, 'now.json'), result: fakeResult({ startedAt: '2026-02-01T00:00:00.000Z' }) });

  it('passes when the run matches its baseline', () => {
    const g = runGate([current()], [{ file: 'base.json', result: fakeResult() }], 10);
    expect(g.failures).to.deep.equal([]);
    expect(g.checks.length).to.be.greaterThan(0);
  });

  it('fails on a planted regression, naming the lab, the metric and both figures', () => {
    // The baseline's cross-node TCP was 25% better: today's run fell below it.
    const base = fakeResult({ crossNode: scaled(TYPICAL.crossNode, 'tcp.gbps', 1.25) });
    const g = runGate([current()], [{ file: join(dir, 'base.json'), result: base }], 10);
    expect(g.failures.map((f) => `${f.lab} ${f.pair} ${f.metric}`)).to.deep.equal(['flannel-vxlan cross-node tcp.gbps']);
    const msg = gateMessage(g.failures[0], 10);
    expect(msg).to.include('flannel-vxlan (netns) cross-node, TCP, 1 stream [tcp.gbps]');
    expect(msg).to.include('0.70× underlay (11.0 Gb/s) now');
    expect(msg).to.include('baseline 0.87× underlay (13.8 Gb/s)');
    expect(msg).to.include('20% worse (its whole interval at least 19%), more than the 10% tolerance');
  });

  it('a fall at the median that the interval of the run does not share is noise, not a regression', () => {
    // Cross-node TCP ratios 0.56, 0.60, 0.80 against a baseline of 0.70: the median is 14% below it,
    // the best repetition above it.
    const wide = fakeResult({ startedAt: '2026-02-01T00:00:00.000Z', crossNode: { ...TYPICAL.crossNode, 'tcp.gbps': [8.5, 9.5, 12.9] } });
    const g = runGate([{ file: 'now.json', result: wide }], [{ file: 'base.json', result: fakeResult() }], 10);
    const tcp = g.checks.find((c) => c.pair === 'cross-node' && c.metric === 'tcp.gbps')!;
    expect(tcp.worsePct).to.be.greaterThan(10);
    expect(tcp.failed).to.equal(false);
    expect(gateMessage(tcp, 10)).to.include('worse at the median but not across its interval: within noise');
  });

  it('holds latency the other way round: higher is worse', () => {
    const base = fakeResult({ crossNode: scaled(TYPICAL.crossNode, 'rr.p50Us', 0.8) });
    const g = runGate([current()], [{ file: 'base.json', result: base }], 10);
    expect(g.failures.map((f) => f.metric)).to.deep.equal(['rr.p50Us']);
  });

  it('a slower machine is not a regression: everything slower by the same factor passes', () => {
    const slow = fakeResult({
      startedAt: '2026-02-01T00:00:00.000Z',
      underlay: scaled(TYPICAL.underlay, 'tcp.gbps', 0.5),
      crossNode: scaled(TYPICAL.crossNode, 'tcp.gbps', 0.5),
      sameNode: scaled(TYPICAL.sameNode, 'tcp.gbps', 0.5),
    });
    expect(runGate([{ file: 'now.json', result: slow }], [{ file: 'base.json', result: fakeResult() }], 10).failures).to.deep.equal([]);
  });

  it('a run is never its own baseline, and another lab or backend is no baseline', () => {
    const now = current();
    const g = runGate([now], [now, { file: 'b.json', result: fakeResult({ backend: 'docker' }) }, { file: 'c.json', result: fakeResult({ lab: 'flannel-host-gw' }) }], 10);
    expect(g.checks).to.deep.equal([]);
    expect(g.noBaseline).to.deep.equal(['flannel-vxlan (netns)']);
  });

  it('`cnilab compare --baseline` exits non-zero with the message on a planted regression, and 0 without it', async function () {
    this.timeout(30_000);
    const results = join(dir, 'results');
    writeResult(fakeResult({ startedAt: '2026-02-01T00:00:00.000Z' }), results);
    const honest = join(dir, 'honest.json');
    const inflated = join(dir, 'inflated.json');
    writeFileSync(honest, JSON.stringify(fakeResult()));
    writeFileSync(inflated, JSON.stringify(fakeResult({ crossNode: scaled(TYPICAL.crossNode, 'tcp.gbps', 1.25) })));

    const bad = await cli(['compare', '--results-dir', results, '--baseline', inflated, '--tolerance', '10']);
    expect(bad.code, bad.stderr).to.equal(1);
    expect(bad.stdout).to.match(/✘ 1 of \d+ checks fell more than 10% below the baseline/);
    expect(bad.stdout).to.include('flannel-vxlan (netns) cross-node, TCP, 1 stream [tcp.gbps]: 0.70× underlay (11.0 Gb/s) now, baseline 0.87× underlay (13.8 Gb/s)');

    const good = await cli(['compare', '--results-dir', results, '--baseline', honest, '--tolerance', '10']);
    expect(good.code, good.stderr).to.equal(0);
    expect(good.stdout).to.match(/✔ \d+ checks against the baseline; none fell more than 10% below it/);
  });

  it('`cnilab compare` names a missing baseline as a usage error (exit 2)', async function () {
    this.timeout(30_000);
    const results = join(dir, 'results');
    writeResult(fakeResult(), results);
    const r = await cli(['compare', '--results-dir', results, '--baseline', join(dir, 'nope')]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include(`no such baseline file or directory: ${join(dir, 'nope')}`);
  });

  it('`cnilab results` lists runs and flags a broken file (exit 3)', async function () {
    this.timeout(30_000);
    const results = join(dir, 'results');
    writeResult(fakeResult(), results);
    mkdirSync(join(results, 'broken'));
    writeFileSync(join(results, 'broken', 'x.json'), '{"schemaVersion": 1}');
    const r = await cli(['results', '--results-dir', results, '--json']);
    expect(r.code).to.equal(3);
    const rows = JSON.parse(r.stdout) as { lab?: string; error?: string; crossNodeTcpRatio?: number }[];
    expect(rows.find((x) => x.lab === 'flannel-vxlan')!.crossNodeTcpRatio).to.be.closeTo(10.6 / 15.2, 1e-9);
    expect(rows.find((x) => x.error)!.error).to.match(/x\.json: \(schema version 1\) lab: /);
    expect(readFileSync(join(results, 'broken', 'x.json'), 'utf8')).to.equal('{"schemaVersion": 1}');
  });
});

describe('message-size sweep', () => {
  const stats = (vs: number[]) => ({ unit: 'Gb/s', better: 'higher' as const, values: vs, ...figureStats(vs) });
  const swept = () => {
    const r = fakeResult();
    const sizes = [64, 1024, 65536];
    r.sweep = {
      test: 'TCP, Nagle off, one write per message (iperf3 --no-delay --length)',
      points: sizes.flatMap((size, i) => [
        { pair: 'underlay', size, metric: stats([1, 1.1, 0.9].map((v) => v * (i + 1))) },
        { pair: 'cross-node', size, metric: stats([0.5, 0.55, 0.45].map((v) => v * (i + 1))) },
      ]),
    };
    return r;
  };

  it('expects what header bytes alone cost: VXLAN 50 bytes hurt small messages most, routing costs nothing', () => {
    expect(expectedRatio(64, 1500, 1450)).to.be.closeTo(130 / 180, 1e-9);
    expect(expectedRatio(65536, 1500, 1450)).to.be.within(0.96, 0.97);
    expect(expectedRatio(64, 1500, 1500)).to.equal(1);
  });

  it('the paired ratio per size with its interval, beside the expectation, in Markdown and as a chart', () => {
    const v = sweepView(swept())!;
    expect(v.overhead).to.equal(50);
    expect(v.rows.map((r) => [r.size, r.ratio])).to.deep.equal([
      [64, 0.5],
      [1024, 0.5],
      [65536, 0.5],
    ]);
    const c = compareResults([{ file: 'a.json', result: swept() }]);
    expect(renderMarkdown(c)).to.include('| 64 B | 1.00 Gb/s | 0.50 Gb/s | 0.50× [0.50–0.50] | 0.72× |');
    expect(renderHtml(c)).to.include('Message sizes: cross-node ÷ underlay');
    const out = mkdtempSync(join(tmpdir(), 'cnilab-sweep-'));
    try {
      expect(writeResult(swept(), out)).to.match(/\.json$/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('rerun', () => {
  it('counts the multiples of the underlay apart from absolute figures, and lists moved ratios first with both loads', () => {
    // The rerun on a machine three times slower: every absolute TCP figure moves, no ratio does;
    // then cross-node alone falls by half, which moves its ratio.
    const before = fakeResult();
    const slower = (vs: number[]) => vs.map((v) => v / 3);
    const pairs = (cross: (vs: number[]) => number[]) =>
      fakeResult({
        underlay: { ...TYPICAL.underlay, 'tcp.gbps': slower(TYPICAL.underlay['tcp.gbps']) },
        crossNode: { ...TYPICAL.crossNode, 'tcp.gbps': cross(slower(TYPICAL.crossNode['tcp.gbps'])) },
        sameNode: { ...TYPICAL.sameNode, 'tcp.gbps': slower(TYPICAL.sameNode['tcp.gbps']) },
      });
    const busy = compareRuns(before, pairs((vs) => vs));
    expect(busy.filter((m) => m.what === 'ratio' && m.moved)).to.deep.equal([]);
    expect(busy.filter((m) => m.what === 'value' && m.moved).map((m) => `${m.pair} ${m.metric}`)).to.have.members(['underlay tcp.gbps', 'cross-node tcp.gbps', 'same-node tcp.gbps']);

    const worse = compareRuns(before, pairs((vs) => vs.map((v) => v / 2)));
    const text = renderMoves(worse, 'results/x.json', { before: 0.4, after: 3.2 });
    expect(text).to.match(/Multiples of the underlay: \d+ of \d+ within their intervals\. Absolute figures: \d+ of \d+ \(mean 1-minute load 0\.4 then, 3\.2 now\)/);
    const listed = text.split('\n').filter((l) => l.startsWith('- '));
    expect(listed[0]).to.match(/^- cross-node TCP, 1 stream \(× underlay\)/);
    expect(listed.slice(1).every((l) => !l.includes('× underlay'))).to.equal(true);
    expect(meanLoad(fakeResult())).to.be.closeTo(0.6, 1e-9);
  });
});

describe('comparison: a dual-stack run', () => {
  // The IPv6 pairs of the same run: a slower IPv6 underlay, and a cross-node pair at the same share of it as IPv4's.
  const dual = (() => {
    const r = fakeResult();
    const v6 = r.pairs.map((p) => ({
      ...p,
      name: p.kind === 'underlay' ? 'underlay-v6' : `${p.name}-v6`,
      family: 6 as const,
      metrics: Object.fromEntries(Object.entries(p.metrics).map(([k, m]) => [k, k === 'tcp.gbps' ? { ...m, values: m.values.map((v) => v / 2), ...figureStats(m.values.map((v) => v / 2)) } : m])),
    }));
    return { ...r, lab: 'flannel-vxlan-dual', pairs: [...r.pairs.map((p) => ({ ...p, family: 4 as const })), ...v6] };
  })();

  it('puts the two families of each path side by side, each held against the underlay of its own family', () => {
    const rows = compareResults([{ file: 'x.json', result: dual }]).sections[0].rows;
    expect(rows.map((r) => `${r.pair}/${r.family}`)).to.deep.equal(['underlay/4', 'underlay-v6/6', 'cross-node/4', 'cross-node-v6/6', 'same-node/4', 'same-node-v6/6']);
    const cross4 = rows.find((r) => r.pair === 'cross-node')!.cells['tcp.gbps']!;
    const cross6 = rows.find((r) => r.pair === 'cross-node-v6')!.cells['tcp.gbps']!;
    // Both throughputs halved on IPv6: against the IPv6 underlay the share is the same.
    expect(cross6.median).to.be.closeTo(cross4.median / 2, 1e-9);
    expect(cross6.ratio).to.be.closeTo(cross4.ratio!, 1e-9);
    expect(rows.find((r) => r.pair === 'underlay-v6')!.cells['tcp.gbps']!.ratio).to.equal(undefined);
  });

  it('Markdown and HTML name the family of every path', () => {
    const c = compareResults([{ file: 'x.json', result: dual }]);
    const md = renderMarkdown(c);
    for (const label of ['underlay (reference) · IPv4', 'underlay (reference) · IPv6', 'cross-node · IPv4', 'cross-node · IPv6', 'same-node · IPv6']) expect(md).to.include(label);
    const html = renderHtml(c);
    expect(html).to.include('cross-node · IPv6');
    // A single-family run keeps its labels.
    expect(renderMarkdown(compareResults([{ file: 'y.json', result: fakeResult() }]))).to.not.include('IPv4');
  });
});

describe('services benchmark page', () => {
  const sizes = [10, 100, 1000, 10000];
  const rows: ServicesBenchRow[] = (['iptables', 'nftables', 'ebpf'] as const).flatMap((mode, m) =>
    sizes.map((n, i) => ({
      mode,
      lab: mode === 'ebpf' ? 'cilium-ebpf-services' : 'flannel-vxlan-services',
      services: n,
      rules: n * 11,
      syncMs: { full: n * (m + 1), change: mode === 'iptables' ? n * 2 : 30 + i },
      connect: { p50: 0.2 * (mode === 'iptables' ? 1 + i : 1.2), p99: 1, refP50: 0.2, refP99: 1 },
      crr: { p50: 0.3, p99: 1, refP50: 0.25, refP99: 1 },
    })),
  );
  const html = renderServicesHtml({ kernel: '6.1.0-test', connects: 400, startedAt: '2026-01-01T00:00:00Z', load: { before: 1, after: 2 }, rows });

  it('draws four charts with a curve per mode, on a log axis of services, and a row per figure', () => {
    expect(html.match(/<svg /g)).to.have.length(4);
    for (const mode of ['iptables', 'nftables', 'ebpf']) expect(html.match(new RegExp(`curve-${mode}`, 'g'))).to.have.length(4);
    expect(html.match(/<tr>/g)).to.have.length(1 + rows.length);
    // Decades of services lie equally far apart on the x axis.
    const first = html.match(/<polyline points="([^"]+)"[^>]*class="curve curve-iptables"/)![1].split(' ').map((p) => p.split(',').map(Number));
    const gaps = first.slice(1).map((p, i) => p[0] - first[i][0]);
    expect(gaps.every((g) => Math.abs(g - gaps[0]) < 0.5)).to.equal(true);
    // iptables' time for one more service climbs (SVG y falls); ebpf's stays near one level.
    expect(first.every((p, i) => i === 0 || p[1] < first[i - 1][1])).to.equal(true);
  });

  it('a log axis spans whole decades around the data', () => {
    expect(decades(7, 12_000)).to.deep.equal([1, 10, 100, 1000, 10000, 100000]);
    expect(decades(10, 10_000)).to.deep.equal([10, 100, 1000, 10000]);
  });
});
