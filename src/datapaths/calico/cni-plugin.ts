// calico: Calico's point-to-point datapath. No bridge: each pod gets a veth
// whose host side (cali + 11 hex digits, MAC ee:ee:ee:ee:ee:ee) answers every
// ARP by proxy, so the pod's only route - default via 169.254.1.1 - ends on
// the node, which routes the pod's /32 back down the same veth. An IPv6 address
// (dual-stack) is a /128 whose default route goes via the host side's own
// link-local address, as Calico does; the host side has proxy NDP on.
import { createHash } from 'node:crypto';
import type { CmdArgs } from '../../cni/env.js';
import { CniError, ErrorCode, invalidConfig } from '../../cni/errors.js';
import { Fields, type NetConf } from '../../cni/config.js';
import type { Plugin } from '../../cni/skel.js';
import type { IPConfig, Result } from '../../cni/result.js';
import { delegateAdd, delegateIpam, registerInProcess, delegateArgs, requireNetns } from '../../cni/invoke.js';
import { beginCheck, checkContainerAddresses, mismatch } from '../../cni/check.js';
import { parsePrefix } from '../../net/ipnet.js';
import { Ip, isNotFound, type Link, type Route } from '../../net/ip.js';
import { CommandError } from '../../net/exec.js';
import { calicoIpam, loadDatastoreConf, type CalicoDatastoreConf } from './cni-ipam.js';

registerInProcess('calico-ipam', calicoIpam);

/** The pod's gateway: an address nobody has; the host side answers its ARP by proxy. */
export const GATEWAY = '169.254.1.1';
export const HOST_MAC = 'ee:ee:ee:ee:ee:ee';

export interface CalicoConf extends NetConf, CalicoDatastoreConf {
  mtu: number;
  ipamType: string;
}

function loadCalicoConf(conf: NetConf): CalicoConf {
  const f = new Fields(conf.raw);
  if (!conf.ipam) throw invalidConfig('ipam', 'is required (calico-ipam, or host-local)');
  return {
    ...conf,
    ...loadDatastoreConf(conf),
    mtu: f.int('mtu', { min: 68, max: 65535 }) ?? 1500,
    ipamType: new Fields(conf.ipam, 'ipam').string('type', { required: true })!,
  };
}

/**
 * The host-side name, as Calico derives it: `cali` + the first 11 hex digits of
 * sha1("<namespace>.<pod>"), so the node can find a pod's interface from its name alone.
 */
export function hostVethName(args: Pick<CmdArgs, 'args' | 'containerId'>): string {
  const ns = args.args.K8S_POD_NAMESPACE;
  const pod = args.args.K8S_POD_NAME;
  const id = ns && pod ? `${ns}.${pod}` : args.containerId;
  return `cali${createHash('sha1').update(id).digest('hex').slice(0, 11)}`;
}



const isV6 = (ip: IPConfig) => ip.address.includes(':');

/**
 * What the pod's side needs: its /32 (and /128), and a default route per family:
 * via 169.254.1.1 onlink, and via the host side's link-local address. No DAD: a
 * point-to-point link has nobody to clash with, and DAD would hold the address back a second.
 */
export function containerSetup(ifname: string, ips: IPConfig[], hostLinkLocal?: string): string[][] {
  const v6 = ips.some(isV6);
  return [
    ...ips.map((ip) => ['addr', 'add', ip.address, 'dev', ifname, ...(isV6(ip) ? ['nodad'] : [])]),
    ['link', 'set', 'dev', ifname, 'up'],
    ...(ips.some((ip) => !isV6(ip))
      ? [
          ['route', 'add', GATEWAY, 'dev', ifname, 'scope', 'link'],
          ['route', 'add', 'default', 'via', GATEWAY, 'dev', ifname, 'onlink'],
        ]
      : []),
    ...(v6 ? [['route', 'add', '::/0', 'via', hostLinkLocal!, 'dev', ifname]] : []),
  ];
}

/** The host side's sysctls per family: proxy ARP at once for IPv4, proxy NDP for IPv6, forwarding for both. */
const hostSysctls = (dev: string, families: { v4: boolean; v6: boolean }): Record<string, number> => ({
  ...(families.v4
    ? {
        [`net/ipv4/conf/${dev}/proxy_arp`]: 1,
        // Answer at once: the default is a random wait of up to 0.8 s per proxied ARP.
        [`net/ipv4/neigh/${dev}/proxy_delay`]: 0,
        [`net/ipv4/conf/${dev}/forwarding`]: 1,
      }
    : {}),
  ...(families.v6
    ? {
        [`net/ipv6/conf/${dev}/proxy_ndp`]: 1,
        [`net/ipv6/conf/${dev}/forwarding`]: 1,
      }
    : {}),
});
const familiesOf = (ips: IPConfig[]) => ({ v4: ips.some((ip) => !isV6(ip)), v6: ips.some(isV6) });

/** The host side's link-local address, the pod's IPv6 gateway: there once the veth is up (no DAD on it). */
async function linkLocalOf(node: Ip, dev: string): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const [link] = await node.json<{ addr_info?: { local: string; scope: string }[] }[]>('-6', 'addr', 'show', 'dev', dev, 'scope', 'link');
    const ll = link?.addr_info?.find((a) => a.scope === 'link')?.local;
    if (ll) return ll;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new CniError(ErrorCode.Internal, `${dev} has no IPv6 link-local address to be the pod's gateway (is IPv6 disabled on the node?)`);
}

async function add(args: CmdArgs, conf: CalicoConf): Promise<Result> {
  requireNetns(args);
  const node = new Ip();
  const ctr = new Ip(args.netns);
  const hostIf = hostVethName(args);
  // The veth first: if the pod is attached already, this fails before IPAM, so
  // the undo below never frees an address that is in use.
  try {
    await node.batch([
      ['link', 'add', hostIf, 'mtu', String(conf.mtu), 'type', 'veth', 'peer', 'name', args.ifname, 'mtu', String(conf.mtu), 'netns', args.netns],
      ['link', 'set', 'dev', hostIf, 'address', HOST_MAC],
    ]);
  } catch (e) {
    if (e instanceof CommandError && /File exists/.test(e.stderr)) {
      if (await node.link(hostIf).catch(() => undefined)) {
        throw new CniError(ErrorCode.InvalidConfig, `${hostIf} already exists on the node: pod ${args.args.K8S_POD_NAME ?? args.containerId} is attached already`);
      }
      throw new CniError(ErrorCode.InvalidConfig, `the container already has an interface named ${args.ifname}`);
    }
    await node.deleteLink(hostIf).catch(() => undefined); // the link add may have worked and a later line failed
    throw e;
  }
  let ipamDone = false;
  try {
    const ipam = await delegateAdd(conf.ipamType, conf.raw, delegateArgs(args));
    ipamDone = true;
    // As Calico: a point-to-point link, so each address is a host route (/32, /128) whatever the IPAM said.
    const ips: IPConfig[] = (ipam.ips ?? []).map((ip) => {
      const p = parsePrefix(ip.address);
      if (!p) throw new CniError(ErrorCode.InvalidConfig, `IPAM ${conf.ipamType} returned an unusable address: ${JSON.stringify(ip.address)}`);
      return { address: `${ip.address.split('/')[0]}/${p.family === 4 ? 32 : 128}`, interface: 1 };
    });
    const families = familiesOf(ips);
    if (!families.v4 && !families.v6) throw new CniError(ErrorCode.InvalidConfig, `IPAM ${conf.ipamType} returned no address: ${JSON.stringify(ipam.ips)}`);
    // The host side's sysctls before it is up: no DAD, so its link-local address is usable at once.
    await node.sysctl({ ...hostSysctls(hostIf, families), ...(families.v6 ? { [`net/ipv6/conf/${hostIf}/accept_dad`]: 0 } : {}) });
    await node.cmd('link', 'set', 'dev', hostIf, 'up');
    // The link-local address comes with the carrier, once both ends are up.
    if (families.v6) await ctr.cmd('link', 'set', 'dev', args.ifname, 'up');
    const hostLinkLocal = families.v6 ? await linkLocalOf(node, hostIf) : undefined;
    await ctr.batch(containerSetup(args.ifname, ips, hostLinkLocal));
    // The node's way back to the pod: one host route per address, on the pod's own veth.
    await node.batch(ips.map((ip) => ['route', 'replace', ip.address, 'dev', hostIf, 'scope', 'link']));

    const [ctrLink] = await ctr.json<Link[]>('link', 'show', 'dev', args.ifname);
    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: hostIf, mac: HOST_MAC },
        { name: args.ifname, mac: ctrLink.address, sandbox: args.netns },
      ],
      ips,
      routes: [...(families.v4 ? [{ dst: '0.0.0.0/0', gw: GATEWAY }] : []), ...(hostLinkLocal ? [{ dst: '::/0', gw: hostLinkLocal }] : [])],
      dns: (conf.dns as Result['dns']) ?? {},
    };
  } catch (e) {
    // Undo: the veth (its peer and the /32 route go with it), then the address.
    await node.deleteLink(hostIf).catch(() => undefined);
    if (ipamDone) await delegateIpam('DEL', conf, args).catch(() => undefined);
    throw e;
  }
}

async function del(args: CmdArgs, conf: CalicoConf): Promise<void> {
  await delegateIpam('DEL', conf, args);
  // The host side is found by name, so an empty or vanished CNI_NETNS does not matter.
  try {
    await new Ip().deleteLink(hostVethName(args));
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

async function check(args: CmdArgs, conf: CalicoConf): Promise<void> {
  const prev = await beginCheck(args, conf);
  const node = new Ip();
  const hostIf = hostVethName(args);
  const host = await node.link(hostIf);
  if (!host) throw mismatch(`host interface ${hostIf} is missing`);
  if (host.address !== HOST_MAC) throw mismatch(`${hostIf} has MAC ${host.address}, not ${HOST_MAC}`);
  for (const [key, want] of Object.entries(hostSysctls(hostIf, familiesOf(prev.ips ?? [])))) {
    const have = await node.readSysctl(key);
    if (have !== String(want)) throw mismatch(`${key.replaceAll('/', '.')} is ${have}, not ${want}`);
  }
  const routes = [...(await node.json<Route[]>('route', 'show', 'dev', hostIf)), ...(await node.json<Route[]>('-6', 'route', 'show', 'dev', hostIf))];
  await checkContainerAddresses(args, prev);
  for (const ip of prev.ips ?? []) {
    const addr = ip.address.split('/')[0];
    if (!routes.some((r) => r.dst === addr)) throw mismatch(`the node has no route ${addr} dev ${hostIf}`);
  }
}

export const calicoPlugin: Plugin<CalicoConf> = {
  loadConfig: loadCalicoConf,
  add,
  del,
  check,
  async status(args, conf) {
    await delegateIpam('STATUS', conf, args);
  },
};
