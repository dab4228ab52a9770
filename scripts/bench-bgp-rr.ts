// `npm run bench:bgp-rr`: Calico's BGP full mesh against one route reflector,
// at --nodes 20,50. Per node count and mode, in the same run: BGP sessions per
// node and in total, the time from starting every BIRD at once until every
// node has every other node's block in its kernel (`proto bird`), and the
// memory of the BIRD processes. Prints ratios of mesh to reflector.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabInstance } from '../src/runner/runner.js';
import { QuietReporter } from '../src/runner/reporter.js';
import { NodeServices } from '../src/runner/services.js';
import { labMemory } from '../src/bench/lab-memory.js';
import { Ip } from '../src/net/ip.js';
import { parseProtocols } from '../src/datapaths/calico/bird.js';
import { CALICO_PATHS, calicoServices } from '../src/datapaths/calico/install.js';
import { numberList, parseOptions } from './args.js';

const values = parseOptions(
  {
    script: 'bench:bgp-rr',
    about: "Calico's BGP full mesh against one route reflector: sessions per node, the time until every node has every block, BIRD's memory.",
    example: '--nodes 20',
  },
  {
    nodes: { type: 'string', default: '20,50', value: 'list', help: 'node counts, each run as a mesh and with a reflector; under 2 skipped' },
    json: { type: 'boolean', default: false, help: 'print the results as JSON' },
  },
);
const nodeCounts = numberList('nodes', values.nodes).filter((v) => v > 1);

function labYaml(name: string, nodes: number, reflector: boolean): string {
  return [
    `name: ${name}`,
    `description: BGP scale benchmark, ${nodes} nodes, ${reflector ? 'one route reflector' : 'full mesh'}`,
    'mode: route',
    'topology:',
    '  underlay: 192.168.0.0/16',
    '  nodes:',
    ...Array.from({ length: nodes }, (_, i) => `    - { name: n${i}, address: 192.168.${10 + (i >> 8)}.${(i & 255) + 1} }`),
    'network:',
    '  plugin: calico',
    '  podCIDR: 10.244.0.0/16',
    '  subnetLen: 26',
    '  backend: bgp',
    ...(reflector ? ['  routeReflectors: [n0]'] : []),
    'workloads:',
    '  - { name: nginx, image: nginx, replicas: 1 }',
    '',
  ].join('\n');
}

interface Result {
  mode: 'mesh' | 'rr';
  nodes: number;
  upMs: number;
  sessions: { total: number; max: number; min: number; reflector?: number };
  convergeMs: number;
  bird: { processes: number; rssKb: number; pssKb: number; reflectorRssKb?: number };
}

async function measure(nodes: number, mode: 'mesh' | 'rr'): Promise<Result> {
  const name = `bgp${mode}-${nodes}`;
  const dir = mkdtempSync(join(tmpdir(), 'cnilab-bgp-'));
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, labYaml(name, nodes, mode === 'rr'));
  const inst = LabInstance.open(file, { name }, new QuietReporter());
  const t0 = performance.now();
  try {
    await inst.up();
    const upMs = performance.now() - t0;
    const { backend, lab } = inst;
    const specs = lab.topology.nodes;

    // Sessions: Established BGP protocols in each BIRD.
    const counts = await Promise.all(
      specs.map(async (n) => {
        const r = await backend.exec(n.name, ['birdc', '-s', backend.nodePath(n.name, CALICO_PATHS.birdSocket), 'show', 'protocols']);
        return parseProtocols(r.stdout).filter((p) => p.proto === 'BGP' && p.info.startsWith('Established')).length;
      }),
    );
    // Each session shows on both ends.
    const sessions = { total: counts.reduce((a, c) => a + c, 0) / 2, max: Math.max(...counts), min: Math.min(...counts), ...(mode === 'rr' ? { reflector: counts[0] } : {}) };

    // Memory while converged, before the restart.
    const birds = inst.state.state.processes.filter((p) => p.name === 'bird');
    const kinds = labMemory(inst.state.state).filter((k) => k.kind === 'bird');
    const bird = {
      processes: birds.length,
      rssKb: kinds.reduce((a, k) => a + k.rssKb, 0),
      pssKb: kinds.reduce((a, k) => a + k.pssKb, 0),
      ...(mode === 'rr' ? { reflectorRssKb: rssOf(birds.find((p) => p.node === 'n0')!.pid) } : {}),
    };

    // Convergence: stop every BIRD (its routes go with it), start them all, then wait until
    // every node's kernel has every other node's block as proto bird.
    const services = new NodeServices(backend, inst.state, (n) => calicoServices(backend, lab, specs.find((s) => s.name === n)!));
    await Promise.all(specs.map((n) => services.stop(n.name, 'bird')));
    const ips = specs.map((n) => new Ip(backend.node(n.name)));
    const learned = async (i: number) => (await ips[i].routes('proto', 'bird')).filter((r) => r.gateway).length;
    for (let i = 0; i < specs.length; i++) while ((await learned(i)) > 0) await sleep(50);
    const t1 = performance.now();
    await Promise.all(specs.map((n) => services.start(n.name, 'bird')));
    const pending = new Set(specs.map((_, i) => i));
    while (pending.size) {
      for (const i of [...pending]) if ((await learned(i)) === specs.length - 1) pending.delete(i);
      if (pending.size) await sleep(20);
      if (performance.now() - t1 > 120_000) throw new Error(`${name}: ${pending.size} nodes still lack blocks after 120 s`);
    }
    const convergeMs = performance.now() - t1;
    return { mode, nodes, upMs, sessions, convergeMs, bird };
  } finally {
    await inst.down();
    rmSync(dir, { recursive: true, force: true });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssOf(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

const say = (line = '') => !values.json && console.log(line);
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
const out: Result[] = [];
// ARP entries are one table for all namespaces on this kernel: past gc_thresh3 the kernel
// refuses new ones ("neighbor table overflow") and mesh sessions hang in Connect.
const arpLimit = Number(readFileSync('/proc/sys/net/ipv4/neigh/default/gc_thresh3', 'utf8'));
say(`Calico BGP: full mesh against one route reflector (n0). Load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
for (const n of nodeCounts) {
  const rr = await measure(n, 'rr');
  out.push(rr);
  say(`${n} nodes:`);
  if (n * (n - 1) > arpLimit) {
    say(`  rr: sessions clients ${rr.sessions.min}, reflector ${rr.sessions.reflector}, total ${rr.sessions.total}; every block everywhere ${s(rr.convergeMs)}; BIRD ${mb(rr.bird.pssKb)} PSS (${mb(rr.bird.rssKb)} RSS), the reflector's ${mb(rr.bird.reflectorRssKb ?? 0)} RSS; up ${s(rr.upMs)}`);
    say(`  mesh skipped: its sessions need ${n * (n - 1)} ARP entries, over gc_thresh3 ${arpLimit}, one table for all namespaces here (the reflector needs ${2 * (n - 1)})`);
    say();
    continue;
  }
  const mesh = await measure(n, 'mesh');
  out.push(mesh);
  say(`  sessions per node: mesh ${mesh.sessions.min}-${mesh.sessions.max}; rr: clients ${rr.sessions.min}, reflector ${rr.sessions.reflector}`);
  say(`  total sessions:    mesh ${mesh.sessions.total}, rr ${rr.sessions.total} (mesh/rr ${x(mesh.sessions.total, rr.sessions.total)}; n(n-1)/2 = ${(n * (n - 1)) / 2}, n-1 = ${n - 1})`);
  say(`  every node has every block, from all BIRDs started at once: mesh ${s(mesh.convergeMs)}, rr ${s(rr.convergeMs)} (mesh/rr ${x(mesh.convergeMs, rr.convergeMs)})`);
  say(`  BIRD memory, ${n} processes: mesh ${mb(mesh.bird.pssKb)} PSS (${mb(mesh.bird.rssKb)} RSS), rr ${mb(rr.bird.pssKb)} PSS (${mb(rr.bird.rssKb)} RSS) (mesh/rr PSS ${x(mesh.bird.pssKb, rr.bird.pssKb)}); the reflector's BIRD ${mb(rr.bird.reflectorRssKb ?? 0)} RSS`);
  say(`  lab up: mesh ${s(mesh.upMs)}, rr ${s(rr.upMs)} (mesh/rr ${x(mesh.upMs, rr.upMs)})`);
  say(`  load average now: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  say();
}
if (values.json) console.log(JSON.stringify(out, null, 2));
