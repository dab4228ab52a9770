// A flannel-like node agent: leases this node's pod subnet from etcd, writes
// subnet.env for the CNI plugin, and programs the datapath toward every other
// node's lease, watching etcd so that nodes joining later are reached too.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Ip } from '../../net/ip.js';
import { ensureRule } from '../../net/iptables.js';
import { formatCidr, formatIp, network, parseCidr, subnet, type Cidr } from '../../net/ipnet.js';
import { Etcd, type KeyValue } from '../etcd/client.js';
import { UdpBackend } from './udp.js';

export interface AgentOptions {
  etcdEndpoint: string;
  prefix: string; // /coreos.com/network
  iface: string; // the underlay device, eth0
  publicIp: string;
  subnetFile: string;
  log?: (msg: string) => void;
}

export interface NetworkConfig {
  Network: string;
  SubnetLen?: number;
  Backend?: { Type?: string; VNI?: number; Port?: number; Offload?: boolean };
}

export interface Lease {
  subnet: Cidr;
  publicIp: string;
  backendType: string;
  backendData: Record<string, unknown>;
}

/** The per-backend part: what the device is, and how to reach one remote lease. */
export interface FlannelBackend {
  readonly type: string;
  /** Overhead to take off the underlay MTU. */
  readonly overhead: number;
  setup(local: Cidr): Promise<Record<string, unknown>>;
  /** Commands (ip batch lines, bridge fdb lines) that make `remote` reachable. */
  addRemote(remote: Lease): { ip: string[][]; bridge: string[][] };
  removeRemote(remote: Lease): { ip: string[][]; bridge: string[][] };
  /** Release what lives in this process (threads, file descriptors); returns a line for the log. */
  stop?(): Promise<string | void>;
}

export const subnetKey = (prefix: string, s: Cidr) => `${prefix}/subnets/${formatIp(s.ip)}-${s.prefix}`;

export function parseLease(kv: KeyValue, prefix: string): Lease | undefined {
  const m = kv.key.slice(`${prefix}/subnets/`.length).match(/^(\d+\.\d+\.\d+\.\d+)-(\d+)$/);
  if (!m) return undefined;
  const v = JSON.parse(kv.value) as { PublicIP: string; BackendType?: string; BackendData?: Record<string, unknown> };
  return { subnet: parseCidr(`${m[1]}/${m[2]}`)!, publicIp: v.PublicIP, backendType: v.BackendType ?? '', backendData: v.BackendData ?? {} };
}

export class VxlanBackend implements FlannelBackend {
  readonly type = 'vxlan';
  readonly overhead = 50;
  readonly device: string;
  constructor(
    private ip: Ip,
    private opts: AgentOptions,
    private vni = 1,
    private port = 8472,
  ) {
    this.device = `flannel.${vni}`;
  }

  async setup(local: Cidr): Promise<Record<string, unknown>> {
    const under = await this.ip.link(this.opts.iface);
    if (!under) throw new Error(`underlay device ${this.opts.iface} not found`);
    await this.ip.deleteLink(this.device);
    // nolearning: every remote MAC is programmed from etcd, nothing is flooded.
    await this.ip.batch([
      ['link', 'add', this.device, 'mtu', String(under.mtu - this.overhead), 'type', 'vxlan', 'id', String(this.vni), 'local', this.opts.publicIp, 'dev', this.opts.iface, 'dstport', String(this.port), 'nolearning'],
      ['addr', 'add', `${formatIp(network(local))}/32`, 'dev', this.device],
      ['link', 'set', this.device, 'up'],
    ]);
    const link = await this.ip.link(this.device);
    return { VNI: this.vni, VtepMAC: link!.address };
  }

  addRemote(r: Lease) {
    const gw = formatIp(network(r.subnet));
    const mac = String(r.backendData.VtepMAC);
    return {
      ip: [
        ['neigh', 'replace', gw, 'lladdr', mac, 'dev', this.device, 'nud', 'permanent'],
        ['route', 'replace', formatCidr(r.subnet), 'via', gw, 'dev', this.device, 'onlink'],
      ],
      bridge: [['fdb', 'replace', mac, 'dev', this.device, 'dst', r.publicIp, 'self', 'permanent']],
    };
  }

  removeRemote(r: Lease) {
    const gw = formatIp(network(r.subnet));
    return {
      ip: [
        ['route', 'del', formatCidr(r.subnet)],
        ['neigh', 'del', gw, 'dev', this.device],
      ],
      bridge: [['fdb', 'del', String(r.backendData.VtepMAC), 'dev', this.device, 'dst', r.publicIp]],
    };
  }
}

/** host-gw: no device, no encapsulation; the other node is the next hop. */
export class HostGwBackend implements FlannelBackend {
  readonly type = 'host-gw';
  readonly overhead = 0;
  constructor(private opts: AgentOptions) {}
  async setup(): Promise<Record<string, unknown>> {
    return {};
  }
  addRemote(r: Lease) {
    return { ip: [['route', 'replace', formatCidr(r.subnet), 'via', r.publicIp, 'dev', this.opts.iface]], bridge: [] };
  }
  removeRemote(r: Lease) {
    return { ip: [['route', 'del', formatCidr(r.subnet)]], bridge: [] };
  }
}

export class FlannelAgent {
  readonly etcd: Etcd;
  readonly ip = new Ip();
  private programmed = new Map<string, Lease>();
  private abort = new AbortController();
  private log: (msg: string) => void;
  private backend?: FlannelBackend;
  lease?: Lease;

  constructor(readonly opts: AgentOptions) {
    this.etcd = new Etcd(opts.etcdEndpoint);
    this.log = opts.log ?? ((m) => console.log(`${new Date().toISOString()} ${m}`));
  }

  private async waitForConfig(): Promise<NetworkConfig> {
    for (let attempt = 0; ; attempt++) {
      try {
        const kv = await this.etcd.get(`${this.opts.prefix}/config`);
        if (kv) return JSON.parse(kv.value) as NetworkConfig;
        if (attempt % 20 === 0) this.log(`waiting for ${this.opts.prefix}/config in etcd`);
      } catch (e) {
        if (attempt % 20 === 0) this.log(`waiting for etcd at ${this.opts.etcdEndpoint}: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Take this node's existing lease, or the lowest free subnet (deterministic, so labs are reproducible). */
  private async acquire(net: Cidr, len: number, value: (s: Cidr) => string): Promise<Cidr> {
    const { kvs } = await this.etcd.list(`${this.opts.prefix}/subnets/`);
    const mine = kvs.map((kv) => parseLease(kv, this.opts.prefix)).find((l) => l?.publicIp === this.opts.publicIp);
    if (mine) {
      await this.etcd.put(subnetKey(this.opts.prefix, mine.subnet), value(mine.subnet));
      return mine.subnet;
    }
    const count = 2 ** (len - net.prefix);
    for (let i = 0; i < count; i++) {
      const s = subnet(net, len, i);
      if (await this.etcd.createIfAbsent(subnetKey(this.opts.prefix, s), value(s))) return s;
    }
    throw new Error(`no free /${len} left in ${formatCidr(net)}`);
  }

  async start(): Promise<void> {
    const config = await this.waitForConfig();
    const net = parseCidr(config.Network);
    if (!net) throw new Error(`network config: Network "${config.Network}" is not a CIDR`);
    const len = config.SubnetLen ?? 24;
    const type = config.Backend?.Type ?? 'vxlan';
    const backend = this.makeBackend(type, config, net);
    this.backend = backend;

    // The lease is created first (with the subnet), then the device that needs it.
    const placeholder = () => JSON.stringify({ PublicIP: this.opts.publicIp, BackendType: type, BackendData: {} });
    const local = await this.acquire(net, len, placeholder);
    const backendData = await backend.setup(local);
    const leaseValue = { PublicIP: this.opts.publicIp, BackendType: type, BackendData: backendData };
    await this.etcd.put(subnetKey(this.opts.prefix, local), JSON.stringify(leaseValue));
    this.lease = { subnet: local, publicIp: this.opts.publicIp, backendType: type, backendData };
    this.log(`acquired lease ${formatCidr(local)} for ${this.opts.publicIp} (backend ${type})`);

    const under = await this.ip.link(this.opts.iface);
    const mtu = (under?.mtu ?? 1500) - backend.overhead;
    await this.ip.sysctl({ 'net.ipv4.ip_forward': 1 });
    await this.masquerade(net);
    this.writeSubnetEnv(formatCidr(net), `${formatIp(network(local) + 1)}/${len}`, mtu);

    const { revision } = await this.reconcile(backend);
    void this.watchLoop(backend, revision + 1);
  }

  /**
   * Like flanneld --ip-masq: NAT only what leaves the pod network. Pod-to-pod
   * traffic keeps its source address (the Kubernetes model), which is why the
   * bridge itself is told not to masquerade (FLANNEL_IPMASQ=true).
   */
  private async masquerade(net: Cidr): Promise<void> {
    const cidr = formatCidr(net);
    await ensureRule(undefined, 'nat', 'POSTROUTING', ['-s', cidr, '!', '-d', cidr, '-m', 'comment', '--comment', 'flanneld masq', '-j', 'MASQUERADE']);
  }

  private makeBackend(type: string, config: NetworkConfig, net: Cidr): FlannelBackend {
    if (type === 'vxlan') return new VxlanBackend(this.ip, this.opts, config.Backend?.VNI ?? 1, config.Backend?.Port ?? 8472);
    if (type === 'host-gw') return new HostGwBackend(this.opts);
    if (type === 'udp') return new UdpBackend(this.ip, this.opts, { network: net, port: config.Backend?.Port ?? 8285, offload: config.Backend?.Offload ?? true });
    throw new Error(`backend type "${type}" is not supported (vxlan, host-gw, udp)`);
  }

  private writeSubnetEnv(networkCidr: string, subnetCidr: string, mtu: number): void {
    mkdirSync(dirname(this.opts.subnetFile), { recursive: true });
    const text = [`FLANNEL_NETWORK=${networkCidr}`, `FLANNEL_SUBNET=${subnetCidr}`, `FLANNEL_MTU=${mtu}`, 'FLANNEL_IPMASQ=true', ''].join('\n');
    writeFileSync(this.opts.subnetFile + '.tmp', text);
    renameSync(this.opts.subnetFile + '.tmp', this.opts.subnetFile);
  }

  /** Bring the datapath in line with every lease in etcd. */
  async reconcile(backend: FlannelBackend): Promise<{ revision: number }> {
    const { kvs, revision } = await this.etcd.list(`${this.opts.prefix}/subnets/`);
    const remotes = new Map<string, Lease>();
    for (const kv of kvs) {
      const l = parseLease(kv, this.opts.prefix);
      if (!l || l.publicIp === this.opts.publicIp) continue;
      if (backend.type === 'vxlan' && !l.backendData.VtepMAC) continue; // the other node is still setting up
      remotes.set(formatCidr(l.subnet), l);
    }
    const ipLines: string[][] = [];
    const bridgeLines: string[][] = [];
    for (const [key, old] of this.programmed) {
      if (!remotes.has(key) || JSON.stringify(remotes.get(key)) !== JSON.stringify(old)) {
        const c = backend.removeRemote(old);
        ipLines.push(...c.ip);
        bridgeLines.push(...c.bridge);
        this.log(`removed route to ${key} via ${old.publicIp}`);
      }
    }
    await this.applyQuietly(ipLines, bridgeLines);
    const add = { ip: [] as string[][], bridge: [] as string[][] };
    for (const [key, l] of remotes) {
      if (this.programmed.has(key) && JSON.stringify(this.programmed.get(key)) === JSON.stringify(l)) continue;
      const c = backend.addRemote(l);
      add.ip.push(...c.ip);
      add.bridge.push(...c.bridge);
      this.log(`added route to ${key} via ${l.publicIp}`);
    }
    await this.ip.batch(add.ip);
    for (const line of add.bridge) await this.ip.bridgeCmd(...line);
    this.programmed = remotes;
    return { revision };
  }

  /** Removal of entries that may already be gone must not stop the agent. */
  private async applyQuietly(ipLines: string[][], bridgeLines: string[][]): Promise<void> {
    for (const l of ipLines) await this.ip.cmd(...l).catch(() => undefined);
    for (const l of bridgeLines) await this.ip.bridgeCmd(...l).catch(() => undefined);
  }

  private async watchLoop(backend: FlannelBackend, from: number): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        await this.etcd.watch(`${this.opts.prefix}/subnets/`, from, async () => {
          from = (await this.reconcile(backend)).revision + 1;
        }, this.abort.signal);
      } catch (e) {
        if (this.abort.signal.aborted) return;
        this.log(`watch interrupted (${(e as Error).message}); resyncing`);
        await new Promise((r) => setTimeout(r, 200));
        from = (await this.reconcile(backend).catch(() => ({ revision: from - 1 }))).revision + 1;
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    const summary = await this.backend?.stop?.();
    if (summary) this.log(`stopped: ${summary}`);
  }
}
