// Tiny helpers for hand-written SVG and HTML: escaping and elements.

export function esc(s: string | number): string {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

type Attrs = Record<string, string | number | undefined>;

const attrs = (a: Attrs) =>
  Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${esc(v!)}"`)
    .join('');

export const el = (tag: string, a: Attrs, children = '') => `<${tag}${attrs(a)}>${children}</${tag}>`;
export const void_ = (tag: string, a: Attrs) => `<${tag}${attrs(a)}/>`;
export const text = (x: number, y: number, s: string, a: Attrs = {}) => el('text', { x: round(x), y: round(y), ...a }, esc(s));
export const line = (x1: number, y1: number, x2: number, y2: number, a: Attrs = {}) => void_('line', { x1: round(x1), y1: round(y1), x2: round(x2), y2: round(y2), ...a });
export const rect = (x: number, y: number, w: number, h: number, a: Attrs = {}) => void_('rect', { x: round(x), y: round(y), width: round(w), height: round(h), ...a });

export const round = (n: number) => Math.round(n * 10) / 10;

export function svg(width: number, height: number, label: string, body: string): string {
  return el(
    'svg',
    { xmlns: 'http://www.w3.org/2000/svg', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label, class: 'chart' },
    el('title', {}, esc(label)) + body,
  );
}

/** Round axis steps: 1, 2 or 5 times a power of ten, about `ticks` of them up to `max`. */
export function niceTicks(max: number, ticks = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A standalone HTML page: the report, the history page. No external assets, so it opens from a CI artifact. */
export function htmlPage(title: string, css: string, body: string[]): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<link rel="icon" href="data:,">
<style>${css}</style>
</head>
<body><main>
${body.join('\n')}
</main></body>
</html>
`;
}
