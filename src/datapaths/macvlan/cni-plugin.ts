// macvlan: the container's interface is a macvlan child of a node device (the
// underlay), so the pod sits on the node network itself: no bridge, no veth,
// no encapsulation. Children cannot talk to their parent; a node that wants to
// reach its pods needs a macvlan of its own (the lab's network installer makes one).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { CmdArgs } from '../../cni/env.js';
import { interfaceNameProblem } from '../../cni/env.js';
import { CniError, ErrorCode, invalidConfig } from '../../cni/errors.js';
import { Fields, type NetConf } from '../../cni/config.js';
import type { Plugin } from '../../cni/skel.js';
import type { Result, IPConfig } from '../../cni/result.js';
import { delegateAdd, delegateIpam, registerInProcess, delegateArgs, requireNetns } from '../../cni/invoke.js';
import { beginCheck, checkContainerAddresses, mismatch } from '../../cni/check.js';
import { Ip, isNotFound, type Link } from '../../net/ip.js';
import { CommandError } from '../../net/exec.js';
import { hostLocal } from '../../cni/plugins/host-local.js';

registerInProcess('host-local', hostLocal);

export const MACVLAN_MODES = ['bridge', 'private', 'vepa', 'passthru'] as const;

export interface MacvlanConf extends NetConf {
  /** The node device the children hang off (the underlay interface). */
  master: string;
  mode: (typeof MACVLAN_MODES)[number];
  mtu?: number;
  ipamType: string;
}

export function loadMacvlanConf(conf: NetConf): MacvlanConf {
  const f = new Fields(conf.raw);
  const master = f.string('master', { required: true })!;
  const why = interfaceNameProblem(master);
  if (why) throw invalidConfig('master', `"${master}" ${why}`);
  if (!conf.ipam) throw invalidConfig('ipam', 'is required: macvlan takes its addresses from an IPAM plugin');
  return {
    ...conf,
    master,
    mode: (f.string('mode', { oneOf: MACVLAN_MODES }) ?? 'bridge') as MacvlanConf['mode'],
    mtu: f.int('mtu', { min: 68, max: 65535 }),
    ipamType: new Fields(conf.ipam, 'ipam').string('type', { required: true })!,
  };
}



async function requireMaster(node: Ip, conf: MacvlanConf): Promise<Link> {
  const link = await node.link(conf.master);
  if (!link) throw invalidConfig('master', `"${conf.master}" does not exist on the node`);
  if (conf.mtu !== undefined && conf.mtu > link.mtu) throw invalidConfig('mtu', `${conf.mtu} is larger than the MTU ${link.mtu} of master ${conf.master}`);
  return link;
}

async function add(args: CmdArgs, conf: MacvlanConf): Promise<Result> {
  requireNetns(args);
  const node = new Ip();
  const ctr = new Ip(args.netns);
  await requireMaster(node, conf);
  // IPAM first: a bad ipam section or a full range then fails before any link exists.
  const ipam = await delegateAdd(conf.ipamType, conf.raw, delegateArgs(args));
  let linkMade = false;
  try {
    // Made straight inside the container's namespace under a temporary name, then
    // renamed there: kernels before 6.15 look a new link's name up in the namespace
    // the request comes from, where the master itself is often called eth0 too.
    const tmp = `mv${randomBytes(6).toString('hex')}`;
    await node.cmd('link', 'add', 'link', conf.master, 'name', tmp, 'netns', args.netns, ...(conf.mtu ? ['mtu', String(conf.mtu)] : []), 'type', 'macvlan', 'mode', conf.mode);
    try {
      await ctr.cmd('link', 'set', 'dev', tmp, 'name', args.ifname);
    } catch (e) {
      await ctr.deleteLink(tmp).catch(() => undefined);
      if (e instanceof CommandError && /File exists/.test(e.stderr)) {
        throw new CniError(ErrorCode.InvalidConfig, `the container already has an interface named ${args.ifname}`);
      }
      throw e;
    }
    linkMade = true;
    const ips: IPConfig[] = (ipam.ips ?? []).map((ip) => ({ ...ip, interface: 0 }));
    const routes = ipam.routes ?? [];
    await ctr.batch([
      // IPv6 without duplicate address detection, as the bridge plugin here: host-local hands each address out once.
      ...ips.map((ip) => ['addr', 'add', ip.address, 'dev', args.ifname, ...(ip.address.includes(':') ? ['nodad'] : [])]),
      ['link', 'set', 'dev', args.ifname, 'up'],
      ...routes.map((r) => ['route', 'add', r.dst, ...(r.gw ? ['via', r.gw] : []), 'dev', args.ifname]),
    ]);
    const [link] = await ctr.json<Link[]>('link', 'show', 'dev', args.ifname);
    return {
      cniVersion: conf.cniVersion,
      interfaces: [{ name: args.ifname, mac: link.address, sandbox: args.netns }],
      ips,
      routes,
      dns: (conf.dns as Result['dns']) ?? {},
    };
  } catch (e) {
    // Undo: the child link (never one that was there before us) and the lease.
    if (linkMade) await ctr.deleteLink(args.ifname).catch(() => undefined);
    await delegateIpam('DEL', conf, args).catch(() => undefined);
    throw e;
  }
}

async function del(args: CmdArgs, conf: MacvlanConf): Promise<void> {
  await delegateIpam('DEL', conf, args);
  // An empty or vanished namespace took the child link with it.
  if (!args.netns || !existsSync(args.netns)) return;
  try {
    await new Ip(args.netns).deleteLink(args.ifname);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

async function check(args: CmdArgs, conf: MacvlanConf): Promise<void> {
  const prev = await beginCheck(args, conf);
  const ctr = new Ip(args.netns);
  const link = await ctr.link(args.ifname);
  if (!link) throw mismatch(`${args.ifname} is missing in ${args.netns}`);
  if (link.linkinfo?.info_kind !== 'macvlan') throw mismatch(`${args.ifname} is a ${link.linkinfo?.info_kind ?? 'plain device'}, not a macvlan`);
  const mode = link.linkinfo.info_data?.mode;
  if (mode !== conf.mode) throw mismatch(`${args.ifname} is in macvlan mode ${String(mode)}, the configuration says ${conf.mode}`);
  const want = (prev.interfaces ?? []).find((i) => i.sandbox && i.name === args.ifname);
  if (want?.mac && link.address !== want.mac) throw mismatch(`${args.ifname} has MAC ${link.address}, prevResult says ${want.mac}`);
  await checkContainerAddresses(args, prev);
}

export const macvlanPlugin: Plugin<MacvlanConf> = {
  loadConfig: loadMacvlanConf,
  add,
  del,
  check,
  // The runtime's list of valid attachments travels in conf.raw to the IPAM plugin.
  gc: (args, conf) => delegateIpam('GC', conf, args),
  status: (args, conf) => delegateIpam('STATUS', conf, args),
};
