// The regression gate: each lab's figures, as multiples of the same run's
// underlay, held against a stored baseline run of the same lab and backend.
// Ratios rather than raw figures, so a slower machine is not a regression
// while a slower datapath on the same machine is. A fall counts when the
// median and the whole 95% interval of the run's ratio are beyond the
// tolerance: a drop inside the run's own interval is noise, not a regression.
import { relative, resolve } from 'node:path';
import { METRICS, type MetricName } from '../bench/metrics.js';
import { resultKey, type BenchResult, type StoredResult } from '../bench/results.js';
import { formatRatio, formatValue, rowsOf } from './compare.js';

/** What the gate holds: throughput (higher is better) and median latency (lower is better). */
export const GATED_METRICS: MetricName[] = ['tcp.gbps', 'tcp4.gbps', 'rr.p50Us', 'ping.p50Us'];

export interface GateFigure {
  ratio: number;
  median: number;
  unit: string;
}

export interface GateCheck {
  lab: string;
  backend: string;
  pair: string;
  metric: MetricName;
  current: GateFigure;
  baseline: GateFigure & { file: string };
  /** How much worse than the baseline, in percent (negative: better), at the median ratio… */
  worsePct: number;
  /** …and at the better end of this run's ratio interval. */
  leastWorsePct: number;
  /** Worse by more than the tolerance, at the median and across the ratio's interval. */
  failed: boolean;
}

export interface GateReport {
  tolerancePct: number;
  checks: GateCheck[];
  failures: GateCheck[];
  /** Labs of the current run with no baseline to hold them against. */
  noBaseline: string[];
}

const sameFile = (a?: string, b?: string) => a !== undefined && b !== undefined && resolve(a) === resolve(b);

/** The newest baseline run of the same lab and backend that is not the run itself. */
function baselineFor(current: StoredResult & { result: BenchResult }, baseline: StoredResult[]): (StoredResult & { result: BenchResult }) | undefined {
  const candidates = baseline.filter(
    (b): b is StoredResult & { result: BenchResult } =>
      b.result !== undefined && resultKey(b.result) === resultKey(current.result) && !sameFile(b.file, current.file) && b.result.startedAt !== current.result.startedAt,
  );
  return candidates.sort((a, b) => a.result.startedAt.localeCompare(b.result.startedAt)).at(-1);
}

export function runGate(current: StoredResult[], baseline: StoredResult[], tolerancePct: number): GateReport {
  const checks: GateCheck[] = [];
  const noBaseline: string[] = [];
  for (const cur of current) {
    if (!cur.result) continue;
    const base = baselineFor(cur as StoredResult & { result: BenchResult }, baseline);
    if (!base) {
      noBaseline.push(`${cur.result.lab} (${cur.result.backend})`);
      continue;
    }
    const baseRows = rowsOf(base.result);
    for (const row of rowsOf(cur.result)) {
      const baseRow = baseRows.find((r) => r.pair === row.pair);
      if (!baseRow || row.kind === 'underlay') continue;
      for (const metric of GATED_METRICS) {
        const [c, b] = [row.cells[metric], baseRow.cells[metric]];
        if (c?.ratio === undefined || b?.ratio === undefined) continue;
        const higher = METRICS[metric].better === 'higher';
        const worse = (ratio: number) => (higher ? 1 - ratio / b.ratio! : ratio / b.ratio! - 1) * 100;
        const worsePct = worse(c.ratio);
        const leastWorsePct = worse((higher ? c.ratioCi?.hi : c.ratioCi?.lo) ?? c.ratio);
        checks.push({
          lab: row.lab,
          backend: row.backend,
          pair: row.pair,
          metric,
          current: { ratio: c.ratio, median: c.median, unit: c.unit },
          baseline: { ratio: b.ratio, median: b.median, unit: b.unit, file: base.file },
          worsePct,
          leastWorsePct,
          failed: worsePct > tolerancePct && leastWorsePct > tolerancePct,
        });
      }
    }
  }
  return { tolerancePct, checks, failures: checks.filter((c) => c.failed), noBaseline };
}

const figure = (f: GateFigure) => `${formatRatio(f.ratio)} underlay (${formatValue(f.median, f.unit)})`;

/** One line naming the lab, the metric and both figures. */
export function gateMessage(c: GateCheck, tolerancePct: number): string {
  const where = `${c.lab} (${c.backend}) ${c.pair}, ${METRICS[c.metric].label} [${c.metric}]`;
  const file = relative(process.cwd(), c.baseline.file) || c.baseline.file;
  const verdict = c.failed
    ? `${c.worsePct.toFixed(0)}% worse (its whole interval at least ${c.leastWorsePct.toFixed(0)}%), more than the ${tolerancePct}% tolerance`
    : c.worsePct > tolerancePct
      ? `${c.worsePct.toFixed(0)}% worse at the median but not across its interval: within noise`
      : c.worsePct > 0
        ? `${c.worsePct.toFixed(0)}% worse, within tolerance`
        : `${(-c.worsePct).toFixed(0)}% better`;
  return `${where}: ${figure(c.current)} now, baseline ${figure(c.baseline)} in ${file}: ${verdict}`;
}
