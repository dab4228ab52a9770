// Thick mode on the real kernel: the shim in dist/cni/bin hands calls to the
// node's daemon when one runs and runs the plugin itself otherwise; either
// way a runtime sees the same plugin. The daemon lives in a node namespace we
// create, its socket in a private run dir.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inNetns, netnsPath } from '../../src/net/exec.js';
import { Ip, type Link } from '../../src/net/ip.js';
import { addNetns, deleteNetns, listNetns, netnsInode } from '../../src/net/netns.js';
import { AUTOSTART_ENV, AUTOSTART_LOG, IDLE_ENV, pidPath, RUN_DIR_ENV, socketPath } from '../../src/cni/daemon.js';
import { isRunning } from '../../src/lab/processes.js';
import { startCnid, stopCnid, type Cnid } from '../../src/runner/cnid.js';
import { childrenOf } from '../helpers/children.js';

const BIN = resolve('dist/cni/bin');
const PREFIX = `cnitest-b-cnid-${process.pid}-`;
const NODE = `${PREFIX}node`;
const OTHER_NODE = `${PREFIX}other`;
const BRIDGE = 'cnitest-b-br1';


describe('CNI daemon (thick mode) behind the shim', function () {
  let dir = '';
  let runDir = '';
  let log = '';
  let cnid: Cnid | undefined;
  let ctrCount = 0;

  const conf = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'cnitest-b-cnid',
      type: 'bridge',
      bridge: BRIDGE,
      isGateway: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.78.0.0/24' }]], dataDir: join(dir, 'leases') },
      ...extra,
    });

  /** Run a plugin executable in a node namespace as a runtime does: env and stdin in, JSON out. */
  function call(node: string, command: string, stdin: string, env: Record<string, string> = {}, plugin = 'bridge') {
    const argv = inNetns(node, join(BIN, plugin), []);
    const r = spawnSync(argv[0], argv.slice(1), {
      input: stdin,
      encoding: 'utf8',
      // Without a daemon the shim runs the plugin itself here; starting one is tested below.
      env: { PATH: process.env.PATH, [RUN_DIR_ENV]: runDir, [AUTOSTART_ENV]: '0', CNI_COMMAND: command, CNI_PATH: BIN, CNI_IFNAME: 'eth0', ...env },
    });
    return { code: r.status, stdout: r.stdout, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
  }

  async function container(): Promise<{ id: string; netns: string }> {
    const n = ++ctrCount;
    await addNetns(`${PREFIX}c${n}`);
    return { id: `ctr${n}`, netns: netnsPath(`${PREFIX}c${n}`) };
  }

  const served = () => readFileSync(log, 'utf8').split('\n').filter((l) => / exit -?\d+ /.test(l));

  before(async function () {
    if (!existsSync(join(BIN, 'bridge')) || !existsSync(resolve('dist/cni/cnid.mjs'))) throw new Error('dist/cni is missing: run npm run build');
    const shim = readFileSync(join(BIN, 'bridge'));
    if (shim.subarray(0, 4).toString('latin1') !== '\x7fELF') this.skip(); // built without a C compiler: no shim, no thick mode
    dir = mkdtempSync(join(tmpdir(), 'cnitest-b-cnid-'));
    runDir = join(dir, 'run');
    log = join(dir, 'cnid.log');
    await addNetns(NODE);
    await addNetns(OTHER_NODE);
    cnid = await startCnid(NODE, { log, runDir });
  });

  after(async function () {
    if (cnid) await stopCnid(cnid);
    for (const ns of listNetns().filter((n) => n.startsWith(PREFIX))) await deleteNetns(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs inside the node namespace it serves, with its socket named after that namespace', () => {
    const ns = netnsInode(`/proc/${cnid!.pid}/ns/net`);
    expect(ns).to.equal(netnsInode(netnsPath(NODE)));
    expect(cnid!.socket).to.equal(socketPath(runDir, ns!));
  });

  it('serves ADD, CHECK and DEL; the result matches the kernel', async () => {
    const ctr = await container();
    const env = { CNI_CONTAINERID: ctr.id, CNI_NETNS: ctr.netns };
    const before = served().length;
    const add = call(NODE, 'ADD', conf(), env);
    expect(add.code, add.stdout).to.equal(0);
    const [bridge, host, inside] = add.json.interfaces;
    const node = new Ip(NODE);
    expect((await node.link(BRIDGE))?.address).to.equal(bridge.mac);
    const hostLink = await node.link(host.name);
    expect(hostLink?.address).to.equal(host.mac);
    expect(hostLink?.master).to.equal(BRIDGE);
    const [eth0] = await new Ip(ctr.netns).json<Link[]>('addr', 'show', 'dev', 'eth0');
    expect(eth0.address).to.equal(inside.mac);
    expect(eth0.addr_info?.map((a) => `${a.local}/${a.prefixlen}`)).to.include(add.json.ips[0].address);

    const check = call(NODE, 'CHECK', conf({ prevResult: add.json }), env);
    expect(check.code, check.stdout).to.equal(0);
    const del = call(NODE, 'DEL', conf(), env);
    expect(del.code, del.stdout).to.equal(0);
    expect(await node.link(host.name)).to.equal(undefined);
    expect(readdirSync(join(dir, 'leases', 'cnitest-b-cnid')).filter((f) => f.startsWith('10.'))).to.deep.equal([]);

    // The daemon, not a node process, did the work.
    const lines = served().slice(before);
    expect(lines.map((l) => l.split(' ').slice(1, 4).join(' '))).to.deep.equal([`bridge ADD ${ctr.id}`, `bridge CHECK ${ctr.id}`, `bridge DEL ${ctr.id}`]);
  });

  it('passes errors through with their code, as the plugin itself would', () => {
    const broken = call(NODE, 'ADD', '{', { CNI_CONTAINERID: 'x', CNI_NETNS: '/nonexistent' });
    expect(broken.code).to.equal(6);
    expect(broken.json.code).to.equal(6);
    const version = call(NODE, 'ADD', conf({ cniVersion: '9.9.9' }), { CNI_CONTAINERID: 'x', CNI_NETNS: '/nonexistent' });
    expect(version.json.code).to.equal(1);
    const missing = call(NODE, 'DEL', conf(), {});
    expect(missing.json.code).to.equal(4);
    expect(missing.json.msg).to.include('CNI_CONTAINERID');
  });

  it('gives parallel ADDs distinct addresses within one daemon process', async () => {
    const ctrs = await Promise.all(Array.from({ length: 8 }, () => container()));
    const adds = await Promise.all(
      ctrs.map(
        (c) =>
          new Promise<{ code: number | null; stdout: string }>((res) => {
            const argv = inNetns(NODE, join(BIN, 'bridge'), []);
            const child = spawn(argv[0], argv.slice(1), {
              env: { PATH: process.env.PATH, [RUN_DIR_ENV]: runDir, CNI_COMMAND: 'ADD', CNI_PATH: BIN, CNI_IFNAME: 'eth0', CNI_CONTAINERID: c.id, CNI_NETNS: c.netns },
            });
            let out = '';
            child.stdout.on('data', (d: Buffer) => (out += d));
            child.on('close', (code: number | null) => res({ code, stdout: out }));
            child.stdin.end(conf());
          }),
      ),
    );
    for (const a of adds) expect(a.code, a.stdout).to.equal(0);
    const ips = adds.map((a) => JSON.parse(a.stdout).ips[0].address);
    expect(new Set(ips).size).to.equal(8);
    for (const c of ctrs) expect(call(NODE, 'DEL', conf(), { CNI_CONTAINERID: c.id, CNI_NETNS: c.netns }).code).to.equal(0);
  });

  it('is not used from another namespace: the shim there runs the plugin itself', async () => {
    const before = served().length;
    const ctr = await container();
    const env = { CNI_CONTAINERID: ctr.id, CNI_NETNS: ctr.netns };
    const add = call(OTHER_NODE, 'ADD', conf(), env);
    expect(add.code, add.stdout).to.equal(0);
    expect(await new Ip(OTHER_NODE).link(BRIDGE)).to.not.equal(undefined);
    expect(call(OTHER_NODE, 'DEL', conf(), env).code).to.equal(0);
    expect(served().length).to.equal(before);
  });

  it('falls back to running the plugin itself when the socket is stale', async () => {
    const staleDir = join(dir, 'stale');
    mkdirSync(staleDir);
    writeFileSync(socketPath(staleDir, netnsInode(netnsPath(OTHER_NODE))!), ''); // a file where a socket was
    const r = call(OTHER_NODE, 'VERSION', '', { [RUN_DIR_ENV]: staleDir });
    expect(r.code).to.equal(0);
    expect(r.json.supportedVersions).to.include('1.1.0');
  });

  it('refuses a second daemon for the same namespace, and so does the daemon itself', async () => {
    let err: Error | undefined;
    try {
      await startCnid(NODE, { log, runDir });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/already serves/);
    const argv = inNetns(NODE, process.execPath, [resolve('dist/cni/cnid.mjs')]);
    const second = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, [RUN_DIR_ENV]: runDir } });
    expect(second.status).to.not.equal(0);
    expect(second.stderr).to.include('already serves this network namespace');
    expect(isRunning(cnid!.pid)).to.equal(true);
    expect(call(NODE, 'VERSION', '').code).to.equal(0);
  });

  it('stops by its PID and leaves nothing behind; the shim then runs the plugin itself', async () => {
    // bridge talks netlink from the daemon itself; a plugin that runs ip has it kept running.
    const helpers = childrenOf(cnid!.pid);
    await stopCnid(cnid!);
    for (const pid of helpers) expect(isRunning(pid), `helper ${pid}`).to.equal(false);
    expect(isRunning(cnid!.pid)).to.equal(false);
    expect(existsSync(cnid!.socket)).to.equal(false);
    expect(existsSync(runDir)).to.equal(false);
    cnid = undefined;
    const r = call(NODE, 'VERSION', '');
    expect(r.code).to.equal(0);
  });
});

describe('CNI daemon started by the shim on first use', function () {
  const NS = `${PREFIX}auto`;
  let dir = '';
  let runDir = '';
  let socket = '';

  before(async function () {
    if (readFileSync(join(BIN, 'bridge')).subarray(0, 4).toString('latin1') !== '\x7fELF') this.skip(); // built without a C compiler: no shim
    dir = mkdtempSync(join(tmpdir(), 'cnitest-b-cnid-auto-'));
    runDir = join(dir, 'run');
    await addNetns(NS);
    socket = socketPath(runDir, netnsInode(netnsPath(NS))!);
  });

  after(async function () {
    // Whatever a failed test left running goes by its PID.
    if (existsSync(pidPath(socket))) await stopCnid({ pid: Number(readFileSync(pidPath(socket), 'utf8')), socket, netns: NS });
    await deleteNetns(NS);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The shim as a runtime runs it, its stdout a pipe the runtime reads to the end. */
  function call(command: string, stdin: string, env: Record<string, string> = {}) {
    const argv = inNetns(NS, join(BIN, 'bridge'), []);
    const r = spawnSync(argv[0], argv.slice(1), {
      input: stdin,
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: process.env.PATH, [RUN_DIR_ENV]: runDir, [IDLE_ENV]: '1500', CNI_COMMAND: command, CNI_PATH: BIN, CNI_IFNAME: 'eth0', ...env },
    });
    return { code: r.status, stdout: r.stdout };
  }

  const daemonPid = () => (existsSync(pidPath(socket)) ? Number(readFileSync(pidPath(socket), 'utf8')) : undefined);
  const starts = () => readFileSync(join(runDir, AUTOSTART_LOG), 'utf8').split('\n').filter((l) => / serving /.test(l)).length;

  async function gone(pid: number): Promise<boolean> {
    for (let waited = 0; waited < 10_000; waited += 100) {
      if (!isRunning(pid)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  it('starts one daemon in the namespace, detached from the runtime, and hands it this call and the next ones', async () => {
    // Parallel first calls: one of them starts the daemon, the others wait for it and use it.
    const calls = await Promise.all(
      Array.from({ length: 4 }, () => {
        const argv = inNetns(NS, join(BIN, 'bridge'), []);
        return new Promise<number | null>((res) => {
          const child = spawn(argv[0], argv.slice(1), { env: { PATH: process.env.PATH, [RUN_DIR_ENV]: runDir, [IDLE_ENV]: '1500', CNI_COMMAND: 'VERSION' }, stdio: ['ignore', 'pipe', 'pipe'] });
          child.stdout.resume();
          child.on('close', res); // after stdout's end: a daemon holding the pipe would keep it open
        });
      }),
    );
    expect(calls).to.deep.equal([0, 0, 0, 0]);
    const pid = daemonPid();
    expect(pid, 'pid file beside the socket').to.be.a('number');
    expect(netnsInode(`/proc/${pid}/ns/net`)).to.equal(netnsInode(netnsPath(NS)));
    expect(starts()).to.equal(1);
    const r = call('VERSION', '');
    expect(r.code).to.equal(0);
    expect(JSON.parse(r.stdout).supportedVersions).to.include('1.1.0');
    expect(daemonPid()).to.equal(pid);
  });

  it('ends by itself once idle, leaving nothing in its run dir, not even the dir; the next call starts a new one', async () => {
    const pid = daemonPid()!;
    expect(await gone(pid), 'exited when idle').to.equal(true);
    expect(existsSync(runDir)).to.equal(false);
    expect(call('VERSION', '').code).to.equal(0);
    expect(daemonPid()).to.not.equal(pid);
    expect(starts()).to.equal(1);
  });

  it('ends as soon as the name of its namespace is removed, though not idle yet', async () => {
    expect(await gone(daemonPid()!)).to.equal(true); // the one before, idle
    expect(call('VERSION', '', { [IDLE_ENV]: '600000' }).code).to.equal(0);
    const pid = daemonPid()!;
    await deleteNetns(NS);
    expect(await gone(pid), 'exited with its namespace').to.equal(true);
    expect(existsSync(runDir)).to.equal(false);
    await addNetns(NS);
    socket = socketPath(runDir, netnsInode(netnsPath(NS))!);
  });

  it('falls back to running the plugin itself when the daemon cannot start', () => {
    const blocked = join(dir, 'blocked');
    mkdirSync(socketPath(blocked, netnsInode(netnsPath(NS))!), { recursive: true }); // a directory where its socket would go
    const r = call('VERSION', '', { [RUN_DIR_ENV]: blocked });
    expect(r.code).to.equal(0);
    expect(JSON.parse(r.stdout).supportedVersions).to.include('1.1.0');
    expect(readFileSync(join(blocked, AUTOSTART_LOG), 'utf8')).to.match(/not started/);
  });

  it('is not started when turned off: the shim runs the plugin itself', () => {
    const r = call('VERSION', '', { [AUTOSTART_ENV]: '0' });
    expect(r.code).to.equal(0);
    expect(existsSync(socket)).to.equal(false);
  });
});
