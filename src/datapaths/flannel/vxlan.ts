// The vxlan backend: flannel.<VNI>, one permanent neighbour + FDB entry per remote lease.
// Dual-stack as flannel does it: a second device flannel-v6.<VNI> whose VTEP is the
// node's IPv6 underlay address, so IPv6 pods travel in VXLAN over IPv6 (flannel has no
// IPv6-in-IPv4 VXLAN) with the same neighbour + FDB scheme.
import { randomMac, type Ip, type Link } from '../../net/ip.js';
import { formatAddr, formatCidr, formatIp, formatPrefix, network, firstAddr, type Cidr, type Prefix } from '../../net/ipnet.js';
import { linksByName } from './links.js';
import type { AgentOptions, FlannelBackend, Lease } from './types.js';

export class VxlanBackend implements FlannelBackend {
  readonly type = 'vxlan';
  readonly overhead = 50;
  readonly device: string;
  readonly deviceV6: string;
  /** VXLAN over IPv6: 40 bytes of IPv6 header instead of 20. */
  readonly overheadV6 = 70;
  private hasV6 = false;
  constructor(
    private ip: Ip,
    private opts: AgentOptions,
    private vni = 1,
    private port = 8472,
  ) {
    this.device = `flannel.${vni}`;
    this.deviceV6 = `flannel-v6.${vni}`;
  }

  async setupV6(local: Prefix): Promise<Record<string, unknown>> {
    if (!this.opts.publicIpv6) throw new Error('EnableIPv6 with the vxlan backend needs --public-ipv6: flannel-v6 runs VXLAN over the IPv6 underlay');
    const under = await this.ip.link(this.opts.iface);
    if (!under) throw new Error(`underlay device ${this.opts.iface} not found`);
    await this.ip.deleteLink(this.deviceV6);
    // A /128 (flannel's choice): the source for the node's own traffic to pods, no prefix route.
    await this.ip.batch([
      ['link', 'add', this.deviceV6, 'mtu', String(under.mtu - this.overheadV6), 'address', randomMac(), 'type', 'vxlan', 'id', String(this.vni), 'local', this.opts.publicIpv6, 'dev', this.opts.iface, 'dstport', String(this.port), 'nolearning'],
      ['addr', 'add', `${formatAddr({ family: 6, value: firstAddr(local) })}/128`, 'dev', this.deviceV6, 'nodad'],
      ['link', 'set', this.deviceV6, 'up'],
    ]);
    this.hasV6 = true;
    const link = await this.ip.link(this.deviceV6);
    return { VNI: this.vni, VtepMAC: link!.address };
  }

  private v6Lines(r: Lease, add: boolean) {
    if (!this.hasV6 || !r.ipv6Subnet || !r.publicIpv6 || !r.backendV6Data?.VtepMAC) return { ip: [], bridge: [] };
    const gw = formatAddr({ family: 6, value: firstAddr(r.ipv6Subnet) });
    const mac = String(r.backendV6Data.VtepMAC);
    const dst = formatPrefix(r.ipv6Subnet);
    return add
      ? {
          ip: [
            ['neigh', 'replace', gw, 'lladdr', mac, 'dev', this.deviceV6, 'nud', 'permanent'],
            ['route', 'replace', dst, 'via', gw, 'dev', this.deviceV6, 'onlink'],
          ],
          bridge: [['fdb', 'replace', mac, 'dev', this.deviceV6, 'dst', r.publicIpv6, 'self', 'permanent']],
        }
      : {
          ip: [
            ['route', 'del', dst],
            ['neigh', 'del', gw, 'dev', this.deviceV6],
          ],
          bridge: [['fdb', 'del', mac, 'dev', this.deviceV6, 'dst', r.publicIpv6]],
        };
  }

  async setup(local: Cidr): Promise<Record<string, unknown>> {
    const links = await linksByName(this.ip);
    const under = links.get(this.opts.iface);
    if (!under) throw new Error(`underlay device ${this.opts.iface} not found`);
    // nolearning: every remote MAC is programmed from etcd, nothing is flooded.
    const shown = await this.ip.batchJson<Link>([
      ...(links.has(this.device) ? [['link', 'del', this.device]] : []),
      ['link', 'add', this.device, 'mtu', String(under.mtu - this.overhead), 'address', randomMac(), 'type', 'vxlan', 'id', String(this.vni), 'local', this.opts.publicIp, 'dev', this.opts.iface, 'dstport', String(this.port), 'nolearning'],
      ['addr', 'add', `${formatIp(network(local))}/32`, 'dev', this.device],
      ['link', 'set', this.device, 'up'],
      ['link', 'show', 'dev', this.device],
    ]);
    return { VNI: this.vni, VtepMAC: shown[0][0].address };
  }

  addRemote(r: Lease) {
    const gw = formatIp(network(r.subnet));
    const mac = String(r.backendData.VtepMAC);
    const v6 = this.v6Lines(r, true);
    return {
      ip: [
        ['neigh', 'replace', gw, 'lladdr', mac, 'dev', this.device, 'nud', 'permanent'],
        ['route', 'replace', formatCidr(r.subnet), 'via', gw, 'dev', this.device, 'onlink'],
        ...v6.ip,
      ],
      bridge: [['fdb', 'replace', mac, 'dev', this.device, 'dst', r.publicIp, 'self', 'permanent'], ...v6.bridge],
    };
  }

  removeRemote(r: Lease) {
    const gw = formatIp(network(r.subnet));
    const v6 = this.v6Lines(r, false);
    return {
      ip: [['route', 'del', formatCidr(r.subnet)], ['neigh', 'del', gw, 'dev', this.device], ...v6.ip],
      bridge: [['fdb', 'del', String(r.backendData.VtepMAC), 'dev', this.device, 'dst', r.publicIp], ...v6.bridge],
    };
  }
}
