// Kubernetes Services in a lab: the lab-file shape (a Service's own fields),
// what a schema cannot check, ClusterIPs from the service CIDR, and the
// endpoints (the ready pods a service selects). Pure data: no kernel here.
import { z } from 'zod';
import { contains, formatIp, network, broadcast, overlaps, parseCidr, parseIp } from '../net/ipnet.js';

export const DEFAULT_SERVICE_CIDR = '10.96.0.0/12';
export const CLUSTER_DOMAIN = 'cluster.local';
/** ebpf: the datapath's own service maps (Cilium's kube-proxy replacement); only a datapath with them offers it. */
export const PROXY_MODES = ['iptables', 'nftables', 'ebpf'] as const;
export type ProxyMode = (typeof PROXY_MODES)[number];

const port = (what: string) => z.number().int().min(1, `a ${what} is 1-65535`).max(65535, `a ${what} is 1-65535`);

export const servicePortSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'lower-case letters, digits and "-"').optional(),
  port: port('port'),
  /** The pod's port; the service's port when left out, as in Kubernetes. */
  targetPort: port('targetPort').optional(),
  nodePort: z.number().int().min(30000, 'a nodePort is 30000-32767').max(32767, 'a nodePort is 30000-32767').optional(),
  protocol: z.enum(['TCP', 'UDP']).default('TCP'),
});

export const serviceSchema = z.strictObject({
  name: z.string().regex(/^[a-z]([a-z0-9-]*[a-z0-9])?$/, 'a DNS label: lower-case letters, digits and "-", starting with a letter'),
  namespace: z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/).default('default'),
  /** The workload whose ready pods are the endpoints. */
  selector: z.string(),
  type: z.enum(['ClusterIP', 'NodePort']).default('ClusterIP'),
  /** An address of the service CIDR, or None for a headless service (DNS answers with the pods). */
  clusterIP: z.string().optional(),
  sessionAffinity: z.enum(['None', 'ClientIP']).default('None'),
  ports: z.array(servicePortSchema).min(1),
});

export type ServiceSpec = z.infer<typeof serviceSchema>;
export type ServicePortSpec = z.infer<typeof servicePortSchema>;

export interface Problem {
  path: (string | number)[];
  message: string;
}

/** What the schema cannot say: names that refer to something, ranges that must stay apart, ports taken twice. */
export function serviceProblems(
  services: ServiceSpec[],
  ctx: { workloads: string[]; serviceCIDR: string; podCIDR: string; underlay: string; serviceCIDRPath: (string | number)[] },
): Problem[] {
  const problems: Problem[] = [];
  const cidr = parseCidr(ctx.serviceCIDR);
  if (!cidr) return [{ path: ctx.serviceCIDRPath, message: `"${ctx.serviceCIDR}" is not a CIDR like ${DEFAULT_SERVICE_CIDR}` }];
  if (cidr.prefix > 28) problems.push({ path: ctx.serviceCIDRPath, message: `${ctx.serviceCIDR} is too small: the cluster DNS takes its tenth address` });
  for (const [what, other] of [['pod network', ctx.podCIDR], ['underlay', ctx.underlay]] as const) {
    const o = parseCidr(other);
    if (o && overlaps(cidr, o)) problems.push({ path: ctx.serviceCIDRPath, message: `${ctx.serviceCIDR} overlaps the ${what} ${other}` });
  }
  const names = new Set<string>();
  const nodePorts = new Map<number, string>();
  const ips = new Map<string, string>([[dnsServiceIP(ctx.serviceCIDR), 'kube-system/kube-dns']]);
  services.forEach((s, i) => {
    const id = `${s.namespace}/${s.name}`;
    if (names.has(id)) problems.push({ path: ['services', i, 'name'], message: `service "${id}" is listed twice` });
    names.add(id);
    if (!ctx.workloads.includes(s.selector)) {
      problems.push({ path: ['services', i, 'selector'], message: `no workload named "${s.selector}" (workloads: ${ctx.workloads.join(', ') || 'none'})` });
    }
    if (s.clusterIP !== undefined && s.clusterIP !== 'None') {
      const ip = parseIp(s.clusterIP);
      if (ip === undefined || !contains(cidr, ip)) problems.push({ path: ['services', i, 'clusterIP'], message: `${s.clusterIP} is not an address of the service CIDR ${ctx.serviceCIDR}` });
      else if (ips.has(s.clusterIP)) problems.push({ path: ['services', i, 'clusterIP'], message: `${s.clusterIP} is taken by ${ips.get(s.clusterIP)}` });
      else ips.set(s.clusterIP, id);
    }
    if (s.clusterIP === 'None' && s.type !== 'ClusterIP') problems.push({ path: ['services', i, 'type'], message: 'a headless service (clusterIP: None) has no NodePort' });
    const portKeys = new Set<string>();
    s.ports.forEach((p, j) => {
      const key = `${p.port}/${p.protocol}`;
      if (portKeys.has(key)) problems.push({ path: ['services', i, 'ports', j, 'port'], message: `port ${key} is listed twice in service "${id}"` });
      portKeys.add(key);
      if (s.ports.length > 1 && !p.name) problems.push({ path: ['services', i, 'ports', j, 'name'], message: 'a service with several ports names each of them' });
      if (p.nodePort === undefined) return;
      if (s.type !== 'NodePort') problems.push({ path: ['services', i, 'ports', j, 'nodePort'], message: `a nodePort needs type: NodePort (service "${id}" is ${s.type})` });
      const holder = nodePorts.get(p.nodePort);
      if (holder) problems.push({ path: ['services', i, 'ports', j, 'nodePort'], message: `nodePort ${p.nodePort} is taken by ${holder}` });
      else nodePorts.set(p.nodePort, id);
    });
  });
  return problems;
}

/** The address of the cluster DNS service: the tenth of the service CIDR, as kubeadm picks it. */
export function dnsServiceIP(serviceCIDR: string): string {
  const c = parseCidr(serviceCIDR)!;
  return formatIp(network(c) + 10);
}

/**
 * ClusterIPs for every service, in the order listed: a fixed one where the lab
 * gives it, otherwise the next free address after the DNS service's. The same
 * lab gets the same addresses every time.
 */
export function allocateClusterIPs(services: ServiceSpec[], serviceCIDR: string): Map<string, string> {
  const c = parseCidr(serviceCIDR)!;
  const taken = new Set<number>([parseIp(dnsServiceIP(serviceCIDR))!]);
  for (const s of services) if (s.clusterIP && s.clusterIP !== 'None') taken.add(parseIp(s.clusterIP)!);
  const out = new Map<string, string>();
  let next = network(c) + 11;
  for (const s of services) {
    const id = `${s.namespace}/${s.name}`;
    if (s.clusterIP) {
      out.set(id, s.clusterIP);
      continue;
    }
    while (taken.has(next)) next++;
    if (next >= broadcast(c)) throw new Error(`the service CIDR ${serviceCIDR} has no free address left for ${id}`);
    taken.add(next);
    out.set(id, formatIp(next));
  }
  return out;
}

/** A pod as the endpoint controller sees it. */
export interface PodView {
  name: string;
  node: string;
  workload: string;
  ip?: string;
  status: string;
}

export interface Endpoint {
  ip: string;
  pod: string;
  node: string;
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort: number;
  nodePort?: number;
  protocol: 'TCP' | 'UDP';
}

/** One service as every node's proxy and the DNS server get it. */
export interface ServiceState {
  name: string;
  namespace: string;
  type: 'ClusterIP' | 'NodePort';
  /** "None" for a headless service. */
  clusterIP: string;
  sessionAffinity: 'None' | 'ClientIP';
  ports: ServicePort[];
  endpoints: Endpoint[];
}

/** The file the runner writes on every node and the proxy applies; `generation` counts the changes. */
export interface ClusterServices {
  generation: number;
  podCIDR: string;
  serviceCIDR: string;
  services: ServiceState[];
}

/** What a proxy writes after each sync, so the runner knows when a change is in the kernel. */
export interface ProxyStatus {
  generation: number;
  mode: ProxyMode;
  syncMs: number;
  /** Rules written (iptables, nftables) or map entries (ebpf). */
  rules: number;
  /** ebpf mode: the directory of the maps it writes, for `bpftool map dump pinned`. */
  bpfMaps?: string;
  error?: string;
}

/** Endpoints are the selected workload's pods that are running (ready), in name order. */
export function endpointsOf(selector: string, pods: PodView[]): Endpoint[] {
  return pods
    .filter((p) => p.workload === selector && p.status === 'Running' && p.ip)
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }))
    .map((p) => ({ ip: p.ip!, pod: p.name, node: p.node }));
}

/** The cluster's services with their addresses and current endpoints. */
export function serviceStates(services: ServiceSpec[], serviceCIDR: string, pods: PodView[]): ServiceState[] {
  const ips = allocateClusterIPs(services, serviceCIDR);
  return services.map((s) => ({
    name: s.name,
    namespace: s.namespace,
    type: s.type,
    clusterIP: ips.get(`${s.namespace}/${s.name}`)!,
    sessionAffinity: s.sessionAffinity,
    ports: s.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort ?? p.port, nodePort: p.nodePort, protocol: p.protocol })),
    endpoints: endpointsOf(s.selector, pods),
  }));
}

/** The cluster DNS service itself: kube-system/kube-dns on UDP and TCP 53, at the tenth address. */
export function dnsService(serviceCIDR: string, workload: string): ServiceSpec {
  return {
    name: 'kube-dns',
    namespace: 'kube-system',
    selector: workload,
    type: 'ClusterIP',
    clusterIP: dnsServiceIP(serviceCIDR),
    sessionAffinity: 'None',
    ports: [
      { name: 'dns', port: 53, protocol: 'UDP' },
      { name: 'dns-tcp', port: 53, protocol: 'TCP' },
    ],
  };
}

/** A DNS name per service (its ClusterIP, or every endpoint when headless), as lines of a hosts file. */
export function dnsRecords(services: ServiceState[]): string {
  const lines: string[] = [];
  for (const s of services) {
    const fqdn = `${s.name}.${s.namespace}.svc.${CLUSTER_DOMAIN}`;
    const addrs = s.clusterIP === 'None' ? s.endpoints.map((e) => e.ip) : [s.clusterIP];
    for (const a of addrs) lines.push(`${a} ${fqdn}`);
  }
  return lines.join('\n') + '\n';
}

/** A pod's resolv.conf: the cluster DNS and the search path a kubelet writes for namespace `ns`. */
export function podResolvConf(dnsIP: string, ns = 'default'): string {
  return `search ${ns}.svc.${CLUSTER_DOMAIN} svc.${CLUSTER_DOMAIN} ${CLUSTER_DOMAIN}\nnameserver ${dnsIP}\noptions ndots:5\n`;
}
