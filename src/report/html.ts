// The comparison as one self-contained HTML page: no scripts, no external
// files; charts and topology diagrams are inline SVG.
import { METRICS, type MetricName } from '../bench/metrics.js';
import type { BenchResult } from '../bench/results.js';
import { barChart, type Bar } from './charts.js';
import { formatCellShort, formatRatio, formatRatioCi, formatSpread, formatValue, pathLabel, presentColumns, shortCommit, type Comparison, type LabSection } from './compare.js';
import { gateMessage, type GateReport } from './gate.js';
import { columnTitle, LEGEND, methodLine, repetitionsLine } from './markdown.js';
import { esc, el, htmlPage } from './svg.js';
import { topologySvg } from './topology.js';
import { sweepSvg, sweepView } from './sweep.js';

const CSS = `
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d2433; background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 60px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 40px 0 8px; padding-top: 12px; border-top: 1px solid #e3e7ee; }
h3 { font-size: 16px; margin: 24px 0 6px; }
p.lede { color: #4a5468; margin: 4px 0 12px; }
p.method { color: #4a5468; font-size: 13.5px; }
table { border-collapse: collapse; width: 100%; margin: 10px 0 18px; font-size: 13px; }
.wide { overflow-x: auto; }
th, td { padding: 6px 8px; border-bottom: 1px solid #e3e7ee; text-align: left; vertical-align: top; }
th { background: #f5f7fb; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tr.underlay td { color: #4a5468; background: #fafbfd; }
tr.group-start td { border-top: 2px solid #c9d0dc; }
.noise { color: #7d8799; font-style: italic; }
.ratio { font-weight: 600; }
.kind { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: baseline; }
.chart { max-width: 100%; height: auto; font-family: inherit; }
.chart .tick { font-size: 11px; fill: #6b7486; }
.chart .legend, .chart .label { font-size: 12px; fill: #303a4d; }
.chart .group { font-size: 13px; font-weight: 600; fill: #1d2433; }
.chart .value { font-size: 12px; fill: #1d2433; font-variant-numeric: tabular-nums; }
.chart .node { font-size: 14px; font-weight: 600; fill: #1d2433; }
.chart .dev { font-size: 12px; font-weight: 600; fill: #1d2433; }
.chart .small { font-size: 10.5px; fill: #4a5468; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 4px 28px; }
.grid h3 { font-size: 15px; }
.sub { font-weight: 400; color: #6b7486; font-size: 13px; }
.spread { color: #7d8799; font-size: 12px; }
td.lab, td.path { white-space: nowrap; }
.notes li { color: #7a4b00; }
.gate.fail { border-left: 4px solid #c62828; background: #fdecec; padding: 8px 14px; }
.gate.pass { border-left: 4px solid #2e7d32; background: #edf7ee; padding: 8px 14px; }
code { font-size: 12.5px; background: #f1f3f7; padding: 1px 4px; border-radius: 3px; }
footer { color: #7d8799; font-size: 12.5px; margin-top: 40px; }
`;

const COLORS = { underlay: '#8892a6', 'cross-node': '#2f6fdb', 'same-node': '#13a08f' } as const;

function cellHtml(c: LabSection['rows'][number]['cells'][MetricName]): string {
  if (!c) return '–';
  const value = esc(formatValue(c.median, c.unit));
  if (c.ratio === undefined) return value;
  return c.withinNoise ? `${value}<br><span class="noise">within noise</span>` : `${value}<br><span class="ratio">${esc(formatRatio(c.ratio))}</span>`;
}

function summaryTable(c: Comparison): string {
  const results = c.sections.map((s) => s.result);
  const columns = presentColumns(c);
  const head = el('tr', {}, ['Lab', 'Mode', 'Path'].map((h) => el('th', {}, h)).join('') + columns.map((m) => el('th', { class: 'num' }, esc(columnTitle(m, results)))).join(''));
  const rows = c.sections.flatMap((s) =>
    s.rows.map((r, i) => {
      const cls = [r.kind === 'underlay' ? 'underlay' : '', i === 0 ? 'group-start' : ''].filter(Boolean).join(' ') || undefined;
      const path = `<span class="kind" style="background:${COLORS[r.kind]}"></span>${esc(pathLabel(r))}`;
      return el(
        'tr',
        { class: cls },
        el('td', { class: 'lab' }, i === 0 ? `<strong>${esc(r.lab)}</strong>` : '') + el('td', {}, i === 0 ? esc(r.mode) : '') + el('td', { class: 'path' }, path) + columns.map((m) => el('td', { class: 'num' }, cellHtml(r.cells[m]))).join(''),
      );
    }),
  );
  return el('table', {}, el('thead', {}, head) + el('tbody', {}, rows.join('')));
}

function chartFor(c: Comparison, metric: MetricName, title: string): string {
  const bars: Bar[] = c.sections.flatMap((s) =>
    s.rows
      .filter((r) => r.cells[metric])
      .map((r) => {
        const cell = r.cells[metric]!;
        return { group: `${r.lab} (${r.mode})`, label: pathLabel(r, ''), kind: r.kind, median: cell.median, min: cell.ci.lo, max: cell.ci.hi, caption: formatCellShort(cell) };
      }),
  );
  if (!bars.length) return '';
  const better = METRICS[metric].better === 'higher' ? 'higher is better' : 'lower is better';
  return el('div', {}, el('h3', {}, `${esc(title)} <span class="sub">${better}</span>`) + barChart(title, METRICS[metric].unit, bars));
}

/** The headline: each lab's cross-node throughput as a share of its underlay; whisker: the ratio's 95% interval. */
function shareChart(c: Comparison, metric: MetricName, title: string): string {
  const bars: Bar[] = c.sections.flatMap((s) => {
    return s.rows
      .filter((r) => r.kind === 'cross-node' && r.cells[metric]?.ratio !== undefined)
      .map((r) => {
        const cell = r.cells[metric]!;
        return { group: '', label: s.rows.filter((x) => x.kind === 'cross-node').length > 1 ? `${r.lab} ${pathLabel(r)}` : r.lab, kind: r.kind, median: cell.ratio!, min: cell.ratioCi!.lo, max: cell.ratioCi!.hi, caption: cell.withinNoise ? `${formatRatio(cell.ratio!)} · within noise` : formatRatio(cell.ratio!) };
      });
  });
  if (!bars.length) return '';
  return el('div', {}, el('h3', {}, `${esc(title)} <span class="sub">1.00× = underlay</span>`) + barChart(title, '× underlay', bars, 1));
}

function detailTable(s: LabSection): string {
  const metrics = (Object.keys(METRICS) as MetricName[]).filter((m) => s.rows.some((r) => r.cells[m]));
  const head = el('tr', {}, el('th', {}, 'Metric') + s.rows.map((r) => el('th', { class: 'num' }, `<span class="kind" style="background:${COLORS[r.kind]}"></span>${esc(pathLabel(r, ''))}`)).join(''));
  const rows = metrics.map((m) =>
    el(
      'tr',
      {},
      el('td', {}, esc(METRICS[m].label)) +
        s.rows
          .map((r) => {
            const c = r.cells[m];
            if (!c) return el('td', { class: 'num' }, '–');
            const ratio = c.ratio === undefined ? '' : c.withinNoise ? ' <span class="noise">within noise</span>' : ` <span class="ratio">${esc(formatRatio(c.ratio))}</span>`;
            const every = `every repetition: ${c.values.map((v) => formatValue(v, c.unit, c.median)).join(', ')}; CV ${(c.cv * 100).toFixed(1)}%`;
            const ci = c.ratioCi ? ` · ratio ${formatRatioCi(c.ratio!, c.ratioCi)}` : '';
            return el('td', { class: 'num', title: every }, `${esc(formatValue(c.median, c.unit))}${ratio}<br><span class="spread">${esc(formatSpread(c))} (${Math.round(c.ci.level * 100)}%, n=${c.n})${esc(ci)}</span>`);
          })
          .join(''),
    ),
  );
  return el('table', { class: 'detail' }, el('thead', {}, head) + el('tbody', {}, rows.join('')));
}

function pathTable(s: LabSection): string {
  const head = el('tr', {}, ['Path', 'Interfaces from client to server (MTU; offloads off)'].map((h) => el('th', {}, h)).join(''));
  const rows = s.rows.map((r) => {
    const hops = r.path
      .map((h) => {
        const off = Object.entries(h.offloads ?? {})
          .filter(([, on]) => !on)
          .map(([k]) => k);
        return `${esc(h.where)} <code>${esc(h.ifname)}</code> ${esc(h.kind)} ${h.mtu}${off.length ? ` <span class="noise">(${esc(off.join(', '))} off)</span>` : ''}`;
      })
      .join(' → ');
    return el('tr', {}, el('td', { class: 'path' }, esc(r.pair)) + el('td', {}, hops));
  });
  return el('table', {}, el('thead', {}, head) + el('tbody', {}, rows.join('')));
}

function environment(r: BenchResult, file?: string): string {
  const versions = Object.entries(r.versions)
    .map(([k, v]) => `${esc(k)} <code>${esc(v)}</code>`)
    .join(' · ');
  return el(
    'p',
    { class: 'method' },
    `Run ${esc(r.startedAt)} on ${esc(r.backend)}, Linux ${esc(r.host.kernel)}, ${r.host.cpus} CPUs, load ${r.host.load.before.toFixed(1)}→${r.host.load.after.toFixed(1)}; commit <code>${esc(shortCommit(r))}</code>; ${esc(repetitionsLine(r))}, UDP at ${esc(r.settings.udpRate)}b/s. ${versions}.${file ? ` File: <code>${esc(file)}</code>` : ''}`,
  );
}

function labSection(s: LabSection): string {
  const r = s.result;
  const notes = r.notes.length ? el('ul', { class: 'notes' }, r.notes.map((n) => el('li', {}, esc(n))).join('')) : '';
  return (
    el('h2', { id: `lab-${r.lab}` }, `${esc(r.lab)} <span class="noise">${esc(r.mode)}</span>`) +
    el('p', { class: 'lede' }, esc(r.description)) +
    topologySvg(r) +
    el('h3', {}, 'Every measurement <span class="sub">(median, × underlay; below it the 95% interval of the median and n)</span>') +
    detailTable(s) +
    el('h3', {}, 'The path, as the kernel reported it') +
    pathTable(s) +
    sweepSection(r) +
    notes +
    environment(r, s.file)
  );
}

function sweepSection(r: BenchResult): string {
  const v = sweepView(r);
  if (!v?.rows.length) return '';
  const sub = `${esc(v.test)}; dashed: what ${v.overhead} bytes of encapsulation per packet would cost if bytes were the limit (MTU ${v.podMtu} against ${v.underlayMtu})`;
  return el('h3', {}, `Message sizes: cross-node ÷ underlay <span class="sub">${sub}</span>`) + sweepSvg(v);
}

function gateHtml(g: GateReport): string {
  const body = g.failures.length
    ? `<strong>✘ ${g.failures.length} of ${g.checks.length} checks fell more than ${g.tolerancePct}% below the baseline.</strong>` + el('ul', {}, g.failures.map((f) => el('li', {}, esc(gateMessage(f, g.tolerancePct)))).join(''))
    : g.checks.length
      ? `<strong>✔ ${g.checks.length} checks against the baseline; none fell more than ${g.tolerancePct}% below it.</strong>`
      : '<strong>No checks: there was no baseline to compare with.</strong>';
  return el('h2', {}, `Regression gate (tolerance ${g.tolerancePct}%)`) + el('div', { class: `gate ${g.failures.length ? 'fail' : 'pass'}` }, body);
}

export function renderHtml(c: Comparison, gate?: GateReport, generatedAt = new Date().toISOString()): string {
  const results = c.sections.map((s) => s.result);
  const parts: string[] = [el('h1', {}, 'cnilab datapath comparison'), el('p', { class: 'lede' }, 'Overlay, route and underlay modes, each held against the raw underlay measured in the same run.')];
  if (results.length) {
    parts.push(el('p', { class: 'method' }, esc(methodLine(results))), el('p', { class: 'method' }, esc(LEGEND)), el('div', { class: 'wide' }, summaryTable(c)));
    parts.push(
      el('h2', {}, 'Charts'),
      el(
        'div',
        { class: 'grid' },
        [
          shareChart(c, 'tcp.gbps', 'Cross-node TCP throughput as a share of the underlay'),
          chartFor(c, 'tcp.gbps', 'TCP throughput, 1 stream'),
          chartFor(c, 'tcp4.gbps', 'TCP throughput, 4 streams'),
          chartFor(c, 'rr.p50Us', 'TCP request/response latency, p50'),
          chartFor(c, 'ping.p50Us', 'ping round trip, p50'),
          chartFor(c, 'tcp.cpuMsPerGbit', 'CPU time per transferred gigabit (TCP, 1 stream)'),
        ].join(''),
      ),
    );
  } else {
    parts.push(el('p', {}, 'No results to compare.'));
  }
  if (c.skipped.length) parts.push(el('h2', {}, 'Skipped'), el('ul', {}, c.skipped.map((s) => el('li', {}, `${esc(s.lab)}: ${esc(s.reason)}`)).join('')));
  if (c.failed.length) parts.push(el('h2', {}, 'Failed'), el('ul', {}, c.failed.map((s) => el('li', {}, `${esc(s.lab)}: ${esc(s.reason)}`)).join('')));
  if (gate) parts.push(gateHtml(gate));
  parts.push(...c.sections.map(labSection));
  parts.push(el('footer', {}, `Generated by cnilab at ${esc(generatedAt)}.`));
  return htmlPage('cnilab datapath comparison', CSS, parts);
}
