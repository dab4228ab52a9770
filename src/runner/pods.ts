// A kubelet-like pod manager: a sandbox per pod, CNI called from the node
// exactly as a runtime does (the node's conflist, ADD with the result cached,
// CHECK, DEL in reverse order), then the workload's processes in the pod.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { NODES_ENV, RUN_DIR_ENV, type HostedNode } from '../cni/daemon.js';
import { CNID_SCRIPT } from './cnid.js';
import { join } from 'node:path';
import { cniEnv } from '../cni/invoke.js';
import { CniError } from '../cni/errors.js';
import { CONF_DIR, type ConfList } from '../cni/conflist.js';
import type { Backend } from '../topologies/backend.js';
import type { StateFile, PodRecord } from '../lab/state.js';
import { CNI_BIN_DIR } from '../lab/paths.js';
import { waitUntil } from '../util/wait.js';
import { bandwidthFromAnnotations } from '../lab/pod-bandwidth.js';
import { mapLimit } from '../util/limit.js';

/** Pods in name order, ordinals as numbers (nginx-2 before nginx-10); one collator, made once. */
const byName = new Intl.Collator(undefined, { numeric: true });

/** Where a node's CNI daemon listens; the shims find it through CNILAB_RUN_DIR. */
export const CNID_DIR = '/run/cnilab-cnid';

/**
 * Start the nodes' CNI daemons (thick mode: the plugins' logic kept warm behind
 * the C shims in dist/cni/bin), recorded by PID like every other node process.
 * Where the backend can, one process serves every node, each on its socket
 * with its log: a Node.js process per node is most of a node's memory. The
 * plugins work without a daemon; it only saves Node's start-up on every call.
 */
export async function startNodeCnids(backend: Backend, nodes: string[], stateDir: string, atOnce: number): Promise<void> {
  const hosted: HostedNode[] = nodes.map((name) => ({ name, netns: backend.node(name).netns ?? '', runDir: backend.nodePath(name, CNID_DIR), log: backend.nodePath(name, 'var/log/cnid.log') }));
  if (!backend.startForNodes || hosted.some((n) => !n.netns)) {
    // A few at a time: each is a Node.js start-up, and a hundred at once starve each other past their timeout.
    await mapLimit(nodes, atOnce, (n) => startNodeCnid(backend, n));
    return;
  }
  for (const n of hosted) mkdirSync(n.runDir, { recursive: true });
  const list = join(stateDir, 'cnid-nodes.json');
  writeFileSync(list, JSON.stringify(hosted, null, 1));
  const { log } = await backend.startForNodes(nodes, 'cnid', [process.execPath, CNID_SCRIPT], { env: { [NODES_ENV]: list } });
  const listening = (dir: string) => readdirSync(dir).some((f) => f.endsWith('.sock'));
  await waitUntil(() => hosted.every((n) => listening(n.runDir)), {
    timeoutMs: 10_000 + 100 * nodes.length,
    what: `the CNI daemon of ${nodes.length} nodes to answer`,
    hint: () => `see ${log}`,
  });
}

/** The daemon of one node, a process of its own on the node. */
export async function startNodeCnid(backend: Backend, node: string): Promise<void> {
  const dir = backend.nodePath(node, CNID_DIR);
  await backend.exec(node, ['mkdir', '-p', dir]);
  const { log } = await backend.start(node, 'cnid', [process.execPath, CNID_SCRIPT], { env: { [RUN_DIR_ENV]: dir } });
  // Asked on the node: on docker and vagrant the socket is inside the node, out of the host's reach.
  const listening = ['sh', '-c', 'for f in "$1"/*.sock; do [ -S "$f" ] && exit 0; done; exit 1', 'sh', dir];
  await waitUntil(async () => (await backend.exec(node, listening, { allowFailure: true })).exitCode === 0, {
    timeoutMs: 10_000,
    what: `the CNI daemon on ${node} to answer`,
    hint: () => `see ${log}`,
  });
}

export interface PodSpec {
  name: string;
  node: string;
  workload: string;
  namespace?: string;
  labels?: Record<string, string>;
  ports?: PodRecord['ports'];
  annotations?: PodRecord['annotations'];
}

export class PodManager {
  constructor(
    readonly backend: Backend,
    readonly state: StateFile,
  ) {}

  podDir(pod: string): string {
    return join(this.state.dir, 'pods', pod);
  }

  /** The first conflist in the node's /etc/cni/net.d, as a kubelet picks it. */
  async confList(node: string): Promise<ConfList> {
    const text = await this.backend.readFile(node, `${CONF_DIR}/10-cnilab.conflist`);
    if (!text) throw new Error(`node ${node} has no CNI configuration in ${CONF_DIR}: is the network installed?`);
    return JSON.parse(text) as ConfList;
  }

  private async exec(node: string, command: 'ADD' | 'DEL' | 'CHECK', plugin: Record<string, unknown>, list: ConfList, pod: PodRecord, prevResult?: unknown) {
    const runtimeConfig = capabilityArgs(plugin, pod);
    const conf = { ...plugin, cniVersion: list.cniVersion, name: list.name, ...(runtimeConfig ? { runtimeConfig } : {}), ...(prevResult ? { prevResult } : {}) };
    const env = cniEnv({
      command,
      containerId: pod.containerId,
      netns: pod.netns,
      ifname: 'eth0',
      args: `K8S_POD_NAMESPACE=${pod.namespace ?? 'default'};K8S_POD_NAME=${pod.name}`,
      path: [CNI_BIN_DIR],
    });
    const type = String(plugin.type);
    const runDir = { [RUN_DIR_ENV]: this.backend.nodePath(node, CNID_DIR) };
    const r = await this.backend.exec(node, [join(CNI_BIN_DIR, type)], { input: JSON.stringify(conf), env: { ...(env as Record<string, string>), ...runDir }, allowFailure: true });
    let out: Record<string, unknown> = {};
    try {
      out = r.stdout.trim() ? JSON.parse(r.stdout) : {};
    } catch {
      throw new Error(`CNI ${command} on ${node}: plugin ${type} printed non-JSON: ${r.stdout.slice(0, 200)}`);
    }
    if (r.exitCode !== 0) {
      throw new CniError(Number(out.code ?? 999), `CNI ${command} for pod ${pod.name} on ${node}: plugin ${type} failed (code ${out.code}): ${out.msg ?? r.stderr.trim()}`);
    }
    return out;
  }

  /** CNI ADD through every plugin of the list; the last result is cached like libcni does. */
  async cniAdd(pod: PodRecord, confList?: ConfList): Promise<Record<string, unknown>> {
    const list = confList ?? (await this.confList(pod.node));
    let result: Record<string, unknown> | undefined;
    for (const plugin of list.plugins) result = await this.exec(pod.node, 'ADD', plugin, list, pod, result);
    writeFileSync(join(this.podDir(pod.name), 'cni-result.json'), JSON.stringify(result, null, 2));
    return result!;
  }

  cachedResult(pod: string): Record<string, unknown> | undefined {
    const file = join(this.podDir(pod), 'cni-result.json');
    return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
  }

  async cniCheck(pod: PodRecord): Promise<void> {
    const list = await this.confList(pod.node);
    const prev = this.cachedResult(pod.name);
    for (const plugin of list.plugins) await this.exec(pod.node, 'CHECK', plugin, list, pod, prev);
  }

  async cniDel(pod: PodRecord): Promise<void> {
    const list = await this.confList(pod.node);
    const prev = this.cachedResult(pod.name);
    for (const plugin of [...list.plugins].reverse()) await this.exec(pod.node, 'DEL', plugin, list, pod, prev);
  }

  /** Sandbox, then network; a failure removes both again. */
  async create(spec: PodSpec): Promise<PodRecord> {
    mkdirSync(this.podDir(spec.name), { recursive: true });
    const { netns } = await this.backend.createSandbox(spec.node, spec.name);
    const pod: PodRecord = { ...spec, netns, status: 'Pending', containerId: randomBytes(16).toString('hex') };
    // Kept in name order: pods on different nodes are created at once, and every listing should read the same.
    this.state.update((s) => {
      s.pods.push(pod);
      s.pods.sort((a, b) => byName.compare(a.name, b.name));
    });
    try {
      const result = await this.cniAdd(pod);
      const ips = (result.ips as { address: string }[] | undefined) ?? [];
      pod.ip = ips.find((i) => !i.address.includes(':'))?.address.split('/')[0] ?? ips[0]?.address.split('/')[0];
      pod.ip6 = ips.find((i) => i.address.includes(':'))?.address.split('/')[0];
      this.save(pod);
      return pod;
    } catch (e) {
      pod.status = 'Failed';
      this.save(pod);
      await this.remove(pod).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Pods of one node, many at once: their sandboxes together (one write of
   * the state, one `ip` process where the backend can), then CNI ADD. With
   * `addsAtOnce` 1 the ADDs go pod by pod in name order, so that addresses
   * come out the same on every run; more overlap them, and addresses then
   * follow the order the plugin happened to see. A failure removes every pod
   * of the call again.
   */
  async createMany(node: string, specs: PodSpec[], addsAtOnce = 1): Promise<PodRecord[]> {
    for (const s of specs) mkdirSync(this.podDir(s.name), { recursive: true });
    const names = specs.map((s) => s.name);
    const sandboxes = this.backend.createSandboxes
      ? await this.backend.createSandboxes(node, names)
      : await mapLimit(names, 4, (n) => this.backend.createSandbox(node, n));
    const pods: PodRecord[] = specs.map((spec, i) => ({ ...spec, netns: sandboxes[i].netns, status: 'Pending', containerId: randomBytes(16).toString('hex') }));
    this.state.update((s) => {
      s.pods.push(...pods);
      s.pods.sort((a, b) => byName.compare(a.name, b.name));
    });
    try {
      const list = await this.confList(node);
      await mapLimit(pods, addsAtOnce, async (pod) => {
        const result = await this.cniAdd(pod, list);
        const ips = (result.ips as { address: string }[] | undefined) ?? [];
        pod.ip = ips.find((i) => !i.address.includes(':'))?.address.split('/')[0] ?? ips[0]?.address.split('/')[0];
        pod.ip6 = ips.find((i) => i.address.includes(':'))?.address.split('/')[0];
      });
      this.saveMany(pods);
      return pods;
    } catch (e) {
      for (const pod of pods) pod.status = 'Failed';
      this.saveMany(pods);
      await this.removeMany(node, pods).catch(() => undefined);
      throw e;
    }
  }

  /** Pods of one node gone at once: CNI DEL a few at a time, then their sandboxes together. */
  async removeMany(node: string, pods: PodRecord[]): Promise<void> {
    try {
      await mapLimit(pods, 8, (pod) => this.cniDel(pod));
    } finally {
      if (this.backend.removeSandboxes) await this.backend.removeSandboxes(node, pods.map((p) => p.name));
      else await mapLimit(pods, 4, (p) => this.backend.removeSandbox(node, p.name));
      const gone = new Set(pods.map((p) => p.name));
      this.state.update((s) => (s.pods = s.pods.filter((p) => !gone.has(p.name))));
    }
  }

  saveMany(pods: PodRecord[]): void {
    const byPod = new Map(pods.map((p) => [p.name, p]));
    this.state.update((s) => (s.pods = s.pods.map((p) => (byPod.has(p.name) ? { ...byPod.get(p.name)! } : p))));
  }

  save(pod: PodRecord): void {
    this.state.update((s) => {
      const i = s.pods.findIndex((p) => p.name === pod.name);
      if (i >= 0) s.pods[i] = { ...pod };
    });
  }

  /** CNI DEL, then the sandbox (which stops what runs in it). */
  async remove(pod: PodRecord): Promise<void> {
    try {
      await this.cniDel(pod);
    } finally {
      await this.backend.removeSandbox(pod.node, pod.name);
      this.state.update((s) => (s.pods = s.pods.filter((p) => p.name !== pod.name)));
    }
  }

  list(): PodRecord[] {
    return this.state.state.pods;
  }

  /** The host side of a pod's interface, from its CNI result (the interface outside any sandbox). */
  hostInterface(pod: string): string | undefined {
    const ifaces = (this.cachedResult(pod)?.interfaces ?? []) as { name: string; sandbox?: string }[];
    return ifaces.find((i) => !i.sandbox)?.name;
  }
}

/** runtimeConfig for the capabilities a plugin declares, as libcni fills it in (portMappings, bandwidth). */
export function capabilityArgs(plugin: Record<string, unknown>, pod: PodRecord): Record<string, unknown> | undefined {
  const caps = (plugin.capabilities ?? {}) as Record<string, unknown>;
  const args: Record<string, unknown> = {};
  if (caps.portMappings === true && pod.ports?.length) args.portMappings = pod.ports;
  const bandwidth = caps.bandwidth === true ? bandwidthFromAnnotations(pod.annotations) : undefined;
  if (bandwidth) args.bandwidth = bandwidth;
  return Object.keys(args).length ? args : undefined;
}

/** Pods of a workload spread over nodes in turn: replicas 3 on [master, worker] gives master, worker, master. */
export function schedule(workload: string, replicas: number, nodes: string[]): PodSpec[] {
  return Array.from({ length: replicas }, (_, i) => ({ name: `${workload}-${i}`, node: nodes[i % nodes.length], workload }));
}
