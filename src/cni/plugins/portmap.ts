// portmap (chained): publishes container ports on the node's own addresses,
// as `docker run -p 8080:80` does. The runtime passes the mappings in
// runtimeConfig.portMappings (capability "portMappings"); the container's
// address comes from prevResult. Per container one DNAT chain, reached from a
// shared CNI-HOSTPORT-DNAT chain for packets addressed to the node itself
// (from PREROUTING for other hosts, from OUTPUT for the node's own processes).
// A dual-stack container gets the same chain in iptables and in ip6tables,
// each mapping to its address of that family, as the reference does; a mapping
// with a hostIP goes only into its own family's table.
// Not done here: hairpin (a container reaching its own published port) and
// 127.0.0.1 (which would need route_localnet).
import { createHash } from 'node:crypto';
import type { CmdArgs } from '../env.js';
import { CniError, ErrorCode, invalidConfig } from '../errors.js';
import { Fields, type NetConf } from '../config.js';
import type { Plugin } from '../skel.js';
import type { Result } from '../result.js';
import { canonicalAddr, familyOf, parseAddr, type Family } from '../../net/ipnet.js';
import { ensureChain, ensureRule, listChain, removeChain, restoreRules } from '../../net/iptables.js';

export const HOSTPORT_CHAIN = 'CNI-HOSTPORT-DNAT';
/** Where packets for a published port enter: from other hosts, and from the node itself. */
const ENTRY_CHAINS = ['PREROUTING', 'OUTPUT'];

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  /** Only packets to this node address (IPv4 or IPv6); all of the node's addresses when absent or unspecified (0.0.0.0, ::). */
  hostIP?: string;
}

export interface PortmapConf extends NetConf {
  mappings: PortMapping[];
}

export function loadPortmapConf(conf: NetConf): PortmapConf {
  const list = new Fields(conf.runtimeConfig ?? {}, 'runtimeConfig').list('portMappings') ?? [];
  const mappings = list.map((item, i) => {
    const where = `runtimeConfig.portMappings[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw invalidConfig(where, 'must be an object');
    const f = new Fields(item as Record<string, unknown>, where);
    const hostPort = f.int('hostPort', { min: 1, max: 65535 });
    const containerPort = f.int('containerPort', { min: 1, max: 65535 });
    if (hostPort === undefined) throw invalidConfig(f.name('hostPort'), 'is required');
    if (containerPort === undefined) throw invalidConfig(f.name('containerPort'), 'is required');
    const protocol = (f.string('protocol', { oneOf: ['tcp', 'udp', 'TCP', 'UDP'] }) ?? 'tcp').toLowerCase() as PortMapping['protocol'];
    const hostIP = f.string('hostIP');
    if (hostIP !== undefined && parseAddr(hostIP) === undefined) throw invalidConfig(f.name('hostIP'), `"${hostIP}" is not an IPv4 or IPv6 address`);
    return { hostPort, containerPort, protocol, ...(hostIP ? { hostIP } : {}) };
  });
  const seen = new Map<string, number>();
  mappings.forEach((m, i) => {
    const key = `${m.protocol}/${m.hostIP ?? '*'}:${m.hostPort}`;
    const first = seen.get(key);
    if (first !== undefined) throw invalidConfig(`runtimeConfig.portMappings[${i}]`, `${m.protocol} port ${m.hostPort} is already mapped by runtimeConfig.portMappings[${first}]`);
    seen.set(key, i);
  });
  return { ...conf, mappings };
}

/** CNI-DN-<hex>: one chain per network and container, within iptables' 28 characters. */
export function dnatChainName(network: string, containerId: string): string {
  return 'CNI-DN-' + createHash('sha256').update(`${network}\0${containerId}`).digest('hex').slice(0, 21);
}

/**
 * The container's DNAT rules for the family of `containerIp`, written exactly as
 * `iptables -S` / `ip6tables -S` print them (CHECK compares them). A mapping
 * whose hostIP is of the other family has no rule here.
 */
export function dnatRules(chain: string, containerIp: string, mappings: PortMapping[]): string[] {
  const family = familyOf(containerIp);
  const bits = family === 6 ? 128 : 32;
  const to = family === 6 ? `[${containerIp}]` : containerIp;
  return mappings
    .filter((m) => !m.hostIP || familyOf(m.hostIP) === family)
    .map((m) => {
      const host = m.hostIP && parseAddr(m.hostIP)!.value !== 0n ? ` -d ${canonicalAddr(m.hostIP)}/${bits}` : '';
      return `-A ${chain}${host} -p ${m.protocol} -m ${m.protocol} --dport ${m.hostPort} -j DNAT --to-destination ${to}:${m.containerPort}`;
    });
}

/** Everything one container adds to the nat table, as iptables-restore lines: its chain, its rules, the jump to it. */
export function portmapRestoreLines(network: string, containerId: string, containerIp: string, mappings: PortMapping[]): string[] {
  const chain = dnatChainName(network, containerId);
  return [
    `:${chain} - [0:0]`,
    ...dnatRules(chain, containerIp, mappings),
    `-A ${HOSTPORT_CHAIN} -m comment --comment "name: ${network} id: ${containerId}" -j ${chain}`,
  ];
}

/** The container's first address of each family from the previous plugin's result, as the reference takes them. */
function containerIps(prev: Result): { family: Family; ip: string }[] {
  const addrs = (prev.ips ?? []).map((i) => i.address.split('/')[0]);
  const out = ([4, 6] as Family[]).flatMap((family) => {
    const ip = addrs.find((a) => familyOf(a) === family);
    return ip ? [{ family, ip }] : [];
  });
  if (!out.length) throw new CniError(ErrorCode.InvalidConfig, 'invalid network configuration: prevResult: lists no address to map ports to');
  return out;
}

function requirePrev(conf: PortmapConf): Result {
  if (!conf.prevResult) throw invalidConfig('prevResult', 'is required: portmap is chained after the plugin that gives the container its address');
  return conf.prevResult;
}

async function add(args: CmdArgs, conf: PortmapConf): Promise<Result> {
  const prev = requirePrev(conf);
  if (!conf.mappings.length) return prev;
  const chain = dnatChainName(conf.name, args.containerId);
  const done: Family[] = [];
  try {
    for (const { family, ip } of containerIps(prev)) {
      await ensureChain(undefined, 'nat', HOSTPORT_CHAIN, family);
      for (const entry of ENTRY_CHAINS) await ensureRule(undefined, 'nat', entry, ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', HOSTPORT_CHAIN], family);
      // A repeated ADD replaces the container's chain instead of doubling its jump.
      await removeChain(undefined, 'nat', chain, [HOSTPORT_CHAIN], family);
      done.push(family);
      await restoreRules(undefined, 'nat', portmapRestoreLines(conf.name, args.containerId, ip, conf.mappings), family);
    }
  } catch (e) {
    for (const family of done) await removeChain(undefined, 'nat', chain, [HOSTPORT_CHAIN], family).catch(() => undefined);
    throw e;
  }
  return prev;
}

async function del(args: CmdArgs, conf: PortmapConf): Promise<void> {
  // Both families: DEL has no prevResult to say which the container had.
  for (const family of [4, 6] as const) await removeChain(undefined, 'nat', dnatChainName(conf.name, args.containerId), [HOSTPORT_CHAIN], family);
}

async function check(args: CmdArgs, conf: PortmapConf): Promise<void> {
  const prev = requirePrev(conf);
  if (!conf.mappings.length) return;
  const chain = dnatChainName(conf.name, args.containerId);
  for (const { family, ip } of containerIps(prev)) {
    const tool = family === 6 ? 'ip6tables' : 'iptables';
    const have = await listChain(undefined, 'nat', chain, family);
    if (!have) throw new CniError(ErrorCode.StateMismatch, `CHECK failed: the DNAT chain ${chain} of container ${args.containerId} does not exist in ${tool}`);
    for (const rule of dnatRules(chain, ip, conf.mappings)) {
      if (!have.includes(rule)) throw new CniError(ErrorCode.StateMismatch, `CHECK failed: ${chain} lacks the rule "${rule}" in ${tool}`);
    }
    const jumps = (await listChain(undefined, 'nat', HOSTPORT_CHAIN, family)) ?? [];
    if (!jumps.some((r) => r.endsWith(`-j ${chain}`))) throw new CniError(ErrorCode.StateMismatch, `CHECK failed: ${HOSTPORT_CHAIN} does not jump to ${chain} in ${tool}`);
  }
}

export const portmapPlugin: Plugin<PortmapConf> = { loadConfig: loadPortmapConf, add, del, check };
