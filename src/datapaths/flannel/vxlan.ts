// The vxlan backend: flannel.<VNI>, one permanent neighbour + FDB entry per remote lease.
import type { Ip } from '../../net/ip.js';
import { formatCidr, formatIp, network, type Cidr } from '../../net/ipnet.js';
import type { AgentOptions, FlannelBackend, Lease } from './types.js';

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
