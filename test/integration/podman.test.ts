// A real runtime calls our plugins: Debian's podman with the CNI backend runs
// two busybox containers on a network made of our bridge + host-local.
// Container a is set up by the plugin executables alone; then the node's CNI
// daemon starts and container b, and both DELs, go through it.
//
// Everything is private to this test: containers.conf, storage (vfs, so no
// overlay mounts), the CNI config dir, the lease dir, and the network
// namespace podman runs in. podman is started with `nsenter --net=` rather
// than `ip netns exec`, which would mount a fresh /sys and hide the cgroup
// mounts runc needs; the CNI bridge thus lands in our namespace, never in the
// root one.
import { expect } from 'chai';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inNetns, run } from '../../src/net/exec.js';
import { Ip, type Link } from '../../src/net/ip.js';
import { addNetns, deleteNetns } from '../../src/net/netns.js';
import { AUTOSTART_ENV, RUN_DIR_ENV } from '../../src/cni/daemon.js';
import { startCnid, stopCnid, type Cnid } from '../../src/runner/cnid.js';

const OUR_PLUGINS = resolve('dist/cni/bin');
const NS = `cnitest-b-podman-${process.pid}`;
const NETWORK = 'cnitest-b-podman';
const BRIDGE = 'cnitest-b-br0';
const SUBNET_PREFIX = '10.89.7.';
const IMAGE = 'localhost/cnitest-busybox:latest';
const APPLETS = ['sh', 'ip', 'ping', 'httpd', 'wget', 'sleep', 'cat', 'timeout'];

// System paths podman, runc and libcni create on first use; removed after the
// test only if they did not exist before it (and, for directories, are empty).
const SYSTEM_LEFTOVERS = ['/var/lib/containers/cache/blob-info-cache-v1.boltdb', '/var/lib/containers/cache', '/var/lib/containers', '/var/lib/cni/results', '/var/lib/cni', '/run/runc', '/run/crun'];

async function which(cmd: string): Promise<boolean> {
  return (await run(['sh', '-c', `command -v ${cmd}`], { allowFailure: true })).exitCode === 0;
}

/** A busybox-static root file system, packed as the tarball `podman import` reads. */
function busyboxRootfs(dir: string): string {
  const root = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'www']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(root, 'bin', a));
  writeFileSync(join(root, 'www/index.html'), 'served by container a\n');
  return root;
}

describe('podman (CNI backend) runs containers on our bridge + host-local', function () {
  let dir = '';
  let env: NodeJS.ProcessEnv = {};
  let global: string[] = [];
  let nsCreated = false;
  let existedBefore = new Set<string>();
  let cnid: Cnid | undefined;
  let shimBuilt = false; // built without a C compiler, the plugins are plain node scripts: no daemon
  const ips: Record<string, string> = {};
  const ids: Record<string, string> = {};
  const daemonCalls = () => readFileSync(join(dir, 'cnid.log'), 'utf8').split('\n').filter((l) => / exit -?\d+ /.test(l));

  const podman = async (...args: string[]) => (await run(inNetns(NS, 'podman', [...global, ...args]), { env })).stdout.trim();

  before(async function () {
    if (!(await which('podman'))) this.skip(); // podman is not installed: nothing to run
    if (!existsSync(join(OUR_PLUGINS, 'bridge'))) throw new Error(`${OUR_PLUGINS}/bridge is missing: run npm run build`);
    existedBefore = new Set(SYSTEM_LEFTOVERS.filter((p) => existsSync(p)));
    shimBuilt = readFileSync(join(OUR_PLUGINS, 'bridge')).subarray(0, 4).toString('latin1') === '\x7fELF';

    dir = mkdtempSync(join(tmpdir(), 'cnitest-b-podman-'));
    const cniDir = join(dir, 'cni');
    mkdirSync(cniDir);
    // Debian's crun cannot run on hybrid cgroup v1/v2 hosts; runc can.
    const runtime = (await which('runc')) ? 'runtime = "runc"' : '';
    writeFileSync(
      join(dir, 'containers.conf'),
      [
        '[containers]',
        'default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]',
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        'lock_type = "file"',
        runtime,
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${OUR_PLUGINS}", "/usr/lib/cni"]`,
        `network_config_dir = "${cniDir}"`,
        '',
      ].join('\n'),
    );
    // vfs copies layers instead of mounting them: no overlay mounts to clean up.
    const storage = { driver: 'vfs', graphroot: join(dir, 'root'), runroot: join(dir, 'run') };
    writeFileSync(join(dir, 'storage.conf'), `[storage]\n${Object.entries(storage).map(([k, v]) => `${k} = "${v}"`).join('\n')}\n`);
    writeFileSync(
      join(cniDir, `${NETWORK}.conflist`),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: NETWORK,
        plugins: [
          {
            type: 'bridge',
            bridge: BRIDGE,
            isGateway: true,
            ipam: { type: 'host-local', ranges: [[{ subnet: `${SUBNET_PREFIX}0/24` }]], dataDir: join(dir, 'leases') },
          },
        ],
      }),
    );
    // podman passes its environment on to the plugins: this is where the shim looks for the daemon,
    // and container a is made before it runs, by the plugin itself (no daemon started by the shim).
    const runDir = join(dir, 'cnid-run');
    env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'), [RUN_DIR_ENV]: runDir, [AUTOSTART_ENV]: '0' };
    global = ['--root', storage.graphroot, '--runroot', storage.runroot, '--tmpdir', join(dir, 'tmp'), '--storage-driver', storage.driver];

    await addNetns(NS);
    nsCreated = true;
    const rootfs = busyboxRootfs(dir);
    await run(['tar', '-C', rootfs, '-cf', join(dir, 'rootfs.tar'), '.']);
    await podman('import', join(dir, 'rootfs.tar'), IMAGE);

    await podman('run', '-d', '--pull', 'never', '--name', 'a', '--network', NETWORK, IMAGE, 'httpd', '-f', '-p', '80', '-h', '/www');
    if (shimBuilt) cnid = await startCnid(NS, { log: join(dir, 'cnid.log'), runDir });
    await podman('run', '-d', '--pull', 'never', '--name', 'b', '--network', NETWORK, IMAGE, 'sleep', '600');
    for (const c of ['a', 'b']) {
      const networks = JSON.parse(await podman('inspect', c, '--format', '{{json .NetworkSettings.Networks}}'));
      ips[c] = networks[NETWORK]?.IPAddress ?? '';
      ids[c] = await podman('inspect', c, '--format', '{{.Id}}');
    }
  });

  after(async function () {
    this.timeout(120_000);
    if (!dir) return;
    if (nsCreated) {
      // rm runs CNI DEL; it must run in our namespace, where the bridge is.
      await podman('rm', '-f', '-a', '-t', '0').catch((e) => console.error(`podman rm: ${e.message}`));
      await podman('system', 'reset', '-f').catch((e) => console.error(`podman system reset: ${e.message}`));
    }
    if (cnid) await stopCnid(cnid);
    // Anything podman still has mounted under our directory (shm, storage) goes first.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m) => m && m.startsWith(dir + '/'))
      .reverse();
    for (const m of mounts) await run(['umount', '-l', m], { allowFailure: true });
    if (nsCreated) await deleteNetns(NS);
    rmSync(dir, { recursive: true, force: true });
    for (const p of SYSTEM_LEFTOVERS) {
      if (existedBefore.has(p) || !existsSync(p)) continue;
      try {
        if (p.endsWith('.boltdb')) unlinkSync(p);
        else rmdirSync(p); // only when empty: someone else may be using it
      } catch {
        /* in use by someone else: leave it */
      }
    }
  });

  it('gives each container its own address from the range (podman inspect)', () => {
    expect(ips.a, 'container a').to.match(new RegExp(`^${SUBNET_PREFIX.replace(/\./g, '\\.')}\\d+$`));
    expect(ips.b, 'container b').to.match(new RegExp(`^${SUBNET_PREFIX.replace(/\./g, '\\.')}\\d+$`));
    expect(ips.a).to.not.equal(ips.b);
    expect(ips.a).to.not.equal(`${SUBNET_PREFIX}1`); // the gateway stays on the bridge
  });

  it('puts that address on eth0 inside each container (ip in the container)', async () => {
    for (const c of ['a', 'b']) {
      const out = await podman('exec', c, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0');
      expect(out, `container ${c}`).to.include(`inet ${ips[c]}/24`);
    }
  });

  it('set up container a without the daemon and container b through it', function () {
    if (!shimBuilt) this.skip(); // no shim, no daemon
    const adds = daemonCalls().filter((l) => l.includes(' bridge ADD '));
    expect(adds).to.have.length(1);
    expect(adds[0]).to.include(` ${ids.b} eth0 exit 0 `);
  });

  it('builds the bridge in our namespace, with one port per container, and none in the root namespace', async () => {
    const ports = await new Ip(NS).json<Link[]>('link', 'show', 'master', BRIDGE);
    expect(ports.map((l) => l.ifname)).to.have.length(2);
    for (const p of ports) expect(p.ifname).to.match(/^veth[0-9a-f]{8}$/);
    expect(await new Ip().link(BRIDGE)).to.equal(undefined);
  });

  it('records one lease per container in the private dataDir', () => {
    const leases = readdirSync(join(dir, 'leases', NETWORK)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
    expect(leases.sort()).to.deep.equal([ips.a, ips.b].sort());
  });

  it('lets container b reach container a (ping, and HTTP from busybox httpd)', async () => {
    await podman('exec', 'b', 'ping', '-c', '1', '-W', '5', ips.a);
    // `timeout`, not wget's -T: busybox-static 1.35's wget crashes on -T.
    const body = await podman('exec', 'b', 'timeout', '10', 'wget', '-q', '-O', '-', `http://${ips.a}/index.html`);
    expect(body).to.equal('served by container a');
  });

  it('releases the addresses and the veth pairs when podman removes the containers', async () => {
    await podman('rm', '-f', '-t', '0', 'a', 'b');
    if (shimBuilt) {
      // Which process runs a DEL is podman's choice: `podman rm` itself, or conmon's
      // cleanup command, which does not carry CNILAB_RUN_DIR and so takes the shim's
      // no-daemon path. Either way is correct; what reached the daemon must have worked.
      const failed = daemonCalls().filter((l) => l.includes(' bridge DEL ') && !l.includes(' exit 0 '));
      expect(failed, 'DELs that failed in the daemon').to.deep.equal([]);
    }
    const leases = readdirSync(join(dir, 'leases', NETWORK)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
    expect(leases).to.deep.equal([]);
    expect(await new Ip(NS).json<Link[]>('link', 'show', 'master', BRIDGE)).to.deep.equal([]);
  });
});
