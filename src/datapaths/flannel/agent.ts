// A flannel-like node agent: leases this node's pod subnet from etcd, writes
// subnet.env for the CNI plugin, and programs the datapath toward every other
// node's lease, watching etcd so that nodes joining later are reached too.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Ip, keepIpRunning } from '../../net/ip.js';
import { ensureRule } from '../../net/iptables.js';
import { formatAddr, formatCidr, formatIp, formatPrefix, firstAddr, network, parseCidr, parsePrefix, subnet, type Cidr } from '../../net/ipnet.js';
import { Etcd } from '../etcd/client.js';
import { makeBackend } from './backends.js';
import { linksByName } from './links.js';
import { claimLease, ipv6SubnetFor, leaseFingerprint, parseLease, subnetKey, type AgentOptions, type FlannelBackend, type Lease, type LeaseValue, type NetworkConfig } from './types.js';
/**
 * How long the agent's ip outlives the last change to the datapath: long enough for a burst of
 * nodes joining, short enough that an idle node holds no ip (about a megabyte each at a hundred nodes).
 */
const IP_QUIET_MS = 3000;

export class FlannelAgent {
  readonly etcd: Etcd;
  readonly ip = new Ip();
  private programmed = new Map<string, Lease>();
  private abort = new AbortController();
  private log: (msg: string) => void;
  private backend?: FlannelBackend;
  private stopIp?: () => Promise<void>;
  private ipTimer?: NodeJS.Timeout;
  private changing = 0;
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

  /**
   * With opts.keepIp, changes go down a pipe to one ip instead of an ip started for each (most of
   * an agent's CPU at start otherwise); it stops once the datapath has been quiet for IP_QUIET_MS.
   */
  private async withIp<T>(fn: () => Promise<T>): Promise<T> {
    this.changing++;
    this.ipBusy();
    try {
      return await fn();
    } finally {
      this.changing--;
      this.ipBusy();
    }
  }

  private ipBusy(): void {
    if (!this.opts.keepIp || this.abort.signal.aborted) return;
    this.stopIp ??= keepIpRunning();
    clearTimeout(this.ipTimer);
    this.ipTimer = setTimeout(() => (this.changing > 0 ? this.ipBusy() : void this.stopIpNow()), IP_QUIET_MS).unref();
  }

  private async stopIpNow(): Promise<void> {
    clearTimeout(this.ipTimer);
    const stop = this.stopIp;
    this.stopIp = undefined;
    await stop?.();
  }

  async start(): Promise<void> {
    const revision = await this.withIp(() => this.setUp());
    void this.watchLoop(this.backend!, revision + 1);
  }

  private async setUp(): Promise<number> {
    const config = await this.waitForConfig();
    const net = parseCidr(config.Network);
    if (!net) throw new Error(`network config: Network "${config.Network}" is not a CIDR`);
    const len = config.SubnetLen ?? 24;
    const type = config.Backend?.Type ?? 'vxlan';
    const backend = await makeBackend(this.ip, this.opts, config, net);
    this.backend = backend;

    // Dual-stack (flannel's EnableIPv6): an IPv6 subnet beside the IPv4 one.
    const net6 = config.EnableIPv6 ? parsePrefix(config.IPv6Network ?? '') : undefined;
    if (config.EnableIPv6 && net6?.family !== 6) throw new Error(`network config: IPv6Network "${config.IPv6Network}" is not an IPv6 CIDR`);
    if (net6 && !backend.setupV6) throw new Error(`backend ${type} carries IPv4 only here; EnableIPv6 needs vxlan or host-gw`);
    const len6 = config.IPv6SubnetLen ?? 64;

    // The lease is created first (with the subnet), then the device that needs it.
    const claim = (s: Cidr) => claimLease(config, s, this.opts.publicIp, this.opts.publicIpv6);
    const local = await this.acquire(net, len, (s) => JSON.stringify(claim(s)));
    const backendData = await backend.setup(local);
    const local6 = ipv6SubnetFor(config, local);
    const backendV6Data = local6 ? await backend.setupV6!(local6) : undefined;
    const leaseValue: LeaseValue = { ...claim(local), BackendData: backendData, ...(backendV6Data ? { BackendV6Data: backendV6Data } : {}) };
    await this.etcd.put(subnetKey(this.opts.prefix, local), JSON.stringify(leaseValue));
    this.lease = parseLease({ key: subnetKey(this.opts.prefix, local), value: JSON.stringify(leaseValue), modRevision: 0 }, this.opts.prefix)!;
    this.log(`acquired lease ${formatCidr(local)}${local6 ? ` and ${formatPrefix(local6)}` : ''} for ${this.opts.publicIp} (backend ${type}${backend.implementation ? ` on ${backend.implementation}` : ''})`);

    const under = (await linksByName(this.ip)).get(this.opts.iface);
    const mtu = (under?.mtu ?? 1500) - backend.overhead;
    await this.ip.sysctl({ 'net.ipv4.ip_forward': 1, ...(local6 ? { 'net.ipv6.conf.all.forwarding': 1 } : {}) });
    await this.masquerade(formatCidr(net), 4);
    if (net6) await this.masquerade(formatPrefix(net6), 6);
    const v6Env = local6 ? { network: formatPrefix(net6!), subnet: `${formatAddr({ family: 6, value: firstAddr(local6) + 1n })}/${len6}` } : undefined;
    this.writeSubnetEnv(formatCidr(net), `${formatIp(network(local) + 1)}/${len}`, mtu, v6Env);

    return (await this.reconcileOnce(backend)).revision;
  }

  /**
   * Like flanneld --ip-masq: NAT only what leaves the pod network. Pod-to-pod
   * traffic keeps its source address (the Kubernetes model), which is why the
   * bridge itself is told not to masquerade (FLANNEL_IPMASQ=true).
   */
  private async masquerade(cidr: string, family: 4 | 6): Promise<void> {
    await ensureRule(undefined, 'nat', 'POSTROUTING', ['-s', cidr, '!', '-d', cidr, '-m', 'comment', '--comment', 'flanneld masq', '-j', 'MASQUERADE'], family);
  }


  private writeSubnetEnv(networkCidr: string, subnetCidr: string, mtu: number, v6?: { network: string; subnet: string }): void {
    mkdirSync(dirname(this.opts.subnetFile), { recursive: true });
    const lines = [`FLANNEL_NETWORK=${networkCidr}`, `FLANNEL_SUBNET=${subnetCidr}`];
    // flannel's names for the IPv6 side, read by its CNI plugin.
    if (v6) lines.push(`FLANNEL_IPV6_NETWORK=${v6.network}`, `FLANNEL_IPV6_SUBNET=${v6.subnet}`);
    const text = [...lines, `FLANNEL_MTU=${mtu}`, 'FLANNEL_IPMASQ=true', ''].join('\n');
    writeFileSync(this.opts.subnetFile + '.tmp', text);
    renameSync(this.opts.subnetFile + '.tmp', this.opts.subnetFile);
  }

  /** Bring the datapath in line with every lease in etcd. */
  async reconcile(backend: FlannelBackend): Promise<{ revision: number }> {
    return this.withIp(() => this.reconcileOnce(backend));
  }

  private async reconcileOnce(backend: FlannelBackend): Promise<{ revision: number }> {
    const { kvs, revision } = await this.etcd.list(`${this.opts.prefix}/subnets/`);
    const remotes = new Map<string, Lease>();
    for (const kv of kvs) {
      const l = parseLease(kv, this.opts.prefix);
      if (!l || l.publicIp === this.opts.publicIp) continue;
      if (backend.type === 'vxlan' && !l.backendData.VtepMAC) continue; // the other node is still setting up
      if (backend.type === 'vxlan' && this.lease?.ipv6Subnet && l.ipv6Subnet && !l.backendV6Data?.VtepMAC) continue;
      if (backend.type === 'wireguard' && !l.backendData.PublicKey) continue;
      remotes.set(formatCidr(l.subnet), l);
    }
    const ipLines: string[][] = [];
    const bridgeLines: string[][] = [];
    for (const [key, old] of this.programmed) {
      if (!remotes.has(key) || leaseFingerprint(remotes.get(key)!) !== leaseFingerprint(old)) {
        const c = backend.removeRemote(old);
        ipLines.push(...c.ip);
        bridgeLines.push(...c.bridge);
        this.log(`removed route to ${key} via ${old.publicIp}`);
      }
    }
    await this.applyQuietly(ipLines, bridgeLines);
    const add = { ip: [] as string[][], bridge: [] as string[][] };
    for (const [key, l] of remotes) {
      if (this.programmed.has(key) && leaseFingerprint(this.programmed.get(key)!) === leaseFingerprint(l)) continue;
      const c = backend.addRemote(l);
      add.ip.push(...c.ip);
      add.bridge.push(...c.bridge);
      this.log(`added route to ${key} via ${l.publicIp}`);
    }
    await this.ip.batch(add.ip);
    await this.ip.bridgeBatch(add.bridge);
    await backend.syncPeers?.([...remotes.values()]);
    this.programmed = remotes;
    return { revision };
  }

  /** Removal of entries that may already be gone must not stop the agent. */
  private async applyQuietly(ipLines: string[][], bridgeLines: string[][]): Promise<void> {
    for (const l of ipLines) await this.ip.cmd(...l).catch(() => undefined);
    for (const l of bridgeLines) await this.ip.bridgeCmd(...l).catch(() => undefined);
  }

  private async watchLoop(backend: FlannelBackend, from: number): Promise<void> {
    // Events that come while a reconcile runs fold into one more pass: a
    // hundred nodes joining at once cost a few passes, not one per lease change.
    let running = false;
    let again = false;
    const kick = () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      void (async () => {
        try {
          do {
            again = false;
            from = (await this.reconcile(backend)).revision + 1;
          } while (again && !this.abort.signal.aborted);
        } catch (e) {
          this.log(`reconcile failed (${(e as Error).message}); retrying`);
          setTimeout(kick, 200).unref();
        } finally {
          running = false;
        }
      })();
    };
    while (!this.abort.signal.aborted) {
      try {
        await this.etcd.watch(`${this.opts.prefix}/subnets/`, from, kick, this.abort.signal);
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
    await this.stopIpNow();
    const summary = await this.backend?.stop?.();
    if (summary) this.log(`stopped: ${summary}`);
  }
}
