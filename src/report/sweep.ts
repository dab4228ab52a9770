// The message-size sweep against what header bytes alone would cost. Each
// packet carries the message (split at the MSS), 66 bytes of Ethernet, IP, TCP
// and timestamp headers, and on the pod path `h` more: the encapsulation, taken
// as the MTU the datapath gave up (underlay MTU − pod MTU: VXLAN 50, flannel's
// UDP/TUN 28, none for routing). If bytes on the wire were the limit, the pod
// path would carry wire(underlay) / wire(pod) of the underlay's throughput.
import type { BenchResult } from '../bench/results.js';
import { median, medianInterval, type Interval } from '../bench/stats.js';
import { el, esc, line, niceTicks, svg, text } from './svg.js';

/** Ethernet 14 + IPv4 20 + TCP 20 + timestamp option 12. */
const HEADERS = 66;

export interface SweepRow {
  size: number;
  underlayGbps: number;
  podGbps: number;
  ratio: number;
  ratioCi: Interval;
  /** The ratio header bytes alone predict. */
  expected: number;
}

export interface SweepView {
  test: string;
  underlayMtu: number;
  podMtu: number;
  /** Bytes of encapsulation per packet. */
  overhead: number;
  rows: SweepRow[];
}

const wire = (size: number, mtu: number, extra: number) => {
  const mss = mtu - 52; // IPv4 20 + TCP 20 + timestamps 12
  return size + Math.ceil(size / mss) * (HEADERS + extra);
};

/** Expected pod/underlay throughput if only header bytes mattered. */
export function expectedRatio(size: number, underlayMtu: number, podMtu: number): number {
  return wire(size, underlayMtu, 0) / wire(size, podMtu, underlayMtu - podMtu);
}

export function sweepView(r: BenchResult): SweepView | undefined {
  if (!r.sweep) return undefined;
  const under = r.pairs.find((p) => p.kind === 'underlay');
  const cross = r.pairs.find((p) => p.kind === 'cross-node');
  if (!under || !cross) return undefined;
  const underlayMtu = Math.min(...under.path.map((h) => h.mtu));
  const podMtu = cross.path[0]?.mtu ?? underlayMtu;
  const sizes = [...new Set(r.sweep.points.map((p) => p.size))].sort((a, b) => a - b);
  const rows = sizes.flatMap((size) => {
    const u = r.sweep!.points.find((p) => p.size === size && p.pair === under.name)?.metric;
    const c = r.sweep!.points.find((p) => p.size === size && p.pair === cross.name)?.metric;
    if (!u || !c || u.values.length !== c.values.length) return [];
    const ratios = c.values.map((v, i) => v / u.values[i]);
    return [{ size, underlayGbps: u.median, podGbps: c.median, ratio: median(ratios), ratioCi: medianInterval(ratios), expected: expectedRatio(size, underlayMtu, podMtu) }];
  });
  return { test: r.sweep.test, underlayMtu, podMtu, overhead: Math.max(0, underlayMtu - podMtu), rows };
}

export const formatSize = (b: number) => (b >= 1024 ? `${b / 1024} KB` : `${b} B`);

export function sweepMarkdown(lab: string, v: SweepView): string {
  const lines = [
    `**${lab}: message sizes** (${v.test}; cross-node ÷ underlay, 95% interval; expected: header bytes alone, ${v.overhead} bytes of encapsulation per packet, MTU ${v.podMtu} against ${v.underlayMtu})`,
    '',
    '| Message | Underlay | Cross-node | Measured ratio | Expected from headers |',
    '|---:|---:|---:|---:|---:|',
    ...v.rows.map((r) => `| ${formatSize(r.size)} | ${r.underlayGbps.toFixed(2)} Gb/s | ${r.podGbps.toFixed(2)} Gb/s | ${r.ratio.toFixed(2)}× [${r.ratioCi.lo.toFixed(2)}–${r.ratioCi.hi.toFixed(2)}] | ${r.expected.toFixed(2)}× |`),
  ];
  return lines.join('\n');
}

/** Measured ratio per message size (dots, 95% whiskers) and the header-bytes expectation (dashed line). */
export function sweepSvg(v: SweepView): string {
  const W = 540;
  const H = 220;
  const [L, R, T, B] = [46, 120, 16, 36];
  const top = niceTicks(Math.max(1.1, ...v.rows.map((r) => r.ratioCi.hi))).at(-1)!;
  const ticks = niceTicks(top, 4);
  const x = (i: number) => L + (v.rows.length === 1 ? 0 : (i / (v.rows.length - 1)) * (W - L - R));
  const y = (val: number) => T + (H - T - B) * (1 - Math.min(val, top) / top);
  const parts: string[] = [];
  for (const t of ticks) {
    parts.push(line(L, y(t), W - R, y(t), { stroke: '#e3e7ee' }));
    parts.push(text(L - 6, y(t) + 4, `${t}×`, { 'text-anchor': 'end', class: 'tick' }));
  }
  parts.push(line(L, y(1), W - R, y(1), { stroke: '#8892a6', 'stroke-dasharray': '2 3' }));
  const expected = v.rows.map((r, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(r.expected).toFixed(1)}`).join(' ');
  parts.push(el('path', { d: expected, fill: 'none', stroke: '#8892a6', 'stroke-width': 1.5, 'stroke-dasharray': '6 4' }));
  v.rows.forEach((r, i) => {
    parts.push(line(x(i), y(r.ratioCi.lo), x(i), y(r.ratioCi.hi), { stroke: '#2f6fdb', 'stroke-width': 1.5 }));
    parts.push(el('circle', { cx: x(i).toFixed(1), cy: y(r.ratio).toFixed(1), r: 4, fill: '#2f6fdb' }, el('title', {}, esc(`${formatSize(r.size)}: ${r.ratio.toFixed(2)}× [${r.ratioCi.lo.toFixed(2)}–${r.ratioCi.hi.toFixed(2)}], expected ${r.expected.toFixed(2)}×`))));
    parts.push(text(x(i), H - 14, formatSize(r.size), { 'text-anchor': 'middle', class: 'tick' }));
  });
  const last = v.rows.length - 1;
  parts.push(text(x(last) + 10, y(v.rows[last].ratio) + 4, 'measured', { class: 'legend' }));
  parts.push(text(x(last) + 10, y(v.rows[last].expected) + 4, `headers (${v.overhead} B)`, { class: 'legend' }));
  return svg(W, H, 'cross-node throughput ÷ underlay by message size, measured and expected from header bytes', parts.join(''));
}
