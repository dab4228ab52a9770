// The workshop on live labs of the netns backend: what host-gw shows (no
// tunnel, a broken path), the SVG in Debian's chromium, then the list of
// workshop checks every backend runs (test/helpers/workshop-checks.ts;
// docker.test.ts and hosts.test.ts run it on theirs).
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { Ip } from '../../src/net/ip.js';
import { LabInstance } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { inspectLab } from '../../src/workshop/inspect.js';
import { traceLab } from '../../src/workshop/trace-run.js';
import { formatTrace } from '../../src/workshop/render-trace.js';
import { renderSvg } from '../../src/workshop/render-svg.js';
import { leftovers } from '../helpers/lab.js';
import { cli, workshopChecks, WORKSHOP_LAB } from '../helpers/workshop-checks.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(ROOT, 'results', 'screenshots');

const nodesOf = (inst: LabInstance) => inst.lab.topology.nodes.map((n) => n.name);

describe('workshop on live labs', function () {
  this.timeout(120_000);
  let vx: LabInstance;
  let hg: LabInstance;

  before(async () => {
    requireBuilt();
    vx = LabInstance.open(WORKSHOP_LAB, { name: 'ws-vxlan' }, new QuietReporter());
    hg = LabInstance.open('flannel-host-gw', { name: 'ws-hostgw' }, new QuietReporter());
    await Promise.all([vx.up(), hg.up()]);
  });

  after(async () => {
    await Promise.all([vx?.down(), hg?.down()]);
    expect([...leftovers('ws-vxlan'), ...leftovers('ws-hostgw')]).to.deep.equal([]);
  });

  describe('host-gw', () => {
    it('no VXLAN device anywhere, and each node routes the other\'s /24 via its underlay address', async () => {
      const h = await inspectLab(hg.backend, hg.state.state, nodesOf(hg));
      expect(h.namespaces.flatMap((n) => n.links).filter((l) => l.kind === 'vxlan')).to.deep.equal([]);
      expect(h.nodeRoutes.map((r) => `${r.node} ${r.route} → ${r.toNode}`)).to.deep.equal(['master 10.10.1.0/24 via 192.168.10.220 dev eth0 → worker', 'worker 10.10.0.0/24 via 192.168.10.210 dev eth0 → master']);
    });

    it('trace --capture: the pod\'s own packets on both uplinks, no encapsulation', async () => {
      const r = await traceLab(hg.backend, hg.state.state, nodesOf(hg), 'nginx-0', 'nginx-1', { capture: true, count: 2 });
      expect(r.delivered, r.problem).to.equal(true);
      expect(r.hops.map((h) => h.kind)).to.not.include('encap');
      const uplinks = r.hops.filter((h) => h.device === 'eth0' && h.at !== 'pod/nginx-0' && h.at !== 'pod/nginx-1');
      expect(uplinks.map((h) => `${h.at} ${h.layer}`)).to.deep.equal(['master inner', 'worker inner']);
      // At least the two pings, as the trace itself judges: on a busy machine an echo of the
      // trace's first probe, held behind neighbour resolution, can still pass during the capture.
      for (const h of uplinks) expect(h.packets, `${h.at} ${h.device}`).to.be.at.least(2);
      expect(r.capture?.allSeen, formatTrace(r).join('\n')).to.equal(true);
    });

    it('a broken path: trace says where the packet stops and exits 1', async () => {
      await new Ip(hg.backend.node('master')).cmd('route', 'del', '10.10.1.0/24');
      const r = await cli(['trace', '--lab', 'ws-hostgw', 'nginx-0', 'nginx-1']);
      expect(r.code).to.equal(1);
      expect(r.stdout).to.match(/✘ node master has no route to 10\.10\.1\.2: .*unreachable.*cnilab shell master/i);
      expect(r.stdout).to.include('note: the first ping got no answer');
    });
  });

  describe('the SVG in chromium', () => {
    it('renders every pod, veth, bridge and tunnel with a real size, with no errors, and keeps a screenshot', async function () {
      if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (Debian package chromium)`);
      const m = await inspectLab(vx.backend, vx.state.state, nodesOf(vx));
      const work = mkdtempSync(join(tmpdir(), 'cnilab-chromium-'));
      const svgFile = join(work, 'flannel-vxlan.svg');
      const svg = renderSvg(m);
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
  // Last: the list ends by killing a pod's process.
  describe('the workshop commands (the list every backend runs)', () => workshopChecks(() => ({ backend: 'netns', name: 'ws-vxlan' })));

});
