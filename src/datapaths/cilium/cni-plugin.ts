// cilium-cni: a veth pair per pod with no bridge. The host side is lxc<12 hex>
// (named from the container ID, so DEL finds it with no state); the pod gets a
// /32 and a default route via 169.254.1.1 onlink, which the BPF program on the
// lxc device answers ARP for; dual-stack, also an IPv6 /128 and a default route
// via fe80::1, answered by NDP in BPF. The node agent, told over its unix socket,
// attaches that program and puts the pod in its maps.
import { createHash } from 'node:crypto';
import type { CmdArgs } from '../../cni/env.js';
import { CniError, ErrorCode, invalidConfig } from '../../cni/errors.js';
import { Fields, type NetConf } from '../../cni/config.js';
import type { Plugin } from '../../cni/skel.js';
import type { Result } from '../../cni/result.js';
import { delegateAdd, delegateIpam, registerInProcess, delegateArgs, requireNetns } from '../../cni/invoke.js';
import { beginCheck, checkContainerAddresses, mismatch } from '../../cni/check.js';
import { Ip, isNotFound, type Link } from '../../net/ip.js';
import { CommandError } from '../../net/exec.js';
import { AgentUnreachableError, callAgent, type EndpointSpec } from './api.js';
import { hostLocal } from '../../cni/plugins/host-local.js';

registerInProcess('host-local', hostLocal);

/** The pod's gateway: no interface has it; the program on the lxc device answers ARP for it. */
export const GATEWAY = '169.254.1.1';
/** The IPv6 gateway: link-local, on no interface either; the program answers its neighbour solicitations. */
export const GATEWAY6 = 'fe80::1';

export interface CiliumConf extends NetConf {
  /** The node agent's API */
  socket: string;
  mtu: number;
  ipamType: string;
}

export function loadCiliumConf(conf: NetConf): CiliumConf {
  const f = new Fields(conf.raw);
  if (!conf.ipam) throw invalidConfig('ipam', 'is required (cilium-cni delegates addresses, e.g. to host-local)');
  return {
    ...conf,
    socket: f.string('socket') ?? '/var/run/cilium/cilium.sock',
    mtu: f.int('mtu', { min: 68, max: 65535 }) ?? 1500,
    ipamType: new Fields(conf.ipam, 'ipam').string('type', { required: true })!,
  };
}

/** lxc + 12 hex digits of the container ID's hash: 15 characters, the kernel's limit. */
export function hostIfname(containerId: string, ifname: string): string {
  return 'lxc' + createHash('sha256').update(`${containerId}/${ifname}`).digest('hex').slice(0, 12);
}


async function agent(conf: CiliumConf, method: string, path: string, body?: unknown) {
  try {
    return await callAgent(conf.socket, method, path, body);
  } catch (e) {
    if (e instanceof AgentUnreachableError) throw new CniError(ErrorCode.TryAgainLater, e.message);
    throw e;
  }
}

async function add(args: CmdArgs, conf: CiliumConf): Promise<Result> {
  requireNetns(args);
  // IPAM first: a bad ipam section or a full range fails before any link exists.
  const ipam = await delegateAdd(conf.ipamType, conf.raw, delegateArgs(args));
  const address = ipam.ips?.find((i) => !i.address.includes(':'))?.address.split('/')[0];
  const address6 = ipam.ips?.find((i) => i.address.includes(':'))?.address.split('/')[0];
  const host = hostIfname(args.containerId, args.ifname);
  const node = new Ip();
  const pod = new Ip(args.netns);
  let registered = false;
  try {
    if (!address) throw new CniError(ErrorCode.InvalidConfig, `IPAM plugin ${conf.ipamType} returned no IPv4 address`);
    try {
      await node.cmd('link', 'add', host, 'mtu', String(conf.mtu), 'type', 'veth', 'peer', 'name', args.ifname, 'mtu', String(conf.mtu), 'netns', args.netns);
    } catch (e) {
      if (e instanceof CommandError && /File exists/.test(e.stderr)) throw new CniError(ErrorCode.InvalidConfig, `${host} exists on the node or the container already has ${args.ifname}`);
      throw e;
    }
    await pod.batch([
      ['addr', 'add', `${address}/32`, 'dev', args.ifname],
      ['link', 'set', 'dev', args.ifname, 'up'],
      ['route', 'add', GATEWAY, 'dev', args.ifname, 'scope', 'link'],
      ['route', 'add', 'default', 'via', GATEWAY, 'dev', args.ifname],
      // No duplicate address detection: the address is the pod's alone, and usable at once.
      ...(address6 ? [['addr', 'add', `${address6}/128`, 'dev', args.ifname, 'nodad'], ['route', 'add', '::/0', 'via', GATEWAY6, 'dev', args.ifname]] : []),
    ]);
    // The node's own traffic to the pod (not the datapath's) is routed to the lxc device.
    await node.batch([
      ['link', 'set', 'dev', host, 'up'],
      ['route', 'replace', `${address}/32`, 'dev', host, 'scope', 'link'],
      ...(address6 ? [['route', 'replace', `${address6}/128`, 'dev', host]] : []),
    ]);
    const [hostLink] = await node.json<Link[]>('link', 'show', 'dev', host);
    const [podLink] = await pod.json<Link[]>('link', 'show', 'dev', args.ifname);
    const spec: EndpointSpec = { ip: address, ...(address6 ? { ip6: address6 } : {}), ifname: host, ifindex: hostLink.ifindex, mac: podLink.address!, nodeMac: hostLink.address!, pod: args.args.K8S_POD_NAME };
    const r = await agent(conf, 'PUT', `/v1/endpoint/${args.containerId}`, spec);
    if (r.status !== 201) throw new CniError(ErrorCode.KernelOperationFailed, `the cilium agent refused endpoint ${address}: ${JSON.stringify(r.body)}`);
    registered = true;
    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: host, mac: hostLink.address },
        { name: args.ifname, mac: podLink.address, sandbox: args.netns },
      ],
      ips: [{ address: `${address}/32`, gateway: GATEWAY, interface: 1 }, ...(address6 ? [{ address: `${address6}/128`, gateway: GATEWAY6, interface: 1 }] : [])],
      routes: [{ dst: '0.0.0.0/0', gw: GATEWAY }, ...(address6 ? [{ dst: '::/0', gw: GATEWAY6 }] : [])],
      dns: (conf.dns as Result['dns']) ?? {},
    };
  } catch (e) {
    // Undo: the agent's entry, the veth pair (the pod end goes with it), the lease.
    if (registered) await callAgent(conf.socket, 'DELETE', `/v1/endpoint/${args.containerId}`).catch(() => undefined);
    await node.deleteLink(host).catch(() => undefined);
    await delegateIpam('DEL', conf, args).catch(() => undefined);
    throw e;
  }
}

/** Everything ADD made, each part treated as done when it is already gone; an empty CNI_NETNS is fine. */
async function del(args: CmdArgs, conf: CiliumConf): Promise<void> {
  try {
    const r = await callAgent(conf.socket, 'DELETE', `/v1/endpoint/${args.containerId}`);
    if (r.status !== 200 && r.status !== 404) throw new CniError(ErrorCode.KernelOperationFailed, `the cilium agent could not remove endpoint ${args.containerId}: ${JSON.stringify(r.body)}`);
  } catch (e) {
    // No agent: its maps went with it, or go when it starts again from a clean slate.
    if (!(e instanceof AgentUnreachableError)) throw e;
  }
  try {
    await new Ip().deleteLink(hostIfname(args.containerId, args.ifname));
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  await delegateIpam('DEL', conf, args);
}

async function check(args: CmdArgs, conf: CiliumConf): Promise<void> {
  const prev = await beginCheck(args, conf);
  const host = hostIfname(args.containerId, args.ifname);
  if (!(await new Ip().link(host))) throw mismatch(`host device ${host} is missing`);
  await checkContainerAddresses(args, prev);
  const r = await agent(conf, 'GET', `/v1/endpoint/${args.containerId}`);
  if (r.status !== 200) throw mismatch(`the cilium agent does not know endpoint ${args.containerId}`);
}

export const ciliumPlugin: Plugin<CiliumConf> = {
  loadConfig: loadCiliumConf,
  add,
  del,
  check,
  gc: (args, conf) => delegateIpam('GC', conf, args),
  async status(args, conf) {
    await agent(conf, 'GET', '/v1/healthz');
    await delegateIpam('STATUS', conf, args);
  },
};
