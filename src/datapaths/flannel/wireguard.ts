// flannel's wireguard backend: one device, flannel-wg, encrypts everything for
// the pod network. Its key pair is made when the agent starts (the private key
// stays in a node-private file), the public key goes into the node's lease,
// and every other lease becomes a peer: its public key, its underlay address
// on UDP 51820, and its pod subnet as the only addresses allowed from it.
// The device is a kernel link where the kernel has the module; otherwise
// wireguard-go (started by the lab, by PID, before the agent) has made it as a
// TUN device, and `wg` configures either the same way.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Ip } from '../../net/ip.js';
import { Wg } from '../../net/wireguard.js';
import { formatCidr, formatIp, network, type Cidr } from '../../net/ipnet.js';
import type { AgentOptions, FlannelBackend, Lease } from './types.js';

export const WG_DEVICE = 'flannel-wg';
export const WG_PORT = 51820;

export class WireguardBackend implements FlannelBackend {
  readonly type = 'wireguard';
  /** Outer IPv6 header (flannel allows for it) + UDP + WireGuard's header and tag. */
  readonly overhead = 80;
  readonly wg: Wg;
  /** kernel or wireguard-go: which implementation carries the device. */
  implementation = '';

  constructor(
    private ip: Ip,
    private opts: AgentOptions & { wgRunDir?: string; keyFile: string },
    private podNetwork: Cidr,
    private port = WG_PORT,
  ) {
    this.wg = new Wg(undefined, opts.wgRunDir);
  }

  async setup(local: Cidr): Promise<Record<string, unknown>> {
    const under = await this.ip.link(this.opts.iface);
    if (!under) throw new Error(`underlay device ${this.opts.iface} not found`);
    const existing = await this.ip.link(WG_DEVICE);
    if (!existing) await this.ip.cmd('link', 'add', WG_DEVICE, 'type', 'wireguard');
    this.implementation = existing?.linkinfo?.info_kind === 'tun' ? 'wireguard-go (user space, TUN)' : 'kernel module';
    const keyFile = await this.makeKey();
    await this.wg.set(WG_DEVICE, 'private-key', keyFile, 'listen-port', String(this.port));
    await this.ip.batch([
      ['link', 'set', WG_DEVICE, 'mtu', String(under.mtu - this.overhead)],
      ['addr', 'replace', `${formatIp(network(local))}/32`, 'dev', WG_DEVICE],
      ['link', 'set', WG_DEVICE, 'up'],
      // The whole pod network goes into the tunnel; the node's own /24 is more specific (cni0).
      ['route', 'replace', formatCidr(this.podNetwork), 'dev', WG_DEVICE, 'scope', 'link'],
    ]);
    const privateKey = readFileSync(keyFile, 'utf8').trim();
    return { PublicKey: await this.wg.pubKey(privateKey) };
  }

  /** The node's private key file, made on first start (mode 0600) and kept across restarts, as flannel does. */
  private async makeKey(): Promise<string> {
    const file = this.opts.keyFile;
    if (existsSync(file) && readFileSync(file, 'utf8').trim()) return file;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, (await this.wg.genKey()) + '\n', { mode: 0o600 });
    return file;
  }

  // Peers are set as a whole in syncPeers: nothing per remote goes through ip.
  addRemote() {
    return { ip: [], bridge: [] };
  }
  removeRemote() {
    return { ip: [], bridge: [] };
  }

  async syncPeers(remotes: Lease[]): Promise<void> {
    const want = new Map(remotes.map((r) => [String(r.backendData.PublicKey), r]));
    for (const key of await this.wg.peers(WG_DEVICE)) if (!want.has(key)) await this.wg.set(WG_DEVICE, 'peer', key, 'remove');
    for (const [key, r] of want) {
      await this.wg.set(WG_DEVICE, 'peer', key, 'endpoint', `${r.publicIp}:${Number(r.backendData.Port ?? this.port)}`, 'allowed-ips', formatCidr(r.subnet));
    }
  }
}

export const keyFileFor = (subnetFile: string) => join(subnetFile, '..', 'wgkey');
