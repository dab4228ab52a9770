// Lab files (labs/<name>.yaml): read with `yaml`, checked with a zod schema.
// Every error names the file, the line and the field.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import { z } from 'zod';
import { parseCidr, contains, parseIp, parseAddr, parsePrefix, prefixContains } from '../net/ipnet.js';
import { exerciseProblems, exercisesSchema } from './exercises.js';
import { benchSchema } from './bench-block.js';
import { DEFAULT_SERVICE_CIDR, PROXY_MODES, serviceProblems, serviceSchema, type ProxyMode } from '../services/model.js';
import { labels as labelsSchema, networkPolicySchema } from '../policy/schema.js';
import { policyProblems } from '../policy/validate.js';

/** The Kubernetes network model's properties, checked in every lab (src/runner/kubernetes-model.ts). */
export const MODEL_PROPERTIES = ['unique-ip', 'shared-ip', 'one-network', 'no-nat'] as const;
export type ModelProperty = (typeof MODEL_PROPERTIES)[number];
import { EGRESS_ANNOTATION, INGRESS_ANNOTATION, bandwidthProblem } from './pod-bandwidth.js';
import { challengeProblems, challengesSchema } from './challenges.js';

const name = z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'lower-case letters, digits and "-"');
const regexList = z.union([z.string(), z.array(z.string())]);

const expectSchema = z.strictObject({
  exitCode: z.number().int().optional(),
  stdout: regexList.optional(),
  notStdout: regexList.optional(),
  capture: regexList.optional(),
  notCapture: regexList.optional(),
  json: z.array(z.strictObject({ path: z.string(), equals: z.unknown().optional(), matches: z.string().optional(), min: z.number().optional(), max: z.number().optional() })).optional(),
  count: z.number().int().optional(),
  nodes: z.record(z.string(), z.number().int()).optional(),
  /** kubernetes-model: the properties this lab breaks on purpose; the step passes when exactly these fail. */
  violates: z.array(z.enum(MODEL_PROPERTIES)).optional(),
});

export const stepSchema = z
  .strictObject({
    name: z.string().min(1),
    node: z.string().optional(),
    pod: z.string().optional(),
    run: z.string().optional(),
    check: z.enum(['pods-running', 'kubernetes-model']).optional(),
    capture: z
      .strictObject({
        node: z.string(),
        /** Default: the node's underlay device ({{nodes.<node>.iface}}). */
        interface: z.string().optional(),
        filter: z.string(),
        packets: z.number().int().positive().default(2),
        decode: z.enum(['vxlan']).optional(),
      })
      .optional(),
    /** Stop or start a node service by name (a fault and its recovery); stopped by the PID the lab recorded. */
    service: z.strictObject({ node: z.string(), name: z.string().min(1), action: z.enum(['stop', 'start']) }).optional(),
    /** Delete a pod mid-lab: out of its services' endpoints first, then gone (a kubectl delete pod). */
    delete: z.strictObject({ pod: z.string() }).optional(),
    /** Delete a pod and start it again under its own name on its node, with a new container ID (a StatefulSet's pod coming back). */
    recreate: z.strictObject({ pod: z.string() }).optional(),
    /** Scale a workload up or down mid-lab; endpoints follow. */
    scale: z.strictObject({ workload: z.string(), replicas: z.number().int().min(0) }).optional(),
    /** Record the step's duration (until its expectations held, retries included) under this name. */
    measure: z.string().regex(/^[a-z][a-z0-9-]*$/, 'lower-case letters, digits and "-"').optional(),
    expect: expectSchema.optional(),
    save: z.record(z.string(), z.string()).optional(),
    retry: z.strictObject({ times: z.number().int().positive(), intervalMs: z.number().int().positive().default(200) }).optional(),
    /** Put NetworkPolicies of the lab's `policies` in force, or take them out (`name` or `namespace/name`); returns once every node enforces the change. */
    policy: z.union([z.strictObject({ apply: z.array(z.string()).min(1) }), z.strictObject({ delete: z.array(z.string()).min(1) })]).optional(),
    /** Only when kube-proxy runs in this mode (network.proxyMode, or --proxy-mode): a step that reads that mode's rules. Skipped otherwise, saying so. */
    proxyMode: z.enum(PROXY_MODES).optional(),
  })
  .refine(
    (s) =>
      s.check !== undefined ||
      ((s.service ?? s.delete ?? s.recreate ?? s.scale ?? s.policy) !== undefined && s.run === undefined) ||
      (s.run !== undefined && (s.node !== undefined) !== (s.pod !== undefined)),
    { message: 'a step needs `check`, or `run` with exactly one of `node` or `pod`, or `service`, `delete`, `recreate`, `scale` or `policy`' },
  );

/** The fields of `network:` every datapath has; a datapath's schema spreads them and adds its own. */
export const NETWORK_FIELDS = {
  podCIDR: z.string(),
  subnetLen: z.number().int().min(8).max(30).default(24),
  /** Where ClusterIPs come from (kubeadm's default). */
  serviceCIDR: z.string().default(DEFAULT_SERVICE_CIDR),
  /** How each node's kube-proxy programs services; without it, the first mode the datapath offers. */
  proxyMode: z.enum(PROXY_MODES).optional(),
  /** Dual-stack: the IPv6 pod network beside podCIDR; each pod gets one address of each family. */
  podCIDRv6: z.string().optional(),
  subnetLenV6: z.number().int().min(16).max(126).default(64),
};

export const labSchema = z.strictObject({
  name,
  description: z.string(),
  lesson: z.string().optional(),
  mode: z.enum(['overlay', 'route', 'underlay', 'baseline']),
  topology: z.strictObject({
    underlay: z.string(),
    /** An IPv6 underlay beside the IPv4 one (dual-stack nodes): each node then has an addressV6 in it. */
    underlayV6: z.string().optional(),
    nodes: z.array(z.strictObject({ name, address: z.string(), addressV6: z.string().optional() })).min(1),
  }),
  /** Kernel features the lab needs beyond its network plugin's; a missing one skips the lab, named. */
  requires: z.array(z.string()).default([]),
  /** Checked here for what every datapath shares, then whole by the datapath's own schema (NetworkKind). */
  network: z.looseObject({ ...NETWORK_FIELDS, plugin: z.string(), backend: z.string().optional() }),
  workloads: z
    .array(
      z.strictObject({
        name,
        image: z.enum(['nginx']),
        /** As many as the pod network holds: checked against network.podCIDR and each node's share of it. */
        replicas: z.number().int().min(1),
        nodes: z.array(z.string()).optional(),
        /** The pods' Kubernetes namespace. */
        namespace: name.default('default'),
        /** The pods' labels, for NetworkPolicy selectors; without them: app: <workload name>. */
        labels: labelsSchema.optional(),
        /** Ports published on the pod's node (docker run -p hostPort:containerPort). */
        ports: z
          .array(
            z.strictObject({
              containerPort: z.number().int().min(1).max(65535),
              hostPort: z.number().int().min(1).max(65535),
              protocol: z.enum(['tcp', 'udp']).default('tcp'),
            }),
          )
          .optional(),
        /** Pod annotations, read as a runtime reads them (kubernetes.io/ingress-bandwidth, egress-bandwidth). */
        annotations: z.record(z.string(), z.string()).optional(),
        /** Programs beside the workload in each pod (iperf3-server: a server for measuring steps). */
        sidecars: z.array(z.enum(['iperf3-server'])).optional(),
      }),
    )
    .default([]),
  /** Kubernetes Services over the workloads; with any, the lab runs kube-proxy on every node and a cluster DNS. */
  services: z.array(serviceSchema).default([]),
  /** Namespaces with labels (for namespaceSelector); each also carries kubernetes.io/metadata.name: <name>. */
  namespaces: z.array(z.strictObject({ name, labels: labelsSchema.default({}) })).default([]),
  /**
   * NetworkPolicies (networking.k8s.io/v1). In force from the start, except those
   * a `policy: { apply }` step puts in force later.
   */
  policies: z.array(networkPolicySchema).default([]),
  steps: z.array(stepSchema).default([]),
  /** The lesson's questions and try-it-yourself steps, for `cnilab lesson`. */
  exercises: exercisesSchema.optional(),
  /** What `cnilab bench` measures (pod pairs, tests); without it: same-node, cross-node and the underlay. */
  bench: benchSchema.optional(),
  /** Break-and-fix tasks graded from the kernel, for `cnilab challenge`. */
  challenges: challengesSchema(stepSchema).optional(),
});

export type Lab = z.infer<typeof labSchema>;

/** A lab-file problem a schema cannot see; the path names the field. */
export interface LabProblem {
  path: (string | number)[];
  message: string;
}

/** What the lab model needs of a datapath: the schema of its `network:` block, and its own checks. */
export interface NetworkKind {
  name: string;
  /** The whole `network:` block, `plugin` a literal: the union of every kind's is checked, by plugin. */
  network: z.ZodType;
  validate?(lab: Lab): LabProblem[];
  /** It enforces NetworkPolicy; a lab with `policies:` needs a kind that does. */
  enforcesPolicy?: boolean;
  /** It gives pods an IPv6 address beside the IPv4 one (network.podCIDRv6); a lab asking others for it is refused. */
  dualStack?: boolean;
  /** The kube-proxy modes that work with it, the default first; without it: iptables and nftables. */
  proxyModes?: readonly ProxyMode[];
}

/** The kube-proxy modes a datapath works with, its default first. */
export const proxyModesOf = (kind: NetworkKind): readonly ProxyMode[] => kind.proxyModes ?? ['iptables', 'nftables'];
export type Step = Lab['steps'][number];
export type Challenge = NonNullable<Lab['challenges']>[number];

export class LabFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly field: string,
    problem: string,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${field ? `${field}: ` : ''}${problem}`);
    this.name = 'LabFileError';
  }
}

/** The directory of the labs shipped with cnilab. */
export function labsDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const candidate of [resolve(here, '../../labs'), resolve(here, '../labs'), resolve(process.cwd(), 'labs')]) {
    if (existsSync(candidate)) return candidate;
  }
  return resolve(process.cwd(), 'labs');
}

export function listLabFiles(): string[] {
  return readdirSync(labsDir())
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => basename(f, '.yaml'))
    .sort();
}

/** A lab by name (labs/<name>.yaml) or by path. */
export function resolveLabFile(nameOrPath: string): string {
  if (nameOrPath.endsWith('.yaml') || nameOrPath.includes('/')) return resolve(nameOrPath);
  const file = join(labsDir(), `${nameOrPath}.yaml`);
  if (!existsSync(file)) {
    throw new LabFileError(file, undefined, '', `no lab named "${nameOrPath}"; available: ${listLabFiles().join(', ')}`);
  }
  return file;
}

function lineOf(doc: Document, counter: LineCounter, path: (string | number)[]): number | undefined {
  // The deepest node that exists on the path: a missing field points at its parent.
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}

const fieldName = (path: PropertyKey[]) => path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');

const valueAt = (obj: unknown, path: PropertyKey[]) => path.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<PropertyKey, unknown>)[k] : undefined), obj);

/** zod's words, with the bad value quoted where it helps ("geneve" is not one of native, vxlan). */
function problemOf(issue: z.core.$ZodIssue, input: unknown): string {
  if (issue.code === 'invalid_value' && issue.values.length > 1) {
    return `${JSON.stringify(valueAt(input, issue.path))} is not one of ${issue.values.map(String).join(', ')}`;
  }
  return issue.message;
}

/**
 * Any other YAML input (the hosts inventory) checked by a zod schema, its errors naming file:line
 * field as a lab file's do. `fail` reports a problem a schema cannot see, at its field.
 */
export function parseYamlWith<S extends z.ZodType>(text: string, file: string, schema: S): { data: z.infer<S>; fail: (path: (string | number)[], msg: string) => never } {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  if (doc.errors.length) throw new LabFileError(file, counter.linePos(doc.errors[0].pos[0]).line, '', `YAML syntax: ${doc.errors[0].message.split('\n')[0]}`);
  const input = doc.toJS();
  const fail = (path: (string | number)[], msg: string): never => {
    throw new LabFileError(file, lineOf(doc, counter, path), fieldName(path), msg);
  };
  const parsed = schema.safeParse(input);
  if (!parsed.success) fail(parsed.error.issues[0].path as (string | number)[], problemOf(parsed.error.issues[0], input));
  return { data: parsed.data as z.infer<S>, fail };
}

export function parseLabWith(text: string, file: string, kinds: Record<string, NetworkKind>): Lab {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw new LabFileError(file, counter.linePos(e.pos[0]).line, '', `YAML syntax: ${e.message.split('\n')[0]}`);
  }
  const input = doc.toJS();
  const parsed = labSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path as (string | number)[];
    throw new LabFileError(file, lineOf(doc, counter, path), fieldName(path), problemOf(issue, input));
  }
  const lab = parsed.data;
  const fail = (path: (string | number)[], msg: string): never => {
    throw new LabFileError(file, lineOf(doc, counter, path), fieldName(path), msg);
  };

  // What a schema cannot say: addresses in their ranges, names that refer to something.
  const underlay = parseCidr(lab.topology.underlay) ?? fail(['topology', 'underlay'], `"${lab.topology.underlay}" is not a CIDR like 192.168.10.0/24`);
  const seen = new Set<string>();
  lab.topology.nodes.forEach((n, i) => {
    const ip = parseIp(n.address) ?? fail(['topology', 'nodes', i, 'address'], `"${n.address}" is not an IPv4 address`);
    if (!contains(underlay, ip)) fail(['topology', 'nodes', i, 'address'], `${n.address} is outside the underlay ${lab.topology.underlay}`);
    if (seen.has(n.name)) fail(['topology', 'nodes', i, 'name'], `node "${n.name}" is listed twice`);
    seen.add(n.name);
  });
  if (lab.topology.underlayV6 !== undefined) {
    const v6 = parsePrefix(lab.topology.underlayV6);
    if (v6?.family !== 6) fail(['topology', 'underlayV6'], `"${lab.topology.underlayV6}" is not an IPv6 CIDR like fd00:192:168:10::/64`);
    lab.topology.nodes.forEach((n, i) => {
      if (n.addressV6 === undefined) fail(['topology', 'nodes', i, 'addressV6'], `is required on an IPv6 underlay (${lab.topology.underlayV6})`);
      const a = parseAddr(n.addressV6!);
      if (a?.family !== 6) fail(['topology', 'nodes', i, 'addressV6'], `"${n.addressV6}" is not an IPv6 address`);
      if (!prefixContains(v6!, a!)) fail(['topology', 'nodes', i, 'addressV6'], `${n.addressV6} is outside the underlay ${lab.topology.underlayV6}`);
    });
  } else {
    lab.topology.nodes.forEach((n, i) => {
      if (n.addressV6 !== undefined) fail(['topology', 'nodes', i, 'addressV6'], 'needs topology.underlayV6, the IPv6 underlay it belongs to');
    });
  }
  if (!parseCidr(lab.network.podCIDR)) fail(['network', 'podCIDR'], `"${lab.network.podCIDR}" is not a CIDR`);
  const kind = kinds[lab.network.plugin] ?? fail(['network', 'plugin'], `"${lab.network.plugin}" is not a network plugin cnilab has (${Object.keys(kinds).join(', ')})`);
  if (lab.network.podCIDRv6 !== undefined) {
    const v6 = parsePrefix(lab.network.podCIDRv6);
    if (v6?.family !== 6) fail(['network', 'podCIDRv6'], `"${lab.network.podCIDRv6}" is not an IPv6 CIDR like fd00:10::/48`);
    if (lab.network.subnetLenV6 < v6!.prefix) fail(['network', 'subnetLenV6'], `/${lab.network.subnetLenV6} is larger than the pod network ${lab.network.podCIDRv6}`);
    if (!kind.dualStack) fail(['network', 'podCIDRv6'], `the ${lab.network.plugin} datapath in cnilab gives pods IPv4 only (dual-stack: ${Object.values(kinds).filter((k) => k.dualStack).map((k) => k.name).join(', ') || 'none'})`);
  }
  const network = kind.network.safeParse(lab.network);
  if (!network.success) {
    const issue = network.error.issues[0];
    fail(['network', ...(issue.path as (string | number)[])], problemOf(issue, lab.network));
  } else lab.network = network.data as Lab['network'];
  const modes = proxyModesOf(kind);
  if (lab.network.proxyMode !== undefined && !modes.includes(lab.network.proxyMode)) {
    fail(['network', 'proxyMode'], `the ${lab.network.plugin} datapath works with kube-proxy in ${modes.join(' or ')} mode, not ${lab.network.proxyMode}${kind.proxyModes ? '' : ' (ebpf needs the cilium datapath\'s service maps)'}`);
  }
  lab.network.proxyMode ??= modes[0];
  lab.steps.forEach((step, i) => {
    if (step.proxyMode && !modes.includes(step.proxyMode)) fail(['steps', i, 'proxyMode'], `the ${lab.network.plugin} datapath never runs kube-proxy in ${step.proxyMode} mode (${modes.join(', ')}): this step could never run`);
  });
  for (const problem of kind.validate?.(lab) ?? []) fail(problem.path, problem.message);
  lab.workloads.forEach((w, i) =>
    (w.nodes ?? []).forEach((n, j) => {
      if (!seen.has(n)) fail(['workloads', i, 'nodes', j], `no node named "${n}" (nodes: ${[...seen].join(', ')})`);
    }),
  );
  lab.workloads.forEach((w, i) => {
    // A node has each host port once: two replicas on one node would both claim it.
    const nodeCount = (w.nodes ?? [...seen]).length;
    if (w.ports?.length && w.replicas > nodeCount) {
      fail(['workloads', i, 'replicas'], `${w.replicas} replicas publish host ports on ${nodeCount} node(s); at most one replica per node can hold a host port`);
    }
  });
  lab.workloads.forEach((w, i) => {
    for (const key of [INGRESS_ANNOTATION, EGRESS_ANNOTATION]) {
      const value = w.annotations?.[key];
      const problem = value === undefined ? undefined : bandwidthProblem(value);
      if (problem) fail(['workloads', i, 'annotations', key], problem);
    }
  });
  for (const p of capacityProblems(lab)) fail(p.path, p.message);
  const workloadNames = lab.workloads.map((w) => w.name);
  const serviceCtx = { workloads: workloadNames, serviceCIDR: lab.network.serviceCIDR, podCIDR: lab.network.podCIDR, underlay: lab.topology.underlay, serviceCIDRPath: ['network', 'serviceCIDR'] };
  for (const p of serviceProblems(lab.services, serviceCtx)) fail(p.path, p.message);
  lab.steps.forEach((s, i) => {
    if (s.node && !s.node.includes('{{') && !seen.has(s.node)) fail(['steps', i, 'node'], `no node named "${s.node}" (nodes: ${[...seen].join(', ')})`);
    if (s.capture && !seen.has(s.capture.node)) fail(['steps', i, 'capture', 'node'], `no node named "${s.capture.node}"`);
    if (s.scale && !workloadNames.includes(s.scale.workload)) fail(['steps', i, 'scale', 'workload'], `no workload named "${s.scale.workload}" (workloads: ${workloadNames.join(', ')})`);
    if (s.service && !seen.has(s.service.node)) fail(['steps', i, 'service', 'node'], `no node named "${s.service.node}" (nodes: ${[...seen].join(', ')})`);
    for (const [k, re] of Object.entries(s.save ?? {})) {
      try {
        new RegExp(re, 'm');
      } catch (e) {
        fail(['steps', i, 'save', k], `not a regular expression: ${(e as Error).message}`);
      }
    }
  });
  const pods = lab.workloads.flatMap((w) => Array.from({ length: w.replicas }, (_, i) => `${w.name}-${i}`));
  fillUnderlay(lab);
  checkPolicies(lab, kinds, fail);
  for (const p of exerciseProblems(lab.exercises ?? [], [...seen], pods)) fail(p.path, p.message);
  for (const p of challengeProblems(lab.challenges ?? [], [...seen], pods)) fail(p.path, p.message);
  lab.bench?.pairs?.forEach((p, i) => {
    for (const end of ['client', 'server'] as const) {
      if (!pods.includes(p[end])) fail(['bench', 'pairs', i, end], `no pod named "${p[end]}" (pods: ${pods.join(', ') || 'none'})`);
    }
    if (p.client === p.server) fail(['bench', 'pairs', i, 'server'], `client and server are the same pod "${p.client}"`);
  });
  return lab;
}

/**
 * Pods must fit the pod network: each node hands out addresses from its own
 * /subnetLen (less the network, gateway and broadcast addresses). Workloads
 * fill nodes in turn as the scheduler does; a scale step counts at its size.
 */
export function capacityProblems(lab: Lab): LabProblem[] {
  const net = parseCidr(lab.network.podCIDR);
  if (!net) return [];
  const len = Math.max(lab.network.subnetLen, net.prefix);
  const perNode = 2 ** (32 - len) - 3;
  const nodes = lab.topology.nodes.map((n) => n.name);
  const problems: LabProblem[] = [];
  const count = new Map<string, number>();
  const place = (replicas: number, on: string[], path: (string | number)[], from = 0) => {
    for (let i = from; i < replicas; i++) {
      const node = on[i % on.length];
      const n = (count.get(node) ?? 0) + 1;
      count.set(node, n);
      if (n > perNode) {
        problems.push({ path, message: `${replicas} replicas put more than ${perNode} pods on node ${node}: its /${len} of ${lab.network.podCIDR} holds ${perNode} (lower network.subnetLen for more)` });
        return false;
      }
    }
    return true;
  };
  for (const [i, w] of lab.workloads.entries()) if (!place(w.replicas, w.nodes ?? nodes, ['workloads', i, 'replicas'])) return problems;
  // A scale step grows one workload from its replicas; the others stay as they are.
  for (const [i, step] of lab.steps.entries()) {
    const w = lab.workloads.find((x) => x.name === step.scale?.workload);
    if (!w || step.scale!.replicas <= w.replicas) continue;
    const snapshot = new Map(count);
    if (!place(step.scale!.replicas, w.nodes ?? nodes, ['steps', i, 'scale', 'replicas'], w.replicas)) return problems;
    count.clear();
    for (const [k, v] of snapshot) count.set(k, v);
  }
  return problems;
}

/** The labels of a workload's pods: as written, or app: <workload>. */
export function workloadLabels(w: Lab['workloads'][number]): Record<string, string> {
  return w.labels ?? { app: w.name };
}

/** Which policies a lab puts in force at the start: all but those a step applies later. */
export function initialPolicies(lab: Lab): Lab['policies'] {
  const later = lab.steps.flatMap((s) => (s.policy && 'apply' in s.policy ? s.policy.apply : []));
  return lab.policies.filter((p) => !later.some((ref) => policyRefMatches(ref, p)));
}

/** A step's reference to a policy: `name` or `namespace/name`. */
export function policyRefMatches(ref: string, p: Lab['policies'][number]): boolean {
  return ref.includes('/') ? ref === `${p.metadata.namespace}/${p.metadata.name}` : ref === p.metadata.name;
}

/** The policies as the lab file writes them, before the underlay's values are filled in. */
const writtenPolicies = new WeakMap<Lab, Lab['policies']>();

/**
 * A policy may name the underlay ({{topology.underlay}}, {{nodes.<node>.address}} in an
 * ipBlock): filled from the lab's topology when loaded, and again when a backend runs
 * the lab on another (hosts: the machines' own network).
 */
export function fillUnderlay(lab: Lab): void {
  const written = writtenPolicies.get(lab) ?? structuredClone(lab.policies);
  writtenPolicies.set(lab, written);
  const values: Record<string, string> = { 'topology.underlay': lab.topology.underlay };
  for (const n of lab.topology.nodes) values[`nodes.${n.name}.address`] = n.address;
  const fill = (v: unknown) => (typeof v === 'string' ? v.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (m, k: string) => values[k] ?? m) : v);
  lab.policies = JSON.parse(JSON.stringify(written), (_, v) => fill(v)) as Lab['policies'];
}

function checkPolicies(lab: Lab, kinds: Record<string, NetworkKind>, fail: (path: (string | number)[], msg: string) => never): void {
  if (lab.policies.length && !kinds[lab.network.plugin].enforcesPolicy) {
    const engines = Object.keys(kinds).filter((n) => kinds[n].enforcesPolicy);
    fail(['policies'], `network plugin "${lab.network.plugin}" enforces no NetworkPolicy: policy is the network plugin's job, and this one only moves packets (plugins with a policy engine: ${engines.join(', ')})`);
  }
  const cluster = {
    namespaces: lab.namespaces,
    pods: lab.workloads.flatMap((w) => Array.from({ length: w.replicas }, (_, i) => ({ name: `${w.name}-${i}`, namespace: w.namespace, labels: workloadLabels(w) }))),
  };
  for (const p of policyProblems(lab.policies, cluster)) fail(p.path, p.message);
  lab.steps.forEach((s, i) => {
    if (!s.policy) return;
    const [verb, refs] = 'apply' in s.policy ? (['apply', s.policy.apply] as const) : (['delete', s.policy.delete] as const);
    refs.forEach((ref, j) => {
      const hits = lab.policies.filter((p) => policyRefMatches(ref, p));
      if (!hits.length) fail(['steps', i, 'policy', verb, j], `no policy named "${ref}" in policies (${lab.policies.map((p) => p.metadata.name).join(', ') || 'none'})`);
      if (hits.length > 1) fail(['steps', i, 'policy', verb, j], `"${ref}" names a policy in several namespaces: write namespace/name`);
    });
  });
}

export function loadLabWith(nameOrPath: string, kinds: Record<string, NetworkKind>): { lab: Lab; file: string } {
  const file = resolveLabFile(nameOrPath);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LabFileError(file, undefined, '', `cannot read: ${(e as Error).message}`);
  }
  return { lab: parseLabWith(text, file, kinds), file };
}
