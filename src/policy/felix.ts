// NetworkPolicy rendered as Calico's Felix renders it for iptables, as plain
// data (no kernel here; felix-sync.ts applies it):
//   FORWARD ─► cali-FORWARD ─┬─ -i cali+ ─► cali-from-wl-dispatch ─ -i caliX -g cali-fw-caliX   (the pod's egress)
//                            └─ -o cali+ ─► cali-to-wl-dispatch   ─ -o caliX -g cali-tw-caliX   (the pod's ingress)
//   INPUT   ─► cali-INPUT   ─── -i cali+ ─► cali-from-wl-dispatch (a pod's traffic to its own node is egress too)
// An endpoint chain accepts established flows first, then jumps to the chain of
// every policy that selects the pod (cali-pi-… ingress, cali-po-… egress); a
// rule that matches sets the accept mark and the policy chain returns. A pod
// that some policy selects and no rule let through hits the counted DROP at the
// end. Selector members and ipBlocks live in ipsets (hash:net), as in Felix.
import { createHash } from 'node:crypto';
import { type Direction, type EndpointPolicy, type Peer, type PortMatch, type Rule } from './model.js';

/** Felix's accept mark bit. */
export const ACCEPT_MARK = '0x10000';
const MARK = `${ACCEPT_MARK}/${ACCEPT_MARK}`;
export const DROP_COMMENT = 'Drop if no policies passed packet';

export const CHAINS = { forward: 'cali-FORWARD', input: 'cali-INPUT', fromDispatch: 'cali-from-wl-dispatch', toDispatch: 'cali-to-wl-dispatch' };

/** Jumps into cnilab's chains from the kernel's own: FORWARD first, then the accept the mark asks for. */
export const HOOKS: { chain: string; rule: string[] }[] = [
  { chain: 'FORWARD', rule: ['-m', 'comment', '--comment', 'cali:policy', '-j', CHAINS.forward] },
  { chain: 'FORWARD', rule: ['-m', 'mark', '--mark', MARK, '-m', 'comment', '--comment', 'Policy explicitly accepted packet.', '-j', 'ACCEPT'] },
  { chain: 'INPUT', rule: ['-m', 'comment', '--comment', 'cali:policy', '-j', CHAINS.input] },
];

const hash = (s: string, n: number) => createHash('sha256').update(s).digest('base64url').slice(0, n);

/** Felix's ipset names: cali40 (IPv4, v0) + s: a selector, n: a network set; at most 31 characters. */
export function ipsetName(peer: Exclude<Peer, { kind: 'any' }>): string {
  return peer.kind === 'pods' ? `cali40s:${hash(peer.selector, 22)}` : `cali40n:${hash(`${peer.cidr} except ${peer.except.join(',')}`, 22)}`;
}

export const policyChain = (policy: string, dir: Direction) => `cali-p${dir === 'ingress' ? 'i' : 'o'}-${hash(policy, 16)}`;
export const endpointChain = (iface: string, dir: Direction) => `cali-${dir === 'ingress' ? 'tw' : 'fw'}-${iface}`;

/** hash:net takes no /0: the whole space goes in as its two halves (as Felix does). */
function netMembers(cidr: string): string[] {
  return cidr.endsWith('/0') ? ['0.0.0.0/1', '128.0.0.0/1'] : [cidr];
}

/** Members of a set; `nomatch` entries cut an ipBlock's except out of it (the longest prefix wins in hash:net). */
export function ipsetMembers(peer: Exclude<Peer, { kind: 'any' }>): string[] {
  if (peer.kind === 'pods') return [...peer.ips];
  return [...netMembers(peer.cidr), ...peer.except.map((e) => `${e} nomatch`)];
}

const comment = (text: string) => ['-m', 'comment', '--comment', `"${text.replace(/"/g, '')}"`];

/** The -p / multiport parts of a rule: one group per protocol (multiport takes up to 15 ports, a range counting twice). */
export function portGroups(ports: PortMatch[]): string[][] {
  if (!ports.length) return [[]];
  const groups: string[][] = [];
  for (const protocol of [...new Set(ports.map((p) => p.protocol))]) {
    const proto = ['-p', protocol.toLowerCase()];
    const mine = ports.filter((p) => p.protocol === protocol);
    if (mine.some((p) => p.port === undefined)) {
      groups.push(proto);
      continue;
    }
    const specs = mine.map((p) => (p.endPort !== undefined && p.endPort !== p.port ? `${p.port}:${p.endPort}` : String(p.port)));
    for (let i = 0; i < specs.length; i += 7) groups.push([...proto, '-m', 'multiport', '--dports', specs.slice(i, i + 7).join(',')]);
  }
  return groups;
}

export interface Ipset {
  name: string;
  /** What it stands for: a selector in Calico's syntax, or an ipBlock. */
  describes: string;
  members: string[];
}

export interface Rendered {
  ipsets: Ipset[];
  /** Every chain cnilab owns in the filter table, by name, with its rules as iptables-restore lines. */
  chains: Map<string, string[]>;
}

/** A node's share: its own endpoints (pod and host-side interface) and every set their policies use. */
export interface LocalEndpoint {
  policy: EndpointPolicy;
  iface: string;
}

function renderRule(chain: string, rule: Rule, dir: Direction, sets: Map<string, Ipset>): string[] {
  const side = dir === 'ingress' ? 'src' : 'dst';
  let match: string[] = [];
  if (rule.peer.kind !== 'any') {
    const name = ipsetName(rule.peer);
    if (!sets.has(name)) sets.set(name, { name, describes: rule.peer.kind === 'pods' ? rule.peer.selector : `${rule.peer.cidr}${rule.peer.except.length ? ` except ${rule.peer.except.join(', ')}` : ''}`, members: ipsetMembers(rule.peer) });
    match = ['-m', 'set', '--match-set', name, side];
  }
  const what = rule.peer.kind === 'pods' ? rule.peer.selector : rule.peer.kind === 'cidr' ? rule.peer.cidr : 'any peer';
  return portGroups(rule.ports).map((ports) => [`-A ${chain}`, ...ports, ...match, ...comment(`${rule.policy}: allow ${what}`), '-j', 'MARK', '--set-xmark', MARK].join(' '));
}

function endpointRules(chain: string, ep: EndpointPolicy, dir: Direction): string[] {
  const dp = ep[dir];
  const pod = `${ep.pod.namespace}/${ep.pod.name}`;
  const lines = [
    `-A ${chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A ${chain} -m conntrack --ctstate INVALID -j DROP`,
    `-A ${chain} -j MARK --set-xmark 0x0/${ACCEPT_MARK}`,
  ];
  if (!dp.isolated) {
    // No policy selects the pod in this direction: Kubernetes allows everything (Calico's namespace profile).
    return [...lines, [`-A ${chain}`, ...comment(`no policy selects ${pod} for ${dir}: allow`), '-j MARK --set-xmark', MARK].join(' '), `-A ${chain} -j RETURN`];
  }
  for (const p of dp.policies) {
    lines.push([`-A ${chain}`, ...comment(`policy ${p}`), '-j', policyChain(p, dir)].join(' '));
    lines.push([`-A ${chain} -m mark --mark ${MARK}`, ...comment('Return if policy accepted'), '-j RETURN'].join(' '));
  }
  lines.push([`-A ${chain}`, ...comment(`${DROP_COMMENT} (${dp.policies.join(', ')})`), '-j DROP'].join(' '));
  return lines;
}

/** Everything a node programs for its local endpoints, given the cluster-wide model. */
export function renderNode(local: LocalEndpoint[]): Rendered {
  const chains = new Map<string, string[]>();
  const sets = new Map<string, Ipset>();
  const byIface = [...local].sort((a, b) => a.iface.localeCompare(b.iface));
  chains.set(CHAINS.forward, [
    `-A ${CHAINS.forward} -j MARK --set-xmark 0x0/${ACCEPT_MARK}`,
    `-A ${CHAINS.forward} -i cali+ -j ${CHAINS.fromDispatch}`,
    `-A ${CHAINS.forward} -o cali+ -j ${CHAINS.toDispatch}`,
  ]);
  chains.set(CHAINS.input, [`-A ${CHAINS.input} -j MARK --set-xmark 0x0/${ACCEPT_MARK}`, `-A ${CHAINS.input} -i cali+ -j ${CHAINS.fromDispatch}`]);
  chains.set(CHAINS.fromDispatch, byIface.map((e) => `-A ${CHAINS.fromDispatch} -i ${e.iface} -g ${endpointChain(e.iface, 'egress')}`));
  chains.set(CHAINS.toDispatch, byIface.map((e) => `-A ${CHAINS.toDispatch} -o ${e.iface} -g ${endpointChain(e.iface, 'ingress')}`));
  for (const e of byIface) {
    for (const dir of ['ingress', 'egress'] as const) {
      chains.set(endpointChain(e.iface, dir), endpointRules(endpointChain(e.iface, dir), e.policy, dir));
      // Each policy chain once per node, however many local pods it selects.
      for (const p of e.policy[dir].policies) {
        const chain = policyChain(p, dir);
        if (chains.has(chain)) continue;
        const rules = e.policy[dir].rules.filter((r) => r.policy === p);
        chains.set(chain, [
          ...rules.flatMap((r) => [...renderRule(chain, r, dir, sets), [`-A ${chain} -m mark --mark ${MARK}`, '-j RETURN'].join(' ')]),
        ]);
      }
    }
  }
  return { ipsets: [...sets.values()].sort((a, b) => a.name.localeCompare(b.name)), chains };
}
