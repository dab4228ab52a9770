// portmap (chained): publishes container ports on the node's own addresses,
// as `docker run -p 8080:80` does. The runtime passes the mappings in
// runtimeConfig.portMappings (capability "portMappings"); the container's
// address comes from prevResult. Per container one DNAT chain, reached from a
// shared CNI-HOSTPORT-DNAT chain for packets addressed to the node itself
// (from PREROUTING for other hosts, from OUTPUT for the node's own processes).
// Not done here: hairpin (a container reaching its own published port) and
// 127.0.0.1 (which would need route_localnet).
import { createHash } from 'node:crypto';
import type { CmdArgs } from '../env.js';
import { CniError, ErrorCode, invalidConfig } from '../errors.js';
import { Fields, type NetConf } from '../config.js';
import type { Plugin } from '../skel.js';
import type { Result } from '../result.js';
import { parseIp } from '../../net/ipnet.js';
import { ensureChain, ensureRule, listChain, removeChain, restoreRules } from '../../net/iptables.js';

export const HOSTPORT_CHAIN = 'CNI-HOSTPORT-DNAT';
/** Where packets for a published port enter: from other hosts, and from the node itself. */
const ENTRY_CHAINS = ['PREROUTING', 'OUTPUT'];

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  /** Only packets to this node address; all of the node's addresses when absent. */
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
    if (hostIP !== undefined && parseIp(hostIP) === undefined) throw invalidConfig(f.name('hostIP'), `"${hostIP}" is not an IPv4 address`);
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

/** The container's DNAT rules, written exactly as `iptables -S` prints them (CHECK compares them). */
export function dnatRules(chain: string, containerIp: string, mappings: PortMapping[]): string[] {
  return mappings.map(
    (m) => `-A ${chain}${m.hostIP ? ` -d ${m.hostIP}/32` : ''} -p ${m.protocol} -m ${m.protocol} --dport ${m.hostPort} -j DNAT --to-destination ${containerIp}:${m.containerPort}`,
  );
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

/** The container's IPv4 address from the previous plugin's result. */
function containerIp(prev: Result): string {
  const ip = (prev.ips ?? []).map((i) => i.address.split('/')[0]).find((a) => parseIp(a) !== undefined);
  if (!ip) throw new CniError(ErrorCode.InvalidConfig, 'invalid network configuration: prevResult: lists no IPv4 address to map ports to');
  return ip;
}

function requirePrev(conf: PortmapConf): Result {
  if (!conf.prevResult) throw invalidConfig('prevResult', 'is required: portmap is chained after the plugin that gives the container its address');
  return conf.prevResult;
}

async function add(args: CmdArgs, conf: PortmapConf): Promise<Result> {
  const prev = requirePrev(conf);
  if (!conf.mappings.length) return prev;
  const ip = containerIp(prev);
  const chain = dnatChainName(conf.name, args.containerId);
  await ensureChain(undefined, 'nat', HOSTPORT_CHAIN);
  for (const entry of ENTRY_CHAINS) await ensureRule(undefined, 'nat', entry, ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', HOSTPORT_CHAIN]);
  // A repeated ADD replaces the container's chain instead of doubling its jump.
  await removeChain(undefined, 'nat', chain, [HOSTPORT_CHAIN]);
  try {
    await restoreRules(undefined, 'nat', portmapRestoreLines(conf.name, args.containerId, ip, conf.mappings));
  } catch (e) {
    await removeChain(undefined, 'nat', chain, [HOSTPORT_CHAIN]).catch(() => undefined);
    throw e;
  }
  return prev;
}

async function del(args: CmdArgs, conf: PortmapConf): Promise<void> {
  await removeChain(undefined, 'nat', dnatChainName(conf.name, args.containerId), [HOSTPORT_CHAIN]);
}

async function check(args: CmdArgs, conf: PortmapConf): Promise<void> {
  const prev = requirePrev(conf);
  if (!conf.mappings.length) return;
  const chain = dnatChainName(conf.name, args.containerId);
  const have = await listChain(undefined, 'nat', chain);
  if (!have) throw new CniError(ErrorCode.StateMismatch, `CHECK failed: the DNAT chain ${chain} of container ${args.containerId} does not exist`);
  for (const rule of dnatRules(chain, containerIp(prev), conf.mappings)) {
    if (!have.includes(rule)) throw new CniError(ErrorCode.StateMismatch, `CHECK failed: ${chain} lacks the rule "${rule}"`);
  }
  const jumps = (await listChain(undefined, 'nat', HOSTPORT_CHAIN)) ?? [];
  if (!jumps.some((r) => r.endsWith(`-j ${chain}`))) throw new CniError(ErrorCode.StateMismatch, `CHECK failed: ${HOSTPORT_CHAIN} does not jump to ${chain}`);
}

export const portmapPlugin: Plugin<PortmapConf> = { loadConfig: loadPortmapConf, add, del, check };
