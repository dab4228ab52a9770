// calico: Calico's point-to-point datapath. No bridge: each pod gets a veth
// whose host side (cali + 11 hex digits, MAC ee:ee:ee:ee:ee:ee) answers every
// ARP by proxy, so the pod's only route - default via 169.254.1.1 - ends on
// the node, which routes the pod's /32 back down the same veth.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CmdArgs } from '../../cni/env.js';
import { CniError, ErrorCode, invalidConfig } from '../../cni/errors.js';
import { Fields, type NetConf } from '../../cni/config.js';
import type { Plugin } from '../../cni/skel.js';
import type { IPConfig, Result } from '../../cni/result.js';
import { delegateAdd, delegateIpam, registerInProcess, delegateArgs, requireNetns } from '../../cni/invoke.js';
import { beginCheck, checkContainerAddresses, mismatch } from '../../cni/check.js';
import { parseCidr } from '../../net/ipnet.js';
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



/** What the pod's side needs: its /32, and a default route through the link-local gateway. */
export function containerSetup(ifname: string, ips: IPConfig[]): string[][] {
  return [
    ...ips.map((ip) => ['addr', 'add', ip.address, 'dev', ifname]),
    ['link', 'set', 'dev', ifname, 'up'],
    ['route', 'add', GATEWAY, 'dev', ifname, 'scope', 'link'],
    ['route', 'add', 'default', 'via', GATEWAY, 'dev', ifname, 'onlink'],
  ];
}

const hostSysctls = (dev: string) => ({
  [`net/ipv4/conf/${dev}/proxy_arp`]: 1,
  // Answer at once: the default is a random wait of up to 0.8 s per proxied ARP.
  [`net/ipv4/neigh/${dev}/proxy_delay`]: 0,
  [`net/ipv4/conf/${dev}/forwarding`]: 1,
});

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
      ['link', 'set', 'dev', hostIf, 'up'],
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
    const ips: IPConfig[] = (ipam.ips ?? []).map((ip) => ({ address: ip.address, interface: 1 }));
    if (!ips.length || ips.some((ip) => !parseCidr(ip.address))) throw new CniError(ErrorCode.InvalidConfig, `IPAM ${conf.ipamType} returned no usable IPv4 address: ${JSON.stringify(ipam.ips)}`);
    await node.sysctl(hostSysctls(hostIf));
    await ctr.batch(containerSetup(args.ifname, ips));
    // The node's way back to the pod: one /32 per address, on the pod's own veth.
    await node.batch(ips.map((ip) => ['route', 'replace', ip.address, 'dev', hostIf, 'scope', 'link']));

    const [ctrLink] = await ctr.json<Link[]>('link', 'show', 'dev', args.ifname);
    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: hostIf, mac: HOST_MAC },
        { name: args.ifname, mac: ctrLink.address, sandbox: args.netns },
      ],
      ips,
      routes: [{ dst: '0.0.0.0/0', gw: GATEWAY }],
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

function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

async function check(args: CmdArgs, conf: CalicoConf): Promise<void> {
  const prev = await beginCheck(args, conf);
  const node = new Ip();
  const hostIf = hostVethName(args);
  const host = await node.link(hostIf);
  if (!host) throw mismatch(`host interface ${hostIf} is missing`);
  if (host.address !== HOST_MAC) throw mismatch(`${hostIf} has MAC ${host.address}, not ${HOST_MAC}`);
  for (const [key, want] of Object.entries(hostSysctls(hostIf))) {
    const have = readSysctl(key);
    if (have !== String(want)) throw mismatch(`${key.replaceAll('/', '.')} is ${have}, not ${want}`);
  }
  const routes = await node.json<Route[]>('route', 'show', 'dev', hostIf);
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
