// The Services benchmark as a page: per kube-proxy mode, how the time to apply
// a change and the cost of a new connection grow with the number of services.
// The lesson is in the shape: iptables rewrites its whole table for one more
// service and walks a list per new connection; nftables' verdict maps and the
// eBPF hash maps should stay flat.
import { curveChart, type Curve } from './curves.js';
import { el, esc, htmlPage } from './svg.js';

export type ServicesProxyMode = 'iptables' | 'nftables' | 'ebpf';

/** One mode at one size: what scripts/bench-services.ts measures. */
export interface ServicesBenchRow {
  mode: ServicesProxyMode;
  lab: string;
  services: number;
  /** iptables/nftables rules, or eBPF map entries, on the client's node. */
  rules: number;
  /** The proxy's own report: applying all N services, then one more added to them. */
  syncMs: { full: number; change: number };
  connect: { p50: number; p99: number; refP50: number; refP99: number };
  crr: { p50: number; p99: number; refP50: number; refP99: number };
}

export interface ServicesBenchRun {
  kernel: string;
  connects: number;
  startedAt: string;
  /** 1-minute load average before and after. */
  load: { before: number; after: number };
  rows: ServicesBenchRow[];
}

export const MODE_COLORS: Record<ServicesProxyMode, string> = { iptables: '#c62828', nftables: '#2f6fdb', ebpf: '#13a08f' };

function curves(rows: ServicesBenchRow[], y: (r: ServicesBenchRow) => number): Curve[] {
  const modes = [...new Set(rows.map((r) => r.mode))];
  return modes.map((mode) => ({ name: mode, color: MODE_COLORS[mode], points: rows.filter((r) => r.mode === mode).map((r) => ({ x: r.services, y: Number(y(r).toPrecision(3)) })) }));
}

export function renderServicesHtml(run: ServicesBenchRun): string {
  const { rows } = run;
  const chart = (title: string, sub: string, svgText: string) => el('div', {}, el('h3', {}, `${esc(title)} <span class="sub">${esc(sub)}</span>`) + svgText);
  const table = el(
    'table',
    {},
    el('tr', {}, ['mode', 'lab', 'services', 'rules / entries', 'sync all ms', 'sync +1 ms', 'connect p50 × pod', 'CRR p50 × pod'].map((h) => el('th', {}, h)).join('')) +
      rows
        .map((r) =>
          el(
            'tr',
            {},
            [r.mode, r.lab, r.services.toLocaleString('en'), r.rules.toLocaleString('en'), r.syncMs.full.toFixed(0), r.syncMs.change.toFixed(0), `${(r.connect.p50 / r.connect.refP50).toFixed(2)}×`, `${(r.crr.p50 / r.crr.refP50).toFixed(2)}×`]
              .map((c) => el('td', {}, esc(c)))
              .join(''),
          ),
        )
        .join(''),
  );
  const parts = [
    el('h1', {}, 'cnilab: what a Service costs, per kube-proxy mode'),
    el('p', { class: 'lede' }, esc(`Kernel ${run.kernel}, ${run.startedAt}, 1-minute load ${run.load.before.toFixed(1)} → ${run.load.after.toFixed(1)}. ${run.connects} new connections per size from a pod on one node to the ClusterIP of the last service created, each against the same pod reached by its own address in the same run (× pod).`)),
    el(
      'div',
      { class: 'grid' },
      [
        chart('Time to apply one more service', 'ms, log scale: lower is better', curveChart('time to apply one more service', 'ms', curves(rows, (r) => r.syncMs.change), { logY: true, xLabel: 'services' })),
        chart('Time to apply all services', 'ms, log scale', curveChart('time to apply all services', 'ms', curves(rows, (r) => r.syncMs.full), { logY: true, xLabel: 'services' })),
        chart('New connection to a ClusterIP', 'connect p50 as a multiple of the pod reached directly', curveChart('connect p50 × pod', '×', curves(rows, (r) => r.connect.p50 / r.connect.refP50), { reference: 1, xLabel: 'services' })),
        chart('Connect, request, response', 'p50 as a multiple of the pod reached directly', curveChart('CRR p50 × pod', '×', curves(rows, (r) => r.crr.p50 / r.crr.refP50), { reference: 1, xLabel: 'services' })),
      ].join(''),
    ),
    el('h2', {}, 'Every figure'),
    table,
  ];
  return htmlPage('cnilab services benchmark', CSS, parts);
}

const CSS = `
body { font: 15px/1.5 system-ui, sans-serif; color: #1d2433; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 60px; }
h3 { font-size: 14px; margin: 12px 0 4px; }
.sub { font-weight: 400; color: #6b7486; font-size: 13px; }
.lede { color: #4a5468; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 4px 28px; }
.chart { max-width: 100%; height: auto; }
.chart .tick, .chart .legend { font-size: 11px; fill: #6b7486; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e7ee; padding: 3px 10px; text-align: right; }
`;
