// One CNI daemon process for several nodes, as a netns lab runs it: it lives
// in a namespace of its own (the lab's), answers on each node's socket, and
// does each call's work in that node's namespace: links, sysctls, iptables
// rules and the `ip` it keeps running, though the calls come in at once.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inNetns, netnsPath, run, startDetached } from '../../src/net/exec.js';
import { Ip, type Link } from '../../src/net/ip.js';
import { addNetns, deleteNetns, listNetns, netnsInode } from '../../src/net/netns.js';
import { connects, NODES_ENV, pidPath, RUN_DIR_ENV, socketPath, type HostedNode } from '../../src/cni/daemon.js';
import { isRunning, stopPid } from '../../src/lab/processes.js';
import { sleep, waitUntil } from '../../src/util/wait.js';
import { childrenOf } from '../helpers/children.js';

const BIN = resolve('dist/cni/bin');
const PREFIX = `cnitest-h-${process.pid}-`;
const HOST = `${PREFIX}host`;
const NODES = ['n1', 'n2', 'n3'];
const BRIDGE = 'cnitest-h-br';
const PER_NODE = 4;


describe('CNI daemon serving several nodes from one process', function () {
  let dir = '';
  let nodes: HostedNode[] = [];
  let pid = 0;
  let ctrCount = 0;

  const conf = (node: number) =>
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'cnitest-h',
      type: 'bridge',
      bridge: BRIDGE,
      isGateway: true,
      ipMasq: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: `10.79.${node}.0/24` }]], dataDir: join(dir, `leases-${node}`) },
    });

  /** Run the bridge shim in a node's namespace as a runtime does; the daemon must answer (no fallback, no autostart). */
  function call(node: HostedNode, command: string, stdin: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
    return new Promise((res) => {
      const argv = inNetns(node.netns, join(BIN, 'bridge'), []);
      const child = spawn(argv[0], argv.slice(1), {
        env: { PATH: process.env.PATH, [RUN_DIR_ENV]: node.runDir, CNILAB_CNID_AUTOSTART: '0', CNI_COMMAND: command, CNI_PATH: BIN, CNI_IFNAME: 'eth0', ...env },
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.on('close', (code: number | null) => res({ code, stdout: out }));
      child.stdin.end(stdin);
    });
  }

  const served = (node: HostedNode) => readFileSync(node.log, 'utf8').split('\n').filter((l) => / exit -?\d+ /.test(l));

  /** Start the daemon for `nodes` inside HOST; resolves once every node's socket answers. */
  async function startHosted(): Promise<number> {
    const list = join(dir, 'nodes.json');
    writeFileSync(list, JSON.stringify(nodes));
    const fd = openSync(join(dir, 'cnid.log'), 'a');
    const p = startDetached(inNetns(HOST, process.execPath, [resolve('dist/cni/cnid.mjs')]), { stdout: fd, stderr: fd, env: { PATH: process.env.PATH, [NODES_ENV]: list } });
    closeSync(fd);
    await waitUntil(async () => (await Promise.all(nodes.map((n) => connects(socketPath(n.runDir, netnsInode(n.netns)!))))).every(Boolean), {
      timeoutMs: 15_000,
      what: 'the daemon to answer for every node',
      hint: () => readFileSync(join(dir, 'cnid.log'), 'utf8'),
    });
    return p;
  }

  before(async function () {
    if (!existsSync(join(BIN, 'bridge')) || !existsSync(resolve('dist/cni/cnid.mjs'))) throw new Error('dist/cni is missing: run npm run build');
    if (readFileSync(join(BIN, 'bridge')).subarray(0, 4).toString('latin1') !== '\x7fELF') this.skip(); // built without a C compiler: no shim, no thick mode
    dir = mkdtempSync(join(tmpdir(), 'cnitest-h-'));
    await addNetns(HOST);
    nodes = [];
    for (const name of NODES) {
      await addNetns(`${PREFIX}${name}`);
      nodes.push({ name, netns: netnsPath(`${PREFIX}${name}`), runDir: join(dir, name, 'run'), log: join(dir, name, 'cnid.log') });
    }
    for (const n of nodes) await run(['mkdir', '-p', n.runDir]);
    pid = await startHosted();
  });

  after(async function () {
    if (pid) await stopPid(pid, 5000);
    for (const ns of listNetns().filter((n) => n.startsWith(PREFIX))) await deleteNetns(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is one process, in a namespace of its own, answering on every node socket', () => {
    expect(netnsInode(`/proc/${pid}/ns/net`)).to.equal(netnsInode(netnsPath(HOST)));
    for (const n of nodes) {
      const socket = socketPath(n.runDir, netnsInode(n.netns)!);
      expect(readFileSync(pidPath(socket), 'utf8').trim()).to.equal(String(pid));
      expect(readFileSync(n.log, 'utf8')).to.include(`for node ${n.name}`);
    }
  });

  it('does the work of parallel ADDs, CHECKs and DELs in the namespace of the node called', async () => {
    const ctrs: { node: number; id: string; netns: string }[] = [];
    for (let i = 0; i < NODES.length * PER_NODE; i++) {
      const n = ++ctrCount;
      await addNetns(`${PREFIX}c${n}`);
      ctrs.push({ node: i % NODES.length, id: `ctr${n}`, netns: netnsPath(`${PREFIX}c${n}`) });
    }
    const env = (c: (typeof ctrs)[number]) => ({ CNI_CONTAINERID: c.id, CNI_NETNS: c.netns });
    const adds = await Promise.all(ctrs.map((c) => call(nodes[c.node], 'ADD', conf(c.node), env(c))));
    for (const a of adds) expect(a.code, a.stdout).to.equal(0);

    for (const [n, node] of nodes.entries()) {
      const mine = ctrs.map((c, i) => ({ c, result: JSON.parse(adds[i].stdout) })).filter((x) => x.c.node === n);
      const ip = new Ip(node.netns);
      // Every host veth on this node's bridge, and only this node's.
      const ports = (await ip.json<Link[]>('link', 'show', 'master', BRIDGE)).map((l) => l.ifname).sort();
      expect(ports).to.deep.equal(mine.map((x) => x.result.interfaces[1].name).sort());
      for (const x of mine) expect(x.result.ips[0].address).to.match(new RegExp(`^10\\.79\\.${n}\\.`));
      // The sysctl and the NAT rules went to the node, not to the daemon's namespace.
      expect(await ip.readSysctl('net.ipv4.ip_forward')).to.equal('1');
      const nat = (await run(inNetns(node.netns, 'iptables', ['-t', 'nat', '-S']))).stdout;
      for (const x of mine) expect(nat).to.include(`id: ${x.c.id}`);
      // Its log names its own calls only.
      expect(served(node).map((l) => l.split(' ')[3]).sort()).to.deep.equal(mine.map((x) => x.c.id).sort());
    }
    const host = new Ip(HOST);
    expect(await host.link(BRIDGE)).to.equal(undefined);
    expect(await host.readSysctl('net.ipv4.ip_forward')).to.equal('0');
    expect((await run(inNetns(HOST, 'iptables', ['-t', 'nat', '-S']))).stdout).to.not.include('cnitest-h');

    // CHECK reads the node's links with ip: started in the node's namespace too.
    const checks = await Promise.all(ctrs.map((c, i) => call(nodes[c.node], 'CHECK', JSON.stringify({ ...JSON.parse(conf(c.node)), prevResult: JSON.parse(adds[i].stdout) }), env(c))));
    for (const c of checks) expect(c.code, c.stdout).to.equal(0);
    // Whatever it keeps running (an ip per node, for the plugins that batch) runs in a node's namespace.
    const inNodes = new Set(nodes.map((n) => netnsInode(n.netns)));
    for (const h of childrenOf(pid)) expect(inNodes.has(netnsInode(`/proc/${h}/ns/net`))).to.equal(true);

    const dels = await Promise.all(ctrs.map((c) => call(nodes[c.node], 'DEL', conf(c.node), env(c))));
    for (const d of dels) expect(d.code, d.stdout).to.equal(0);
    for (const node of nodes) expect(await new Ip(node.netns).json<Link[]>('link', 'show', 'master', BRIDGE)).to.deep.equal([]);
  });

  it('stops by its PID and leaves nothing behind: no socket, no pid file, no child', async () => {
    const helpers = childrenOf(pid);
    await stopPid(pid, 5000);
    expect(isRunning(pid)).to.equal(false);
    pid = 0;
    for (const h of helpers) expect(isRunning(h)).to.equal(false);
    for (const n of nodes) expect(!existsSync(n.runDir) || readdirSync(n.runDir).length === 0).to.equal(true);
  });

  it('ends by itself once the namespaces of all its nodes are gone', async () => {
    pid = await startHosted();
    for (const n of nodes) await deleteNetns(n.netns.split('/').pop()!);
    for (let waited = 0; isRunning(pid) && waited < 10_000; waited += 100) await sleep(100);
    expect(isRunning(pid)).to.equal(false);
    pid = 0;
  });
});
