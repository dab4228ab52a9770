// A calico-node-like agent. It registers the node in etcd, claims the node's
// IPAM block, and keeps the node in line with the datastore, watching it:
//   bgp    writes BIRD's configuration (as confd does) and has BIRD reload it;
//          BIRD announces the blocks and installs the peers' routes.
//   vxlan  programs vxlan.calico and a route per remote block via the remote
//          VTEP, onlink (as Felix does; no BGP).
//   ipip   programs tunl0 and a route per remote block via the remote node,
//          onlink. Calico's own BIRD fork sets the tunnel on BIRD's routes;
//          Debian's BIRD cannot, so the agent programs them from the blocks.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Ip, randomMac } from '../../net/ip.js';
import { bgpPeersOf, birdc, birdConfig } from './bird.js';
import { BlockAllocator } from './ipam.js';
import { affinityOf, EtcdCalicoStore, type Block, type CalicoNode, type IpPool } from './store.js';
import type { KeyValue } from '../etcd/client.js';
import { policyInputs } from './policy-keys.js';
import { endpointPolicies } from '../../policy/model.js';
import { FelixSync } from '../../policy/felix-sync.js';

export type CalicoMode = 'bgp' | 'vxlan' | 'ipip';

export const VXLAN_DEVICE = 'vxlan.calico';
/** Felix's IPv6 VXLAN device: the same VNI and port, its VTEP the node's IPv6 underlay address. */
export const VXLAN_DEVICE_V6 = 'vxlan-v6.calico';
export const VXLAN_VNI = 4096;
export const VXLAN_PORT = 4789;
export const IPIP_DEVICE = 'tunl0';
/** Felix marks its routes with protocol 80, so `ip route` shows `proto 80`. */
export const FELIX_PROTO = '80';
/** The pods' gateway (see the calico CNI plugin). */
const POD_GATEWAY = '169.254.1.1';

export interface CalicoNodeOptions {
  etcdEndpoint: string;
  nodename: string;
  /** Underlay address and prefix, as calico-node's IP setting: 192.168.10.210/24. */
  ip: string;
  /** Dual-stack: the IPv6 underlay address and prefix (calico-node's IP6), fd00:192:168:10::210/64. */
  ip6?: string;
  iface: string;
  asNumber: number;
  /** Makes this node a route reflector with this cluster id (Calico's routeReflectorClusterID). */
  routeReflectorClusterID?: string;
  birdConfig: string;
  birdSocket: string;
  /** Written after every reconcile: what the node has programmed (the installer waits on it). */
  statusFile: string;
  log?: (msg: string) => void;
}

export interface NodeStatus {
  node: string;
  mode: CalicoMode;
  blocks: string[];
  /** Other nodes this node can reach: in BIRD's configuration, or with their blocks routed. */
  peers: string[];
  /** The datastore revision this status reflects: everything written up to it is programmed. */
  revision: number;
  /** NetworkPolicy as programmed for this node's pods (iptables chains and ipsets), or why it failed. */
  policy: { endpoints: number; policies: number; ipsets: number; error?: string };
}

/** The pool says the mode, as Calico's does: vxlanMode or ipipMode Always, else plain BGP routes. */
export function modeOf(pool: IpPool): CalicoMode {
  if (pool.vxlanMode === 'Always') return 'vxlan';
  if (pool.ipipMode === 'Always') return 'ipip';
  return 'bgp';
}

const addressOf = (n: CalicoNode) => n.ipv4Address.split('/')[0];
const address6Of = (n: CalicoNode) => n.ipv6Address?.split('/')[0];

/**
 * Route commands that make one remote block reachable, or undefined while its node is still
 * setting up. An IPv6 block (dual-stack) goes through vxlan-v6.calico to the owner's IPv6 VTEP.
 */
export function remoteBlockRoute(mode: 'vxlan' | 'ipip', block: string, owner: CalicoNode): { ip: string[][]; bridge: string[][] } | undefined {
  const v6 = block.includes(':');
  if (mode === 'vxlan') {
    const vtep = v6 ? owner.ipv6VXLANTunnelAddr : owner.ipv4VXLANTunnelAddr;
    const mac = v6 ? owner.vxlanTunnelMACAddrV6 : owner.vxlanTunnelMACAddr;
    const underlay = v6 ? address6Of(owner) : addressOf(owner);
    const dev = v6 ? VXLAN_DEVICE_V6 : VXLAN_DEVICE;
    if (!vtep || !mac || !underlay) return undefined;
    return {
      ip: [
        ['neigh', 'replace', vtep, 'lladdr', mac, 'dev', dev, 'nud', 'permanent'],
        ['route', 'replace', block, 'via', vtep, 'dev', dev, 'onlink', 'proto', FELIX_PROTO],
      ],
      bridge: [['fdb', 'replace', mac, 'dev', dev, 'dst', underlay, 'self', 'permanent']],
    };
  }
  if (v6) return undefined; // IPIP carries IPv4 only (a dual-stack lab asks for bgp or vxlan)
  return { ip: [['route', 'replace', block, 'via', addressOf(owner), 'dev', IPIP_DEVICE, 'onlink', 'proto', FELIX_PROTO]], bridge: [] };
}

function writeAtomically(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file + '.tmp', text);
  renameSync(file + '.tmp', file);
}

export class CalicoNodeAgent {
  readonly store: EtcdCalicoStore;
  readonly allocator: BlockAllocator;
  readonly ip = new Ip();
  private abort = new AbortController();
  private log: (msg: string) => void;
  private address: string;
  private mode: CalicoMode = 'bgp';
  private lastBird = '';
  /** Routes programmed by the agent (vxlan, ipip), by block, with the commands used. */
  private programmed = new Map<string, string>();
  private felix = new FelixSync();

  constructor(readonly opts: CalicoNodeOptions) {
    this.store = new EtcdCalicoStore(opts.etcdEndpoint);
    this.allocator = new BlockAllocator(this.store);
    this.address = opts.ip.split('/')[0];
    this.log = opts.log ?? ((m) => console.log(`${new Date().toISOString()} ${m}`));
  }

  private async waitForPool(): Promise<IpPool> {
    for (let attempt = 0; ; attempt++) {
      try {
        // The IPv4 pool says the mode (an IPv6 pool beside it carries the same).
        const pools = await this.store.pools();
        const pool = pools.find((p) => !p.cidr.includes(':')) ?? pools[0];
        if (pool) return pool;
        if (attempt % 20 === 0) this.log('waiting for an IP pool in etcd');
      } catch (e) {
        if (attempt % 20 === 0) this.log(`waiting for etcd at ${this.opts.etcdEndpoint}: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async start(): Promise<void> {
    const pool = await this.waitForPool();
    this.mode = modeOf(pool);
    await this.ip.sysctl({ 'net.ipv4.ip_forward': 1, ...(this.opts.ip6 ? { 'net.ipv6.conf.all.forwarding': 1 } : {}) });
    // Proxy ARP answers only for addresses the node has a route to; a node's
    // default route usually covers 169.254.1.1 (calico#3270). Lab nodes have
    // no default route, so the node gets the narrowest route that does.
    await this.ip.cmd('route', 'replace', POD_GATEWAY, 'dev', this.opts.iface, 'scope', 'link');

    const blocks = await this.allocator.ensureBlock(this.opts.nodename);
    this.log(`block affinity: ${blocks.map((b) => b.cidr).join(', ')} (pool ${pool.cidr}, mode ${this.mode})`);
    const record: CalicoNode = { name: this.opts.nodename, ipv4Address: this.opts.ip, ...(this.opts.ip6 ? { ipv6Address: this.opts.ip6 } : {}), asNumber: this.opts.asNumber };
    if (this.opts.routeReflectorClusterID) record.routeReflectorClusterID = this.opts.routeReflectorClusterID;
    if (this.mode === 'vxlan') Object.assign(record, await this.setupVxlan(), this.opts.ip6 ? await this.setupVxlanV6() : {});
    if (this.mode === 'ipip') Object.assign(record, await this.setupIpip());
    await this.store.putNode(record);

    const { revision } = await this.reconcile();
    void this.watchLoop(revision + 1);
  }

  /** Like Felix: the VTEP takes an address from the node's block, its MAC goes into the node's record. */
  private async setupVxlan(): Promise<Partial<CalicoNode>> {
    const vtep = await this.allocator.assign({ node: this.opts.nodename, handle: `vxlan-tunnel-addr-${this.opts.nodename}` });
    const under = await this.ip.link(this.opts.iface);
    if (!under) throw new Error(`underlay device ${this.opts.iface} not found`);
    await this.ip.deleteLink(VXLAN_DEVICE);
    await this.ip.batch([
      ['link', 'add', VXLAN_DEVICE, 'mtu', String(under.mtu - 50), 'address', randomMac(), 'type', 'vxlan', 'id', String(VXLAN_VNI), 'local', this.address, 'dev', this.opts.iface, 'dstport', String(VXLAN_PORT), 'nolearning'],
      ['addr', 'add', `${vtep}/32`, 'dev', VXLAN_DEVICE],
      ['link', 'set', VXLAN_DEVICE, 'up'],
    ]);
    const link = await this.ip.link(VXLAN_DEVICE);
    this.log(`${VXLAN_DEVICE}: VNI ${VXLAN_VNI}, UDP ${VXLAN_PORT}, VTEP ${vtep} ${link!.address}`);
    return { ipv4VXLANTunnelAddr: vtep, vxlanTunnelMACAddr: link!.address };
  }

  /** The IPv6 counterpart: vxlan-v6.calico over the IPv6 underlay, its VTEP an address of the node's IPv6 block. */
  private async setupVxlanV6(): Promise<Partial<CalicoNode>> {
    const vtep = await this.allocator.assign({ node: this.opts.nodename, handle: `vxlan-v6-tunnel-addr-${this.opts.nodename}`, family: 6 });
    const under = await this.ip.link(this.opts.iface);
    if (!under) throw new Error(`underlay device ${this.opts.iface} not found`);
    await this.ip.deleteLink(VXLAN_DEVICE_V6);
    await this.ip.batch([
      // 70 bytes: an IPv6 header (40), UDP (8), VXLAN (8) and the inner Ethernet header (14).
      ['link', 'add', VXLAN_DEVICE_V6, 'mtu', String(under.mtu - 70), 'address', randomMac(), 'type', 'vxlan', 'id', String(VXLAN_VNI), 'local', this.opts.ip6!.split('/')[0], 'dev', this.opts.iface, 'dstport', String(VXLAN_PORT), 'nolearning'],
      ['addr', 'add', `${vtep}/128`, 'dev', VXLAN_DEVICE_V6, 'nodad'],
      ['link', 'set', VXLAN_DEVICE_V6, 'up'],
    ]);
    const link = await this.ip.link(VXLAN_DEVICE_V6);
    this.log(`${VXLAN_DEVICE_V6}: VNI ${VXLAN_VNI}, UDP ${VXLAN_PORT}, VTEP ${vtep} ${link!.address}`);
    return { ipv6VXLANTunnelAddr: vtep, vxlanTunnelMACAddrV6: link!.address };
  }

  /** tunl0 is the ipip module's fallback device; it takes an address from the node's block. */
  private async setupIpip(): Promise<Partial<CalicoNode>> {
    const addr = await this.allocator.assign({ node: this.opts.nodename, handle: `ipip-tunnel-addr-${this.opts.nodename}` });
    const under = await this.ip.link(this.opts.iface);
    if (!(await this.ip.link(IPIP_DEVICE))) await this.ip.cmd('link', 'add', 'name', IPIP_DEVICE, 'type', 'ipip');
    await this.ip.batch([
      ['link', 'set', IPIP_DEVICE, 'mtu', String((under?.mtu ?? 1500) - 20), 'up'],
      ['addr', 'replace', `${addr}/32`, 'dev', IPIP_DEVICE],
    ]);
    this.log(`${IPIP_DEVICE}: address ${addr}`);
    return { ipv4IPIPTunnelAddr: addr };
  }

  /** Bring the node in line with the datastore; returns the revision it read. */
  async reconcile(): Promise<{ revision: number }> {
    const { nodes, blocks, revision, kvs } = await this.store.snapshot();
    const others = nodes.filter((n) => n.name !== this.opts.nodename);
    const mine = blocks.filter((b) => b.value.affinity === affinityOf(this.opts.nodename)).map((b) => b.value.cidr);
    const peers = this.mode === 'bgp' ? await this.configureBird(others, mine) : await this.programRoutes(others, blocks.map((b) => b.value), mine);
    const policy = await this.programPolicy(kvs);
    const status: NodeStatus = { node: this.opts.nodename, mode: this.mode, blocks: mine, peers, revision, policy };
    writeAtomically(this.opts.statusFile, JSON.stringify(status, null, 2) + '\n');
    return { revision };
  }

  /** As Felix: chains for this node's endpoints, ipsets with the members of every selector they use. */
  private async programPolicy(kvs: KeyValue[]): Promise<NodeStatus['policy']> {
    const { cluster, policies } = policyInputs(kvs);
    try {
      const endpoints = endpointPolicies(cluster, policies);
      const local = endpoints.flatMap((ep, i) => (cluster.pods[i].node === this.opts.nodename ? [{ policy: ep, iface: cluster.pods[i].iface }] : []));
      const s = await this.felix.sync(local);
      if (s.chainsWritten || s.chainsRemoved) this.log(`policy: ${local.length} endpoints, ${policies.length} policies, ${s.ipsets} ipsets; ${s.chainsWritten} chains written, ${s.chainsRemoved} removed`);
      return { endpoints: local.length, policies: policies.length, ipsets: s.ipsets };
    } catch (e) {
      this.log(`policy: programming failed: ${(e as Error).message}`);
      return { endpoints: 0, policies: policies.length, ipsets: 0, error: (e as Error).message };
    }
  }

  private async configureBird(others: CalicoNode[], mine: string[]): Promise<string[]> {
    const text = birdConfig({
      node: this.opts.nodename,
      address: this.address,
      ...(this.opts.ip6 ? { address6: this.opts.ip6.split('/')[0] } : {}),
      asNumber: this.opts.asNumber,
      ...(this.opts.routeReflectorClusterID ? { routeReflectorClusterID: this.opts.routeReflectorClusterID } : {}),
      peers: others.map((n) => ({
        name: n.name,
        address: addressOf(n),
        ...(address6Of(n) ? { address6: address6Of(n) } : {}),
        ...(n.routeReflectorClusterID ? { routeReflectorClusterID: n.routeReflectorClusterID } : {}),
      })),
      blocks: mine,
    });
    if (text !== this.lastBird) {
      writeAtomically(this.opts.birdConfig, text);
      this.lastBird = text;
      const { mesh, peers } = bgpPeersOf({ routeReflectorClusterID: this.opts.routeReflectorClusterID }, others);
      this.log(`wrote ${this.opts.birdConfig}: ${mesh ? 'mesh' : 'route reflector'} peers ${peers.map((n) => n.name).join(', ') || 'none'}, blocks ${mine.join(', ')}`);
      // Before BIRD runs there is no socket: it reads the file when it starts.
      if (existsSync(this.opts.birdSocket)) {
        const out = await birdc(this.opts.birdSocket, 'configure').catch((e: Error) => e.message);
        this.log(`birdc configure: ${out.trim().split('\n').pop()}`);
      }
    }
    return others.map((n) => n.name);
  }

  private async programRoutes(others: CalicoNode[], blocks: Block[], mine: string[]): Promise<string[]> {
    const wanted = new Map<string, { ip: string[][]; bridge: string[][] }>();
    for (const b of mine) wanted.set(b, { ip: [['route', 'replace', 'blackhole', b, 'proto', FELIX_PROTO]], bridge: [] });
    const reached = new Set<string>();
    for (const b of blocks) {
      const owner = others.find((n) => affinityOf(n.name) === b.affinity);
      if (!owner) continue;
      const cmds = remoteBlockRoute(this.mode as 'vxlan' | 'ipip', b.cidr, owner);
      if (!cmds) continue;
      wanted.set(b.cidr, cmds);
      reached.add(owner.name);
    }
    for (const block of this.programmed.keys()) {
      if (wanted.has(block)) continue;
      await this.ip.cmd('route', 'del', block).catch(() => undefined);
      this.programmed.delete(block);
      this.log(`removed route to ${block}`);
    }
    for (const [block, cmds] of wanted) {
      const key = JSON.stringify(cmds);
      if (this.programmed.get(block) === key) continue;
      await this.ip.batch(cmds.ip);
      for (const line of cmds.bridge) await this.ip.bridgeCmd(...line);
      this.programmed.set(block, key);
      this.log(`route to ${block}: ${cmds.ip.at(-1)!.slice(1).join(' ')}`);
    }
    return others.filter((n) => reached.has(n.name) || !blocks.some((b) => b.affinity === affinityOf(n.name))).map((n) => n.name);
  }

  private async watchLoop(from: number): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        await this.store.etcd.watch('/calico/', from, async () => {
          from = (await this.reconcile()).revision + 1;
        }, this.abort.signal);
      } catch (e) {
        if (this.abort.signal.aborted) return;
        this.log(`watch interrupted (${(e as Error).message}); resyncing`);
        await new Promise((r) => setTimeout(r, 200));
        from = (await this.reconcile().catch(() => ({ revision: from - 1 }))).revision + 1;
      }
    }
  }

  stop(): void {
    this.abort.abort();
  }
}

