// What a set of NetworkPolicies means for a set of pods, as plain data and with
// no kernel: per endpoint whether it is isolated in each direction and the
// rules that let traffic through, and a verdict for one connection. The
// iptables and BPF engines enforce what this computes; the tests hold both to it.
import { contains, parseCidr, parseIp } from '../net/ipnet.js';
import type { LabelSelector, NetworkPolicy, PolicyPeer, PolicyPort, Protocol } from './schema.js';

export type Labels = Record<string, string>;

export interface PolicyPod {
  name: string;
  namespace: string;
  labels: Labels;
  ip: string;
  node?: string;
}

export interface PolicyNamespace {
  name: string;
  labels: Labels;
}

export interface Cluster {
  pods: PolicyPod[];
  /** Namespaces with labels; one that pods use but that is not listed has only its name label. */
  namespaces: PolicyNamespace[];
}

/** Every namespace carries this label with its own name (Kubernetes sets it). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export type Direction = 'ingress' | 'egress';

/** A port match of a rule: a protocol, and a port or a range of them (none: every port). */
export interface PortMatch {
  protocol: Protocol;
  port?: number;
  endPort?: number;
}

/** The other end a rule lets through. */
export type Peer =
  | { kind: 'any' }
  /** Pods picked by selectors: `selector` in Calico's syntax names the set; `ips` are its members now. */
  | { kind: 'pods'; selector: string; ips: string[] }
  | { kind: 'cidr'; cidr: string; except: string[] };

export interface Rule {
  /** `<namespace>/<name>` of the policy the rule comes from. */
  policy: string;
  peer: Peer;
  /** Empty: every port and protocol. */
  ports: PortMatch[];
}

export interface DirectionPolicy {
  /** At least one policy selects the pod for this direction: anything no rule allows is dropped. */
  isolated: boolean;
  /** Those policies, `<namespace>/<name>`, in name order. */
  policies: string[];
  rules: Rule[];
}

export interface EndpointPolicy {
  pod: PolicyPod;
  ingress: DirectionPolicy;
  egress: DirectionPolicy;
}

export const policyId = (p: NetworkPolicy) => `${p.metadata.namespace}/${p.metadata.name}`;

/** Whether `labels` satisfy a selector; an empty selector matches everything. */
export function selectorMatches(sel: LabelSelector, labels: Labels): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]);
    const ok = { In: inValues, NotIn: !inValues, Exists: has, DoesNotExist: !has }[e.operator];
    if (!ok) return false;
  }
  return true;
}

/** A selector in Calico's selector syntax (what Felix hashes into an ipset name); `prefix` marks namespace labels. */
export function calicoSelector(sel: LabelSelector, prefix = ''): string {
  const q = (s: string) => `'${s}'`;
  const parts = [
    ...Object.entries(sel.matchLabels ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${prefix}${k} == ${q(v)}`),
    ...(sel.matchExpressions ?? []).map((e) => {
      const key = prefix + e.key;
      const values = `{${[...(e.values ?? [])].sort().map(q).join(', ')}}`;
      return { In: `${key} in ${values}`, NotIn: `${key} not in ${values}`, Exists: `has(${key})`, DoesNotExist: `!has(${key})` }[e.operator];
    }),
  ];
  return parts.length ? parts.join(' && ') : 'all()';
}

export function namespaceLabels(cluster: Cluster, ns: string): Labels {
  return { ...(cluster.namespaces.find((n) => n.name === ns)?.labels ?? {}), [NAMESPACE_NAME_LABEL]: ns };
}

/** policyTypes as Kubernetes defaults them: Ingress always, Egress when there are egress rules. */
export function policyTypes(p: NetworkPolicy): Direction[] {
  if (p.spec.policyTypes) return p.spec.policyTypes.map((t) => (t === 'Ingress' ? 'ingress' : 'egress'));
  return p.spec.egress?.length ? ['ingress', 'egress'] : ['ingress'];
}

/** The pods a policy applies to: those of its namespace its podSelector matches. */
export function selectedPods(cluster: Cluster, p: NetworkPolicy): PolicyPod[] {
  return cluster.pods.filter((pod) => pod.namespace === p.metadata.namespace && selectorMatches(p.spec.podSelector, pod.labels));
}

/** One peer of a rule, resolved against the cluster: pod selectors become the addresses of the pods they pick. */
export function resolvePeer(cluster: Cluster, policyNamespace: string, peer: PolicyPeer): Peer {
  if (peer.ipBlock) return { kind: 'cidr', cidr: peer.ipBlock.cidr, except: peer.ipBlock.except ?? [] };
  const nsSel = peer.namespaceSelector;
  const podSel = peer.podSelector ?? {};
  const inNamespace = (ns: string) => (nsSel ? selectorMatches(nsSel, namespaceLabels(cluster, ns)) : ns === policyNamespace);
  const pods = cluster.pods.filter((p) => inNamespace(p.namespace) && selectorMatches(podSel, p.labels));
  const nsPart = nsSel ? calicoSelector(nsSel, 'pcns.') : `projectcalico.org/namespace == '${policyNamespace}'`;
  const selector = [nsPart, calicoSelector(podSel)].filter((s) => s !== 'all()').join(' && ') || 'all()';
  return { kind: 'pods', selector, ips: pods.map((p) => p.ip).sort() };
}

const portMatch = (p: PolicyPort): PortMatch => ({
  protocol: p.protocol,
  ...(typeof p.port === 'number' ? { port: p.port } : {}),
  ...(p.endPort !== undefined ? { endPort: p.endPort } : {}),
});

/** The rules of one direction of one policy; an empty or missing peer list means any peer. */
export function policyRules(cluster: Cluster, p: NetworkPolicy, dir: Direction): Rule[] {
  const id = policyId(p);
  const specRules = dir === 'ingress' ? (p.spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports })) : (p.spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
  return specRules.flatMap((r) => {
    const ports = (r.ports ?? []).map(portMatch);
    const peers: Peer[] = r.peers?.length ? r.peers.map((peer) => resolvePeer(cluster, p.metadata.namespace, peer)) : [{ kind: 'any' }];
    return peers.map((peer) => ({ policy: id, peer, ports }));
  });
}

/** Per pod, per direction: isolated or not, and every rule of every policy that selects it. */
export function endpointPolicies(cluster: Cluster, policies: NetworkPolicy[]): EndpointPolicy[] {
  const sorted = [...policies].sort((a, b) => policyId(a).localeCompare(policyId(b)));
  return cluster.pods.map((pod) => {
    const forDir = (dir: Direction): DirectionPolicy => {
      const applying = sorted.filter((p) => policyTypes(p).includes(dir) && selectedPods(cluster, p).includes(pod));
      return { isolated: applying.length > 0, policies: applying.map(policyId), rules: applying.flatMap((p) => policyRules(cluster, p, dir)) };
    };
    return { pod, ingress: forDir('ingress'), egress: forDir('egress') };
  });
}

export function inCidr(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const n = parseIp(ip);
  return c !== undefined && n !== undefined && contains(c, n);
}

export function peerMatches(peer: Peer, ip: string): boolean {
  if (peer.kind === 'any') return true;
  if (peer.kind === 'pods') return peer.ips.includes(ip);
  return inCidr(peer.cidr, ip) && !peer.except.some((e) => inCidr(e, ip));
}

/** A connection's protocol: one a policy port can name, or ICMP (matched only by rules without ports). */
export type ConnProtocol = Protocol | 'ICMP';

export function portsMatch(ports: PortMatch[], protocol: ConnProtocol, port?: number): boolean {
  if (!ports.length) return true;
  return ports.some((p) => p.protocol === protocol && (p.port === undefined || (port !== undefined && port >= p.port && port <= (p.endPort ?? p.port))));
}

export interface DirectionVerdict {
  isolated: boolean;
  allowed: boolean;
  /** The policies whose rules allow it (empty when not isolated or dropped). */
  allowedBy: string[];
  /** When dropped: the policies that isolate the pod and did not allow it. */
  droppedBy: string[];
}

export interface Verdict {
  allowed: boolean;
  /** The source pod's egress, when the source is a pod. */
  egress?: DirectionVerdict;
  /** The destination pod's ingress, when the destination is a pod. */
  ingress?: DirectionVerdict;
}

function judge(dp: DirectionPolicy, remoteIp: string, protocol: ConnProtocol, port?: number): DirectionVerdict {
  if (!dp.isolated) return { isolated: false, allowed: true, allowedBy: [], droppedBy: [] };
  const allowedBy = [...new Set(dp.rules.filter((r) => peerMatches(r.peer, remoteIp) && portsMatch(r.ports, protocol, port)).map((r) => r.policy))];
  return { isolated: true, allowed: allowedBy.length > 0, allowedBy, droppedBy: allowedBy.length ? [] : dp.policies };
}

/**
 * Whether a new connection from `fromIp` to `toIp` is allowed: the source pod's
 * egress (if the source is a pod) and the destination pod's ingress (if it is one) must both allow it.
 */
export function verdict(endpoints: EndpointPolicy[], fromIp: string, toIp: string, protocol: ConnProtocol, port?: number): Verdict {
  const src = endpoints.find((e) => e.pod.ip === fromIp);
  const dst = endpoints.find((e) => e.pod.ip === toIp);
  const egress = src ? judge(src.egress, toIp, protocol, port) : undefined;
  const ingress = dst ? judge(dst.ingress, fromIp, protocol, port) : undefined;
  return { allowed: (egress?.allowed ?? true) && (ingress?.allowed ?? true), ...(egress ? { egress } : {}), ...(ingress ? { ingress } : {}) };
}
