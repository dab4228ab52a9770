// `cnilab status`: what a running lab recorded, checked against the machine:
// each node's and pod's namespace still there, each process it started still
// the same process (PID and start time).
import type { Lab } from '../lab/lab-file.js';
import type { LabState, ProcessRecord } from '../lab/state.js';
import type { Backend } from '../topologies/backend.js';
import type { TextStyle } from './render-trace.js';

export interface ProcessStatus {
  name: string;
  node: string;
  pid: number;
  alive: boolean;
}

export interface StatusReport {
  lab: string;
  backend: string;
  status: string;
  since: string;
  labFile?: string;
  healthy: boolean;
  nodes: { name: string; address: string; namespace?: boolean }[];
  services: ProcessStatus[];
  pods: { name: string; node: string; ip?: string; status: string; namespace?: boolean; processes: ProcessStatus[] }[];
}

/** Asked through the backend, where the lab lives: its namespaces (can a command run there?) and its processes. */
export interface StatusProbe {
  isRunning(p: ProcessRecord): Promise<boolean>;
  namespaceThere(node: string, pod?: string): Promise<boolean>;
}

export function backendProbe(backend: Backend): StatusProbe {
  return {
    isRunning: (p) => backend.isRunning(p),
    namespaceThere: async (node, pod) => ((await (pod ? backend.pod(node, pod) : backend.node(node)).run(['true'], { allowFailure: true })).exitCode === 0),
  };
}

export async function labStatus(state: LabState, lab: Lab, probe: StatusProbe): Promise<StatusReport> {
  const [nodeNs, podNs, alive] = await Promise.all([
    Promise.all(lab.topology.nodes.map((n) => probe.namespaceThere(n.name))),
    Promise.all(state.pods.map((p) => probe.namespaceThere(p.node, p.name))),
    Promise.all(state.processes.map((p) => probe.isRunning(p))),
  ]);
  const procs = state.processes.map((p, i) => ({ rec: p, status: { name: p.name, node: p.node, pid: p.pid, alive: alive[i] } }));
  // A pod's processes are recorded as <pod>-<name> on its node.
  const ofPod = (pod: string, node: string) => procs.filter((p) => p.rec.node === node && p.rec.name.startsWith(`${pod}-`));
  const podProcs = new Set(state.pods.flatMap((p) => ofPod(p.name, p.node)));
  const report: StatusReport = {
    lab: state.lab,
    backend: state.backend,
    status: state.status,
    since: state.createdAt,
    labFile: state.labFile,
    healthy: true,
    nodes: lab.topology.nodes.map((n, i) => ({ name: n.name, address: n.address, namespace: nodeNs[i] })),
    services: procs.filter((p) => !podProcs.has(p)).map((p) => p.status),
    pods: state.pods.map((p, i) => ({
      name: p.name,
      node: p.node,
      ip: p.ip,
      status: p.status,
      namespace: podNs[i],
      processes: ofPod(p.name, p.node).map((x) => ({ ...x.status, name: x.status.name.slice(p.name.length + 1) })),
    })),
  };
  report.healthy =
    state.status === 'up' &&
    report.nodes.every((n) => n.namespace !== false) &&
    report.services.every((s) => s.alive) &&
    report.pods.every((p) => p.status === 'Running' && p.namespace !== false && p.processes.every((x) => x.alive));
  return report;
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].replace(/\x1b\[[0-9;]*m/g, '').length)));
  return rows.map((r) => r.map((v, c) => v + ' '.repeat(widths[c] - v.replace(/\x1b\[[0-9;]*m/g, '').length + 3)).join('').trimEnd());
}

export function formatStatus(r: StatusReport, s: TextStyle): string[] {
  const mark = (ok: boolean | undefined) => (ok === undefined ? '?' : ok ? s.green('✔') : s.red('✘'));
  const out = [`${s.bold(r.lab)}  ${r.status} since ${r.since.slice(0, 19).replace('T', ' ')} UTC · ${r.backend} backend${r.labFile ? ` · ${r.labFile}` : ''}`, ''];
  out.push(...table([['NODE', 'ADDRESS', 'NAMESPACE'], ...r.nodes.map((n) => [n.name, n.address, mark(n.namespace)])]), '');
  if (r.services.length) out.push(...table([['SERVICE', 'NODE', 'PID', 'ALIVE'], ...r.services.map((p) => [p.name, p.node, String(p.pid), mark(p.alive)])]), '');
  if (r.pods.length) {
    out.push(
      ...table([
        ['POD', 'NODE', 'IP', 'STATUS', 'NAMESPACE', 'PROCESSES'],
        ...r.pods.map((p) => [p.name, p.node, p.ip ?? '<none>', p.status, mark(p.namespace), p.processes.map((x) => `${x.name} ${x.pid} ${mark(x.alive)}`).join(', ') || '-']),
      ]),
      '',
    );
  }
  out.push(r.healthy ? s.green('✔ every namespace and process the lab recorded is there') : s.red(`✘ something the lab recorded is gone (marked ✘ above); \`cnilab down ${r.lab}\` and \`cnilab up\` again to start clean`));
  return out;
}
