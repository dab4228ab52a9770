// `npm run bench:scale`: how cnilab grows. Pods: flannel-host-gw on 2 nodes
// with 100, 500, 1000 (--pods) nginx pods, up and down, beside the kernel's
// own pace measured in the same run (as many namespaces with a veth each via
// `ip -batch`). Nodes: flannel-vxlan with --nodes N nodes, 2 pods a node.
// Memory per pod and per node from /proc, by process kind.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabInstance } from '../src/runner/runner.js';
import { QuietReporter } from '../src/runner/reporter.js';
import { processFloorMs, rawPodLimit } from '../src/net/raw-pods.js';
import { labCpuSeconds, labMemory, memAvailableKb, selfCpuSeconds, type KindMemory } from '../src/bench/lab-memory.js';
import { NAME_PREFIX } from '../src/lab/state.js';
import { numberList, parseOptions } from './args.js';

const values = parseOptions(
  {
    script: 'bench:scale',
    about: "How cnilab grows: N pods on flannel-host-gw (2 nodes) up and down beside the kernel's own pace, N nodes on flannel-vxlan; memory and CPU per pod and per node.",
    example: '--pods 100,500 --nodes 20',
  },
  {
    pods: { type: 'string', default: '100,500,1000', value: 'list', help: 'pod counts for flannel-host-gw on 2 nodes, one lab each' },
    nodes: { type: 'string', default: '', value: 'list', help: 'node counts for flannel-vxlan, 2 pods a node, one lab each' },
    json: { type: 'boolean', default: false, help: 'print the results as JSON' },
  },
);
const podCounts = values.pods ? numberList('pods', values.pods).filter((n) => n > 0) : [];
const nodeCounts = values.nodes ? numberList('nodes', values.nodes).filter((n) => n > 0) : [];

/** A lab file for `pods` nginx pods spread over `nodes` nodes. */
function labYaml(name: string, backend: 'host-gw' | 'vxlan', nodes: number, pods: number): string {
  // A node's subnet holds its share of pods with room to spare: /24 up to 250 a node, larger beyond.
  const perNode = Math.ceil(pods / nodes);
  const subnetLen = Math.min(24, 32 - Math.ceil(Math.log2(perNode + 3)));
  const nodeLines = Array.from({ length: nodes }, (_, i) => `    - { name: n${i}, address: 192.168.${10 + (i >> 8)}.${(i & 255) + 1} }`);

  return [
    `name: ${name}`,
    `description: scale benchmark, ${pods} pods on ${nodes} nodes`,
    'mode: route',
    'topology:',
    `  underlay: 192.168.0.0/16`,
    '  nodes:',
    ...nodeLines,
    'network:',
    '  plugin: flannel',
    '  podCIDR: 10.128.0.0/9',
    `  subnetLen: ${subnetLen}`,
    `  backend: ${backend}`,
    'workloads:',
    `  - { name: nginx, image: nginx, replicas: ${pods} }`,
    '',
  ].join('\n');
}

interface LabRun {
  lab: string;
  nodes: number;
  pods: number;
  upMs: number;
  phases: Record<string, number>;
  downMs: number;
  memory: KindMemory[];
  memAvailableDeltaMb: number;
  /** CPU seconds to bring it up: this process and the commands it ran, and the lab's own processes. */
  cpu: { runner: number; lab: number };
}

async function runLab(name: string, yaml: string, nodes: number, pods: number): Promise<LabRun> {
  const dir = mkdtempSync(join(tmpdir(), 'cnilab-scale-'));
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  const reporter = new QuietReporter();
  const inst = LabInstance.open(file, { name }, reporter);
  const before = memAvailableKb();
  const cpu0 = selfCpuSeconds();
  let cpu = { runner: 0, lab: 0 };
  const t0 = performance.now();
  let upMs = 0;
  let memory: KindMemory[] = [];
  let after = before;
  let downMs = 0;
  try {
    await inst.up();
    upMs = performance.now() - t0;
    cpu = { runner: selfCpuSeconds() - cpu0, lab: labCpuSeconds(inst.state.state) };
    after = memAvailableKb();
    memory = labMemory(inst.state.state);
  } finally {
    const t1 = performance.now();
    await inst.down();
    downMs = performance.now() - t1;
    rmSync(dir, { recursive: true, force: true });
  }
  const phases = Object.fromEntries(reporter.timings().map((t) => [t.phase.split(' ')[0], t.ms]));
  return { lab: name, nodes, pods, upMs, phases, downMs, memory, memAvailableDeltaMb: (before - after) / 1024, cpu };
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
const out: Record<string, unknown>[] = [];
const say = (line = '') => !values.json && console.log(line);

function memoryLines(r: LabRun): void {
  const pod = r.memory.filter((k) => k.where === 'pod');
  const node = r.memory.filter((k) => k.where === 'node');
  const sum = (ks: KindMemory[], f: 'rssKb' | 'pssKb') => ks.reduce((a, k) => a + k[f], 0);
  say(`  memory per pod:  ${mb(sum(pod, 'pssKb') / r.pods)} PSS (${mb(sum(pod, 'rssKb') / r.pods)} RSS): ${pod.map((k) => `${k.kind} ${k.processes}× ${mb(k.pssKb / r.pods)}`).join(', ')}`);
  say(`  memory per node: ${mb(sum(node, 'pssKb') / r.nodes)} PSS (${mb(sum(node, 'rssKb') / r.nodes)} RSS): ${node.map((k) => `${k.kind} ${k.processes}× ${mb(k.pssKb / r.nodes)}`).join(', ')}`);
  say(`  CPU by kind: ${r.memory.filter((k) => k.cpuS >= 0.05).sort((a, b) => b.cpuS - a.cpuS).map((k) => `${k.kind} ${k.cpuS.toFixed(1)} s`).join(', ')}`);
  say(`  machine: MemAvailable fell by ${r.memAvailableDeltaMb.toFixed(0)} MB while the lab was up (kernel objects included; other users of the machine too)`);
}

if (podCounts.length) say('Pods: flannel-host-gw, 2 nodes. Targets: 1000 pods up ≤ 20 s, down ≤ 10 s, ≤ 2x the raw kernel limit; pods/s flat over N.\n');
for (const n of podCounts) {
  const raw = await rawPodLimit(`${NAME_PREFIX}raw-`, n);
  const processesMs = await processFloorMs(n);
  const r = await runLab(`scale-${n}`, labYaml(`scale-${n}`, 'host-gw', 2, n), 2, n);
  const podsMs = r.phases.pods;
  const floorMs = raw.upMs + processesMs;
  out.push({ section: 'pods', n, raw, processFloorMs: processesMs, ...r });
  say(`${n} pods:`);
  say(`  raw kernel limit (${n} netns + veth via ip -batch): up ${s(raw.upMs)}, down ${s(raw.downMs)}`);
  say(`  process floor (${2 * n} starts of /bin/true, ${cpus().length} at a time: a plugin and a workload a pod): ${s(processesMs)}; with the raw limit ${s(floorMs)} = ${x(floorMs, raw.upMs)} raw${floorMs > 2 * raw.upMs ? ', so "≤ 2x raw" is out of reach for any CNI here' : ''}`);
  say(`  pods phase ${s(podsMs)} = ${x(podsMs, raw.upMs)} raw (target ≤ 2x), ${x(podsMs, floorMs)} the floor${n === 1000 ? `, target ≤ 20 s: ${podsMs <= 20000 ? 'met' : 'missed'}` : ''}; ${(n / (podsMs / 1000)).toFixed(1)} pods/s`);
  say(`  whole up ${s(r.upMs)} (${Object.entries(r.phases).map(([p, ms]) => `${p} ${s(ms)}`).join(', ')})`);
  say(`  CPU for up: ${(r.cpu.runner + r.cpu.lab).toFixed(1)} s (runner and the commands it ran ${r.cpu.runner.toFixed(1)} s, the lab's processes ${r.cpu.lab.toFixed(1)} s), ${((1000 * (r.cpu.runner + r.cpu.lab)) / n).toFixed(1)} ms a pod`);
  say(`  down ${s(r.downMs)} = ${x(r.downMs, raw.downMs)} raw${n === 1000 ? `, target ≤ 10 s: ${r.downMs <= 10000 ? 'met' : 'missed'}` : ''}; ${(n / (r.downMs / 1000)).toFixed(1)} pods/s`);
  memoryLines(r);
  say();
}

for (const n of nodeCounts) {
  const r = await runLab(`scalen-${n}`, labYaml(`scalen-${n}`, 'vxlan', n, 2 * n), n, 2 * n);
  out.push({ section: 'nodes', n, ...r });
  say(`flannel-vxlan, ${n} nodes, ${2 * n} pods (target at 100 nodes: up ≤ 30 s, ≤ 2 GB):`);
  say(`  whole up ${s(r.upMs)} (${Object.entries(r.phases).map(([p, ms]) => `${p} ${s(ms)}`).join(', ')}); down ${s(r.downMs)}`);
  say(`  CPU for up: ${(r.cpu.runner + r.cpu.lab).toFixed(1)} s (runner and its commands ${r.cpu.runner.toFixed(1)} s, the lab's processes ${r.cpu.lab.toFixed(1)} s), ${((1000 * (r.cpu.runner + r.cpu.lab)) / n).toFixed(0)} ms a node`);
  memoryLines(r);
  say();
}
if (values.json) console.log(JSON.stringify(out, null, 2));
