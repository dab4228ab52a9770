// Exercises in lab files, the lesson's walk through them (with a scripted
// learner and a stand-in backend), status, and the shell's command line.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { type Lab } from '../../src/lab/lab-file.js';
import { parseLab } from '../../src/datapaths/index.js';
import { walkExercises, type Key, type LessonIO } from '../../src/workshop/lesson.js';
import { labStatus, formatStatus } from '../../src/workshop/status.js';
import { shellArgv, shellPrompt } from '../../src/workshop/shell.js';
import { plain } from '../../src/workshop/render-trace.js';
import { processStartTime, type LabState } from '../../src/lab/state.js';
import { BackendTarget, type Backend } from '../../src/topologies/backend.js';
import { labError } from '../helpers/errors.js';

const vxlanText = readFileSync('labs/flannel-vxlan.yaml', 'utf8');
const base = readFileSync('labs/flannel-host-gw.yaml', 'utf8').split('\nexercises:')[0];

describe('exercises in lab files', () => {
  it('the shipped labs carry the lesson\'s exercises', () => {
    const lab = parseLab(vxlanText, 'flannel-vxlan.yaml');
    expect(lab.exercises!.length).to.be.greaterThan(5);
    expect(lab.exercises!.some((e) => e.try.some((t) => t.trace))).to.equal(true);
  });

  const cases: [string, string, RegExp][] = [
    ['a try item in a pod that does not exist', '  - title: x\n    try:\n      - pod: nginx-7\n        run: ip addr\n', /bad\.yaml:\d+: exercises\[0\]\.try\[0\]\.pod: no pod named "nginx-7" \(pods: nginx-0, nginx-1, nginx-2\)/],
    ['a trace to an unknown pod', '  - title: x\n    try:\n      - trace: { from: nginx-0, to: nope }\n', /exercises\[0\]\.try\[0\]\.trace\.to: no pod or node named "nope"/],
    ['a try item with both node and pod', '  - title: x\n    try:\n      - { node: master, pod: nginx-0, run: ls }\n', /exercises\[0\]\.try\[0\]: a try item is `run` with exactly one of `node` or `pod`/],
    ['an exercise without a title', '  - question: why?\n', /exercises\[0\]\.title: /],
  ];
  for (const [what, block, re] of cases) {
    it(`names the file, line and field for ${what}`, () => {
      expect(labError(`${base}\nexercises:\n${block}`).message).to.match(re);
    });
  }
});

/** A backend that answers exec with canned output and records what ran where. */
function fakeBackend(ran: string[]): Backend {
  const answer = (where: string, argv: string[]) => {
    ran.push(`${where}: ${argv.join(' ')}`);
    return Promise.resolve({ stdout: `output of ${argv.at(-1)}\n`, stderr: '', exitCode: 0 });
  };
  const backend = {
    kind: 'fake',
    exec: (node: string, argv: string[]) => answer(node, argv),
    podExec: (_node: string, pod: string, argv: string[]) => answer(pod, argv),
    commandFor: (node: string, pod: string | undefined, argv: string[], opts?: { tty?: boolean }) => ['enter', ...(opts?.tty ? ['-t'] : []), pod ?? node, '--', ...argv],
    node: (n: string) => new BackendTarget(backend, n),
    pod: (n: string, p: string) => new BackendTarget(backend, n, p),
  } as unknown as Backend;
  return backend;
}

function learner(keys: Key[]): LessonIO & { screen: string; shells: string[] } {
  const io = {
    screen: '',
    shells: [] as string[],
    write: (t: string) => void (io.screen += t),
    clear: () => void (io.screen += '\n<clear>\n'),
    key: async () => keys.shift() ?? 'quit',
    shell: async (node: string, pod?: string) => void io.shells.push(pod ?? node),
  };
  return io;
}

describe('lesson walk', () => {
  const lab = parseLab(vxlanText, 'flannel-vxlan.yaml') as Lab;
  const state = { lab: 'flannel-vxlan', pods: [{ name: 'nginx-0', node: 'master' }, { name: 'nginx-1', node: 'worker' }] } as unknown as LabState;
  const vars = { 'pods.nginx-1.ip': '10.10.1.2' };
  const small: Lab = { ...lab, exercises: lab.exercises!.filter((e) => e.try.every((t) => t.run)).slice(0, 3) };

  it('shows each exercise, runs its steps on Enter with templates filled in, then what to notice', async () => {
    const ran: string[] = [];
    const io = learner(['next', 'next', 'next', 'next', 'next', 'next']);
    const r = await walkExercises({ lab: small, backend: fakeBackend(ran), state, nodes: ['master', 'worker'], vars }, io);
    expect(r).to.deep.equal({ total: 3, completed: 3, quit: false });
    expect(io.screen.split('<clear>').length - 1).to.equal(3);
    expect(io.screen).to.include('Exercise 1/3 · eth0@ifN - one end of a veth pair');
    expect(io.screen).to.include('Exercise 3/3 · The routing table decides');
    expect(io.screen).to.include('(pod nginx-0) $ ip addr show eth0\n    output of ip addr show eth0');
    expect(io.screen).to.include('What to notice: N is the index of the other end');
    expect(ran).to.include('master: sh -c ip route get 10.10.1.2');
    expect(ran).to.include('nginx-0: sh -c ip addr show eth0');
  });

  it('q before running stops at once, running nothing; s opens a shell where the exercise points', async () => {
    const ran: string[] = [];
    const io = learner(['shell', 'quit']);
    const r = await walkExercises({ lab: small, backend: fakeBackend(ran), state, nodes: ['master', 'worker'], vars }, io);
    expect(r).to.deep.equal({ total: 3, completed: 0, quit: true });
    expect(io.shells).to.deep.equal(['nginx-0']);
    expect(ran).to.deep.equal([]);
    expect(io.screen).to.include('shell on pod nginx-0; exit to come back to the lesson');
  });

  it('the shell prompt says which lab and which node or pod', () => {
    expect(shellPrompt('flannel-vxlan', 'master')).to.equal('[flannel-vxlan master] \\w # ');
    expect(shellPrompt('flannel-vxlan', 'master', 'nginx-0')).to.equal('[flannel-vxlan pod nginx-0@master] \\w # ');
    const argv = shellArgv(fakeBackend([]), 'flannel-vxlan', 'master', 'nginx-0');
    // A shell asks the backend for a terminal (docker exec -t, ssh -t).
    expect(argv.slice(0, 6)).to.deep.equal(['enter', '-t', 'nginx-0', '--', 'env', 'PS1=[flannel-vxlan pod nginx-0@master] \\w # ']);
    // Commands piped in have no terminal to give: docker exec -t would refuse them.
    expect(shellArgv(fakeBackend([]), 'flannel-vxlan', 'master', 'nginx-0', false).slice(0, 3)).to.deep.equal(['enter', 'nginx-0', '--']);
  });
});

describe('status', () => {
  it('checks each recorded process by PID and start time, and says what to do when one is gone', async () => {
    const me = { pid: process.pid, startTime: processStartTime(process.pid)!, name: 'etcd', node: 'master' };
    const state = {
      lab: 'x',
      backend: 'fake',
      status: 'up',
      createdAt: '2026-01-01T00:00:00.000Z',
      netns: [],
      mounts: [],
      processes: [me, { ...me, startTime: me.startTime + 1, name: 'nginx-0-nginx' }],
      pods: [{ name: 'nginx-0', node: 'master', netns: '', ip: '10.10.0.2', workload: 'nginx', status: 'Running', containerId: 'c' }],
    } as LabState;
    const lab = { topology: { nodes: [{ name: 'master', address: '192.168.10.210' }] } } as Lab;
    // The probe as the netns backend answers it: this process is alive, a wrong start time is not.
    const r = await labStatus(state, lab, { isRunning: async (p) => processStartTime(p.pid) === p.startTime, namespaceThere: async () => true });
    expect(r.services).to.deep.equal([{ name: 'etcd', node: 'master', pid: process.pid, alive: true }]);
    expect(r.pods[0].processes).to.deep.equal([{ name: 'nginx', node: 'master', pid: process.pid, alive: false }]);
    expect(r.healthy).to.equal(false);
    expect(formatStatus(r, plain).at(-1)).to.match(/✘ something the lab recorded is gone .*`cnilab down x`/);
  });
});
