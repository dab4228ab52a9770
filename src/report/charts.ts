// Horizontal bar charts in plain SVG: one bar per path (median), a whisker for
// the 95% interval of the median, the figure and its ratio to the underlay.
import { line, niceTicks, rect, svg, text } from './svg.js';

export const KIND_COLORS = { underlay: '#8892a6', 'cross-node': '#2f6fdb', 'same-node': '#13a08f' } as const;
export type Kind = keyof typeof KIND_COLORS;

export interface Bar {
  group: string;
  label: string;
  kind: Kind;
  median: number;
  min: number;
  max: number;
  /** Shown after the whisker, e.g. "4.41 Gb/s · 0.62×". */
  caption: string;
}

const ROW = 22;
const GROUP_GAP = 26;
const LEFT = 110;
const RIGHT = 150;
const WIDTH = 540;

/** `reference`: a value marked with a dashed line (1.0 on a ratio chart). */
export function barChart(title: string, unit: string, bars: Bar[], reference?: number): string {
  const groups = [...new Set(bars.map((b) => b.group))];
  const ticks = niceTicks(Math.max(...bars.map((b) => b.max), reference ?? 0));
  const top = ticks.at(-1)!;
  const plotW = WIDTH - LEFT - RIGHT;
  const x = (v: number) => LEFT + (v / top) * plotW;
  const height = 34 + groups.filter(Boolean).length * GROUP_GAP + bars.length * ROW + 24 + 6;
  const parts: string[] = [];

  const axisTop = 30;
  const axisBottom = height - 24;
  for (const t of ticks) {
    parts.push(line(x(t), axisTop, x(t), axisBottom, { stroke: '#e3e7ee', 'stroke-width': 1 }));
    parts.push(text(x(t), height - 8, `${t}`, { 'text-anchor': 'middle', class: 'tick' }));
  }
  parts.push(text(WIDTH - RIGHT + 22, height - 8, unit, { class: 'tick' }));

  // Legend
  let lx = LEFT;
  for (const [kind, color] of Object.entries(KIND_COLORS)) {
    if (!bars.some((b) => b.kind === kind)) continue;
    parts.push(rect(lx, 8, 12, 12, { fill: color, rx: 2 }));
    parts.push(text(lx + 17, 18, kind === 'underlay' ? 'underlay (reference)' : kind, { class: 'legend' }));
    lx += kind === 'underlay' ? 150 : 100;
  }

  let y = axisTop + 4;
  for (const g of groups) {
    if (g) {
      y += GROUP_GAP - 8;
      parts.push(text(8, y, g, { class: 'group' }));
      y += 8;
    }
    for (const b of bars.filter((bb) => bb.group === g)) {
      const mid = y + ROW / 2;
      parts.push(text(LEFT - 8, mid + 4, b.label, { 'text-anchor': 'end', class: 'label' }));
      parts.push(rect(LEFT, y + 4, Math.max(x(b.median) - LEFT, 1), ROW - 8, { fill: KIND_COLORS[b.kind], rx: 2, class: 'bar' }));
      parts.push(line(x(b.min), mid, x(b.max), mid, { stroke: '#1d2433', 'stroke-width': 1.2 }));
      parts.push(line(x(b.min), mid - 4, x(b.min), mid + 4, { stroke: '#1d2433', 'stroke-width': 1.2 }));
      parts.push(line(x(b.max), mid - 4, x(b.max), mid + 4, { stroke: '#1d2433', 'stroke-width': 1.2 }));
      parts.push(text(x(b.max) + 8, mid + 4, b.caption, { class: 'value' }));
      y += ROW;
    }
  }
  parts.push(line(LEFT, axisTop, LEFT, axisBottom, { stroke: '#9aa3b2', 'stroke-width': 1 }));
  if (reference !== undefined) parts.push(line(x(reference), axisTop, x(reference), axisBottom, { stroke: '#5b6578', 'stroke-width': 1.5, 'stroke-dasharray': '4 3' }));
  return svg(WIDTH, height, `${title}, ${unit}`, parts.join(''));
}
