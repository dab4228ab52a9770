// The comparison: every pair of every lab as a multiple of the underlay
// measured in the same run. A difference whose spread (min..max over the
// repetitions) overlaps the underlay's is never called a difference.
import { metricInfo, type MetricName } from '../bench/metrics.js';
import type { BenchResult, Hop, Metric, StoredResult } from '../bench/results.js';
import { overlaps, spread } from '../bench/stats.js';

export interface Cell extends Metric {
  metric: MetricName;
  /**
   * This path ÷ the underlay, taken within each repetition (the two were
   * measured seconds apart), then the median of those (ratio metrics of
   * non-underlay pairs only).
   */
  ratio?: number;
  /** The smallest and largest of the per-repetition ratios. */
  ratioMin?: number;
  ratioMax?: number;
  /** The repetitions disagree on the side of 1.00×: no difference can be claimed. */
  withinNoise?: boolean;
}

export interface Row {
  lab: string;
  mode: string;
  backend: string;
  pair: string;
  kind: 'underlay' | 'same-node' | 'cross-node';
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
  const underlay = result.pairs.find((p) => p.kind === 'underlay');
  return [...result.pairs]
    .sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind])
    .map((pair) => {
      const cells: Partial<Record<MetricName, Cell>> = {};
      for (const [name, m] of Object.entries(pair.metrics)) {
        const info = metricInfo(name);
        if (!info) continue;
        const ref = underlay?.metrics[name];
        const cell: Cell = { metric: name as MetricName, ...m };
        if (info.ratio && ref && pair.kind !== 'underlay' && ref.median > 0) Object.assign(cell, ratioTo(m, ref));
        cells[name as MetricName] = cell;
      }
      return { lab: result.lab, mode: result.mode, backend: result.backend, pair: pair.name, kind: pair.kind, path: pair.path, cells };
    });
}

/**
 * A path against the underlay. With one value per repetition on both sides,
 * the ratio is paired: repetition i of the path over repetition i of the
 * underlay, so a machine that got busier between repetitions slows both alike.
 * Within noise when those ratios fall on both sides of 1, or when they scatter
 * more than they stand away from 1. Unpaired (counts
 * differ): the ratio of the medians, within noise when the spreads overlap.
 */
export function ratioTo(m: Metric, ref: Metric): Pick<Cell, 'ratio' | 'ratioMin' | 'ratioMax' | 'withinNoise'> {
  if (m.values.length === ref.values.length && ref.values.every((v) => v > 0)) {
    const r = spread(m.values.map((v, i) => v / ref.values[i]));
    // A difference needs every repetition on one side of 1, and a distance from 1 larger than the ratios' own scatter.
    // One repetition has no scatter to judge by: nothing it shows counts as a difference.
    const withinNoise = m.values.length < 2 || (r.min <= 1 && r.max >= 1) || Math.abs(r.median - 1) <= r.max - r.min;
    return { ratio: r.median, ratioMin: r.min, ratioMax: r.max, withinNoise };
  }
  return { ratio: m.median / ref.median, ratioMin: m.min / ref.max, ratioMax: m.max / ref.min, withinNoise: overlaps(m, ref) };
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

/** "3.05–6.97": a spread in the digits of its median, without the unit. */
export function formatSpread(m: Metric): string {
  const d = digitsFor(m.median, m.unit);
  return `${m.min.toFixed(d)}–${m.max.toFixed(d)}`;
}

export const formatRatio = (r: number) => `${r.toFixed(2)}×`;

/** "4.41 Gb/s · 0.62×", "18.0 Gb/s · within noise", or just the figure for the underlay and for loss. */
export function formatCell(cell: Cell | undefined): string {
  if (!cell) return '–';
  const value = formatValue(cell.median, cell.unit);
  if (cell.ratio === undefined) return value;
  return `${value} · ${cell.withinNoise ? 'within noise' : formatRatio(cell.ratio)}`;
}

/** "1450 eth0 → 1450 flannel.1 → …": the MTUs along a path, the smallest one first to notice. */
export function formatPath(path: Hop[]): string {
  return path.map((h) => `${h.where} ${h.ifname} ${h.mtu}`).join(' → ');
}

export const shortCommit = (r: BenchResult) => (r.git ? `${r.git.commit.slice(0, 7)}${r.git.dirty ? '+' : ''}` : 'unknown');
