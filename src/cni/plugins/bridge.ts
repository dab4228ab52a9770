// bridge: a Linux bridge on the node, a veth pair per container, addresses from IPAM.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { CmdArgs } from '../env.js';
import { interfaceNameProblem } from '../env.js';
import { CniError, ErrorCode, invalidConfig } from '../errors.js';
import { Fields, type NetConf } from '../config.js';
import type { Plugin } from '../skel.js';
import type { Result, IPConfig } from '../result.js';
import { delegateAdd, delegateIpam, registerInProcess, delegateArgs, requireNetns } from '../invoke.js';
import { beginCheck, checkContainerAddresses, mismatch } from '../check.js';
import { formatPrefix, networkPrefix, parsePrefix, type Family } from '../../net/ipnet.js';
import { Ip } from '../../net/ip.js';
import { ERRNO, IFF, NetlinkError, Rtnl, withNetnsFd, type NlLink } from '../../net/netlink.js';
import { addMasquerade, masqChainName, removeMasquerade } from '../../net/iptables.js';
import { hostLocal } from './host-local.js';

registerInProcess('host-local', hostLocal);

export interface BridgeConf extends NetConf {
  bridge: string;
  mtu: number;
  isGateway: boolean;
  isDefaultGateway: boolean;
  ipMasq: boolean;
  hairpinMode: boolean;
  promiscMode: boolean;
  ipamType?: string;
}

export function loadBridgeConf(conf: NetConf): BridgeConf {
  const f = new Fields(conf.raw);
  const bridge = f.string('bridge') ?? 'cni0';
  const why = interfaceNameProblem(bridge);
  if (why) throw invalidConfig('bridge', `"${bridge}" ${why}`);
  const isDefaultGateway = f.bool('isDefaultGateway', false);
  const ipamType = conf.ipam ? new Fields(conf.ipam, 'ipam').string('type', { required: true }) : undefined;
  return {
    ...conf,
    bridge,
    mtu: f.int('mtu', { min: 68, max: 65535 }) ?? 1500,
    isGateway: f.bool('isGateway', false) || isDefaultGateway,
    isDefaultGateway,
    ipMasq: f.bool('ipMasq', false),
    hairpinMode: f.bool('hairpinMode', false),
    promiscMode: f.bool('promiscMode', false),
    ipamType,
  };
}



/** The bridge on the node, made (up) when missing; another ADD making it at the same moment is fine. */
function ensureBridge(node: Rtnl, conf: BridgeConf): NlLink {
  let bridge = node.getLink(conf.bridge);
  if (!bridge) {
    try {
      node.addBridge(conf.bridge, conf.mtu);
    } catch (e) {
      if (!(e instanceof NetlinkError && e.errno === ERRNO.EEXIST)) throw e;
    }
    bridge = node.getLink(conf.bridge);
    if (!bridge) throw new CniError(ErrorCode.KernelOperationFailed, `bridge ${conf.bridge} could not be created`);
  }
  if (bridge.kind !== 'bridge') throw invalidConfig('bridge', `"${conf.bridge}" exists on the node and is a ${bridge.kind ?? 'device'}, not a bridge`);
  return bridge;
}

/** A random unicast, locally administered MAC, as the kernel would pick; set by us so that no read-back is needed. */
function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0] & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

interface Veth {
  host: string;
  hostMac: string;
  ctrMac: string;
}

/**
 * The node side: the veth pair made in place (this end a port of the bridge,
 * up; the peer created directly in the container), then the gateways on
 * the bridge. Returns the bridge as it is after the port joined (a bridge
 * takes its first port's MAC).
 */
function plugIntoBridge(node: Rtnl, conf: BridgeConf, args: CmdArgs, veth: Veth, ips: IPConfig[]): NlLink {
  const bridge = ensureBridge(node, conf);
  try {
    withNetnsFd(args.netns, (netnsFd) =>
      node.addVeth({ name: veth.host, mac: veth.hostMac, mtu: conf.mtu, master: bridge.index }, { name: args.ifname, mac: veth.ctrMac, mtu: conf.mtu, netnsFd }),
    );
  } catch (e) {
    // The host name is fresh: a name already taken is the container's.
    if (e instanceof NetlinkError && e.errno === ERRNO.EEXIST) throw new CniError(ErrorCode.InvalidConfig, `the container already has an interface named ${args.ifname}`);
    throw e;
  }
  if (conf.hairpinMode) node.setHairpin(node.getLink(veth.host)!.index);
  if (conf.promiscMode) node.setFlags(bridge.index, IFF.PROMISC, IFF.PROMISC);
  if (conf.isGateway) {
    // An IPv6 gateway without DAD: a tentative address would not answer the pod for a second or two.
    for (const ip of ips) if (ip.gateway) node.addAddress(bridge.index, `${ip.gateway}/${ip.address.split('/')[1]}`, { replace: true, nodad: isV6(ip) });
  }
  return node.getLink(conf.bridge) ?? bridge;
}

const isV6 = (ip: IPConfig) => ip.address.includes(':');
const familyOfCidr = (cidr: string): Family => (cidr.includes(':') ? 6 : 4);
const DEFAULT_ROUTE: Record<Family, string> = { 4: '0.0.0.0/0', 6: '::/0' };

// No process: netlink on a socket in each namespace (see src/net/netlink.ts).
async function add(args: CmdArgs, conf: BridgeConf): Promise<Result> {
  requireNetns(args);
  // IPAM first: a bad ipam section or a full range then fails before any link
  // exists, and the gateway goes onto the bridge with the port, in one process.
  let ipam: Result = { cniVersion: conf.cniVersion, ips: [], routes: [] };
  if (conf.ipamType) ipam = await delegateAdd(conf.ipamType, conf.raw, delegateArgs(args));
  const ips: IPConfig[] = (ipam.ips ?? []).map((ip) => ({ ...ip, interface: 2 }));
  const veth: Veth = { host: `veth${randomBytes(4).toString('hex')}`, hostMac: randomMac(), ctrMac: randomMac() };
  const node = Rtnl.open();
  let ctr: Rtnl | undefined;
  try {
    const bridge = plugIntoBridge(node, conf, args, veth, ips);

    ctr = Rtnl.open(args.netns);
    const eth = ctr.getLink(args.ifname);
    if (!eth) throw new CniError(ErrorCode.KernelOperationFailed, `${args.ifname} did not appear in ${args.netns}`);
    // IPv6 addresses skip DAD (nodad): IPAM made them unique, and the reference's
    // wait for DAD costs a second or more per pod (with hairpin it turns DAD off too).
    for (const ip of ips) ctr.addAddress(eth.index, ip.address, { nodad: isV6(ip) });
    ctr.setFlags(eth.index, IFF.UP, IFF.UP);
    // One gateway per family: the first address of that family that has one.
    const gateways: Partial<Record<Family, string>> = {};
    for (const ip of ips) if (ip.gateway) gateways[familyOfCidr(ip.address)] ??= ip.gateway;
    const routes = [...(ipam.routes ?? [])];
    if (conf.isDefaultGateway) {
      for (const family of [4, 6] as const) {
        const gw = gateways[family];
        if (gw && !routes.some((r) => r.dst === DEFAULT_ROUTE[family])) routes.push({ dst: DEFAULT_ROUTE[family], gw });
      }
    }
    for (const r of routes) ctr.addRoute({ dst: r.dst, gw: r.gw ?? gateways[familyOfCidr(r.dst)], index: eth.index });

    const families = new Set(ips.map((ip) => familyOfCidr(ip.address)));
    if (conf.isGateway) {
      await new Ip().sysctl({
        ...(families.has(4) ? { 'net.ipv4.ip_forward': 1 } : {}),
        // Routes on the bridge are ours: no router advertisement may add any.
        ...(families.has(6) ? { 'net.ipv6.conf.all.forwarding': 1, [`net/ipv6/conf/${conf.bridge}/accept_ra`]: 0 } : {}),
      });
    }
    if (conf.ipMasq) {
      const chain = masqChainName(conf.name, args.containerId);
      for (const ip of ips) {
        const subnet = formatPrefix(networkPrefix(parsePrefix(ip.address)!));
        await addMasquerade(undefined, chain, ip.address.split('/')[0], subnet, `name: ${conf.name} id: ${args.containerId}`);
      }
    }

    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: conf.bridge, mac: bridge.address },
        { name: veth.host, mac: veth.hostMac },
        { name: args.ifname, mac: veth.ctrMac, sandbox: args.netns },
      ],
      ips,
      routes,
      dns: (conf.dns as Result['dns']) ?? {},
    };
  } catch (e) {
    // Undo: the veth (its peer goes with it), the lease, the NAT rules.
    await node.deleteLink(veth.host).catch(() => undefined);
    await delegateIpam('DEL', conf, args).catch(() => undefined);
    if (conf.ipMasq) await removeMasquerades(conf, args).catch(() => undefined);
    throw e;
  } finally {
    node.close();
    ctr?.close();
  }
}

async function del(args: CmdArgs, conf: BridgeConf): Promise<void> {
  await delegateIpam('DEL', conf, args);
  // An empty or vanished namespace means the veth pair is already gone with it.
  if (args.netns && existsSync(args.netns)) {
    const ctr = Rtnl.open(args.netns);
    try {
      await ctr.deleteLink(args.ifname);
    } catch (e) {
      if (!(e instanceof NetlinkError && e.errno === ERRNO.ENODEV)) throw e;
    } finally {
      ctr.close();
    }
  }
  if (conf.ipMasq) await removeMasquerades(conf, args);
}

/** Both families: a DEL does not know which the container had. */
async function removeMasquerades(conf: BridgeConf, args: CmdArgs): Promise<void> {
  const chain = masqChainName(conf.name, args.containerId);
  await removeMasquerade(undefined, chain, 4);
  await removeMasquerade(undefined, chain, 6);
}

async function check(args: CmdArgs, conf: BridgeConf): Promise<void> {
  const prev = await beginCheck(args, conf);
  const node = new Ip();
  const bridge = await node.link(conf.bridge);
  if (!bridge) throw mismatch(`bridge ${conf.bridge} does not exist on the node`);
  const ctrIndex = (prev.interfaces ?? []).findIndex((i) => i.sandbox && i.name === args.ifname);
  if (ctrIndex < 0) throw mismatch(`prevResult lists no interface ${args.ifname} in a sandbox`);
  const ctrLink = await checkContainerAddresses(args, prev, ctrIndex);
  const want = prev.interfaces![ctrIndex];
  if (want.mac && ctrLink.address !== want.mac) throw mismatch(`${args.ifname} has MAC ${ctrLink.address}, prevResult says ${want.mac}`);
  if (ctrLink.mtu !== conf.mtu) throw mismatch(`${args.ifname} has MTU ${ctrLink.mtu}, the configuration says ${conf.mtu}`);
  const host = (prev.interfaces ?? []).find((i) => !i.sandbox && i.name !== conf.bridge);
  if (host) {
    const link = await node.link(host.name);
    if (!link) throw mismatch(`host veth ${host.name} is missing`);
    if (link.master !== conf.bridge) throw mismatch(`host veth ${host.name} is not a port of ${conf.bridge}`);
  }
}

export const bridgePlugin: Plugin<BridgeConf> = {
  loadConfig: loadBridgeConf,
  add,
  del,
  check,
  gc: (args, conf) => delegateIpam('GC', conf, args),
  status: (args, conf) => delegateIpam('STATUS', conf, args),
};
