// Each lab's figures over the stored runs, and the change-point gate. Runs are
// grouped by lab, backend and machine class (host.class): figures from another
// kind of machine are another history, so the first night on a new runner
// starts its own baseline instead of failing against this one's. The gate
// flags a shift several nights agree on: the newest `nights` runs each put the
// whole 95% interval of a path's ratio to the underlay beyond the level of the
// runs before them (their median, by more than the tolerance). One bad night,
// or a shift the intervals cannot tell from noise, is not a change.
import { METRICS, type MetricName } from '../bench/metrics.js';
import type { BenchResult, StoredResult } from '../bench/results.js';
import { median, type Interval } from '../bench/stats.js';
import { rowsOf } from './compare.js';
import { GATED_METRICS } from './gate.js';

export interface HistoryPoint {
  startedAt: string;
  file?: string;
  commit?: string;
  /** The path's multiple of the underlay, and its interval. */
  ratio: number;
  ratioCi: Interval;
  /** The figure itself. */
  median: number;
  ci: Interval;
  n: number;
}

export interface Series {
  pair: string;
  metric: MetricName;
  unit: string;
  points: HistoryPoint[];
}

export interface LabHistory {
  lab: string;
  backend: string;
  hostClass: string;
  series: Series[];
}

export interface ChangePoint {
  lab: string;
  backend: string;
  hostClass: string;
  pair: string;
  metric: MetricName;
  /** The level before: the median ratio of the earlier runs. */
  baseline: number;
  baselineRuns: number;
  /** The newest runs that all lie beyond it, oldest first. */
  shifted: HistoryPoint[];
  /** How much worse the shifted runs are at their median, in percent. */
  worsePct: number;
}

export interface HistoryGate {
  nights: number;
  tolerancePct: number;
  changes: ChangePoint[];
  /** Groups with too few runs to judge: the first night(s) on a machine class set its baseline. */
  baselineOnly: { lab: string; backend: string; hostClass: string; runs: number }[];
}

export const classOf = (r: BenchResult) => r.host.class ?? `${r.host.cpus} CPUs ${r.host.arch} ${r.backend} (class not recorded)`;

export function buildHistory(stored: StoredResult[], metrics: MetricName[] = GATED_METRICS): LabHistory[] {
  const groups = new Map<string, { lab: string; backend: string; hostClass: string; runs: StoredResult[] }>();
  for (const s of stored) {
    if (!s.result) continue;
    const key = `${s.result.lab}\0${s.result.backend}\0${classOf(s.result)}`;
    if (!groups.has(key)) groups.set(key, { lab: s.result.lab, backend: s.result.backend, hostClass: classOf(s.result), runs: [] });
    groups.get(key)!.runs.push(s);
  }
  return [...groups.values()]
    .sort((a, b) => a.lab.localeCompare(b.lab) || a.backend.localeCompare(b.backend) || a.hostClass.localeCompare(b.hostClass))
    .map((g) => {
      const runs = [...g.runs].sort((a, b) => a.result!.startedAt.localeCompare(b.result!.startedAt));
      const series = new Map<string, Series>();
      for (const s of runs) {
        for (const row of rowsOf(s.result!)) {
          if (row.kind === 'underlay') continue;
          for (const metric of metrics) {
            const c = row.cells[metric];
            if (!c || c.ratio === undefined || !c.ratioCi) continue;
            const key = `${row.pair}\0${metric}`;
            if (!series.has(key)) series.set(key, { pair: row.pair, metric, unit: c.unit, points: [] });
            series.get(key)!.points.push({ startedAt: s.result!.startedAt, file: s.file, commit: s.result!.git?.commit.slice(0, 7), ratio: c.ratio, ratioCi: c.ratioCi, median: c.median, ci: c.ci, n: c.n });
          }
        }
      }
      return { lab: g.lab, backend: g.backend, hostClass: g.hostClass, series: [...series.values()] };
    });
}

/** The shift at the end of one series, if the newest `nights` runs agree on it. */
export function changeAtEnd(points: HistoryPoint[], metric: MetricName, nights: number, tolerancePct: number): Omit<ChangePoint, 'lab' | 'backend' | 'hostClass' | 'pair' | 'metric'> | undefined {
  if (points.length < nights + 1) return undefined;
  const shifted = points.slice(-nights);
  // The level before: up to the 10 runs before the shifted ones, so an old change does not weigh forever.
  const before = points.slice(0, -nights).slice(-10);
  const baseline = median(before.map((p) => p.ratio));
  const higher = METRICS[metric].better === 'higher';
  const tol = tolerancePct / 100;
  const worse = (p: HistoryPoint) => (higher ? p.ratioCi.hi < baseline * (1 - tol) : p.ratioCi.lo > baseline * (1 + tol));
  if (!shifted.every(worse)) return undefined;
  const now = median(shifted.map((p) => p.ratio));
  return { baseline, baselineRuns: before.length, shifted, worsePct: (higher ? 1 - now / baseline : now / baseline - 1) * 100 };
}

export function historyGate(history: LabHistory[], nights = 3, tolerancePct = 5): HistoryGate {
  const changes: ChangePoint[] = [];
  const baselineOnly: HistoryGate['baselineOnly'] = [];
  for (const h of history) {
    const runs = Math.max(0, ...h.series.map((s) => s.points.length));
    if (runs < nights + 1) {
      baselineOnly.push({ lab: h.lab, backend: h.backend, hostClass: h.hostClass, runs });
      continue;
    }
    for (const s of h.series) {
      const c = changeAtEnd(s.points, s.metric, nights, tolerancePct);
      if (c) changes.push({ lab: h.lab, backend: h.backend, hostClass: h.hostClass, pair: s.pair, metric: s.metric, ...c });
    }
  }
  return { nights, tolerancePct, changes, baselineOnly };
}

const r2 = (x: number) => x.toFixed(2);

export function changeMessage(c: ChangePoint): string {
  return `${c.lab} (${c.backend}) ${c.pair}, ${METRICS[c.metric].label}: ${r2(c.baseline)}× underlay over ${c.baselineRuns} earlier runs, then ${c.shifted.map((p) => `${r2(p.ratio)}× [${r2(p.ratioCi.lo)}–${r2(p.ratioCi.hi)}]`).join(', ')} in the newest ${c.shifted.length} (since ${c.shifted[0].startedAt.slice(0, 10)}${c.shifted[0].commit ? `, commit ${c.shifted[0].commit}` : ''}): ${c.worsePct.toFixed(0)}% worse`;
}

/** The history as text: per lab and machine class, each path's ratio per run with its interval. */
export function renderHistoryText(history: LabHistory[], gate?: HistoryGate): string {
  const out: string[] = [];
  for (const h of history) {
    out.push(`${h.lab} (${h.backend}, ${h.hostClass})`);
    for (const s of h.series) {
      out.push(`  ${s.pair}, ${METRICS[s.metric].label} (× underlay)`);
      for (const p of s.points) out.push(`    ${p.startedAt.slice(0, 16).replace('T', ' ')}  ${r2(p.ratio)}× [${r2(p.ratioCi.lo)}–${r2(p.ratioCi.hi)}]  n=${p.n}${p.commit ? `  ${p.commit}` : ''}`);
    }
    out.push('');
  }
  if (gate) out.push(renderHistoryGate(gate));
  return out.join('\n');
}

export function renderHistoryGate(g: HistoryGate): string {
  const out = [`## Change-point gate (${g.nights} nights, tolerance ${g.tolerancePct}%)`, ''];
  if (g.changes.length) out.push(`✘ ${g.changes.length} shift${g.changes.length > 1 ? 's' : ''} that ${g.nights} nights agree on:`, '', ...g.changes.map((c) => `- ${changeMessage(c)}`));
  else out.push(`✔ no shift that the newest ${g.nights} nights agree on.`);
  if (g.baselineOnly.length) out.push('', `Baseline being set (fewer than ${g.nights + 1} runs on this machine class): ${g.baselineOnly.map((b) => `${b.lab} (${b.backend}, ${b.hostClass}): ${b.runs}`).join('; ')}.`);
  return out.join('\n');
}
