// Services in the workshop views: what each node's kube-proxy was given and
// reports it applied (read from the node's own files), drawn beside the pods,
// and the translation hop of a trace to a ClusterIP or a service name: which
// rule or map rewrote the frontend to which pod. Pure but for readServices.
import type { Backend } from '../topologies/backend.js';
import { CLUSTER_DOMAIN, type ClusterServices, type ProxyStatus, type ServicePort, type ServiceState } from '../services/model.js';
import { SERVICES_FILE, STATUS_FILE } from '../runner/service-controller.js';

export interface ProxyView {
  node: string;
  mode: string;
  /** The services generation it applied. */
  generation: number;
  /** Rules (iptables, nftables) or map entries (ebpf). */
  rules: number;
  bpfMaps?: string;
  error?: string;
}

export interface ServicesView {
  /** Every node's kube-proxy: each programs every service on its own node. */
  proxies: ProxyView[];
  services: ServiceState[];
}

/** The services of a running lab as its nodes' proxies have them; undefined when the lab has none. */
export async function readServices(backend: Backend, nodes: string[]): Promise<ServicesView | undefined> {
  const proxies: ProxyView[] = [];
  let services: ServiceState[] | undefined;
  for (const node of nodes) {
    const [file, status] = await Promise.all([backend.readFile(node, SERVICES_FILE), backend.readFile(node, STATUS_FILE)]);
    if (file && !services) services = (JSON.parse(file) as ClusterServices).services;
    if (status) {
      const s = JSON.parse(status) as ProxyStatus;
      proxies.push({ node, mode: s.mode, generation: s.generation, rules: s.rules, ...(s.bpfMaps ? { bpfMaps: s.bpfMaps } : {}), ...(s.error ? { error: s.error } : {}) });
    }
  }
  return services ? { proxies, services } : undefined;
}

const portText = (p: ServicePort) => `${p.port}/${p.protocol}${p.targetPort !== p.port ? ` → ${p.targetPort}` : ''}${p.nodePort ? ` (NodePort ${p.nodePort})` : ''}`;

/** The services as lines for the terminal: each frontend, then its endpoints with their nodes. */
export function servicesLines(v: ServicesView): { head: string; services: { text: string; endpoints: string[] }[] } {
  const unit = (p: ProxyView) => (p.mode === 'ebpf' ? 'map entries' : 'rules');
  const head = `services: kube-proxy ${[...new Set(v.proxies.map((p) => p.mode))].join('/') || '?'} on ${v.proxies.map((p) => `${p.node} (${p.rules} ${unit(p)}, generation ${p.generation}${p.error ? `, failed: ${p.error}` : ''})`).join(', ') || 'no node'}`;
  return {
    head,
    services: v.services.map((s) => ({
      text: `${s.namespace}/${s.name} ${s.clusterIP === 'None' ? 'headless (DNS answers with the pods)' : `${s.type} ${s.clusterIP}`} ${s.ports.map(portText).join(', ')}${s.sessionAffinity === 'ClientIP' ? ' · affinity ClientIP' : ''}`,
      endpoints: s.endpoints.length ? s.endpoints.map((e) => `${e.pod} ${e.ip} on ${e.node}`) : ['no endpoints: connections are refused'],
    })),
  };
}

/** A trace target that is a service: its ClusterIP, `name`, `name.namespace`, the full DNS name, or `namespace/name`. */
export function findService(v: ServicesView | undefined, what: string): ServiceState | undefined {
  if (!v) return undefined;
  return v.services.find((s) => {
    if (s.clusterIP === 'None') return false;
    const names = [s.clusterIP, s.name, `${s.name}.${s.namespace}`, `${s.name}.${s.namespace}.svc`, `${s.name}.${s.namespace}.svc.${CLUSTER_DOMAIN}`, `${s.namespace}/${s.name}`];
    return names.includes(what) && (s.namespace === 'default' || what !== s.name);
  });
}

/** Which pod answered: the lab's web servers say "pod <name> on <node>, ..." */
export function answeringPod(body: string, s: ServiceState): string | undefined {
  const name = /^pod (\S+) on /m.exec(body)?.[1];
  return s.endpoints.find((e) => e.pod === name)?.pod;
}

/** The hop where the frontend became a pod: the chains or maps, as the proxy of the source's node wrote them. */
export function translationText(mode: string, s: ServiceState, endpoint: { pod: string; ip: string }, nat: string[] = [], bpfMaps?: string): { text: string; kernel: string } {
  const p = s.ports.find((x) => x.protocol === 'TCP') ?? s.ports[0];
  const front = `${s.clusterIP}:${p.port}/${p.protocol}`;
  const to = `${endpoint.ip}:${p.targetPort} (pod ${endpoint.pod})`;
  const n = s.endpoints.length;
  const pick = s.sessionAffinity === 'ClientIP' ? 'the client\'s remembered one (ClientIP affinity) or one at random' : `one of ${n} at random`;
  if (mode === 'ebpf') {
    return {
      text: `the BPF program on the pod's lxc device looks ${front} up in lb4_services: slot 0 says ${n} backends, it picks ${pick} (slot → backend ID → lb4_backends) and rewrites the destination to ${to} before routing (DNAT in tc, no nat table); the reply gets its source back from lb4_ct and lb4_reverse_nat`,
      kernel: `bpftool map dump pinned ${bpfMaps ?? '<node>/sys/fs/bpf/cilium/maps'}/lb4_services`,
    };
  }
  if (mode === 'nftables') {
    return {
      text: `nftables table ip kube-proxy, prerouting: the service-ips map sends ${front} to the service's chain, which picks ${pick} (numgen) and jumps to the endpoint chain that DNATs to ${to}`,
      kernel: 'nft list table ip kube-proxy',
    };
  }
  const svcRule = nat.find((r) => r.startsWith('-A KUBE-SERVICES ') && r.includes(`-d ${s.clusterIP}/32`) && r.includes(`--dport ${p.port} `) && r.includes(`-p ${p.protocol.toLowerCase()}`));
  const svcChain = /-j (KUBE-SVC-\w+)/.exec(svcRule ?? '')?.[1];
  const sepRule = nat.find((r) => /^-A KUBE-SEP-\w+ /.test(r) && r.includes(`--to-destination ${endpoint.ip}:${p.targetPort}`) && nat.some((j) => svcChain && j.startsWith(`-A ${svcChain} `) && j.includes(`-j ${r.split(' ')[1]}`)));
  const sepChain = sepRule?.split(' ')[1];
  return {
    text: `iptables nat PREROUTING → KUBE-SERVICES: ${front} jumps to ${svcChain ?? 'its KUBE-SVC chain'}, which picks ${pick} (statistic random) → ${sepChain ?? 'a KUBE-SEP chain'}: DNAT to ${to}; conntrack reverses it on the reply`,
    kernel: `iptables -t nat -S ${svcChain ?? 'KUBE-SERVICES'}`,
  };
}
