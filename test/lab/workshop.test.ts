// The workshop commands on live labs: the model against ip's own text output,
// traces with captures on the real datapath, the CLI (status, diagram, trace,
// shell), a broken path and a dead process, and the SVG in Debian's chromium.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { LabInstance } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { readState } from '../../src/lab/state.js';
import { inspectLab } from '../../src/workshop/inspect.js';
import { formatRoute, nsById, type NetModel } from '../../src/workshop/model.js';
import { traceLab } from '../../src/workshop/trace-run.js';
import { formatTrace } from '../../src/workshop/render-trace.js';
import { renderSvg } from '../../src/workshop/render-svg.js';
import { leftovers } from '../helpers/lab.js';

const CLI = join(ROOT, 'dist', 'cli.js');
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(ROOT, 'results', 'screenshots');

function cli(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

const nodesOf = (inst: LabInstance) => inst.lab.topology.nodes.map((n) => n.name);
const sh = async (inst: LabInstance, where: { node: string; pod?: string }, cmd: string) =>
  (where.pod ? await inst.backend.podExec(where.node, where.pod, ['sh', '-c', cmd]) : await inst.backend.exec(where.node, ['sh', '-c', cmd])).stdout;

describe('workshop on live labs', function () {
  this.timeout(120_000);
  let vx: LabInstance;
  let hg: LabInstance;

  before(async () => {
    requireBuilt();
    vx = LabInstance.open('flannel-vxlan', { name: 'ws-vxlan' }, new QuietReporter());
    hg = LabInstance.open('flannel-host-gw', { name: 'ws-hostgw' }, new QuietReporter());
    await Promise.all([vx.up(), hg.up()]);
  });

  after(async () => {
    await Promise.all([vx?.down(), hg?.down()]);
    expect([...leftovers('ws-vxlan'), ...leftovers('ws-hostgw')]).to.deep.equal([]);
  });

  describe('the model read from the kernel', () => {
    let m: NetModel;
    before(async () => {
      m = await inspectLab(vx.backend, vx.state.state, nodesOf(vx));
    });

    it('matches `ip -o link` in every pod and on its node: eth0@ifN is the node\'s vethXXXX with index N, a port of cni0', async () => {
      for (const pod of vx.state.state.pods) {
        const podLine = await sh(vx, { node: pod.node, pod: pod.name }, 'ip -o link show eth0');
        const [, own, peer] = /^(\d+): eth0@if(\d+):/.exec(podLine)!;
        const nodeLine = (await sh(vx, { node: pod.node }, 'ip -o link show')).split('\n').find((l) => l.startsWith(`${peer}: `))!;
        const [, vethName, back] = /^\d+: (veth[0-9a-f]{8})@if(\d+):.* master cni0 /.exec(nodeLine)!;
        expect(back).to.equal(own);
        const eth0 = nsById(m, `pod/${pod.name}`)!.links.find((l) => l.name === 'eth0')!;
        expect(eth0.label).to.equal(`eth0@if${peer}`);
        expect(eth0.peer).to.deep.equal({ ns: pod.node, ifname: vethName, ifindex: Number(peer) });
        expect(eth0.addresses).to.deep.equal([`${pod.ip}/24`]);
      }
    });

    it('matches `ip route`, `ip -d link show flannel.1` and `bridge fdb` on each node', async () => {
      for (const node of nodesOf(vx)) {
        const n = nsById(m, node)!;
        const text = (await sh(vx, { node }, 'ip route')).trim().split('\n').map((l) => l.trim());
        expect(n.routes.map(formatRoute)).to.deep.equal(text);
        const detail = await sh(vx, { node }, 'ip -d link show flannel.1');
        const [, id, dstport] = /vxlan id (\d+) .*dstport (\d+)/.exec(detail)!;
        const vx1 = n.links.find((l) => l.name === 'flannel.1')!;
        expect(vx1.vxlan).to.include({ vni: Number(id), port: Number(dstport) });
        const fdbDst = /dst (\S+) self permanent/.exec(await sh(vx, { node }, 'bridge fdb show dev flannel.1'))![1];
        const other = vx.lab.topology.nodes.find((x) => x.name !== node)!;
        expect(fdbDst).to.equal(other.address);
        expect(m.nodeRoutes.find((r) => r.node === node)).to.include({ toNode: other.name, how: `VXLAN VNI 1 via flannel.1 → ${other.address}:8472` });
      }
      expect(m.underlay).to.equal('192.168.10.0/24');
    });

    it('host-gw: no VXLAN device anywhere, and each node routes the other\'s /24 via its underlay address', async () => {
      const h = await inspectLab(hg.backend, hg.state.state, nodesOf(hg));
      expect(h.namespaces.flatMap((n) => n.links).filter((l) => l.kind === 'vxlan')).to.deep.equal([]);
      expect(h.nodeRoutes.map((r) => `${r.node} ${r.route} → ${r.toNode}`)).to.deep.equal(['master 10.10.1.0/24 via 192.168.10.220 dev eth0 → worker', 'worker 10.10.0.0/24 via 192.168.10.210 dev eth0 → master']);
    });
  });

  describe('trace with capture', () => {
    it('VXLAN: the kernel\'s answers hop by hop, and every interface of the path sees every ping', async () => {
      const before = readState('ws-vxlan')!.processes.length;
      const r = await traceLab(vx.backend, vx.state.state, nodesOf(vx), 'nginx-0', 'nginx-1', { capture: true, count: 3 });
      expect(r.delivered, r.problem).to.equal(true);
      expect(r.reachable).to.equal(true);
      expect(r.hops.map((h) => h.kind)).to.deep.equal(['route', 'neighbour', 'veth', 'bridge', 'route', 'neighbour', 'fdb', 'encap', 'route', 'neighbour', 'wire', 'decap', 'route', 'neighbour', 'fdb', 'veth', 'deliver']);
      expect(r.tunnels).to.deep.equal([{ via: 'vxlan', src: '192.168.10.210', dst: '192.168.10.220', port: 8472, vni: 1 }]);
      const counted = r.hops.filter((h) => h.packets !== undefined);
      expect(counted.length).to.equal(10);
      expect(counted.map((h) => `${h.at} ${h.device} ${h.packets}`)).to.deep.equal(counted.map((h) => `${h.at} ${h.device} 3`));
      expect(r.capture, formatTrace(r).join('\n')).to.deep.equal({ sent: 3, received: 3, allSeen: true });
      // The captures were stopped by their PIDs and are no longer in the lab's records.
      expect(readState('ws-vxlan')!.processes.length).to.equal(before);
    });

    it('host-gw: the pod\'s own packets on both uplinks, no encapsulation', async () => {
      const r = await traceLab(hg.backend, hg.state.state, nodesOf(hg), 'nginx-0', 'nginx-1', { capture: true, count: 2 });
      expect(r.delivered, r.problem).to.equal(true);
      expect(r.hops.map((h) => h.kind)).to.not.include('encap');
      expect(r.hops.filter((h) => h.device === 'eth0' && h.at !== 'pod/nginx-0' && h.at !== 'pod/nginx-1').map((h) => `${h.at} ${h.layer} ${h.packets}`)).to.deep.equal(['master inner 2', 'worker inner 2']);
      expect(r.capture?.allSeen, formatTrace(r).join('\n')).to.equal(true);
    });
  });

  describe('the commands', () => {
    it('status --json: nodes, services and pods alive by PID', async () => {
      const r = await cli(['status', 'ws-vxlan', '--json']);
      expect(r.code, r.stderr).to.equal(0);
      const s = JSON.parse(r.stdout);
      expect(s.healthy).to.equal(true);
      expect(s.services.map((p: { name: string; node: string }) => `${p.name}@${p.node}`)).to.include.members(['etcd@master', 'flanneld@master', 'flanneld@worker']);
      expect(s.services.every((p: { alive: boolean }) => p.alive)).to.equal(true);
      expect(s.pods.map((p: { name: string; processes: { name: string; alive: boolean }[] }) => `${p.name} ${p.processes.map((x) => `${x.name}:${x.alive}`)}`)).to.deep.equal(['nginx-0 nginx:true', 'nginx-1 nginx:true', 'nginx-2 nginx:true']);
    });

    it('diagram: -o file.svg, --json model', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cnilab-diagram-'));
      try {
        const svg = await cli(['diagram', 'ws-vxlan', '-o', join(dir, 'd.svg')]);
        expect(svg.stdout).to.match(/wrote .*d\.svg \(svg: 2 nodes, 3 pods\)/);
        expect(readFileSync(join(dir, 'd.svg'), 'utf8')).to.include('<g id="pod-nginx-2">');
        const model = JSON.parse((await cli(['diagram', 'ws-vxlan', '--json'])).stdout);
        expect(model.namespaces.map((n: { id: string }) => n.id)).to.deep.equal(['master', 'worker', 'pod/nginx-0', 'pod/nginx-1', 'pod/nginx-2']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('trace --json, and an unknown pod is a usage error that lists the pods', async () => {
      const r = await cli(['trace', '--lab', 'ws-vxlan', 'nginx-0', 'nginx-2', '--json']);
      expect(r.code, r.stderr).to.equal(0);
      expect(JSON.parse(r.stdout).hops.map((h: { kind: string }) => h.kind)).to.deep.equal(['route', 'neighbour', 'veth', 'bridge', 'veth', 'deliver']);
      const bad = await cli(['trace', '--lab', 'ws-vxlan', 'nginx-0', 'nginx-9']);
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.match(/no pod or node named "nginx-9".*pods: nginx-0, nginx-1, nginx-2.*`cnilab get pods`/);
    });

    it('shell: commands typed in run inside the pod, the prompt names the lab and the pod, the exit code comes back', async () => {
      const r = await cli(['shell', '--lab', 'ws-vxlan', 'nginx-1'], 'hostname; ip -4 -o addr show eth0\nexit 7\n');
      expect(r.code).to.equal(7);
      expect(r.stdout).to.match(/^nginx-1\n2: eth0 +inet 10\.10\.1\.2\/24/);
      expect(r.stderr).to.include('[ws-vxlan pod nginx-1@worker]');
    });

    it('a broken path: trace says where the packet stops and exits 1; status names a dead process and exits 1', async () => {
      await hg.backend.exec('master', ['ip', 'route', 'del', '10.10.1.0/24']);
      const r = await cli(['trace', '--lab', 'ws-hostgw', 'nginx-0', 'nginx-1']);
      expect(r.code).to.equal(1);
      expect(r.stdout).to.match(/✘ node master has no route to 10\.10\.1\.2: .*unreachable.*cnilab shell master/i);
      expect(r.stdout).to.include('note: the first ping got no answer');

      const nginx = readState('ws-hostgw')!.processes.find((p) => p.name === 'nginx-2-nginx')!;
      await hg.backend.stop(nginx.pid);
      hg.state.update((s) => s.processes.push(nginx)); // still recorded, as after a crash
      const s = await cli(['status', 'ws-hostgw']);
      expect(s.code).to.equal(1);
      expect(s.stdout).to.match(/nginx-2 +master .* nginx \d+ ✘/);
      expect(s.stdout).to.include('✘ something the lab recorded is gone');
    });
  });

  describe('the SVG in chromium', () => {
    it('renders every pod, veth, bridge and tunnel with a real size, with no errors, and keeps a screenshot', async function () {
      if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (Debian package chromium)`);
      const m = await inspectLab(vx.backend, vx.state.state, nodesOf(vx));
      const work = mkdtempSync(join(tmpdir(), 'cnilab-chromium-'));
      const svgFile = join(work, 'flannel-vxlan.svg');
      const svg = renderSvg(m);
      const { writeFileSync } = await import('node:fs');
      writeFileSync(svgFile, svg);
      const width = Number(/width="(\d+)"/.exec(svg)![1]);
      const height = Number(/height="(\d+)"/.exec(svg)![1]);
      const context = await chromium.launchPersistentContext(join(work, 'profile'), {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
        viewport: { width, height },
      });
      try {
        const page = await context.newPage();
        const problems: string[] = [];
        page.on('console', (msg) => msg.type() === 'error' && problems.push(msg.text()));
        page.on('pageerror', (e) => problems.push(e.message));
        await page.goto(pathToFileURL(svgFile).href, { waitUntil: 'load' });
        expect(await page.locator('parsererror').count(), 'the SVG does not parse').to.equal(0);
        const boxes = await page.$$eval('g[id]', (gs) => gs.map((g) => ({ id: g.id, ...(g as SVGGraphicsElement).getBoundingClientRect().toJSON() })));
        const ids = boxes.map((b) => b.id);
        for (const id of ['pod-nginx-0', 'pod-nginx-1', 'pod-nginx-2', 'bridge-master-cni0', 'bridge-worker-cni0', 'dev-master-flannel.1', 'dev-worker-flannel.1', 'tunnel-master-worker', 'uplink-master', 'uplink-worker', 'underlay']) {
          expect(ids, id).to.include(id);
        }
        for (const b of boxes) {
          expect(b.width, b.id).to.be.greaterThan(10);
          expect(b.height, b.id).to.be.greaterThan(2);
          expect(b.right, b.id).to.be.at.most(width + 1);
          expect(b.bottom, b.id).to.be.at.most(height + 1);
        }
        const text = await page.locator('svg').textContent();
        for (const pod of vx.state.state.pods) expect(text).to.include(`${pod.ip}/24`);
        expect(text).to.match(/eth0@if\d+/).and.match(/veth[0-9a-f]{8}@if2/).and.include('VXLAN VNI 1');
        expect(problems).to.deep.equal([]);
        mkdirSync(SCREENSHOTS, { recursive: true });
        const shot = join(SCREENSHOTS, 'diagram-flannel-vxlan.png');
        await page.screenshot({ path: shot });
        expect(statSync(shot).size).to.be.greaterThan(20_000);
      } finally {
        await context.close();
        rmSync(work, { recursive: true, force: true });
      }
    });
  });
});
