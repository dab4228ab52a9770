// kube-proxy's iptables mode as data: the nat table's chains for a set of
// services, in the shape `iptables-save` shows on a Kubernetes node, ready for
// one `iptables-restore --noflush`. Pure: the agent applies what this returns.
import { createHash } from 'node:crypto';
import type { ServicePort, ServiceState } from './model.js';

export const MASQ_MARK = '0x4000';
/** How long ClientIP affinity lasts (Kubernetes' default timeoutSeconds). */
export const AFFINITY_SECONDS = 10800;

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(buf: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

/** sha256 in base32, cut to `len`: how kube-proxy turns a service port into a chain name. */
export function hashName(text: string, len = 16): string {
  return base32(createHash('sha256').update(text).digest()).slice(0, len);
}

/** "namespace/name:port-name", Kubernetes' ServicePortName. */
export function servicePortName(s: ServiceState, p: ServicePort): string {
  return `${s.namespace}/${s.name}:${p.name ?? ''}`;
}

const proto = (p: ServicePort) => p.protocol.toLowerCase();
export const svcChain = (s: ServiceState, p: ServicePort) => `KUBE-SVC-${hashName(servicePortName(s, p) + proto(p))}`;
export const extChain = (s: ServiceState, p: ServicePort) => `KUBE-EXT-${hashName(servicePortName(s, p) + proto(p))}`;
export const sepChain = (s: ServiceState, p: ServicePort, endpoint: string) => `KUBE-SEP-${hashName(servicePortName(s, p) + proto(p) + endpoint)}`;

const comment = (text: string) => `-m comment --comment "${text.replace(/"/g, '')}"`;

/** The chains kube-proxy owns in the nat table every time, whatever the services. */
export const BASE_CHAINS = ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'];

/** The jumps from the kernel's chains into kube-proxy's, ahead of every other rule there. */
export const HOOK_JUMPS = [
  '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
];

/** kube-proxy's own chains in the nat table: every sync replaces exactly these. */
export const ownsChain = (chain: string) => chain.startsWith('KUBE-');

export interface IptablesSync {
  /** kube-proxy's part of the nat table: chain declarations, then rules. */
  lines: string[];
  rules: number;
}

/** kube-proxy's chains of the nat table for `services`; a chain not in it (a removed endpoint's) is gone after the sync. */
export function iptablesRules(services: ServiceState[], podCIDR: string): IptablesSync {
  const chains = new Set<string>(BASE_CHAINS);
  const rules: string[] = [
    `-A KUBE-POSTROUTING -m mark ! --mark ${MASQ_MARK}/${MASQ_MARK} -j RETURN`,
    // Clear the mark: a packet that is encapsulated and comes round again must not be masqueraded twice.
    `-A KUBE-POSTROUTING -j MARK --xor-mark ${MASQ_MARK}`,
    `-A KUBE-POSTROUTING ${comment('kubernetes service traffic requiring SNAT')} -j MASQUERADE --random-fully`,
    `-A KUBE-MARK-MASQ -j MARK --or-mark ${MASQ_MARK}`,
  ];
  const nodePortRules: string[] = [];
  for (const s of services) {
    if (s.clusterIP === 'None') continue; // headless: DNS only, nothing to proxy
    for (const p of s.ports) {
      const name = servicePortName(s, p);
      const pr = proto(p);
      const svc = svcChain(s, p);
      const match = `-d ${s.clusterIP}/32 -p ${pr} ${comment(`${name} cluster IP`)} -m ${pr} --dport ${p.port}`;
      if (s.endpoints.length === 0) continue; // kube-proxy rejects these in the filter table; here they go nowhere
      chains.add(svc);
      rules.push(`-A KUBE-SERVICES ${match} -j ${svc}`);
      // Traffic from outside the pod network (a node, the underlay) is masqueraded so replies come back this way.
      rules.push(`-A ${svc} ! -s ${podCIDR} ${match} -j KUBE-MARK-MASQ`);
      const seps = s.endpoints.map((e) => ({ e, addr: `${e.ip}:${p.targetPort}`, chain: sepChain(s, p, `${e.ip}:${p.targetPort}`) }));
      const affinity = s.sessionAffinity === 'ClientIP';
      if (affinity) {
        for (const sep of seps) {
          rules.push(`-A ${svc} ${comment(`${name} -> ${sep.addr}`)} -m recent --name ${sep.chain} --mask 255.255.255.255 --rsource --rcheck --seconds ${AFFINITY_SECONDS} --reap -j ${sep.chain}`);
        }
      }
      seps.forEach((sep, i) => {
        const left = seps.length - i;
        // Equal spreading: the first of n takes 1/n, the next 1/(n-1) of the rest, … the last takes what remains.
        const statistic = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(10)}` : '';
        rules.push(`-A ${svc} ${comment(`${name} -> ${sep.addr}`)}${statistic} -j ${sep.chain}`);
      });
      for (const sep of seps) {
        chains.add(sep.chain);
        // Hairpin: a pod reaching itself through its service must see the node as the source.
        rules.push(`-A ${sep.chain} -s ${sep.e.ip}/32 ${comment(name)} -j KUBE-MARK-MASQ`);
        const recent = affinity ? ` -m recent --set --name ${sep.chain} --mask 255.255.255.255 --rsource` : '';
        rules.push(`-A ${sep.chain} -p ${pr} ${comment(name)}${recent} -m ${pr} -j DNAT --to-destination ${sep.addr}`);
      }
      if (p.nodePort !== undefined) {
        const ext = extChain(s, p);
        chains.add(ext);
        nodePortRules.push(`-A KUBE-NODEPORTS -p ${pr} ${comment(name)} -m ${pr} --dport ${p.nodePort} -j ${ext}`);
        rules.push(`-A ${ext} ${comment(`masquerade traffic for ${name} external destinations`)} -j KUBE-MARK-MASQ`);
        rules.push(`-A ${ext} -j ${svc}`);
      }
    }
  }
  rules.push(...nodePortRules);
  rules.push(`-A KUBE-SERVICES ${comment('kubernetes service nodeports; NOTE: this must be the last rule in this chain')} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`);
  const lines = [...[...chains].map((c) => `:${c} - [0:0]`), ...rules];
  return { lines, rules: rules.length };
}
