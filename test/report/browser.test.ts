// The HTML report as a person sees it: Debian's chromium opens the page (no
// browser download: playwright-core drives /usr/bin/chromium), the charts and
// the topology must render with a real size, the console must stay quiet, and
// a screenshot is kept in results/screenshots/ for people to look at.
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { compareResults } from '../../src/report/compare.js';
import { runGate } from '../../src/report/gate.js';
import { writeReport } from '../../src/report/write.js';
import { ROOT } from '../../src/lab/paths.js';
import { fakeResult, scaled, TYPICAL } from '../helpers/bench-results.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(ROOT, 'results', 'screenshots');

describe('HTML report in chromium', function () {
  this.timeout(60_000);
  let work: string;
  let context: BrowserContext;

  before(async function () {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (Debian package chromium)`);
    work = mkdtempSync(join(tmpdir(), 'cnilab-browser-'));
    context = await chromium.launchPersistentContext(join(work, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1280, height: 900 },
    });
  });

  after(async () => {
    await context?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('renders every chart and topology with a real size, with no console errors, and keeps a screenshot', async () => {
    const results = [
      { file: 'results/flannel-host-gw/x.json', result: fakeResult({ lab: 'flannel-host-gw', crossNode: scaled(TYPICAL.crossNode, 'tcp.gbps', 1.3) }) },
      { file: 'results/flannel-vxlan/x.json', result: fakeResult({ lab: 'flannel-vxlan' }) },
    ];
    const comparison = compareResults(results, { skipped: [{ lab: 'calico-ipip', reason: 'skipped: this kernel lacks ipip' }] });
    const gate = runGate(results, results.map((r) => ({ ...r, file: 'base.json', result: { ...r.result, startedAt: '2025-12-31T00:00:00.000Z' } })), 10);
    const { html } = writeReport(comparison, join(work, 'report'), gate);

    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });

    const charts = await page.$$eval('svg.chart', (els) => els.map((e) => ({ label: e.getAttribute('aria-label'), ...e.getBoundingClientRect().toJSON() })));
    // 6 charts (share of underlay, TCP 1 and 4 streams, RR, ping, CPU) + one topology per lab
    expect(charts.length, JSON.stringify(charts)).to.equal(8);
    for (const c of charts) expect(c.width * c.height, `${c.label} has no size`).to.be.greaterThan(100 * 50);
    expect(charts.filter((c) => c.label?.startsWith('topology of')).map((c) => c.label)).to.deep.equal(['topology of flannel-host-gw', 'topology of flannel-vxlan']);

    const bars = await page.$$eval('svg.chart rect.bar', (els) => els.map((e) => e.getBoundingClientRect().width));
    expect(bars.length).to.equal(1 * 2 + 5 * 6); // share chart: one bar per lab; the others: 3 paths × 2 labs
    for (const w of bars) expect(w).to.be.greaterThan(0);

    expect(await page.textContent('h1')).to.equal('cnilab datapath comparison');
    expect(await page.locator('table').first().textContent()).to.include('within noise');
    expect(await page.textContent('body')).to.include('calico-ipip: skipped: this kernel lacks ipip');
    expect(await page.textContent('body')).to.include('vxlan tunnel');

    mkdirSync(SCREENSHOTS, { recursive: true });
    const shot = join(SCREENSHOTS, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).to.be.greaterThan(10_000);
    expect(problems).to.deep.equal([]);
  });
});
