// NetworkPolicy as Cilium's datapath holds it, as plain data (bpf/policy.h
// enforces it, the cilium agent writes it): a security identity per label set
// (a pod's labels with its namespace and the namespace's labels), a CIDR
// identity per prefix the policies name, the ipcache from addresses to
// identities, and per local endpoint and direction the {identity, protocol,
// port} entries its policies allow. As in Cilium, an ipBlock selects CIDR
// identities only: it does not match pod addresses (CIDR rules are for
// traffic to and from outside the cluster).
import { contains, formatCidr, networkCidr, parseCidr, type Cidr } from '../net/ipnet.js';
import { endpointPolicies, type Cluster, type Direction, type PolicyPod, type PortMatch, type Rule } from './model.js';
import type { NetworkPolicy } from './schema.js';

export const IDENTITY_ANY = 0;
export const IDENTITY_WORLD = 2;
/** Cilium's first identity for label sets, and its first local (CIDR) identity. */
export const FIRST_LABEL_IDENTITY = 256;
export const FIRST_CIDR_IDENTITY = 1 << 24;
/** A port range becomes one entry per port; wider ranges than this are refused. */
export const MAX_RANGE = 4096;
const PROTO = { TCP: 6, UDP: 17, SCTP: 132 } as const;

/** A pod as the agent sees it: dual-stack pods have an IPv6 address too, with the same identity. */
export interface CiliumPod extends PolicyPod {
  ip6?: string;
}

export interface CiliumView extends Cluster {
  pods: CiliumPod[];
  policies: NetworkPolicy[];
}

export interface LocalEndpoint {
  ip: string;
  ifindex: number;
}

export interface PolicyEntry {
  ifindex: number;
  dir: Direction;
  identity: number;
  proto: number;
  dport: number;
  /** The policy the entry comes from, `<namespace>/<name>` (the first one, when several allow the same). */
  policy: string;
}

export interface CompiledPolicy {
  /** Every identity in use, with what it stands for. */
  identities: { identity: number; labels: string }[];
  /** IPv4 /32 and IPv6 /128 entries of pods, and the policies' CIDRs. */
  ipcache: { cidr: string; identity: number }[];
  entries: PolicyEntry[];
  /** Per local endpoint: isolated in each direction, and by which policies. */
  state: { ifindex: number; pod: string; ingress: string[]; egress: string[] }[];
}

const sortedLabels = (l: Record<string, string>) => Object.keys(l).sort().map((k) => `${k}=${l[k]}`);

/** What an identity stands for: the pod's namespace, its labels, its namespace's labels. */
export function labelSetOf(cluster: Cluster, pod: Cluster['pods'][number]): string {
  const ns = cluster.namespaces.find((n) => n.name === pod.namespace)?.labels ?? {};
  return [`k8s:io.kubernetes.pod.namespace=${pod.namespace}`, ...sortedLabels(pod.labels).map((l) => `k8s:${l}`), ...sortedLabels(ns).map((l) => `k8s:io.cilium.k8s.namespace.labels.${l}`)].join(',');
}

const within = (inner: Cidr, outer: Cidr) => inner.prefix >= outer.prefix && contains(outer, inner.ip);

function ports(rule: Rule): { proto: number; dport: number }[] {
  if (!rule.ports.length) return [{ proto: 0, dport: 0 }];
  return rule.ports.flatMap((p: PortMatch) => {
    const proto = PROTO[p.protocol];
    if (p.port === undefined) return [{ proto, dport: 0 }];
    const end = p.endPort ?? p.port;
    if (end - p.port + 1 > MAX_RANGE) throw new Error(`${rule.policy}: port range ${p.port}-${end} is wider than ${MAX_RANGE} ports, one policy map entry each`);
    return Array.from({ length: end - p.port + 1 }, (_, i) => ({ proto, dport: p.port! + i }));
  });
}

export function compileCilium(view: CiliumView, local: LocalEndpoint[]): CompiledPolicy {
  const cluster: Cluster = { pods: view.pods, namespaces: view.namespaces };
  // Identities numbered in the order of their label sets: every node computes the same from the same view.
  const sets = [...new Set(view.pods.map((p) => labelSetOf(cluster, p)))].sort();
  const identityOfSet = new Map(sets.map((s, i) => [s, FIRST_LABEL_IDENTITY + i]));
  const identityOfIp = new Map(view.pods.map((p) => [p.ip, identityOfSet.get(labelSetOf(cluster, p))!]));

  const prefixes = new Map<string, Cidr>();
  for (const p of view.policies) {
    for (const r of [...(p.spec.ingress ?? []).map((x) => x.from), ...(p.spec.egress ?? []).map((x) => x.to)]) {
      for (const peer of r ?? []) {
        for (const text of peer.ipBlock ? [peer.ipBlock.cidr, ...(peer.ipBlock.except ?? [])] : []) {
          const c = networkCidr(parseCidr(text)!);
          prefixes.set(formatCidr(c), c);
        }
      }
    }
  }
  const cidrs = [...prefixes.keys()].sort();
  const identityOfCidr = new Map(cidrs.map((c, i) => [c, FIRST_CIDR_IDENTITY + i]));

  const peerIdentities = (rule: Rule): number[] => {
    if (rule.peer.kind === 'any') return [IDENTITY_ANY];
    if (rule.peer.kind === 'pods') return [...new Set(rule.peer.ips.map((ip) => identityOfIp.get(ip)!))];
    const outer = networkCidr(parseCidr(rule.peer.cidr)!);
    const except = rule.peer.except.map((e) => networkCidr(parseCidr(e)!));
    // A CIDR identity carries every prefix that contains it, so a rule selects each known prefix inside its block.
    return cidrs.filter((c) => within(prefixes.get(c)!, outer) && !except.some((e) => within(prefixes.get(c)!, e))).map((c) => identityOfCidr.get(c)!);
  };

  const eps = endpointPolicies(cluster, view.policies);
  const entries = new Map<string, PolicyEntry>();
  const state: CompiledPolicy['state'] = [];
  for (const l of local) {
    const ep = eps.find((e) => e.pod.ip === l.ip);
    if (!ep) continue;
    if (!ep.ingress.isolated && !ep.egress.isolated) continue;
    state.push({ ifindex: l.ifindex, pod: `${ep.pod.namespace}/${ep.pod.name}`, ingress: ep.ingress.policies, egress: ep.egress.policies });
    for (const dir of ['ingress', 'egress'] as const) {
      for (const rule of ep[dir].rules) {
        for (const identity of peerIdentities(rule)) {
          for (const p of ports(rule)) {
            const e = { ifindex: l.ifindex, dir, identity, ...p, policy: rule.policy };
            const key = `${e.ifindex} ${dir} ${identity} ${p.proto} ${p.dport}`;
            if (!entries.has(key)) entries.set(key, e);
          }
        }
      }
    }
  }
  return {
    identities: [...sets.map((s) => ({ identity: identityOfSet.get(s)!, labels: s })), ...cidrs.map((c) => ({ identity: identityOfCidr.get(c)!, labels: `cidr:${c}` }))],
    ipcache: [
      ...view.pods.map((p) => ({ cidr: `${p.ip}/32`, identity: identityOfIp.get(p.ip)! })),
      ...view.pods.filter((p) => p.ip6).map((p) => ({ cidr: `${p.ip6}/128`, identity: identityOfIp.get(p.ip)! })),
      ...cidrs.map((c) => ({ cidr: c, identity: identityOfCidr.get(c)! })),
    ],
    entries: [...entries.values()],
    state,
  };
}
