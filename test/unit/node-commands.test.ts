// The shell commands the docker and vagrant backends send to a node, run here
// by a real sh: a process started and stopped by its PID, files written and
// read back, arguments that would break a pasted-in script.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '../../src/net/exec.js';
import { isRunning } from '../../src/lab/processes.js';
import { processStartTime, type ProcessRecord, type StateFile } from '../../src/lab/state.js';
import { RemoteNodeBackend } from '../../src/topologies/remote-node.js';
import { parseStarted, podArgv, readFileArgv, shQuote, startArgv, stopArgv, withEnv, writeFileArgv } from '../../src/topologies/node-commands.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('node commands (docker and vagrant backends)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cnilab-nodecmd-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('start prints the PID and start time of the command itself, which keeps running after the shell returns', async () => {
    const log = join(dir, 'log', 'sleeper.log');
    const r = await run(startArgv(log, ['sh', '-c', 'echo "it runs with $1"; exec sleep 30', 'sh', 'a b; $(x)']));
    const { pid, startTime } = parseStarted(r.stdout);
    try {
      expect(isRunning(pid)).to.equal(true);
      expect(startTime).to.equal(processStartTime(pid));
      for (let i = 0; i < 100 && !readFileSync(log, 'utf8').includes('it runs'); i++) await sleep(10);
      expect(readFileSync(log, 'utf8')).to.equal('it runs with a b; $(x)\n');
      // Its own session: closing the caller's session or stream does not reach it.
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[3]).to.equal(String(pid));
    } finally {
      await run(stopArgv(pid, startTime));
    }
    for (let i = 0; i < 100 && isRunning(pid); i++) await sleep(10);
    expect(isRunning(pid)).to.equal(false);
  });

  it('stop leaves alone a process whose start time does not match (a reused PID)', async () => {
    const r = await run(startArgv(join(dir, 'x.log'), ['sleep', '30']));
    const { pid, startTime } = parseStarted(r.stdout);
    try {
      await run(stopArgv(pid, startTime + 1));
      await sleep(50);
      expect(isRunning(pid)).to.equal(true);
    } finally {
      await run(stopArgv(pid, startTime));
    }
    expect(isRunning(pid)).to.equal(false);
  });

  it('stop SIGKILLs a process that ignores SIGTERM after the grace time, and is fine with one already gone', async () => {
    const r = await run(startArgv(join(dir, 'x.log'), ['sh', '-c', 'trap "" TERM; while :; do sleep 0.05; done']));
    const { pid, startTime } = parseStarted(r.stdout);
    await run(stopArgv(pid, startTime, 200));
    for (let i = 0; i < 100 && isRunning(pid); i++) await sleep(10);
    expect(isRunning(pid)).to.equal(false);
    expect((await run(stopArgv(pid, startTime))).exitCode).to.equal(0);
  });

  it('writes a file (making its directory) from stdin and reads it back; a missing file fails', async () => {
    const file = join(dir, 'etc/cni/net.d/10 odd name.conflist');
    await run(writeFileArgv(file), { input: '{"a": "it\'s $HOME"}\n' });
    expect((await run(readFileArgv(file))).stdout).to.equal('{"a": "it\'s $HOME"}\n');
    expect((await run(readFileArgv(join(dir, 'missing')), { allowFailure: true })).exitCode).to.not.equal(0);
  });

  it('runs pod commands through nsenter into the pod netns and its hostname file', () => {
    expect(podArgv('cnilab-lab-pod-nginx-0', 'nginx-0', ['ip', 'addr'])).to.deep.equal([
      'nsenter',
      '--net=/run/netns/cnilab-lab-pod-nginx-0',
      '--uts=/run/cnilab/pods/nginx-0/uts',
      '--',
      'ip',
      'addr',
    ]);
  });

  it('quotes words for a remote shell so they arrive unchanged', async () => {
    const words = ['plain', 'two words', "it's", '$(touch /x)', 'a"b', '', '10.10.0.0/16'];
    const r = await run(['sh', '-c', `printf '%s\\n' ${words.map(shQuote).join(' ')}`]);
    expect(r.stdout).to.equal(words.map((w) => `${w}\n`).join(''));
    expect(withEnv({ CNI_COMMAND: 'ADD' }, ['x'])).to.deep.equal(['env', 'CNI_COMMAND=ADD', 'x']);
    expect(withEnv({}, ['x'])).to.deep.equal(['x']);
  });
});

describe('backends whose nodes have PID spaces of their own (docker, VMs, hosts)', () => {
  /** Nodes that answer every start with the same PID, as two machines may; what runs where is recorded. */
  class SamePidNodes extends RemoteNodeBackend {
    readonly kind = 'fake';
    readonly ran: string[] = [];
    async up(): Promise<void> {}
    async down(): Promise<void> {}
    protected nodeCommand(_node: string, argv: string[]): string[] {
      return argv;
    }
    async exec(node: string, argv: string[]): Promise<RunResult> {
      const script = argv.join(' ');
      this.ran.push(`${node}: ${script.includes('kill -TERM') ? `stop ${argv.at(-2)}` : 'start'}`);
      return { stdout: script.includes('kill -TERM') ? '' : '4242 100\n', stderr: '', exitCode: 0 };
    }
  }

  it('stop stops the process of the node named and drops only its record, when another node has a process of that PID', async () => {
    const state = { dir: '/nonexistent', state: { processes: [] as ProcessRecord[] }, update: (fn: (s: { processes: ProcessRecord[] }) => void) => fn(state.state) };
    const topo = { lab: 'pids', underlay: { subnet: '192.168.10.0', prefix: 24 }, nodes: [{ name: 'master', address: '192.168.10.210' }, { name: 'worker', address: '192.168.10.220' }] };
    const backend = new SamePidNodes(topo, state as unknown as StateFile);
    const agent = await backend.start('master', 'agent', ['agent']);
    const bird = await backend.start('worker', 'bird', ['bird']);
    expect([agent, bird].map((s) => `${s.pid} on ${s.node}`)).to.deep.equal(['4242 on master', '4242 on worker']);

    await backend.stop(bird);
    expect(backend.ran).to.deep.equal(['master: start', 'worker: start', 'worker: stop 4242']);
    expect(state.state.processes.map((p) => `${p.name} on ${p.node}`)).to.deep.equal(['agent on master']);
    await backend.stop(bird);
    expect(backend.ran, 'a process already stopped is not stopped again, nor another in its place').to.have.length(3);
  });
});
