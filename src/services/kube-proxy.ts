// A kube-proxy-like node agent: watches the services file the runner keeps on
// its node, turns each new generation into the kernel's rules (iptables or
// nftables mode) in one transaction, or into the eBPF datapath's service maps
// (ebpf mode, the datapath doing the translation), and reports what it applied and how long
// it took in a status file.
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { Ip } from '../net/ip.js';
import { replaceOwnedChains } from '../net/iptables.js';
import { nftApply } from '../net/nft.js';
import type { ClusterServices, ProxyMode, ProxyStatus } from './model.js';
import { HOOK_JUMPS, iptablesRules, ownsChain } from './iptables-rules.js';
import { nftablesScript, nftablesState, type NftState } from './nftables-rules.js';
import { EbpfServices } from './ebpf-sync.js';

export interface ProxyOptions {
  /** The services file (ClusterServices JSON) the runner rewrites. */
  servicesFile: string;
  /** Where to report each sync (ProxyStatus JSON). */
  statusFile: string;
  mode: ProxyMode;
  /** The device that carries the node's default traffic: the service CIDR is routed there, so the node's own connects get as far as the nat hooks. */
  iface: string;
  /** ebpf mode: the directory of the datapath's pinned lb4_* maps, and this node's address (its NodePort frontends). */
  bpfMaps?: string;
  nodeIp?: string;
  log?: (msg: string) => void;
}

const POLL_MS = 50;

export class KubeProxy {
  private generation = -1;
  private seen = '';
  private timer?: NodeJS.Timeout;
  private busy = false;
  private routed = '';
  /** The nftables table as the last sync left it; none after a failure, so the next sync rewrites it whole. */
  private nft?: NftState;
  private ebpf?: EbpfServices;

  constructor(private opts: ProxyOptions) {
    if (opts.mode === 'ebpf') {
      if (!opts.bpfMaps || !opts.nodeIp) throw new Error('ebpf mode needs the pinned maps directory and the node address');
      this.ebpf = new EbpfServices(opts.bpfMaps, opts.nodeIp);
    }
  }

  private log(msg: string): void {
    (this.opts.log ?? ((m: string) => console.log(`${new Date().toISOString()} ${m}`)))(msg);
  }

  async start(): Promise<void> {
    // Bridged pod-to-pod replies must pass the nat table too, or a reply from a
    // backend on the same bridge would skip the reverse translation.
    if (this.opts.mode !== 'ebpf' && existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) await new Ip().sysctl({ 'net.bridge.bridge-nf-call-iptables': 1 });
    this.log(`kube-proxy: mode ${this.opts.mode}, watching ${this.opts.servicesFile}`);
    await this.poll();
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** A changed file with a new generation is synced; a half-written one is read again on the next tick. */
  private async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      let stamp: string;
      try {
        const st = statSync(this.opts.servicesFile);
        stamp = `${st.mtimeMs}:${st.size}`;
      } catch {
        return;
      }
      if (stamp === this.seen) return;
      let cluster: ClusterServices;
      try {
        cluster = JSON.parse(readFileSync(this.opts.servicesFile, 'utf8')) as ClusterServices;
      } catch {
        return;
      }
      this.seen = stamp;
      if (cluster.generation === this.generation) return;
      await this.sync(cluster);
    } finally {
      this.busy = false;
    }
  }

  async sync(cluster: ClusterServices): Promise<ProxyStatus> {
    const t0 = performance.now();
    let status: ProxyStatus;
    try {
      // In ebpf mode the pods' own devices translate: no route, no rule in the node's stack.
      if (this.opts.mode !== 'ebpf' && this.routed !== cluster.serviceCIDR) {
        await new Ip().cmd('route', 'replace', cluster.serviceCIDR, 'dev', this.opts.iface);
        this.routed = cluster.serviceCIDR;
      }
      const rules = this.ebpf ? await this.ebpf.sync(cluster) : this.opts.mode === 'nftables' ? await this.syncNftables(cluster) : await this.syncIptables(cluster);
      status = { generation: cluster.generation, mode: this.opts.mode, syncMs: Math.round((performance.now() - t0) * 10) / 10, rules, ...(this.ebpf ? { bpfMaps: this.opts.bpfMaps } : {}) };
      this.log(`synced generation ${cluster.generation}: ${cluster.services.length} services, ${rules} ${this.ebpf ? 'map entries' : 'rules'} in ${status.syncMs} ms`);
    } catch (e) {
      status = { generation: cluster.generation, mode: this.opts.mode, syncMs: performance.now() - t0, rules: 0, error: (e as Error).message };
      this.log(`sync of generation ${cluster.generation} failed: ${status.error}`);
    }
    this.generation = cluster.generation;
    mkdirSync(dirname(this.opts.statusFile), { recursive: true });
    writeFileSync(this.opts.statusFile + '.tmp', JSON.stringify(status));
    renameSync(this.opts.statusFile + '.tmp', this.opts.statusFile);
    return status;
  }

  private async syncIptables(cluster: ClusterServices): Promise<number> {
    const sync = iptablesRules(cluster.services, cluster.podCIDR);
    // The whole nat table in one restore, the other programs' rules in it kept as they are.
    await replaceOwnedChains(undefined, 'nat', ownsChain, HOOK_JUMPS, sync.lines);
    return sync.rules;
  }

  private async syncNftables(cluster: ClusterServices): Promise<number> {
    const next = nftablesState(cluster.services, cluster.podCIDR);
    const sync = nftablesScript(next, this.nft);
    this.nft = undefined;
    if (sync.script) await nftApply(undefined, sync.script);
    this.nft = next;
    return sync.rules;
  }
}
