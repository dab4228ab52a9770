// Orchestration of one lab instance: preflight, nodes, network, pods, steps, teardown.
import { join } from 'node:path';
import type { Backend, NodeSpec, Topology } from '../topologies/backend.js';
import { createBackend } from '../topologies/registry.js';
import { parseCidr, parsePrefix } from '../net/ipnet.js';
import { fillUnderlay, proxyModesOf, workloadLabels, type Lab } from '../lab/lab-file.js';
import { loadLab } from '../datapaths/index.js';
import { StateFile, readState, labDir, type LabState } from '../lab/state.js';
import { PodManager, schedule } from './pods.js';
import { startNginx } from './workloads.js';
import { datapath } from '../datapaths/index.js';
import { startSidecar } from './sidecars.js';
import { NodeServices } from './services.js';
import { runStep, type StepOutcome } from './steps.js';
import { nodePreflight, preflight } from './preflight.js';
import { requireBuilt } from '../lab/paths.js';
import { startNodeCnids } from './pods.js';
import type { Reporter } from './reporter.js';
import { POD_RESOLV_CONF, underlayIface } from '../topologies/backend.js';
import { DNS_POD, DNS_WORKLOAD, ServiceController } from './service-controller.js';
import type { ProxyMode } from '../services/model.js';
import type { PodSpec } from './pods.js';
import type { PodRecord } from '../lab/state.js';
import { chunks, Limiter, mapLimit } from '../util/limit.js';

/** Pods of one node whose sandboxes and CNI ADDs go together. */
const POD_BATCH = 64;
/** Workloads started at once on one node. */
const WORKLOADS_AT_ONCE = 16;
/** Node daemons (CNI daemon, network agents) starting at once. */
export const NODE_STARTS_AT_ONCE = 8;
/** CNI ADDs in flight on one node, when it has more pods than a batch. */
const ADDS_AT_ONCE = 8;
import { LabPolicies } from './policies.js';
import { CannotRunHereError } from '../lab/not-here.js';

export interface RunOptions {
  /** Instance name; defaults to the lab's name. Two instances need two names. */
  name?: string;
  backend?: string;
  /** Install missing Debian packages: here unless false; on machines of the hosts backend only when true. */
  install?: boolean;
  /** kube-proxy's mode for this run, instead of the lab file's network.proxyMode. */
  proxyMode?: ProxyMode;
  /** The hosts backend's inventory file. */
  inventory?: string;
}

export interface PhaseTiming {
  phase: string;
  ms: number;
}

export interface RunReport {
  lab: string;
  instance: string;
  backend: string;
  ok: boolean;
  phases: PhaseTiming[];
  steps: StepOutcome[];
  /** Set when the lab cannot run on this machine (a kernel feature is missing); not a failure. */
  skipped?: string;
  error?: string;
}

/** The underlay and node addresses a backend found (hosts: read from their interfaces), in place of the lab file's. */
export function applyFoundTopology(lab: Lab, found: LabState['topology']): void {
  if (!found) return;
  lab.topology.underlay = found.underlay;
  for (const n of lab.topology.nodes as NodeSpec[]) {
    const f = found.nodes.find((x) => x.name === n.name);
    if (f) Object.assign(n, { address: f.address }, f.iface ? { iface: f.iface } : {});
  }
  fillUnderlay(lab);
}

export function topologyOf(lab: Lab, instance: string): Topology {
  const underlay = parseCidr(lab.topology.underlay)!;
  const v6 = lab.topology.underlayV6 ? parsePrefix(lab.topology.underlayV6) : undefined;
  return {
    lab: instance,
    underlay: { subnet: lab.topology.underlay, prefix: underlay.prefix },
    ...(v6 ? { underlayV6: { subnet: lab.topology.underlayV6!, prefix: v6.prefix } } : {}),
    nodes: lab.topology.nodes,
  };
}

export class LabInstance {
  readonly pods: PodManager;
  readonly vars: Record<string, string> = {};
  /** Endpoints, kube-proxy and cluster DNS, when the lab has services. */
  cluster?: ServiceController;
  /** The NetworkPolicies in force, when the datapath has a policy engine. */
  policies?: LabPolicies;

  constructor(
    readonly lab: Lab,
    readonly file: string,
    readonly backend: Backend,
    readonly state: StateFile,
    readonly reporter: Reporter,
  ) {
    this.pods = new PodManager(backend, state);
  }

  static open(labName: string, opts: RunOptions, reporter: Reporter): LabInstance {
    const { lab, file } = loadLab(labName);
    const instance = opts.name ?? lab.name;
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(instance)) throw new Error(`instance name "${instance}" must be lower-case letters, digits and "-", at most 31 characters`);
    const existing = readState(instance);
    if (existing) throw new Error(`a lab named "${instance}" is already up (${labDir(instance)}); run \`cnilab down ${instance}\` first, or pass --name`);
    if (opts.proxyMode) {
      const modes = proxyModesOf(datapath(lab.network.plugin));
      if (!modes.includes(opts.proxyMode)) throw new Error(`the ${lab.network.plugin} datapath of ${lab.name} works with kube-proxy in ${modes.join(' or ')} mode, not ${opts.proxyMode}`);
      lab.network.proxyMode = opts.proxyMode;
    }
    const backendKind = opts.backend ?? 'netns';
    const state = new StateFile(instance, { labFile: file, backend: backendKind });
    const backend = createBackend(backendKind, topologyOf(lab, instance), state, { inventory: opts.inventory, install: opts.install });
    return new LabInstance(lab, file, backend, state, reporter);
  }

  /** A lab that is up, as its state recorded it (backend, addresses found): later commands work on it in place. */
  static attach(state: LabState, reporter: Reporter): LabInstance {
    const { lab, file } = loadLab(state.labFile!);
    applyFoundTopology(lab, state.topology);
    const sf = new StateFile(state.lab);
    return new LabInstance(lab, file, createBackend(state.backend, topologyOf(lab, state.lab), sf), sf, reporter);
  }

  private async phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.reporter.phase(name, fn);
  }

  /** Everything up to a running cluster with its workloads; on failure, everything is removed again. */
  async up(opts: RunOptions = {}): Promise<void> {
    const { lab, backend } = this;
    const plugin = datapath(lab.network.plugin);
    if (plugin.podsOnUnderlay && backend.foreignUnderlay) {
      throw new CannotRunHereError(
        `skipped: ${plugin.name} gives pods addresses of the underlay itself; on ${backend.kind} the underlay is the machines' own network, where cnilab takes no addresses`,
      );
    }
    try {
      await this.phase('preflight', () => preflight(lab, { install: opts.install ?? true, log: (m) => this.reporter.info(m), kernel: !backend.nodeKernels }));
      requireBuilt();
      this.state.save();
      await this.phase(`nodes (${lab.topology.nodes.map((n) => n.name).join(', ')}) on ${backend.kind}`, () => backend.up());
      applyFoundTopology(lab, this.state.state.topology);
      if (backend.nodeKernels) await this.phase('kernels of the nodes (preflight)', () => nodePreflight(lab, backend));
      await this.phase('cni daemons', () => startNodeCnids(backend, lab.topology.nodes.map((n) => n.name), this.state.dir, NODE_STARTS_AT_ONCE));
      await this.phase(`network ${lab.network.plugin} (${lab.network.backend})`, () =>
        datapath(lab.network.plugin).install(backend, lab, lab.topology.nodes, (m) => this.reporter.info(m)),
      );
      if (lab.services.length) await this.phase(`services: kube-proxy (${lab.network.proxyMode}) on every node, cluster DNS`, () => this.startServices());
      await this.phase('pods', () => this.deploy());
      if (this.cluster) await this.phase('endpoints', () => this.publishEndpoints());
      this.fillVars();
    } catch (e) {
      await this.down().catch(() => undefined);
      throw e;
    }
  }

  private async startServices(): Promise<void> {
    const { lab } = this;
    const cluster = new ServiceController(
      this.backend,
      { services: lab.services, serviceCIDR: lab.network.serviceCIDR, podCIDR: lab.network.podCIDR, proxyMode: lab.network.proxyMode!, nodes: lab.topology.nodes, proxyArgs: (node) => datapath(lab.network.plugin).proxyArgs?.(this.backend, node) ?? Promise.resolve([]) },
      (pod) => this.pods.podDir(pod),
    );
    this.cluster = cluster;
    await cluster.startProxies();
    const dns = await this.pods.create({ name: DNS_POD, node: lab.topology.nodes[0].name, workload: DNS_WORKLOAD });
    await cluster.startDns(dns.node);
    dns.status = 'Running';
    this.pods.save(dns);
    this.reporter.info(`cluster DNS: dnsmasq in pod ${dns.name} on ${dns.node} (${dns.ip}), service kube-system/kube-dns at ${cluster.dnsIP}`);
  }

  /** Endpoints from the pods as they are now, applied on every node before this resolves. */
  async publishEndpoints(): Promise<void> {
    if (!this.cluster) return;
    const reports = await this.cluster.publish(this.pods.list());
    const sync = Object.entries(reports).map(([node, r]) => `${node} ${r.syncMs} ms`).join(', ');
    this.reporter.info(`endpoints: ${this.cluster.current.map((s) => `${s.namespace}/${s.name} ${s.clusterIP} → ${s.endpoints.length}`).join(', ')} (synced: ${sync})`);
  }

  private async startPod(spec: PodSpec): Promise<void> {
    await this.startWorkload(await this.pods.create(spec));
  }

  /** What runs in a pod once its network is there: policy, DNS config, nginx and its sidecars. */
  private async startWorkload(pod: PodRecord): Promise<void> {
    const engine = datapath(this.lab.network.plugin).policy;
    if (engine) await engine.podAdded(this.backend, this.lab, pod, this.pods.hostInterface(pod.name) ?? '');
    if (this.cluster) await this.backend.writeFile(pod.node, join(this.pods.podDir(pod.name), POD_RESOLV_CONF), this.cluster.resolvConf());
    const info = await startNginx(this.backend, pod, this.pods.podDir(pod.name));
    for (const sidecar of this.lab.workloads.find((w) => w.name === pod.workload)?.sidecars ?? []) await startSidecar(this.backend, pod, sidecar);
    pod.status = 'Running';
    this.pods.save(pod);
    this.reporter.info(`pod ${pod.name} on ${pod.node}: ${pod.ip}${pod.ip6 ? ` ${pod.ip6}` : ''} (log ${info.accessLog})`);
  }

  /** Delete a pod as Kubernetes does: out of the endpoints first (applied on every node), then stopped and its network removed. */
  async deletePod(name: string): Promise<string> {
    const pod = this.pods.list().find((p) => p.name === name);
    if (!pod) throw new Error(`no pod named "${name}" (pods: ${this.pods.list().map((p) => p.name).join(', ')})`);
    this.named.add(name);
    pod.status = 'Terminating';
    this.pods.save(pod);
    await this.publishEndpoints();
    await datapath(this.lab.network.plugin).policy?.podRemoved(this.backend, this.lab, pod);
    await this.pods.remove(pod);
    return `deleted pod ${name} on ${pod.node}`;
  }

  /** Delete a pod and start it again under the same name on the same node, as a StatefulSet does: a new container ID, the address IPAM gives. */
  async recreatePod(name: string): Promise<string> {
    const old = this.pods.list().find((p) => p.name === name);
    if (!old) throw new Error(`no pod named "${name}" (pods: ${this.pods.list().map((p) => p.name).join(', ')})`);
    await this.deletePod(name);
    const { node, workload, namespace, labels, ports, annotations } = old;
    await this.startPod({ name, node, workload, namespace, labels, ports, annotations });
    await this.publishEndpoints();
    const pod = this.pods.list().find((p) => p.name === name)!;
    this.fillVars();
    return `recreated pod ${name} on ${node}: ${old.ip ?? ''} → ${pod.ip ?? ''}${pod.ip6 ? ` ${pod.ip6}` : ''}`;
  }

  /** Pod names given out so far: a new pod never reuses a deleted pod's name, as a ReplicaSet's never do. */
  private named = new Set<string>();

  /** Scale a workload: new pods get fresh ordinals (in turn over its nodes), the highest ordinals go first. */
  async scale(workload: string, replicas: number): Promise<string> {
    const w = this.lab.workloads.find((x) => x.name === workload);
    if (!w) throw new Error(`no workload named "${workload}" (workloads: ${this.lab.workloads.map((x) => x.name).join(', ')})`);
    const ordinal = (p: { name: string }) => Number(p.name.slice(workload.length + 1));
    const mine = () => this.pods.list().filter((p) => p.workload === workload).sort((a, b) => ordinal(a) - ordinal(b));
    const nodes = w.nodes ?? this.lab.topology.nodes.map((n) => n.name);
    const changes: string[] = [];
    for (const p of this.pods.list()) this.named.add(p.name);
    while (mine().length < replicas) {
      let next = 0;
      while (this.named.has(`${workload}-${next}`)) next++;
      this.named.add(`${workload}-${next}`);
      await this.startPod({ name: `${workload}-${next}`, node: nodes[next % nodes.length], workload, ports: w.ports, annotations: w.annotations });
      changes.push(`+${workload}-${next}`);
    }
    await this.publishEndpoints();
    while (mine().length > replicas) {
      const last = mine()[mine().length - 1];
      await this.deletePod(last.name);
      changes.push(`-${last.name}`);
    }
    this.fillVars();
    return `${workload}: ${replicas} replicas (${changes.join(' ') || 'no change'})`;
  }

  private async deploy(): Promise<void> {
    const nodes = this.lab.topology.nodes.map((n) => n.name);
    const specs = this.lab.workloads.flatMap((w) =>
      schedule(w.name, w.replicas, w.nodes ?? nodes).map((s) => ({ ...s, ports: w.ports, annotations: w.annotations, namespace: w.namespace, labels: workloadLabels(w) })),
    );
    const engine = datapath(this.lab.network.plugin).policy;
    // Nodes in parallel; on a node, pods in batches: a batch's sandboxes and
    // CNI ADDs while the previous batch's workloads start, a few at a time.
    // A node with a lesson's few pods takes its ADDs one by one in name order,
    // so that nginx-0 has the address the lesson shows; beyond a batch they overlap.
    // Bounds shared by all nodes too: a hundred nodes must not start a thousand processes at once.
    const byNode = new Map<string, typeof specs>();
    for (const s of specs) byNode.set(s.node, [...(byNode.get(s.node) ?? []), s]);
    const networking = new Limiter(NODE_STARTS_AT_ONCE);
    const workloads = new Limiter(2 * WORKLOADS_AT_ONCE);
    // mapLimit, not Promise.all: after a failure, what other nodes still have in flight settles
    // before the lab is torn down (it would write the lab's state again behind the teardown).
    await mapLimit([...byNode.entries()], byNode.size, async ([node, list]) => {
      let starting: Promise<unknown> = Promise.resolve();
      try {
        for (const batch of chunks(list, POD_BATCH)) {
          const pods = await networking.run(() => this.state.batch(() => this.pods.createMany(node, batch, list.length > POD_BATCH ? ADDS_AT_ONCE : 1)));
          await starting;
          starting = this.state.batch(() => mapLimit(pods, WORKLOADS_AT_ONCE, (pod) => workloads.run(() => this.startWorkload(pod))));
          starting.catch(() => undefined); // awaited below; a failure meanwhile must not go unhandled
        }
      } finally {
        await starting;
      }
    });
    if (engine) {
      this.policies = new LabPolicies(this.backend, this.lab, engine);
      const text = await this.policies.start();
      if (this.lab.policies.length) this.reporter.info(`network policy ${text}`);
    }
  }

  fillVars(): void {
    this.vars['topology.underlay'] = this.lab.topology.underlay;
    for (const n of this.lab.topology.nodes) {
      this.vars[`nodes.${n.name}.address`] = n.address;
      if (n.addressV6) this.vars[`nodes.${n.name}.addressV6`] = n.addressV6;
      this.vars[`nodes.${n.name}.dir`] = this.backend.nodePath(n.name, '');
      this.vars[`nodes.${n.name}.iface`] = underlayIface(n);
    }
    for (const s of this.cluster?.current ?? []) {
      this.vars[`services.${s.name}.clusterIP`] = s.clusterIP;
      for (const p of s.ports) if (p.nodePort !== undefined) this.vars[`services.${s.name}.nodePort`] = String(p.nodePort);
    }
    for (const p of this.pods.list()) {
      this.vars[`pods.${p.name}.ip`] = p.ip ?? '';
      if (p.ip6) this.vars[`pods.${p.name}.ip6`] = p.ip6;
      this.vars[`pods.${p.name}.node`] = p.node;
      this.vars[`pods.${p.name}.accessLog`] = join(this.pods.podDir(p.name), 'log', 'access.log');
    }
  }

  async steps(): Promise<StepOutcome[]> {
    const outcomes: StepOutcome[] = [];
    const plugin = datapath(this.lab.network.plugin);
    const nodeSpec = (name: string) => this.lab.topology.nodes.find((n) => n.name === name)!;
    const services = new NodeServices(this.backend, this.state, (node) => plugin.services?.(this.backend, this.lab, nodeSpec(node)) ?? {});
    const inst = this;
    const ctx = {
      backend: this.backend,
      lab: this.lab,
      // Read afresh for every step: a step may delete or add pods.
      get pods() {
        return inst.pods.list();
      },
      vars: this.vars,
      services,
      policies: this.policies,
      workloads: { delete: (pod: string) => this.deletePod(pod), recreate: (pod: string) => this.recreatePod(pod), scale: (w: string, n: number) => this.scale(w, n) },
    };
    for (const [i, step] of this.lab.steps.entries()) {
      const o = await runStep(ctx, step);
      outcomes.push(o);
      this.reporter.step(i + 1, this.lab.steps.length, o);
    }
    return outcomes;
  }

  async down(): Promise<void> {
    await this.backend.down();
  }
}

/** While `fn` runs, Ctrl-C or SIGTERM tears the lab down before the process exits. */
export async function tearDownOnSignal<T>(inst: LabInstance, fn: () => Promise<T>): Promise<T> {
  const onSignal = () => {
    inst.reporter.info('interrupted: tearing the lab down');
    inst.down().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Bring an opened lab up, run `fn` on it, and tear it down whatever happens: an error, Ctrl-C, SIGTERM. */
export async function withLab<T>(inst: LabInstance, opts: { install?: boolean }, fn: () => Promise<T>): Promise<T> {
  return tearDownOnSignal(inst, async () => {
    try {
      await inst.up(opts);
      return await fn();
    } finally {
      await inst.reporter.phase('teardown', () => inst.down());
    }
  });
}

/** `cnilab run`: up, steps, down; the report says what passed and how long each phase took. */
export async function runLab(labName: string, opts: RunOptions, reporter: Reporter): Promise<RunReport> {
  const inst = LabInstance.open(labName, opts, reporter);
  const report: RunReport = { lab: inst.lab.name, instance: inst.state.state.lab, backend: inst.backend.kind, ok: false, phases: [], steps: [] };
  try {
    report.steps = await withLab(inst, opts, () => reporter.phase('steps', () => inst.steps()));
    report.ok = report.steps.every((s) => s.ok);
  } catch (e) {
    if (e instanceof CannotRunHereError) report.skipped = e.message;
    else report.error = (e as Error).message;
  }
  report.phases = reporter.timings();
  return report;
}
