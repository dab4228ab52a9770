// The vagrant backend, as far as it can be checked where VMs cannot boot: the
// Vagrantfile each lab produces (loaded by Ruby with a recording stand-in for
// Vagrant), `vagrant validate` with Debian's vagrant, and the exact commands
// the backend runs, through a recording command runner.
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIp, mask } from '../../src/net/ipnet.js';
import { execa } from 'execa';
import { run, type RunResult } from '../../src/net/exec.js';
import { listLabFiles } from '../../src/lab/lab-file.js';
import { loadLab } from '../../src/datapaths/index.js';
import { ROOT } from '../../src/lab/paths.js';
import { topologyOf } from '../../src/runner/runner.js';
import { labDir, StateFile, STATE_ROOT } from '../../src/lab/state.js';
import { nodePackages } from '../../src/lab/tools.js';
import { podNetns } from '../../src/topologies/netns.js';
import { NODE_DIRS, nodeInitArgv, podArgv, startArgv, writeFileArgv } from '../../src/topologies/node-commands.js';
import { VagrantBackend, vagrantContext, vagrantEnv } from '../../src/topologies/vagrant.js';
import { remoteCommand, sshArgv, sshConfigHosts, type CommandRunner } from '../../src/topologies/ssh.js';

interface Machine {
  name: string;
  hostname: string;
  networks: { type: string; ip: string; netmask: string }[];
  provisioners: { name: string; type: string; path: string; args: string[]; run?: string }[];
}
interface Recorded {
  version: string;
  box: string;
  synced_folders: { host: string; guest: string; disabled?: boolean }[];
  machines: Machine[];
}

async function onPath(cmd: string): Promise<boolean> {
  return (await run(['sh', '-c', `command -v ${cmd}`], { allowFailure: true })).exitCode === 0;
}

describe('vagrant backend: the Vagrantfile from each lab', function () {
  this.timeout(60_000);
  before(async function () {
    if (!(await onPath('ruby'))) {
      console.log('      skipped: ruby is not installed (it comes with Debian package vagrant)');
      this.skip();
    }
  });

  for (const name of listLabFiles()) {
    it(`${name}: one VM per node on the underlay with the lesson's address, provisioned with the node's packages`, async () => {
      const { lab, file } = loadLab(name);
      const context = vagrantContext(`vg-${name}`, file);
      const r = await execa('ruby', [join(ROOT, 'test/fixtures/vagrantfile-dump.rb'), join(ROOT, 'Vagrantfile')], { env: vagrantEnv(context) });
      const config = JSON.parse(r.stdout) as Recorded;
      expect(config.version).to.equal('2');
      expect(config.machines.map((m) => m.name)).to.deep.equal(lab.topology.nodes.map((n) => n.name));
      const prefix = Number(lab.topology.underlay.split('/')[1]);
      for (const [i, m] of config.machines.entries()) {
        const node = lab.topology.nodes[i];
        expect(m.hostname).to.equal(node.name);
        expect(m.networks).to.deep.equal([{ type: 'private_network', ip: node.address, netmask: formatIp(mask(prefix)) }]);
        const [packages, underlay] = m.provisioners;
        expect(packages.args).to.deep.equal(['packages', node.address, process.execPath, ...nodePackages()]);
        expect(underlay).to.include({ name: 'underlay', run: 'always' });
        expect(underlay.args).to.deep.equal(['underlay', node.address]);
      }
      // The bundle and the lab's directory at the host's own paths; the project folder not shared.
      const dist = join(ROOT, 'dist');
      const state = join(STATE_ROOT, `vg-${name}`);
      expect(config.synced_folders).to.deep.include.members([
        { host: '.', guest: '/vagrant', disabled: true },
        { host: dist, guest: dist },
        { host: join(ROOT, 'node_modules'), guest: join(ROOT, 'node_modules') },
        { host: state, guest: state, create: true },
      ]);
    });
  }

  it('names the missing lab file', async () => {
    const r = await execa('ruby', [join(ROOT, 'test/fixtures/vagrantfile-dump.rb'), join(ROOT, 'Vagrantfile')], { env: { CNILAB_LAB: 'no-such-lab' }, reject: false });
    expect(r.exitCode).to.not.equal(0);
    expect(r.stderr).to.include('no lab file').and.include('no-such-lab');
  });

  // Vagrant's own check of every setting and key; they are the same for every lab (the machines each
  // lab makes are checked above), and one validate costs seconds of Ruby start-up: one lab is enough.
  it('vagrant validate accepts the Vagrantfile', async function () {
    if (!(await onPath('vagrant'))) {
      console.log('      skipped: vagrant is not installed (Debian package vagrant)');
      return this.skip();
    }
    const dotfiles = mkdtempSync(join(tmpdir(), 'cnilab-vagrant-'));
    try {
      const results = await Promise.all(
        listLabFiles().slice(0, 1).map(async (name) => {
          const { file } = loadLab(name);
          const env = { ...vagrantEnv(vagrantContext(`vg-${name}`, file)), VAGRANT_DOTFILE_PATH: join(dotfiles, name) };
          return { name, r: await execa('vagrant', ['validate', '--ignore-provider'], { cwd: ROOT, env, reject: false, all: true }) };
        }),
      );
      for (const { name, r } of results) expect(r.exitCode, `${name}: ${r.all}`).to.equal(0);
    } finally {
      rmSync(dotfiles, { recursive: true, force: true });
    }
  });
});

describe('vagrant backend: the commands it runs', () => {
  const lab = 'vg-commands';
  let calls: { argv: string[]; input?: string; env?: Record<string, string>; cwd?: string }[];
  let backend: VagrantBackend;
  const sshConfigText = 'Host master\n  HostName 127.0.0.1\n  Port 2222\n\nHost worker\n  HostName 127.0.0.1\n  Port 2200\n';
  const answers: Record<string, string> = { 'ssh-config': sshConfigText };

  const fake: CommandRunner = async (argv, opts): Promise<RunResult> => {
    calls.push({ argv, ...opts });
    const last = argv[argv.length - 1];
    if (argv[0] === 'vagrant' && argv[1] === 'ssh-config') return { stdout: answers['ssh-config'], stderr: '', exitCode: 0 };
    if (last.includes('setsid')) return { stdout: '4242 987654\n', stderr: '', exitCode: 0 };
    return { stdout: '', stderr: '', exitCode: 0 };
  };

  beforeEach(() => {
    calls = [];
    const { lab: spec, file } = loadLab('flannel-vxlan');
    const state = new StateFile(lab, { labFile: file, backend: 'vagrant' });
    state.save();
    backend = new VagrantBackend(topologyOf(spec, lab), state, fake);
  });
  afterEach(async () => {
    await backend.down();
  });

  const ssh = (node: string, argv: string[], env?: Record<string, string>) => sshArgv({ config: join(labDir(lab), 'vagrant-ssh-config'), controlDir: join(labDir(lab), 'ssh'), host: node }, argv, env);

  it('up: vagrant up with the lab in its environment, ssh-config once, then each node prepared and the underlay checked over ssh', async () => {
    await backend.up();
    const env = vagrantEnv(backend.context);
    expect(env).to.include({ CNILAB_INSTANCE: lab, CNILAB_PACKAGES: nodePackages().join(' '), VAGRANT_DOTFILE_PATH: join(ROOT, '.vagrant', lab) });
    expect(calls.map((c) => c.argv)).to.deep.equal([
      ['vagrant', 'up', '--provision', 'master', 'worker'],
      ['vagrant', 'ssh-config', 'master', 'worker'],
      ssh('master', nodeInitArgv(NODE_DIRS)),
      ssh('worker', nodeInitArgv(NODE_DIRS)),
      ssh('master', ['ping', '-c', '1', '-W', '2', '192.168.10.220']),
    ]);
    expect(calls[0]).to.include({ cwd: ROOT });
    expect(calls[0].env).to.deep.equal(env);
  });

  it('exec, start, files and pods: each one ssh command, as root, with the environment carried by env', async () => {
    await backend.exec('worker', ['ip', 'route'], { env: { A: 'b c' } });
    await backend.writeFile('master', '/etc/cni/net.d/10-cnilab.conflist', '{}');
    const started = await backend.start('master', 'etcd', ['etcd', '--name', 'master']);
    await backend.podExec('worker', 'nginx-1', ['ping', '-c', '1', '10.10.0.2']);
    const log = join(labDir(lab), 'nodes', 'master', 'log', 'etcd.log');
    expect(started).to.deep.equal({ pid: 4242, node: 'master', log });
    expect(calls.map((c) => c.argv)).to.deep.equal([
      ssh('worker', ['ip', 'route'], { A: 'b c' }),
      ssh('master', writeFileArgv('/etc/cni/net.d/10-cnilab.conflist')),
      ssh('master', startArgv(log, ['etcd', '--name', 'master'])),
      ssh('worker', podArgv(podNetns(lab, 'nginx-1'), 'nginx-1', ['ping', '-c', '1', '10.10.0.2'])),
    ]);
    expect(calls[1].input).to.equal('{}');
    expect(calls[0].argv.at(-1)).to.equal("sudo -n env 'A=b c' ip route");
  });

  it('down: closes the shared ssh connections and destroys the VMs Vagrant recorded', async () => {
    await backend.up();
    mkdirSync(join(ROOT, '.vagrant', lab, 'machines', 'master'), { recursive: true }); // what `vagrant up` records
    calls = [];
    await backend.down();
    const sshConfig = join(labDir(lab), 'vagrant-ssh-config');
    expect(calls.map((c) => c.argv)).to.deep.equal([
      ...['master', 'worker'].map((n) => ['ssh', '-F', sshConfig, '-o', `ControlPath=${join(labDir(lab), 'ssh')}/%C`, '-O', 'exit', n]),
      ['vagrant', 'destroy', '--force'],
    ]);
    expect(existsSync(labDir(lab))).to.equal(false);
    expect(existsSync(join(ROOT, '.vagrant', lab))).to.equal(false);
  });

  it('down after a `vagrant up` that made no machine has nothing to destroy', async () => {
    await backend.down();
    expect(calls.map((c) => c.argv[0])).to.not.include('vagrant');
  });

  it("a remote command survives the node's login shell unchanged", async () => {
    const argv = ['printf', '%s|', 'two words', "it's", '$(id)', ''];
    const r = await run(['sh', '-c', remoteCommand(argv, { X: '1' }, false)]);
    expect(r.stdout).to.equal("two words|it's|$(id)||");
    expect(sshConfigHosts(sshConfigText)).to.deep.equal(['master', 'worker']);
  });
});
