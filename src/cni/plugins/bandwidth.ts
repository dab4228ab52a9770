// bandwidth (chained): shapes a pod's traffic with token-bucket filters on the
// node side of its veth, as the reference plugin does. Traffic into the pod
// (ingress) leaves the node through the host veth: a root tbf there. Traffic
// out of the pod (egress) arrives on the host veth: its ingress qdisc redirects
// every packet to an ifb device (bwp<hash>), whose root tbf shapes it.
// Rates come in bits/s and bursts in bits, from runtimeConfig.bandwidth
// (capability "bandwidth", filled from the pod's kubernetes.io/ingress-bandwidth
// and egress-bandwidth annotations) or from the plugin's own fields.
import { createHash } from 'node:crypto';
import type { CmdArgs } from '../env.js';
import { CniError, ErrorCode, invalidConfig } from '../errors.js';
import { Fields, type NetConf } from '../config.js';
import type { GcArgs, Plugin } from '../skel.js';
import type { Interface, Result } from '../result.js';
import { Ip, type Link } from '../../net/ip.js';
import { addIngressRedirect, addTbf, deleteQdisc, ingressFilters, qdiscs, type Tbf } from '../../net/tc.js';

/** The reference's queueing allowance: the queue holds 25 ms at the rate, plus the burst. */
const LATENCY_MS = 25;
const IFB_PREFIX = 'bwp';
/** What an ifb device of ours carries as its alias, so GC removes only its own network's devices. */
const aliasOf = (network: string, containerId: string) => `cni-bandwidth:${network}:${containerId}`;

export interface Bandwidth {
  ingressRate: number;
  ingressBurst: number;
  egressRate: number;
  egressBurst: number;
}

export interface BandwidthConf extends NetConf {
  bandwidth: Bandwidth;
}

const KEYS = ['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst'] as const;

export function loadBandwidthConf(conf: NetConf): BandwidthConf {
  // Fields of the plugin's own config win over runtimeConfig, as in the reference.
  const own = KEYS.some((k) => conf.raw[k] !== undefined);
  const f = own ? new Fields(conf.raw) : new Fields(conf.runtimeConfig ?? {}, 'runtimeConfig').child('bandwidth');
  const read = (k: (typeof KEYS)[number]) => f.int(k, { min: 0 }) ?? 0;
  const bw: Bandwidth = { ingressRate: read('ingressRate'), ingressBurst: read('ingressBurst'), egressRate: read('egressRate'), egressBurst: read('egressBurst') };
  for (const dir of ['ingress', 'egress'] as const) {
    const rate = bw[`${dir}Rate`];
    const burst = bw[`${dir}Burst`];
    if (rate && !burst) throw invalidConfig(f.name(`${dir}Burst`), `is required when ${dir}Rate is set`);
    if (burst && !rate) throw invalidConfig(f.name(`${dir}Rate`), `is required when ${dir}Burst is set`);
    if (rate && rate < 8) throw invalidConfig(f.name(`${dir}Rate`), `${rate} bit/s is less than a byte per second`);
    if (burst / 8 >= 2 ** 32 - 1) throw invalidConfig(f.name(`${dir}Burst`), 'cannot be more than 4 GB');
  }
  return { ...conf, bandwidth: bw };
}

/** bwp + the first hex digits of sha512(network + container ID), 15 characters: the reference's name. */
export function ifbName(network: string, containerId: string): string {
  return (IFB_PREFIX + createHash('sha512').update(network + containerId).digest('hex')).slice(0, 15);
}

/** The token bucket for `rateBits` bit/s and `burstBits` bits, in bytes, with the reference's queue limit. */
export function tbfFor(rateBits: number, burstBits: number): Tbf {
  const rate = Math.floor(rateBits / 8);
  const burst = Math.floor(burstBits / 8);
  return { rate, burst, limit: Math.floor((rate * LATENCY_MS) / 1000) + burst };
}

function requirePrev(conf: BandwidthConf): Result {
  if (!conf.prevResult) throw invalidConfig('prevResult', 'is required: bandwidth is chained after the plugin that makes the pod\'s veth');
  return conf.prevResult;
}

/** The node end of the container interface's veth, which must be one of the previous result's node-side interfaces. */
async function hostInterface(args: CmdArgs, prev: Result): Promise<Link> {
  const inside = await new Ip(args.netns).link(args.ifname);
  if (!inside || inside.link_index === undefined || inside.linkinfo?.info_kind !== 'veth') {
    throw new CniError(ErrorCode.InvalidConfig, `container interface ${args.ifname} has no veth peer: bandwidth shapes on the node side of a veth`);
  }
  const peer = (await new Ip().links()).find((l) => l.ifindex === inside.link_index);
  if (!peer) throw new CniError(ErrorCode.InvalidConfig, `the veth peer (ifindex ${inside.link_index}) of ${args.ifname} is not in the node's namespace`);
  if (!(prev.interfaces ?? []).some((i) => !i.sandbox && i.name === peer.ifname)) {
    throw new CniError(ErrorCode.InvalidConfig, `prevResult: lists no node-side interface ${peer.ifname} (the veth peer of ${args.ifname})`);
  }
  return peer;
}

const isZero = (b: Bandwidth) => KEYS.every((k) => !b[k]);

async function add(args: CmdArgs, conf: BandwidthConf): Promise<Result> {
  const prev = requirePrev(conf);
  const bw = conf.bandwidth;
  if (isZero(bw)) return prev;
  const host = await hostInterface(args, prev);
  const ifb = ifbName(conf.name, args.containerId);
  const result: Result = { ...prev, interfaces: [...(prev.interfaces ?? [])] };
  try {
    if (bw.ingressRate) await addTbf(undefined, host.ifname, tbfFor(bw.ingressRate, bw.ingressBurst));
    if (bw.egressRate) {
      const ip = new Ip();
      await ip.batch([
        ['link', 'add', ifb, 'mtu', String(host.mtu), 'type', 'ifb'],
        ['link', 'set', ifb, 'alias', aliasOf(conf.name, args.containerId)],
        ['link', 'set', ifb, 'up'],
      ]);
      await addIngressRedirect(undefined, host.ifname, ifb);
      await addTbf(undefined, ifb, tbfFor(bw.egressRate, bw.egressBurst));
      const link = await ip.link(ifb);
      result.interfaces!.push({ name: ifb, ...(link?.address ? { mac: link.address } : {}) } as Interface);
    }
  } catch (e) {
    await undo(host.ifname, ifb);
    throw e;
  }
  return result;
}

/** Take out what ADD made; everything may already be gone. */
async function undo(hostIf: string | undefined, ifb: string): Promise<void> {
  const ip = new Ip();
  await ip.deleteLink(ifb);
  if (!hostIf || !(await ip.link(hostIf))) return;
  if ((await qdiscs(undefined, hostIf)).some((q) => q.root && q.kind === 'tbf')) await deleteQdisc(undefined, hostIf, 'root');
  await deleteQdisc(undefined, hostIf, 'ingress');
}

async function del(args: CmdArgs, conf: BandwidthConf): Promise<void> {
  // The host veth usually goes with the pod; when it stays (the netns is still
  // there), its shapers go too. Without a netns or prevResult only the ifb can be found.
  let hostIf: string | undefined;
  if (args.netns && conf.prevResult && !isZero(conf.bandwidth)) hostIf = (await hostInterface(args, conf.prevResult).catch(() => undefined))?.ifname;
  await undo(hostIf, ifbName(conf.name, args.containerId));
}

/**
 * What tc shows for a tbf we set: rate, burst and the 25 ms queue. The kernel
 * keeps the bucket as a time, and tc and netlink callers (the reference) round
 * it differently: a burst within two microseconds of tokens is the same bucket.
 */
function checkTbf(dev: string, shown: Record<string, unknown> | undefined, want: Tbf): void {
  if (!shown) throw new CniError(ErrorCode.StateMismatch, `CHECK failed: ${dev} has no tbf qdisc`);
  if (shown.rate !== want.rate) throw new CniError(ErrorCode.StateMismatch, `CHECK failed: the tbf on ${dev} shapes at ${shown.rate} bytes/s, not ${want.rate}`);
  if (typeof shown.burst !== 'number' || Math.abs(shown.burst - want.burst) > (2 * want.rate) / 1e6 + 1) {
    throw new CniError(ErrorCode.StateMismatch, `CHECK failed: the tbf on ${dev} has a burst of ${shown.burst} bytes, not ${want.burst}`);
  }
  if (typeof shown.lat === 'number' && Math.abs(shown.lat - LATENCY_MS * 1000) > 1) {
    throw new CniError(ErrorCode.StateMismatch, `CHECK failed: the tbf on ${dev} queues ${shown.lat} µs, not ${LATENCY_MS * 1000}`);
  }
}

const rootTbf = async (dev: string) => (await qdiscs(undefined, dev)).find((q) => q.root && q.kind === 'tbf')?.options;

async function check(args: CmdArgs, conf: BandwidthConf): Promise<void> {
  const prev = requirePrev(conf);
  const bw = conf.bandwidth;
  if (isZero(bw)) return;
  const host = await hostInterface(args, prev);
  if (bw.ingressRate) checkTbf(host.ifname, await rootTbf(host.ifname), tbfFor(bw.ingressRate, bw.ingressBurst));
  if (bw.egressRate) {
    const ifb = ifbName(conf.name, args.containerId);
    if (!(await new Ip().link(ifb))) throw new CniError(ErrorCode.StateMismatch, `CHECK failed: the ifb device ${ifb} does not exist`);
    const redirects = (await ingressFilters(undefined, host.ifname)).some((f) => f.options?.actions?.some((a) => a.kind === 'mirred' && a.to_dev === ifb));
    if (!redirects) throw new CniError(ErrorCode.StateMismatch, `CHECK failed: ${host.ifname} does not redirect its incoming packets to ${ifb}`);
    checkTbf(ifb, await rootTbf(ifb), tbfFor(bw.egressRate, bw.egressBurst));
  }
}

/** Remove this network's ifb devices whose container is not among the valid attachments. */
async function gc(_args: CmdArgs, conf: BandwidthConf, g: GcArgs): Promise<void> {
  const valid = new Set(g.validAttachments.map((a) => aliasOf(conf.name, a.containerID)));
  const ip = new Ip();
  const prefix = aliasOf(conf.name, '');
  for (const l of await ip.links()) {
    const alias = (l as Link & { ifalias?: string }).ifalias;
    if (l.linkinfo?.info_kind === 'ifb' && l.ifname.startsWith(IFB_PREFIX) && alias?.startsWith(prefix) && !valid.has(alias)) await ip.deleteLink(l.ifname);
  }
}

export const bandwidthPlugin: Plugin<BandwidthConf> = { loadConfig: loadBandwidthConf, add, del, check, gc };
