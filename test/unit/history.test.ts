// The history and its change-point gate on planted results: a shift that
// several nights agree on is flagged, one bad night or a noisy one is not,
// and a new kind of machine starts its own baseline.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeResult, type StoredResult } from '../../src/bench/results.js';
import { buildHistory, changeMessage, historyGate } from '../../src/report/history.js';
import { fakeResult, TYPICAL } from '../helpers/bench-results.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../src/cli.ts');

/** Night i of a series whose cross-node TCP is `factor` of the usual (about 0.70× the underlay), six tight repetitions. */
function night(i: number, factor: number, o: { hostClass?: string; noisy?: boolean } = {}): StoredResult {
  const under = [15.2, 15.8, 16.1, 15.5, 15.9, 15.6];
  const cross = under.map((u, k) => u * 0.7 * factor * (o.noisy ? [0.7, 1.3, 0.8, 1.25, 0.9, 1.2][k] : 1 + (k - 2.5) * 0.004));
  const startedAt = new Date(Date.UTC(2026, 0, 1 + i, 3, 17)).toISOString();
  return {
    file: `night-${i}.json`,
    result: fakeResult({ startedAt, hostClass: o.hostClass, underlay: { ...TYPICAL.underlay, 'tcp.gbps': under }, crossNode: { ...TYPICAL.crossNode, 'tcp.gbps': cross } }),
  };
}

const tcpChanges = (stored: StoredResult[]) => historyGate(buildHistory(stored)).changes.filter((c) => c.metric === 'tcp.gbps');

describe('history and the change-point gate', () => {
  it('flags a planted 15% fall that the newest three nights agree on, naming when it began', () => {
    const stored = [...[0, 1, 2, 3, 4].map((i) => night(i, 1)), ...[5, 6, 7].map((i) => night(i, 0.85))];
    const changes = tcpChanges(stored);
    expect(changes.map((c) => `${c.lab} ${c.pair} ${c.metric}`)).to.deep.equal(['flannel-vxlan cross-node tcp.gbps']);
    expect(changes[0].baselineRuns).to.equal(5);
    expect(changes[0].worsePct).to.be.closeTo(15, 1);
    expect(changeMessage(changes[0])).to.match(/0\.70× underlay over 5 earlier runs, then 0\.59× \[0\.59–0\.60\], .* \(since 2026-01-06, commit 0123456\): 15% worse$/);
  });

  it('one bad night, or two, is not a change point yet', () => {
    expect(tcpChanges([...[0, 1, 2, 3, 4, 5].map((i) => night(i, 1)), night(6, 0.85)])).to.deep.equal([]);
    expect(tcpChanges([...[0, 1, 2, 3, 4].map((i) => night(i, 1)), night(5, 0.85), night(6, 0.85), night(7, 1)])).to.deep.equal([]);
  });

  it('a shift whose intervals reach back to the earlier level is noise', () => {
    expect(tcpChanges([...[0, 1, 2, 3, 4].map((i) => night(i, 1)), ...[5, 6, 7].map((i) => night(i, 0.9, { noisy: true }))])).to.deep.equal([]);
  });

  it('the first nights on another kind of machine set its own baseline instead of failing against this one', () => {
    const stored = [...[0, 1, 2, 3, 4].map((i) => night(i, 1)), ...[5, 6, 7].map((i) => night(i, 0.6, { hostClass: 'AMD EPYC ×4 x64 netns' }))];
    const gate = historyGate(buildHistory(stored));
    expect(gate.changes).to.deep.equal([]);
    expect(gate.baselineOnly).to.deep.equal([{ lab: 'flannel-vxlan', backend: 'netns', hostClass: 'AMD EPYC ×4 x64 netns', runs: 3 }]);
    expect(buildHistory(stored).map((h) => `${h.hostClass}: ${h.series[0].points.length}`)).to.deep.equal(['AMD EPYC ×4 x64 netns: 3', 'test-cpu ×2 x64 netns: 5']);
  });

  it('`cnilab history --gate` prints each run with its interval, writes the page, and exits 1 on the planted shift', async function () {
    this.timeout(30_000);
    const dir = mkdtempSync(join(tmpdir(), 'cnilab-history-'));
    try {
      const results = join(dir, 'results');
      for (const s of [...[0, 1, 2, 3, 4].map((i) => night(i, 1)), ...[5, 6, 7].map((i) => night(i, 0.85))]) writeResult(s.result!, results);
      const r = await run(process.execPath, ['--import', 'tsx', CLI, 'history', '--results-dir', results, '--gate', '--out', join(dir, 'report')], { env: { ...process.env, NO_COLOR: '1' } }).then(
        (x) => ({ code: 0, ...x }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      expect(r.code).to.equal(1);
      expect(r.stdout).to.include('flannel-vxlan (netns, test-cpu ×2 x64 netns)');
      expect(r.stdout).to.match(/2026-01-01 03:17 {2}0\.70× \[0\.69–0\.71\] {2}n=6  0123456/);
      expect(r.stdout).to.include('✘ 1 shift that 3 nights agree on');
      const html = readFileSync(join(dir, 'report', 'history.html'), 'utf8');
      expect(html.match(/<circle /g)?.length).to.be.at.least(8 * 2);
      expect(html).to.include('#c62828');
      expect(existsSync(join(dir, 'report', 'history.md'))).to.equal(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
