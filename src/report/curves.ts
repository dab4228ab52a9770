// Line charts of a figure against a count on a logarithmic axis (10, 100, 1,000,
// 10,000 services; pods; nodes), one line per series: the shape of a curve is
// what these benchmarks teach (grows with N, or stays flat).
import { el, esc, line, niceTicks, svg, text } from './svg.js';

export interface Curve {
  name: string;
  color: string;
  points: { x: number; y: number }[];
}

const W = 520;
const H = 260;
const LEFT = 62;
const RIGHT = 110;
const TOP = 16;
const BOTTOM = 40;

/** Powers of ten from below `min` to above `max`: the ticks of a log axis. */
export function decades(min: number, max: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) out.push(10 ** e);
  return out;
}

const label = (v: number) => (v >= 1000 ? `${v / 1000}k` : `${v}`);

/**
 * x is always logarithmic; y is logarithmic with `logY` (times that span decades),
 * else linear from 0 (ratios). `reference` draws a dashed line (1.0 on a ratio chart).
 */
export function curveChart(title: string, yUnit: string, curves: Curve[], o: { logY?: boolean; reference?: number; xLabel?: string } = {}): string {
  const all = curves.flatMap((c) => c.points).filter((p) => p.x > 0 && Number.isFinite(p.y) && (!o.logY || p.y > 0));
  if (!all.length) return svg(W, 40, title, text(LEFT, 24, 'no data'));
  const xTicks = decades(Math.min(...all.map((p) => p.x)), Math.max(...all.map((p) => p.x)));
  const yTicks = o.logY ? decades(Math.min(...all.map((p) => p.y)), Math.max(...all.map((p) => p.y))) : niceTicks(Math.max(...all.map((p) => p.y), o.reference ?? 0), 4);
  const plotW = W - LEFT - RIGHT;
  const plotH = H - TOP - BOTTOM;
  const logPos = (v: number, lo: number, hi: number) => (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1);
  const x = (v: number) => LEFT + logPos(v, xTicks[0], xTicks.at(-1)!) * plotW;
  const y = (v: number) => TOP + plotH - (o.logY ? logPos(v, yTicks[0], yTicks.at(-1)!) : v / yTicks.at(-1)!) * plotH;
  const parts: string[] = [];
  for (const t of xTicks) {
    parts.push(line(x(t), TOP, x(t), TOP + plotH, { stroke: '#e3e7ee' }));
    parts.push(text(x(t), H - BOTTOM + 16, label(t), { 'text-anchor': 'middle', class: 'tick' }));
  }
  for (const t of yTicks) {
    parts.push(line(LEFT, y(t), LEFT + plotW, y(t), { stroke: '#e3e7ee' }));
    parts.push(text(LEFT - 6, y(t) + 4, `${label(t)}${yUnit === '×' ? '×' : ''}`, { 'text-anchor': 'end', class: 'tick' }));
  }
  if (o.reference !== undefined) parts.push(line(LEFT, y(o.reference), LEFT + plotW, y(o.reference), { stroke: '#8892a6', 'stroke-dasharray': '2 3' }));
  parts.push(text(LEFT + plotW / 2, H - 6, `${o.xLabel ?? 'count'} (log scale)`, { 'text-anchor': 'middle', class: 'tick' }));
  if (yUnit !== '×') parts.push(text(8, TOP + 4, yUnit, { class: 'tick' }));
  curves.forEach((c, i) => {
    const pts = c.points.filter((p) => all.includes(p)).sort((a, b) => a.x - b.x);
    if (!pts.length) return;
    parts.push(el('polyline', { points: pts.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' '), fill: 'none', stroke: c.color, 'stroke-width': 2, class: `curve curve-${c.name}` }));
    for (const p of pts) parts.push(el('circle', { cx: x(p.x).toFixed(1), cy: y(p.y).toFixed(1), r: 3, fill: c.color }, el('title', {}, esc(`${c.name}: ${label(p.x)} → ${p.y}${yUnit === '×' ? '×' : ` ${yUnit}`}`))));
    parts.push(line(W - RIGHT + 12, TOP + 8 + i * 18, W - RIGHT + 30, TOP + 8 + i * 18, { stroke: c.color, 'stroke-width': 2 }));
    parts.push(text(W - RIGHT + 36, TOP + 12 + i * 18, c.name, { class: 'legend' }));
  });
  return svg(W, H, title, parts.join(''));
}
