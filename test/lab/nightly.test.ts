// The nightly job as .github/workflows/nightly.yml runs it (scripts/nightly.sh),
// against a git remote of our own: the first night starts bench-history, the
// history stays one commit holding the newest runs, and a night whose ratio
// the two nights before it share, beyond the level of the earlier ones, fails
// the change-point gate while its run is still kept. Real benchmarks (ping
// only, one lab): this checks the job, not the figures.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const { requireBuilt, ROOT } = await import('../../src/lab/paths.js');

const exec = promisify(execFile);
const LAB = 'flannel-host-gw';

async function night(dir: string, remote: string, name: string): Promise<{ code: number; out: string }> {
  const env = { ...process.env, REMOTE: remote, WORK: join(dir, name), KEEP_RUNS: '6', BENCH_ARGS: `${LAB} --tests ping`, PUSH: '1' };
  try {
    const r = await exec('bash', [join(ROOT, 'scripts/nightly.sh')], { cwd: ROOT, env, maxBuffer: 1 << 24 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout + err.stderr };
  }
}

const git = async (...args: string[]) => (await exec('git', args)).stdout.trim();
const storedRuns = async (remote: string) => (await git('--git-dir', remote, 'ls-tree', '-r', '--name-only', 'bench-history')).split('\n').filter((f) => f.endsWith('.json'));

describe('the nightly job (scripts/nightly.sh) against a git remote of its own', function () {
  this.timeout(600_000);
  let dir: string;
  let remote: string;
  before(async () => {
    requireBuilt();
    dir = mkdtempSync(join(tmpdir(), 'cnilab-nightly-'));
    remote = join(dir, 'remote.git');
    await git('init', '-q', '--bare', remote);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the first night starts bench-history with its run, as one commit', async () => {
    const r = await night(dir, remote, 'n1');
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.include('no bench-history');
    const runs = await storedRuns(remote);
    expect(runs).to.have.length(1);
    expect(runs[0]).to.match(new RegExp(`^results/${LAB}/.*\\.json$`));
    expect(await git('--git-dir', remote, 'rev-list', '--count', 'bench-history')).to.equal('1');
  });

  it('a shift that the newest three nights share fails the gate, and that night is kept; the history stays bounded', async () => {
    // Plant five earlier nights whose cross-node ping was a fiftieth of tonight's
    // (so tonight's ratio lies far beyond their level, whatever the load) and one recent night
    // like the first: the newest three are then the recent one, the first
    // night and tonight's.
    const work = join(dir, 'plant');
    await git('clone', '-q', '--branch', 'bench-history', remote, work);
    const labDir = join(work, 'results', LAB);
    const [first] = readdirSync(labDir);
    const real = JSON.parse(readFileSync(join(labDir, first), 'utf8'));
    const t0 = Date.parse(real.startedAt);
    const plant = (daysBefore: number, crossPingFactor: number) => {
      const copy = structuredClone(real);
      const at = new Date(t0 - daysBefore * 86_400_000);
      copy.startedAt = at.toISOString();
      copy.finishedAt = at.toISOString();
      for (const pair of copy.pairs) {
        if (pair.name !== 'cross-node') continue;
        for (const m of Object.values(pair.metrics) as { values: number[]; median: number; min: number; max: number; ci?: { lo: number; hi: number } }[]) {
          m.values = m.values.map((v) => v * crossPingFactor);
          for (const k of ['median', 'min', 'max'] as const) m[k] *= crossPingFactor;
          if (m.ci) [m.ci.lo, m.ci.hi] = [m.ci.lo * crossPingFactor, m.ci.hi * crossPingFactor];
        }
      }
      writeFileSync(join(labDir, `${at.toISOString().slice(0, 19).replace(/:/g, '-')}Z.json`), JSON.stringify(copy, null, 2));
    };
    for (const d of [10, 9, 8, 7, 6]) plant(d, 1 / 50);
    plant(0.5, 1);
    await git('-C', work, 'add', '-A');
    await git('-C', work, '-c', 'user.name=t', '-c', 'user.email=t@example.org', 'commit', '-q', '-m', 'planted');
    await git('-C', work, 'push', '-q', 'origin', 'bench-history');
    expect(await storedRuns(remote)).to.have.length(7);

    const r = await night(dir, remote, 'n2');
    expect(r.code, r.out).to.equal(1);
    expect(r.out).to.match(new RegExp(`${LAB} \\(netns\\) cross-node, ping`));
    expect(r.out).to.include('the change-point gate failed');

    // 8 runs, the newest 6 kept: the two oldest planted ones are gone, tonight's is in.
    const runs = (await storedRuns(remote)).sort();
    expect(runs).to.have.length(6);
    const tonight = readdirSync(join(dir, 'n2', 'tonight', LAB)).filter((f) => f.endsWith('.json'));
    expect(runs.at(-1)).to.equal(`results/${LAB}/${tonight[0]}`);
    expect(await git('--git-dir', remote, 'rev-list', '--count', 'bench-history')).to.equal('1');
    // The report the workflow publishes.
    expect(readdirSync(join(dir, 'n2', 'tonight', 'report'))).to.include.members(['comparison.md', 'history.html']);
  });
});
