// Every lab on the docker backend: nodes as containers of cnilab's node image on
// a Docker network underlay, the same steps and checks as on netns. The test
// starts its own dockerd (Debian's docker.io) in a temporary directory, waits
// for it, and stops it by PID at the end; where no engine can be started every
// test is skipped and says why in its title. Run it under the machine-wide lock
// (`flock /run/cnilab-docker.lock npx mocha …`): two engines must not rewrite
// iptables at once.
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { run } from '../../src/net/exec.js';
import { LabInstance, runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { listLabFiles } from '../../src/lab/lab-file.js';
import { cleanAll, cleanLab } from '../../src/runner/clean.js';
import { labDir, NAME_PREFIX, readState } from '../../src/lab/state.js';
import type { PrivateEngine } from '../../src/topologies/docker-engine.js';
import { LAB_LABEL, PREFIX_LABEL, labLabels } from '../../src/topologies/docker.js';
import { failures } from '../helpers/lab.js';
import { cli, workshopChecks, WORKSHOP_LAB } from '../helpers/workshop-checks.js';
import { startTestEngine, stopTestEngine, type TestEngine } from '../helpers/private-engine.js';

/** Containers and networks on the engine that carry `lab`'s labels. */
async function dockerLeftovers(engine: PrivateEngine, lab: string): Promise<string[]> {
  const filters = JSON.stringify({ label: [`${LAB_LABEL}=${lab}`, `${PREFIX_LABEL}=${NAME_PREFIX}`] });
  const [cs, ns] = await Promise.all([engine.docker.listContainers({ all: true, filters }), engine.docker.listNetworks({ filters })]);
  return [...cs.map((c) => `container ${c.Names[0]}`), ...ns.map((n) => `network ${n.Name}`), ...(existsSync(labDir(lab)) ? [`dir ${labDir(lab)}`] : [])];
}

/** What the root namespace shows of lab addresses and of the FORWARD policy. */
async function rootNamespaceView(): Promise<string> {
  const [addrs, routes, forward] = await Promise.all([run(['ip', '-o', '-4', 'addr']), run(['ip', 'route']), run(['iptables', '-S', 'FORWARD'])]);
  const lab = (text: string) => text.split('\n').filter((l) => /192\.168\.10\.|10\.10\./.test(l));
  return JSON.stringify({ addrs: lab(addrs.stdout), routes: lab(routes.stdout), forward: forward.stdout.split('\n')[0] });
}

describe('docker backend: labs on nodes as containers', function () {
  this.timeout(120_000);
  let t: TestEngine | undefined;
  let engine: PrivateEngine | undefined;
  const savedHost = process.env.DOCKER_HOST;

  before(async function () {
    this.timeout(15 * 60_000);
    t = await startTestEngine(this);
    engine = t?.engine;
    if (engine) process.env.DOCKER_HOST = engine.host;
  });

  after(async function () {
    this.timeout(120_000);
    if (savedHost === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = savedHost;
    await stopTestEngine(t);
  });

  it('a lab left up: exec demultiplexes stdout and stderr and reads the exit code, nodes and pods are apart, clean removes it all', async () => {
    const before = await rootNamespaceView();
    const inst = LabInstance.open('flannel-host-gw', { name: 'dkr-left', backend: 'docker' }, new QuietReporter());
    await inst.up({ install: false });
    const b = inst.backend;
    try {
      const r = await b.exec('master', ['sh', '-c', 'echo out; echo err >&2; exit 3'], { allowFailure: true });
      expect(r).to.deep.equal({ stdout: 'out\n', stderr: 'err\n', exitCode: 3 });
      const big = 'x'.repeat(200_000) + '\n';
      expect((await b.exec('worker', ['cat'], { input: big })).stdout).to.equal(big);
      expect((await b.exec('worker', ['sh', '-c', 'echo "$A $B"'], { env: { A: 'one', B: 'two words' } })).stdout).to.equal('one two words\n');
      const failed = await b.exec('master', ['false']).catch((e: Error) => e);
      expect(String(failed)).to.match(/false failed \(exit 1\)/);

      // Node paths are the real ones inside each node; hostnames are the node's and the pod's.
      expect(b.nodePath('master', '/etc/cni/net.d')).to.equal('/etc/cni/net.d');
      expect(await b.readFile('master', '/etc/cni/net.d/10-cnilab.conflist')).to.include('"type": "flannel"');
      expect(await b.readFile('master', '/nope')).to.equal(undefined);
      expect((await b.exec('worker', ['hostname'])).stdout.trim()).to.equal('worker');
      const pod = inst.pods.list().find((p) => p.node === 'worker')!;
      expect((await b.podExec(pod.node, pod.name, ['hostname'])).stdout.trim()).to.equal(pod.name);
      // Nothing of the lab routes or leaves the machine: no default route in a node, no lab address on the host.
      expect((await b.exec('master', ['ip', 'route', 'show', 'default'])).stdout).to.equal('');
      expect(await rootNamespaceView()).to.equal(before);

      // A second lab on the same subnet cannot share this engine: the error names the network in the way, and nothing is left.
      const second = LabInstance.open('flannel-vxlan', { name: 'dkr-second', backend: 'docker' }, new QuietReporter());
      const clash = await second.up({ install: false }).catch((e: Error) => e);
      expect(String(clash)).to.include(`network ${NAME_PREFIX}dkr-left-underlay (lab dkr-left) already uses 192.168.10.0/24`).and.include('one after the other');
      expect(await dockerLeftovers(engine!, 'dkr-second')).to.deep.equal([]);
    } finally {
      // Not inst.down(): clean must find everything from the state and labels alone.
      await cleanLab('dkr-left');
    }
    expect(await dockerLeftovers(engine!, 'dkr-left')).to.deep.equal([]);
  });

  for (const lab of listLabFiles()) {
    it(`${lab}: every lesson step passes on docker, and nothing is left behind`, async () => {
      const instance = `dkr-${lab}`.slice(0, 31);
      const r = await runLab(lab, { name: instance, backend: 'docker', install: false }, new QuietReporter());
      if (r.skipped) console.log(`      ${r.skipped}`);
      else {
        expect(r.ok, failures(r)).to.equal(true);
        expect(r.backend).to.equal('docker');
        expect(r.steps.length).to.be.greaterThan(0);
      }
      expect(await dockerLeftovers(engine!, instance)).to.deep.equal([]);
    });
  }

  it('bench runs on docker nodes with its timeouts: TCP and request/response against the underlay', async function () {
    this.timeout(300_000);
    const results = mkdtempSync('/tmp/cnilab-dkr-bench-');
    try {
      const r = await cli(['bench', 'flannel-host-gw', '--backend', 'docker', '--name', 'dkr-bench', '--tests', 'tcp,rr', '--repeat', '1', '--duration', '0.2', '--results-dir', results, '--json']);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      const summary = JSON.parse(r.stdout) as { labs: { lab: string; status: string; file?: string }[] };
      expect(summary.labs.map((o) => o.status)).to.deep.equal(['ok']);
      const result = JSON.parse(readFileSync(summary.labs[0].file!, 'utf8')) as { backend: string; pairs: { name: string }[] };
      expect(result.backend).to.equal('docker');
      expect(result.pairs.map((p) => p.name)).to.include('underlay');
    } finally {
      await execa('rm', ['-rf', results], { reject: false });
    }
    expect(await dockerLeftovers(engine!, 'dkr-bench')).to.deep.equal([]);
  });

  it('clean finds containers and networks a crash left with no state file, by their labels', async () => {
    const lab = 'dkr-crashed';
    const docker = engine!.docker;
    const image = t!.image;
    await docker.createNetwork({ Name: `${NAME_PREFIX}${lab}-underlay`, Internal: true, Labels: labLabels(lab) });
    await docker.createContainer({ name: `${NAME_PREFIX}${lab}-master`, Image: image, Cmd: ['sleep', 'infinity'], Labels: labLabels(lab) });
    expect(readState(lab)).to.equal(undefined);
    expect(await dockerLeftovers(engine!, lab)).to.have.length(2);
    const report = await cleanAll();
    expect(report.orphans).to.include.members([`${NAME_PREFIX}${lab}-master`, `${NAME_PREFIX}${lab}-underlay`]);
    expect(await dockerLeftovers(engine!, lab)).to.deep.equal([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).to.not.include(`${NAME_PREFIX}${lab}`);
  });

  // After the tests above (mocha runs a suite's own tests before its inner suites): one lab for every check.
  describe('the workshop commands (the list every backend runs)', function () {
    const lab = 'dkr-ws';
    before(async function () {
      this.timeout(300_000);
      await LabInstance.open(WORKSHOP_LAB, { name: lab, backend: 'docker' }, new QuietReporter()).up({ install: false });
    });
    after(async function () {
      this.timeout(120_000);
      await cleanLab(lab);
      expect(await dockerLeftovers(engine!, lab)).to.deep.equal([]);
    });
    workshopChecks(() => ({ backend: 'docker', name: lab }));
  });
});
