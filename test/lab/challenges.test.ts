// Every challenge of every lab, solved by a scripted student through the CLI:
// `cnilab challenge` breaks the lab, `cnilab check` fails, the challenge's
// plausible wrong fix (typed with `cnilab exec`) still fails, and its fix
// passes. One lab per group, broken and fixed in turn; at the end the lab
// goes down from a broken state with the challenge still open (logged as abandoned).
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Step } from '../../src/lab/lab-file.js';
import { loadLab } from '../../src/datapaths/index.js';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { LabInstance, topologyOf } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { readState, StateFile } from '../../src/lab/state.js';
import { createBackend } from '../../src/topologies/registry.js';
import { challengeContext, stepCommand } from '../../src/challenges/engine.js';
import { readAttempt } from '../../src/challenges/attempt.js';
import { leftovers } from '../helpers/lab.js';

const CLI = join(ROOT, 'dist/cli.js');

function cnilab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    ),
  );
}

/** The commands as a student types them: the lab's values and what the break saved, filled in. */
function typed(instance: string, steps: Step[]): { target: string; command: string }[] {
  const state = readState(instance)!;
  const { lab } = loadLab(state.labFile!);
  const sf = new StateFile(instance);
  const inst = new LabInstance(lab, state.labFile!, createBackend(state.backend, topologyOf(lab, instance), sf), sf, new QuietReporter());
  const vars = challengeContext(inst, readAttempt(instance)!.vars).vars;
  return steps.map((s) => ({ target: (s.pod ?? s.node)!, command: stepCommand(s, vars) }));
}

async function type(instance: string, steps: Step[], what: string): Promise<void> {
  for (const { target, command } of typed(instance, steps)) {
    const r = await cnilab('exec', '--lab', instance, target, '--', 'sh', '-c', command);
    expect(r.code, `${what} on ${target} failed: ${command}\n${r.stderr}`).to.equal(0);
  }
}

interface CheckResult {
  outcome: string;
  checksRun: number;
  secondsToFix?: number;
  results: { name: string; ok: boolean; failure?: string }[];
}

async function check(instance: string): Promise<{ code: number; result: CheckResult; failing: string }> {
  const r = await cnilab('check', '--lab', instance, '--json');
  const result = JSON.parse(r.stdout) as CheckResult;
  // Starts with a line of its own: mocha cuts an assertion message at its first "<text>: expected".
  const failing = 'checks failing:\n' + (result.results.filter((x) => !x.ok).map((x) => `${x.name}: ${x.failure}`).join('\n') || 'none');
  return { code: r.code, result, failing };
}

const GROUPS: [lab: string, instance: string][] = [
  ['flannel-vxlan', 'ch-fvx'],
  ['flannel-host-gw', 'ch-fhg'],
  ['calico-bgp', 'ch-cbg'],
  ['macvlan', 'ch-mvl'],
  ['cilium-ebpf', 'ch-cil'],
  ['docker-bridge', 'ch-dkb'],
];

describe('challenges: break, a wrong fix, the fix, graded from the kernel', function () {
  this.timeout(180_000);
  let dir: string;
  before(() => {
    requireBuilt();
    dir = mkdtempSync(join(tmpdir(), 'cnilab-challenges-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('ships at least 12 challenges over at least 5 labs', () => {
    const counts = GROUPS.map(([lab]) => loadLab(lab).lab.challenges?.length ?? 0);
    expect(counts.reduce((a, b) => a + b, 0)).to.be.at.least(12);
    expect(counts.filter((n) => n > 0).length).to.be.at.least(5);
  });

  for (const [labName, instance] of GROUPS) {
    describe(`${labName} (one lab up for all its challenges)`, () => {
      const { lab } = loadLab(labName);
      const log = () => join(dir, `${instance}.jsonl`);
      after(() => cnilab('down', instance, '-q'));
      // One failed challenge must not fail the ones after it: end it, its fix applied.
      afterEach(async () => {
        if (readAttempt(instance)?.outcome === 'open') await cnilab('giveup', '--lab', instance);
      });

      for (const c of lab.challenges ?? []) {
        it(`${c.name}: check fails once broken and after the wrong fix, passes after the fix`, async () => {
          const started = await cnilab('challenge', labName, c.name, '--name', instance, '--json', '-q', '--log', log());
          expect(started.code, started.stderr).to.equal(0);
          expect(JSON.parse(started.stdout)).to.include({ challenge: c.name, instance });

          let r = await check(instance);
          expect(r.code, 'broken: check must fail').to.equal(1);
          expect(r.result.outcome).to.equal('open');

          await type(instance, c.wrongFix.steps, 'the wrong fix');
          r = await check(instance);
          expect(r.code, `the wrong fix must not count (${c.wrongFix.why.trim()})`).to.equal(1);
          await type(instance, c.wrongFix.undo, 'undoing the wrong fix');

          await type(instance, c.fix, 'the fix');
          r = await check(instance);
          expect(r.code, r.failing).to.equal(0);
          expect(r.result).to.include({ outcome: 'fixed', checksRun: 3 });
          expect(r.result.secondsToFix).to.be.a('number');

          const record = JSON.parse(readFileSync(log(), 'utf8').trim().split('\n').at(-1)!);
          expect(record).to.include({ lab: labName, challenge: c.name, outcome: 'fixed', checksRun: 3, hintsUsed: 0 });
        });
      }

      it('down removes the lab while a challenge is open and the lab broken, and logs the attempt as abandoned', async () => {
        const first = lab.challenges![0];
        const downLog = join(dir, `${instance}-down.jsonl`);
        expect((await cnilab('challenge', labName, first.name, '--name', instance, '-q', '--log', downLog)).code).to.equal(0);
        await type(instance, first.wrongFix.steps, 'the wrong fix');
        const down = await cnilab('down', instance, '-q');
        expect(down.code, down.stderr).to.equal(0);
        expect(leftovers(instance)).to.deep.equal([]);
        const records = readFileSync(downLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
        expect(records).to.have.length(1);
        expect(records[0]).to.include({ lab: labName, instance, challenge: first.name, outcome: 'abandoned', checksRun: 0 });
        expect(records[0].endedAt).to.be.a('string');
        expect(records[0]).to.not.have.property('secondsToFix');
      });
    });
  }

  describe('hint and giveup', () => {
    const instance = 'ch-give';
    after(() => cnilab('down', instance, '-q'));

    it('reveals hints one at a time, refuses a second challenge while one is open, and giveup shows and applies the fix', async () => {
      const log = join(dir, 'giveup.jsonl');
      expect((await cnilab('challenge', 'flannel-host-gw', 'masquerade', '--name', instance, '-q', '--log', log)).code).to.equal(0);
      const hint = JSON.parse((await cnilab('hint', '--lab', instance, '--json')).stdout);
      expect(hint).to.include({ hintsUsed: 1, hintsTotal: 3 });
      expect(hint.hints).to.have.length(1);
      expect(hint.hints[0]).to.include(`${process.env.CNILAB_STATE_DIR ?? '/run/cnilab'}/${instance}/pods/nginx-1/log/access.log`); // the template is filled in

      const again = await cnilab('challenge', 'flannel-host-gw', 'ip-forward-off', '--name', instance, '-q');
      expect(again.code).to.equal(2);
      expect(again.stderr).to.include('challenge masquerade is still open in ch-give');

      const g = await cnilab('giveup', '--lab', instance, '--json');
      expect(g.code, g.stderr).to.equal(0);
      const gave = JSON.parse(g.stdout);
      expect(gave).to.include({ outcome: 'gave-up', hintsUsed: 1, applied: true, fixed: true });
      expect(gave.fix[0].command).to.equal('iptables -w -t nat -D POSTROUTING -s 10.10.0.0/16 -o eth0 -j MASQUERADE');
      expect(gave.secondsToFix).to.equal(undefined);
      expect(JSON.parse(readFileSync(log, 'utf8').trim())).to.include({ challenge: 'masquerade', outcome: 'gave-up' });

      const r = await check(instance);
      expect(r.code, r.failing).to.equal(0);
      expect(r.result.outcome).to.equal('gave-up'); // a check after giving up does not turn it into a fix
    });

    it('a lab without challenges says which labs have them (exit 2), and brings nothing up', async () => {
      const r = await cnilab('challenge', 'flannel-udp', '--name', 'ch-none');
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(/lab flannel-udp \(.*flannel-udp\.yaml\) has no challenges; labs with challenges: calico-bgp, cilium-ebpf, docker-bridge, flannel-host-gw, flannel-vxlan, macvlan/);
      expect(leftovers('ch-none')).to.deep.equal([]);
    });
  });
});
