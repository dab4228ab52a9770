// The challenges block of lab files (every mistake named by file, line and
// field) and the attempt's record for an instructor.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listLabFiles } from '../../src/lab/lab-file.js';
import { loadLab } from '../../src/datapaths/index.js';
import { attemptRecord, endAttempt, formatDuration, type Attempt } from '../../src/challenges/attempt.js';
import { fill, stepCommand } from '../../src/challenges/engine.js';
import { labError } from '../helpers/errors.js';

const base = readFileSync('labs/flannel-host-gw.yaml', 'utf8').split('\nexercises:')[0];

const challenge = (overrides: string) => `
challenges:
  - name: c1
    title: t
    story: s
    teaches: x
    break:
      - { name: b, node: master, run: 'true' }
    check:
      - { name: c, node: master, run: 'true' }
    fix:
      - { name: f, node: master, run: 'true' }
    wrongFix:
      why: w
      steps:
        - { name: w, node: master, run: 'true' }
${overrides}`;

describe('challenges in lab files', () => {
  it('at least 12 challenges over at least 5 labs ship, each with hints', () => {
    const labs = listLabFiles().map((n) => loadLab(n).lab).filter((l) => l.challenges?.length);
    expect(labs.length).to.be.at.least(5);
    const all = labs.flatMap((l) => l.challenges!);
    expect(all.length).to.be.at.least(12);
    for (const c of all) expect(c.hints.length, c.name).to.be.at.least(2);
  });

  const cases: [string, string, RegExp][] = [
    ['a fix on a node that does not exist', challenge('').replace("fix:\n      - { name: f, node: master", 'fix:\n      - { name: f, node: nodeX'), /bad\.yaml:\d+: challenges\[0\]\.fix\[0\]\.node: no node named "nodeX" \(nodes: master, worker\)/],
    ['a wrong fix in a pod that does not exist', challenge('').replace("steps:\n        - { name: w, node: master", 'steps:\n        - { name: w, pod: nginx-9'), /challenges\[0\]\.wrongFix\.steps\[0\]\.pod: no pod named "nginx-9"/],
    ['a fix a student cannot type (a service step)', challenge('').replace("fix:\n      - { name: f, node: master, run: 'true' }", 'fix:\n      - { name: f, service: { node: master, name: bird, action: start } }'), /challenges\[0\]\.fix\[0\]: a fix is what a student types: `run` on a node or in a pod/],
    ['a challenge without a check', challenge('').replace("    check:\n      - { name: c, node: master, run: 'true' }\n", ''), /challenges\[0\]\.check: /],
    ['a challenge without a wrong fix', challenge('').split('    wrongFix:')[0], /challenges\[0\]\.wrongFix: /],
    ['a challenge listed twice', challenge('').replace('\nchallenges:\n', '\nchallenges:\n') + challenge('').replace('\nchallenges:\n', ''), /challenges\[1\]\.name: challenge "c1" is listed twice/],
    ['a break step with both node and pod', challenge('').replace("break:\n      - { name: b, node: master", 'break:\n      - { name: b, pod: nginx-0, node: master'), /challenges\[0\]\.break\[0\]: a step needs `check`, or `run` with exactly one of `node` or `pod`/],
  ];
  for (const [what, block, re] of cases) {
    it(`names the file, line and field for ${what}`, () => {
      expect(labError(`${base}\n${block}`).message).to.match(re);
    });
  }

  it('fills the lab\'s values into commands and texts, and leaves unknown ones as written', () => {
    const vars = { 'pods.nginx-1.ip': '10.10.1.2', veth: 'veth1234' };
    expect(stepCommand({ name: 'x', node: 'master', run: 'ip route get {{pods.nginx-1.ip}}\n' } as never, vars)).to.equal('ip route get 10.10.1.2');
    expect(fill('ip link set {{veth}} master cni0 ', vars)).to.equal('ip link set veth1234 master cni0');
    expect(fill('{{nope}} stays', vars)).to.equal('{{nope}} stays');
  });
});

describe('a challenge attempt', () => {
  const attempt = (log?: string): Attempt => ({
    lab: 'flannel-vxlan',
    instance: 'unit-attempt',
    challenge: 'missing-fdb',
    title: 't',
    user: 'student',
    startedAt: '2026-01-01T10:00:00.000Z',
    outcome: 'open',
    hintsUsed: 1,
    hintsTotal: 3,
    checks: [{ at: '2026-01-01T10:01:00.000Z', passed: false, failing: ['ping'] }],
    vars: {},
    log,
  });

  it('records time to fix, hints and checks, and appends one line to the log only when it ends the first time', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cnilab-attempt-'));
    try {
      const a = attempt(join(dir, 'log.jsonl'));
      expect(attemptRecord(a)).to.not.have.property('secondsToFix');
      expect(endAttempt(a, 'fixed', new Date('2026-01-01T10:04:12.000Z'))).to.equal(true);
      expect(endAttempt(a, 'gave-up')).to.equal(false);
      const lines = readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n');
      expect(lines).to.have.length(1);
      expect(JSON.parse(lines[0])).to.include({ challenge: 'missing-fdb', outcome: 'fixed', secondsToFix: 252, hintsUsed: 1, checksRun: 1, user: 'student' });
      expect(formatDuration(252)).to.equal('4m 12s');
      expect(formatDuration(9)).to.equal('9s');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
