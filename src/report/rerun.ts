// A rerun against the run it repeats: which figures moved beyond their
// intervals. A figure moved when the two 95% intervals of its median do not
// overlap; a path's multiple of the underlay likewise, by the ratio's interval.
import { metricInfo, type MetricName } from '../bench/metrics.js';
import type { BenchResult } from '../bench/results.js';
import type { Interval } from '../bench/stats.js';
import { formatRatioCi, formatValue, rowsOf } from './compare.js';

export interface FigureMove {
  pair: string;
  metric: MetricName;
  /** 'value': the figure itself; 'ratio': its multiple of the underlay. */
  what: 'value' | 'ratio';
  unit: string;
  before: { median: number; ci: Interval };
  after: { median: number; ci: Interval };
  moved: boolean;
}

const apart = (a: Interval, b: Interval) => a.hi < b.lo || b.hi < a.lo;

export function compareRuns(before: BenchResult, after: BenchResult): FigureMove[] {
  const out: FigureMove[] = [];
  const beforeRows = rowsOf(before);
  for (const row of rowsOf(after)) {
    const old = beforeRows.find((r) => r.pair === row.pair);
    if (!old) continue;
    for (const [name, cell] of Object.entries(row.cells) as [MetricName, NonNullable<(typeof row.cells)[MetricName]>][]) {
      const was = old.cells[name];
      if (!was || !metricInfo(name)) continue;
      out.push({ pair: row.pair, metric: name, what: 'value', unit: cell.unit, before: { median: was.median, ci: was.ci }, after: { median: cell.median, ci: cell.ci }, moved: apart(was.ci, cell.ci) });
      if (cell.ratioCi && was.ratioCi && cell.ratio !== undefined && was.ratio !== undefined) {
        out.push({ pair: row.pair, metric: name, what: 'ratio', unit: '×', before: { median: was.ratio, ci: was.ratioCi }, after: { median: cell.ratio, ci: cell.ratioCi }, moved: apart(was.ratioCi, cell.ratioCi) });
      }
    }
  }
  return out;
}

/** Mean of a run's 1-minute load samples: how busy the machine was while it measured. */
export const meanLoad = (r: BenchResult) => {
  const l = r.host.load;
  const all = [l.before, ...l.during, l.after];
  return all.reduce((a, b) => a + b, 0) / all.length;
};

/**
 * The multiples of the underlay first: they are what a lab teaches and what a busier or quieter
 * machine changes least. Absolute figures follow the machine, so the loads of both runs are given.
 */
export function renderMoves(moves: FigureMove[], beforeFile: string, loads?: { before: number; after: number }): string {
  const fmt = (m: FigureMove, f: FigureMove['before']) =>
    m.what === 'ratio' ? formatRatioCi(f.median, f.ci) : `${formatValue(f.median, m.unit)} [${formatValue(f.ci.lo, '', f.median)}–${formatValue(f.ci.hi, '', f.median)}]`;
  const count = (what: FigureMove['what']) => {
    const all = moves.filter((m) => m.what === what);
    return `${all.length - all.filter((m) => m.moved).length} of ${all.length}`;
  };
  const moved = moves.filter((m) => m.moved).sort((a, b) => (a.what === b.what ? 0 : a.what === 'ratio' ? -1 : 1));
  const lines = [
    `## Rerun of ${beforeFile}`,
    '',
    `Multiples of the underlay: ${count('ratio')} within their intervals. Absolute figures: ${count('value')}${loads ? ` (mean 1-minute load ${loads.before.toFixed(1)} then, ${loads.after.toFixed(1)} now)` : ''}.`,
  ];
  if (moved.length) lines.push('', `${moved.length} moved beyond their intervals:`, '', ...moved.map((m) => `- ${m.pair} ${metricInfo(m.metric)!.label}${m.what === 'ratio' ? ' (× underlay)' : ''}: ${fmt(m, m.before)} then, ${fmt(m, m.after)} now`));
  return lines.join('\n');
}
