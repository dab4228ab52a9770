// The comparison: every pair of every lab as a multiple of the underlay
// measured in the same run, with the 95% interval of that multiple. A ratio
// whose interval includes 1.00× is never called a difference. On a dual-stack
// lab each path shows once per family, beside each other, each family's against
// its own underlay.
import { metricInfo, type MetricName } from '../bench/metrics.js';
import type { BenchResult, Hop, Metric, StoredResult } from '../bench/results.js';
import { median, medianInterval, type Interval } from '../bench/stats.js';

export interface Cell extends Metric {
  metric: MetricName;
  /**
   * This path ÷ the underlay, taken within each repetition (the two were
   * measured seconds apart), then the median of those (ratio metrics of
   * non-underlay pairs only).
   */
  ratio?: number;
  /** The 95% interval of the ratio (order statistics of the paired ratios), and the coverage it has. */
  ratioCi?: Interval;
  /** The ratio's interval includes 1.00×: no difference can be claimed. */
  withinNoise?: boolean;
}

export interface Row {
  lab: string;
  mode: string;
  backend: string;
  pair: string;
  kind: 'underlay' | 'same-node' | 'cross-node';
  family: 4 | 6;
  /** The section measured both families: labels name the family. */
  dual?: boolean;
  path: Hop[];
  cells: Partial<Record<MetricName, Cell>>;
}

export interface LabSection {
  result: BenchResult;
  file?: string;
  rows: Row[];
}

export interface Skipped {
  lab: string;
  reason: string;
}

export interface Comparison {
  sections: LabSection[];
  skipped: Skipped[];
  /** Labs whose benchmark failed, with the error. */
  failed: Skipped[];
}

/** The columns of the summary table, in order; a column shows only when some result has it. */
export const TABLE_COLUMNS: MetricName[] = ['tcp.gbps', 'tcp4.gbps', 'udp.lossPct', 'ping.p50Us', 'rr.p50Us', 'rr.p99Us', 'tcp.cpuMsPerGbit'];

const KIND_ORDER = { underlay: 0, 'cross-node': 1, 'same-node': 2 };

export function compareResults(stored: StoredResult[], extra: { skipped?: Skipped[]; failed?: Skipped[] } = {}): Comparison {
  const sections = stored
    .filter((s): s is StoredResult & { result: BenchResult } => s.result !== undefined)
    .map(({ result, file }) => ({ result, file, rows: rowsOf(result) }));
  return { sections, skipped: extra.skipped ?? [], failed: extra.failed ?? [] };
}

export function rowsOf(result: BenchResult): Row[] {
  const familyOf = (p: { family?: 4 | 6 }) => p.family ?? 4;
  const dual = new Set(result.pairs.map(familyOf)).size > 1;
  // The two families of one path next to each other: underlay IPv4, underlay IPv6, cross-node IPv4, …
  return [...result.pairs]
    .sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || familyOf(a) - familyOf(b))
    .map((pair) => {
      const underlay = result.pairs.find((p) => p.kind === 'underlay' && familyOf(p) === familyOf(pair));
      const cells: Partial<Record<MetricName, Cell>> = {};
      for (const [name, m] of Object.entries(pair.metrics)) {
        const info = metricInfo(name);
        if (!info) continue;
        const ref = underlay?.metrics[name];
        const cell: Cell = { metric: name as MetricName, ...m };
        if (info.ratio && ref && pair.kind !== 'underlay' && ref.median > 0) Object.assign(cell, ratioTo(m, ref));
        cells[name as MetricName] = cell;
      }
      return { lab: result.lab, mode: result.mode, backend: result.backend, pair: pair.name, kind: pair.kind, family: familyOf(pair), ...(dual ? { dual } : {}), path: pair.path, cells };
    });
}

/** How a row is named in tables: "underlay (reference)", "cross-node", and on a dual-stack lab "cross-node · IPv6". */
export function pathLabel(row: Pick<Row, 'kind' | 'pair' | 'family' | 'dual'>, reference = ' (reference)'): string {
  const base = row.kind === 'underlay' ? `underlay${reference}` : row.family === 6 ? row.pair.replace(/-v6$/, '') : row.pair;
  return row.dual || row.family === 6 ? `${base} · IPv${row.family}` : base;
}

/**
 * A path against the underlay. With one value per repetition on both sides,
 * the ratio is paired: repetition i of the path over repetition i of the
 * underlay, so a machine that got busier between repetitions slows both alike;
 * the ratio is their median, its interval the order-statistic interval of that
 * median. Unpaired (counts differ): the ratio of the medians, its interval the
 * quotient of the two intervals (wider, never narrower than either). Within
 * noise when the interval includes 1.00, and always for one repetition.
 */
export function ratioTo(m: Metric, ref: Metric): Pick<Cell, 'ratio' | 'ratioCi' | 'withinNoise'> {
  let ratio: number;
  let ci: Interval;
  if (m.values.length === ref.values.length && ref.values.every((v) => v > 0)) {
    const ratios = m.values.map((v, i) => v / ref.values[i]);
    ratio = median(ratios);
    ci = medianInterval(ratios);
  } else {
    ratio = m.median / ref.median;
    ci = { lo: m.ci.lo / ref.ci.hi, hi: ref.ci.lo > 0 ? m.ci.hi / ref.ci.lo : Infinity, level: m.ci.level * ref.ci.level };
  }
  return { ratio, ratioCi: ci, withinNoise: m.values.length < 2 || (ci.lo <= 1 && ci.hi >= 1) };
}


/** The columns any section has, in TABLE_COLUMNS order. */
export function presentColumns(c: Comparison): MetricName[] {
  return TABLE_COLUMNS.filter((m) => c.sections.some((s) => s.rows.some((r) => r.cells[m])));
}

/** Decimals that suit a figure of this size and unit; `like` picks them from another figure (a spread follows its median). */
function digitsFor(value: number, unit: string): number {
  const v = Math.abs(value);
  if (unit === 'Gb/s' || unit === '%') return v >= 10 ? 1 : 2;
  return v >= 100 ? 0 : v >= 10 ? 1 : 2;
}

export function formatValue(value: number, unit: string, like = value): string {
  const n = value.toFixed(digitsFor(like, unit));
  return unit ? `${n} ${unit}` : n;
}

/** "3.05–6.97": the 95% interval of the median in the digits of the median, without the unit. */
export function formatSpread(m: Metric): string {
  const d = digitsFor(m.median, m.unit);
  return `${m.ci.lo.toFixed(d)}–${m.ci.hi.toFixed(d)}`;
}

/** "0.70× [0.68–0.72]": a ratio and its interval. */
export const formatRatioCi = (ratio: number, ci: Interval) => `${ratio.toFixed(2)}× [${ci.lo.toFixed(2)}–${ci.hi.toFixed(2)}]`;

export const formatRatio = (r: number) => `${r.toFixed(2)}×`;

/** "4.41 Gb/s · 0.62×", "18.0 Gb/s · within noise", or just the figure for the underlay and for loss. */
export function formatCell(cell: Cell | undefined): string {
  if (!cell) return '–';
  const value = formatValue(cell.median, cell.unit);
  if (cell.ratio === undefined) return value;
  return `${value} · ${cell.withinNoise ? `within noise (${formatRatioCi(cell.ratio, cell.ratioCi!)})` : formatRatioCi(cell.ratio, cell.ratioCi!)}`;
}

/** "4.41 Gb/s · 0.62×" or "18.0 Gb/s · within noise": for a chart, where the whisker draws the interval. */
export function formatCellShort(cell: Cell): string {
  const value = formatValue(cell.median, cell.unit);
  if (cell.ratio === undefined) return value;
  return `${value} · ${cell.withinNoise ? 'within noise' : formatRatio(cell.ratio)}`;
}

/** "1450 eth0 → 1450 flannel.1 → …": the MTUs along a path, the smallest one first to notice. */
export function formatPath(path: Hop[]): string {
  return path.map((h) => `${h.where} ${h.ifname} ${h.mtu}`).join(' → ');
}

export const shortCommit = (r: BenchResult) => (r.git ? `${r.git.commit.slice(0, 7)}${r.git.dirty ? '+' : ''}` : 'unknown');
