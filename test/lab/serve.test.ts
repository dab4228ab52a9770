// `cnilab serve` on live labs: two participants, each with a flannel-vxlan lab.
// Every way past a participant's own lab is refused (bad tokens, bad lab names,
// another's lab, another's terminal, targets outside the lab, other origins),
// and the participant's page in Debian's chromium does what a learner does:
// the diagram, `ip route` in a terminal, Ctrl-C, a trace lit on the diagram, a
// challenge that turns from red to green once the lab is repaired. Screenshots
// are kept in results/screenshots/.
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { readAttempt } from '../../src/challenges/attempt.js';
import { stepCommand } from '../../src/challenges/engine.js';
import { serve, type Served } from '../../src/web/server.js';
import { loadLab } from '../../src/datapaths/index.js';
import type { Seat } from '../../src/web/classroom.js';
import { waitUntil } from '../../src/util/wait.js';
import { leftovers } from '../helpers/lab.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(ROOT, 'results', 'screenshots');

/** How an upgrade to a WebSocket ends: 'open', or the HTTP status it was refused with. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<number | 'open'> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', () => resolve(0));
  });
}

const status = async (url: string, init?: RequestInit) => (await fetch(url, init)).status;

describe('cnilab serve: the workshop in a browser', function () {
  this.timeout(240_000);
  let served: Served;
  let one: Seat;
  let two: Seat;
  let ws: string;

  before(async () => {
    requireBuilt();
    served = await serve(
      { port: 0, listen: '127.0.0.1', participants: 2, perVisitor: false, maxSeats: 2, labName: 'flannel-vxlan', backend: 'netns', install: true, verify: true, intervalMs: 1000, upAtOnce: 2, readsAtOnce: 2 },
      7,
    );
    [one, two] = served.classroom.seats;
    await Promise.all([served.classroom.up(one), served.classroom.up(two)]);
    // The lab's own steps run once each lab is up (the instructor's "steps passed"): let them finish before the challenge breaks one.
    await waitUntil(() => one.verify && two.verify, { timeoutMs: 120_000, what: 'both labs\' own steps to run' });
    ws = served.base.replace('http', 'ws');
  });

  after(async () => {
    await served?.close();
    expect([...leftovers('ws-1'), ...leftovers('ws-2')]).to.deep.equal([]);
  });

  describe('isolation', () => {
    const fake = 'AAAAAAAAAAAAAAAAAAAAAA';

    it('serves nothing without a known token', async () => {
      expect(await status(`${served.base}/`)).to.equal(403);
      expect(await status(`${served.base}/p/${fake}/`)).to.equal(403);
      expect(await status(`${served.base}/p/${fake}/api/labs/ws-1/exercises`)).to.equal(403);
      expect(await status(`${served.base}/p/not-a-token/assets/xterm.js`)).to.equal(403);
      expect(await status(`${served.base}/i/${one.token}/api/seats`)).to.equal(403); // a participant's token is not the instructor's
      expect(await status(`${served.base}/join/${fake}/`)).to.equal(403);
      expect(await upgrade(`${ws}/p/${fake}/ws/labs/ws-1/terminal?target=master`)).to.equal(403);
      expect(await upgrade(`${ws}/p/${fake}/ws/labs/ws-1/events`)).to.equal(403);
      expect(await upgrade(`${ws}/i/${fake}/ws/events`)).to.equal(403);
      expect(await status(served.instructorUrl)).to.equal(200);
    });

    it('refuses another participant\'s lab (403) and names that are no lab (404)', async () => {
      const p = `${served.base}/p/${one.token}`;
      expect(await status(`${p}/api/labs/ws-1/exercises`)).to.equal(200);
      expect(await status(`${p}/api/labs/ws-2/exercises`)).to.equal(403);
      expect(await status(`${p}/api/labs/ws-2/trace`, { method: 'POST', body: '{"from":"nginx-0","to":"nginx-1"}' })).to.equal(403);
      expect(await status(`${p}/api/labs/ws-2/challenges/missing-fdb`, { method: 'POST' })).to.equal(403);
      expect(await status(`${p}/api/labs/ws-3/exercises`)).to.equal(404);
      expect(await status(`${p}/api/labs/..%2F..%2Fetc/exercises`)).to.equal(404);
      expect(await status(`${p}/assets/..%2F..%2F..%2Fpackage.json`)).to.equal(404);
      expect(await status(`${p}/assets/server.ts`)).to.equal(404);
    });

    it('never opens a shell outside the participant\'s own lab', async () => {
      const p = `${ws}/p/${one.token}/ws/labs`;
      expect(await upgrade(`${p}/ws-2/terminal?target=master`)).to.equal(403);
      expect(await upgrade(`${ws}/p/${two.token}/ws/labs/ws-1/terminal?target=nginx-0`)).to.equal(403);
      expect(await upgrade(`${p}/ws-2/events`)).to.equal(403);
      expect(await upgrade(`${p}/ws-7/terminal?target=master`)).to.equal(404);
      expect(await upgrade(`${p}/ws-1/terminal?target=root`)).to.equal(404);
      expect(await upgrade(`${p}/ws-1/terminal?target=..%2F..%2Fbin%2Fsh`)).to.equal(404);
      expect(await upgrade(`${p}/ws-1/terminal`)).to.equal(404);
      expect(await upgrade(`${p}/ws-1/terminal?target=master`, { origin: 'http://evil.example' })).to.equal(403);
      // The same participant, on their own lab, from their own page: a shell.
      expect(await upgrade(`${p}/ws-1/terminal?target=master`)).to.equal('open');
    });
  });

  describe('the participant\'s page in chromium', () => {
    let work: string;
    let context: BrowserContext;
    let page: Page;
    const problems: string[] = [];
    const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `serve-${name}.png`), fullPage: true });
    const screen = () => page.evaluate(() => {
      const b = (window as unknown as { cnilabTerminal: { buffer: { active: { length: number; getLine(i: number): { translateToString(trim: boolean): string } | undefined } } } }).cnilabTerminal.buffer.active;
      const lines: string[] = [];
      for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
      return lines.join('\n');
    });
    const waitForScreen = (re: RegExp) => page.waitForFunction((src) => {
      const b = (window as unknown as { cnilabTerminal: { buffer: { active: { length: number; getLine(i: number): { translateToString(trim: boolean): string } | undefined } } } }).cnilabTerminal.buffer.active;
      let s = '';
      for (let i = 0; i < b.length; i++) s += (b.getLine(i)?.translateToString(true) ?? '') + '\n';
      return new RegExp(src, 'm').test(s);
    }, re.source, { timeout: 20_000 });

    before(async function () {
      if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (Debian package chromium)`);
      mkdirSync(SCREENSHOTS, { recursive: true });
      work = mkdtempSync(join(tmpdir(), 'cnilab-serve-'));
      context = await chromium.launchPersistentContext(join(work, 'profile'), {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
        viewport: { width: 1500, height: 1000 },
      });
      page = await context.newPage();
      page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      await page.goto(served.participantUrl(one), { waitUntil: 'load' });
    });

    after(async () => {
      await context?.close();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('loads and draws both nodes and every pod, pushed over the WebSocket', async () => {
      await page.waitForSelector('#diagram svg', { timeout: 30_000 });
      const groups = await page.$$eval('#diagram svg g[id]', (gs) => gs.map((g) => g.id));
      expect(groups).to.include.members(['pod-nginx-0', 'pod-nginx-1', 'pod-nginx-2', 'uplink-master', 'uplink-worker', 'tunnel-master-worker']);
      const text = await page.textContent('#diagram svg');
      expect(text).to.include('node master').and.to.include('node worker');
      expect(await page.textContent('#lab-status')).to.match(/^up since/);
      expect(await page.$$eval('#trace-from option', (os) => os.map((o) => o.textContent))).to.deep.equal(['nginx-0', 'nginx-1', 'nginx-2']);
      await shot('diagram');
    });

    it('opens a terminal on master: `ip route` shows the node\'s routes; Ctrl-C stops a command; the pty follows the size', async () => {
      await page.selectOption('#term-target', 'master');
      await page.click('#term-open');
      await waitForScreen(/\[ws-1 master\]/);
      await page.click('#terminal');
      await page.keyboard.type('ip route\n');
      await waitForScreen(/^10\.10\.1\.0\/24 via 10\.10\.1\.0 dev flannel\.1 onlink/);
      expect(await screen()).to.match(/^10\.10\.0\.0\/24 dev cni0 proto kernel scope link src 10\.10\.0\.1/m);
      await page.keyboard.type('sleep 600\n');
      await page.waitForTimeout(300);
      await page.keyboard.press('Control+C');
      await page.keyboard.type('echo "after ctrl-c: $((20+22))"\n');
      await waitForScreen(/^after ctrl-c: 42/);
      const { cols, rows } = await page.evaluate(() => {
        const t = (window as unknown as { cnilabTerminal: { cols: number; rows: number } }).cnilabTerminal;
        return { cols: t.cols, rows: t.rows };
      });
      await page.keyboard.type('stty size\n');
      await waitForScreen(new RegExp(`^${rows} ${cols}$`));
      await page.setViewportSize({ width: 1300, height: 1000 });
      const after = await page.evaluate(() => (window as unknown as { cnilabTerminal: { cols: number } }).cnilabTerminal.cols);
      expect(after).to.be.lessThan(cols);
      await page.keyboard.type('clear; stty size\n');
      await waitForScreen(new RegExp(`^${rows} ${after}$`));
      await page.setViewportSize({ width: 1500, height: 1000 });
      await page.keyboard.type('clear; ip route\n');
      await waitForScreen(/^10\.10\.1\.0\/24 via 10\.10\.1\.0 dev flannel\.1 onlink/);
      await shot('terminal');
    });

    it('traces nginx-0 → nginx-1: the path lit on the diagram hop by hop, with capture counts', async () => {
      await page.selectOption('#trace-from', 'nginx-0');
      await page.selectOption('#trace-to', 'nginx-1');
      await page.click('#trace-run');
      await page.waitForSelector('#trace-state[data-delivered]', { timeout: 60_000 });
      expect(await page.getAttribute('#trace-state', 'data-delivered')).to.equal('true');
      expect(await page.textContent('#trace-state')).to.include('3/3 pings answered').and.to.include('seen at every hop');
      const lit = await page.$$eval('#diagram g.hl', (gs) => gs.map((g) => g.id));
      expect(lit).to.include.members(['pod-nginx-0', 'pod-nginx-1', 'tunnel-master-worker', 'uplink-master', 'uplink-worker', 'routes-master', 'routes-worker']);
      expect(lit).to.not.include('pod-nginx-2');
      const counts = await page.$$eval('#trace-hops .count', (cs) => cs.map((c) => c.textContent));
      expect(counts.length).to.be.greaterThan(4);
      for (const c of counts) expect(c).to.equal(' · 3 packets');
      await shot('trace');
    });

    it('a challenge check is red after the break and green once the fix is typed on the node', async () => {
      const fdbOnMaster = () => page.$eval('#dev-master-flannel\\.1', (g) => g.textContent ?? '').catch(() => '');
      expect(await fdbOnMaster()).to.include('dst 192.168.10.220');
      await page.click('button[data-challenge="missing-fdb"]');
      await page.waitForSelector('#challenge-current:not([hidden])', { timeout: 30_000 });
      expect(await page.textContent('#challenge-story')).to.include('cannot reach nginx-1');
      // The diagram follows the kernel: master's FDB entry for the worker is gone from the drawing.
      await page.waitForFunction(() => !(document.getElementById('dev-master-flannel.1')?.textContent ?? '').includes('dst 192.168.10.220'), null, { timeout: 20_000 });
      await page.click('#challenge-check');
      await page.waitForSelector('#challenge-status.fail', { timeout: 60_000 });
      expect(await page.textContent('#challenge-status')).to.include('not fixed yet');
      await shot('challenge-red');

      // The fix, typed on master as the student would (the lab file's own fix, with the value the break saved).
      const inst = one.inst!;
      const c = inst.lab.challenges!.find((x) => x.name === 'missing-fdb')!;
      const vars = { ...inst.vars, ...readAttempt(one.lab)!.vars };
      for (const s of c.fix) {
        const r = await inst.backend.node(s.node!).run(['sh', '-c', stepCommand(s, vars)], { allowFailure: true });
        expect(r.exitCode, r.stderr).to.equal(0);
      }
      await page.click('#challenge-check');
      await page.waitForSelector('#challenge-status.pass', { timeout: 60_000 });
      expect(await page.$$eval('#challenge-results li.bad', (l) => l.length)).to.equal(0);
      expect(await page.textContent('#challenge-title')).to.include('fixed');
      await page.waitForFunction(() => (document.getElementById('dev-master-flannel.1')?.textContent ?? '').includes('dst 192.168.10.220'), null, { timeout: 20_000 });
      await shot('challenge-green');
    });

    it('the instructor\'s page lists both labs, their steps, exercises and the challenge', async () => {
      const ip = await context.newPage();
      await ip.goto(served.instructorUrl, { waitUntil: 'load' });
      await ip.waitForFunction(() => document.querySelectorAll('#seats tbody tr').length === 2);
            const row1 = await ip.textContent('#seat-1');
      const steps = loadLab('flannel-vxlan').lab.steps.length;
      expect(row1).to.include('ws-1').and.to.include('up').and.to.include(`${steps}/${steps}`).and.to.include('missing-fdb: fixed');
      expect(await ip.textContent('#seat-2')).to.include('ws-2').and.not.to.include('missing-fdb');
      await ip.screenshot({ path: join(SCREENSHOTS, 'serve-instructor.png'), fullPage: true });
      await ip.close();
      expect(problems).to.deep.equal([]);
    });
  });
});
