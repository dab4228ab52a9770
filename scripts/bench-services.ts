// What a Service costs at 10 to 10,000 services, per kube-proxy mode: how long
// the proxy takes to apply them (its own report of one iptables-restore or one
// nft transaction), and the connect and connect+request+response times of new
// connections to a ClusterIP, against the same pod reached by its own address
// in the same run (the reference), interleaved in blocks so both see the same
// moment of a shared machine. The ClusterIP measured is the last service
// created: in iptables mode the end of KUBE-SERVICES, the worst case of a list.
// ebpf mode runs on the cilium datapath (the lb4_* maps, one hash lookup per
// packet whatever the count), the others on flannel VXLAN; each against the pod
// reference of its own lab.
//
//   npm run bench:services -- [--sizes 10,100,1000,10000] [--modes iptables,nftables,ebpf] [--connects 400] [--lab L] [--out DIR] [--json]
//
// Writes DIR/<timestamp>.json and DIR/index.html (the curves as charts); DIR is
// results/report/services by default (beside the comparison, not among the
// results/<lab>/ files of cnilab bench).
//
// Every service selects the lab's web pods (3 endpoints). The client runs in
// pod client-1 on worker, the connections leave its node through the rules.
import { loadavg, release } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LabInstance } from '../src/runner/runner.js';
import { QuietReporter } from '../src/runner/reporter.js';
import type { ServiceSpec } from '../src/services/model.js';
import { PROXY_MODES, type ProxyMode } from '../src/services/model.js';
import { renderServicesHtml, type ServicesBenchRow, type ServicesBenchRun } from '../src/report/services-html.js';
import { defaultResultsDir } from '../src/bench/results.js';
import { choiceList, numberList, numberOption, parseOptions } from './args.js';

const values = parseOptions(
  {
    script: 'bench:services',
    about: "What a Service costs at 10 to 10,000 services per kube-proxy mode: the proxy's sync time, and new connections to a ClusterIP against the pod's own address.",
    example: '--sizes 10,100 --connects 100',
  },
  {
    sizes: { type: 'string', default: '10,100,1000,10000', value: 'list', help: 'service counts' },
    modes: { type: 'string', default: 'iptables,nftables,ebpf', value: 'list', help: 'kube-proxy modes' },
    connects: { type: 'string', default: '400', value: 'n', help: 'new connections to each target, per size' },
    /** One lab for every mode; without it, each mode's own (LABS). */
    lab: { type: 'string', value: 'name', shown: 'flannel-vxlan-services, cilium-ebpf-services for ebpf', help: 'one lab for every mode' },
    out: { type: 'string', value: 'dir', shown: 'results/report/services, under $CNILAB_RESULTS_DIR if set', help: 'where the JSON and index.html go' },
    json: { type: 'boolean', default: false, help: 'print the results as JSON' },
  },
);
const outDir = values.out ?? join(defaultResultsDir(), 'report', 'services');
const sizes = numberList('sizes', values.sizes, { min: 1 });
const modes = choiceList('modes', values.modes, PROXY_MODES);
const connects = numberOption('connects', values.connects, { min: 1 });
const BLOCK = 20;
const LABS: Record<ProxyMode, string> = { iptables: 'flannel-vxlan-services', nftables: 'flannel-vxlan-services', ebpf: 'cilium-ebpf-services' };
const labOf = (mode: ProxyMode) => values.lab ?? LABS[mode];

// Runs inside the pod: sequential new TCP connections to each target in blocks of BLOCK,
// alternating targets; prints per-target connect and connect+request+response times (ms).
const CLIENT = `
const net = require('node:net');
const [targets, total, block] = [process.argv[1].split(','), Number(process.argv[2]), Number(process.argv[3])];
const out = Object.fromEntries(targets.map((t) => [t, { connect: [], crr: [] }]));
function once(ip) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let tc = 0n;
    const s = net.connect({ host: ip, port: 80, noDelay: true });
    s.setTimeout(3000, () => s.destroy(new Error('timeout to ' + ip)));
    s.on('connect', () => { tc = process.hrtime.bigint(); s.write('GET / HTTP/1.0\\r\\n\\r\\n'); });
    s.on('data', () => {});
    s.on('error', reject);
    s.on('close', () => { const t1 = process.hrtime.bigint(); resolve([Number(tc - t0) / 1e6, Number(t1 - t0) / 1e6]); });
  });
}
(async () => {
  for (let i = 0; i < 20; i++) for (const t of targets) await once(t); // warm-up
  for (let done = 0; done < total; done += block) {
    for (const t of targets) for (let i = 0; i < block; i++) { const [c, r] = await once(t); out[t].connect.push(c); out[t].crr.push(r); }
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const r3 = (x: number) => Number(x.toFixed(3));

type Row = ServicesBenchRow & { mode: ProxyMode };

function benchServices(n: number, extra = 0): ServiceSpec[] {
  return Array.from({ length: n + extra }, (_, i) => ({
    name: `bench-${i}`,
    namespace: 'default',
    selector: 'web',
    type: 'ClusterIP' as const,
    sessionAffinity: 'None' as const,
    ports: [{ port: 80, protocol: 'TCP' as const }],
  }));
}

async function benchMode(mode: ProxyMode): Promise<Row[]> {
  const inst = LabInstance.open(labOf(mode), { name: `bench-svc-${mode}`.slice(0, 31), proxyMode: mode }, new QuietReporter());
  const rows: Row[] = [];
  try {
    await inst.up();
    const cluster = inst.cluster!;
    const client = inst.pods.list().find((p) => p.name === 'client-1')!;
    const server = inst.pods.list().find((p) => p.name === 'web-1')!;
    for (const n of sizes) {
      cluster.extra = benchServices(n);
      const full = await cluster.publish(inst.pods.list(), 900_000);
      cluster.extra = benchServices(n, 1);
      const change = await cluster.publish(inst.pods.list(), 900_000);
      const last = cluster.current.find((s) => s.name === `bench-${n - 1}`)!;
      const argv = [process.execPath, '-e', CLIENT, `${server.ip},${last.clusterIP}`, String(connects), String(BLOCK)];
      const r = await inst.backend.podExec(client.node, client.name, argv);
      const out = JSON.parse(r.stdout) as Record<string, { connect: number[]; crr: number[] }>;
      const ref = out[server.ip!];
      const svc = out[last.clusterIP];
      const row: Row = {
        mode,
        lab: labOf(mode),
        services: n,
        rules: full.worker.rules,
        syncMs: { full: full.worker.syncMs, change: change.worker.syncMs },
        connect: { p50: r3(pct(svc.connect, 50)), p99: r3(pct(svc.connect, 99)), refP50: r3(pct(ref.connect, 50)), refP99: r3(pct(ref.connect, 99)) },
        crr: { p50: r3(pct(svc.crr, 50)), p99: r3(pct(svc.crr, 99)), refP50: r3(pct(ref.crr, 50)), refP99: r3(pct(ref.crr, 99)) },
      };
      rows.push(row);
      if (!values.json) print([row]);
    }
  } finally {
    await inst.down();
  }
  return rows;
}

let header = false;
function print(rows: Row[]): void {
  if (!header) {
    console.log(`kube-proxy modes (kernel ${release()}): ${[...new Set(modes.map((m) => `${m} on ${labOf(m)}`))].join(', ')}; client pod on worker → ClusterIP of the last service (3 endpoints), ${connects} new connections each, pod IP of the same lab as reference`);
    console.log('rules: iptables/nftables rules, or ebpf map entries');
    console.log('mode      services   rules  sync ms (all / +1)  connect p50 ms (× pod)  p99 ms (× pod)   CRR p50 ms (× pod)   p99 ms (× pod)');
    header = true;
  }
  for (const r of rows) {
    const x = (a: number, b: number) => `${a.toFixed(3)} (${(a / b).toFixed(2)}×)`;
    console.log(
      [
        r.mode.padEnd(9),
        String(r.services).padStart(8),
        String(r.rules).padStart(7),
        `${r.syncMs.full} / ${r.syncMs.change}`.padStart(19),
        x(r.connect.p50, r.connect.refP50).padStart(23),
        x(r.connect.p99, r.connect.refP99).padStart(16),
        x(r.crr.p50, r.crr.refP50).padStart(20),
        x(r.crr.p99, r.crr.refP99).padStart(16),
      ].join(' '),
    );
  }
}

const startedAt = new Date().toISOString();
const loadBefore = loadavg()[0];
const all: Row[] = [];
for (const mode of modes) all.push(...(await benchMode(mode)));
const run: ServicesBenchRun = { kernel: release(), connects, startedAt, load: { before: loadBefore, after: loadavg()[0] }, rows: all };
mkdirSync(outDir, { recursive: true });
const stamp = startedAt.slice(0, 19).replace(/:/g, '-') + 'Z';
writeFileSync(join(outDir, `${stamp}.json`), JSON.stringify(run, null, 2) + '\n');
writeFileSync(join(outDir, 'index.html'), renderServicesHtml(run));
if (values.json) console.log(JSON.stringify(run, null, 2));
else console.log(`\nwrote ${relative(process.cwd(), join(outDir, `${stamp}.json`))} and ${relative(process.cwd(), join(outDir, 'index.html'))} (the curves as charts)`);
