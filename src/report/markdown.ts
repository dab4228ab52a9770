// The comparison as Markdown: for a terminal, a CI step summary, the README.
import { METRICS } from '../bench/metrics.js';
import type { BenchResult } from '../bench/results.js';
import { formatCell, formatPath, pathLabel, presentColumns, shortCommit, type Comparison } from './compare.js';
import { gateMessage, type GateReport } from './gate.js';
import { sweepMarkdown, sweepView } from './sweep.js';

const unique = <T>(xs: T[]) => [...new Set(xs)];

export function columnTitle(metric: keyof typeof METRICS, results: BenchResult[]): string {
  const titles: Partial<Record<keyof typeof METRICS, string>> = {
    'tcp.gbps': 'TCP 1 stream',
    'tcp4.gbps': 'TCP 4 streams',
    'udp.lossPct': `UDP loss at ${unique(results.map((r) => r.settings.udpRate)).join('/')}b/s`,
    'ping.p50Us': 'ping RTT p50',
    'rr.p50Us': 'TCP RR p50',
    'rr.p99Us': 'TCP RR p99',
    'tcp.cpuMsPerGbit': 'CPU per Gbit',
  };
  return titles[metric] ?? METRICS[metric].label;
}

/** "6–10 repetitions × 0.25 s" (a version-1 file: "3 repetitions × 2 s"). */
export function repetitionsLine(r: BenchResult): string {
  const { minRepeat, repeat, durationS } = r.settings;
  return `${minRepeat === repeat ? repeat : `${minRepeat}–${repeat}`} repetitions × ${durationS} s`;
}

/** One sentence on how the figures were made, from the results themselves. */
export function methodLine(results: BenchResult[]): string {
  const s = (f: (r: BenchResult) => string | number) => unique(results.map(f)).join('/');
  const day = s((r) => r.startedAt.slice(0, 10));
  return (
    `${s(repetitionsLine)} per measurement after ${s((r) => (r.warmup ? 'a warm-up until two TCP runs agreed' : 'a timed warm-up'))}, ` +
    `on Linux ${s((r) => r.host.kernel)} (${s((r) => r.host.cpus)} CPUs, ${s((r) => r.backend)} backend), commit ${s(shortCommit)}, ${day}. ` +
    `1-minute load average before→after: ${s((r) => `${r.host.load.before.toFixed(1)}→${r.host.load.after.toFixed(1)}`)}.`
  );
}

export const LEGEND =
  'Each figure is the median over the repetitions; next to it, its multiple of the raw underlay (node to node), measured in the same repetition seconds apart (the median of the per-repetition ratios). ' +
  'Throughput: higher is better; latency and CPU time: lower is better. ' +
  'In brackets, the 95% confidence interval of that ratio (order statistics of the paired ratios: distribution-free). A ratio counts as a difference only when its interval excludes 1.00×; otherwise the table says "within noise": no difference was measured.';

const esc = (s: string) => s.replace(/\|/g, '\\|');

export function comparisonTable(c: Comparison): string {
  const results = c.sections.map((s) => s.result);
  const columns = presentColumns(c);
  const head = ['Lab', 'Mode', 'Path', ...columns.map((m) => columnTitle(m, results))];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < 3 ? '---' : '---:')).join('|')}|`];
  for (const s of c.sections) {
    for (const [i, row] of s.rows.entries()) {
      const first = i === 0;
      const cells = [first ? `**${row.lab}**` : '', first ? row.mode : '', pathLabel(row), ...columns.map((m) => formatCell(row.cells[m]))];
      lines.push(`| ${cells.map(esc).join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

export function renderMarkdown(c: Comparison, gate?: GateReport): string {
  const results = c.sections.map((s) => s.result);
  const out: string[] = ['# cnilab datapath comparison', ''];
  if (results.length) {
    out.push(methodLine(results), '', LEGEND, '', comparisonTable(c), '');
    out.push('**MTU along each path** (where, interface, MTU):', '');
    for (const s of c.sections) for (const r of s.rows) out.push(`- ${r.lab} ${r.pair}: ${formatPath(r.path)}`);
    out.push('');
    for (const s of c.sections) {
      const v = sweepView(s.result);
      if (v?.rows.length) out.push(sweepMarkdown(s.result.lab, v), '');
    }
    const notes = c.sections.flatMap((s) => s.result.notes.map((n) => `- ${s.result.lab}: ${n}`));
    if (notes.length) out.push('**Notes**', '', ...notes, '');
  } else {
    out.push('No results to compare.', '');
  }
  if (c.skipped.length) out.push('**Skipped**', '', ...c.skipped.map((s) => `- ${s.lab}: ${s.reason}`), '');
  if (c.failed.length) out.push('**Failed**', '', ...c.failed.map((s) => `- ${s.lab}: ${s.reason}`), '');
  if (gate) out.push(renderGate(gate), '');
  return out.join('\n');
}

export function renderGate(g: GateReport): string {
  const out = [`## Regression gate (tolerance ${g.tolerancePct}%)`, ''];
  if (g.failures.length) {
    out.push(`✘ ${g.failures.length} of ${g.checks.length} checks fell more than ${g.tolerancePct}% below the baseline:`, '');
    out.push(...g.failures.map((f) => `- ${gateMessage(f, g.tolerancePct)}`));
  } else if (g.checks.length) {
    out.push(`✔ ${g.checks.length} checks against the baseline; none fell more than ${g.tolerancePct}% below it.`);
  } else {
    out.push('No checks: there was no baseline to compare with.');
  }
  if (g.noBaseline.length) out.push('', `No baseline for: ${g.noBaseline.join(', ')}.`);
  return out.join('\n');
}
