import { formatCidr, formatPrefix } from '../../net/ipnet.js';
import type { AgentOptions, FlannelBackend, Lease } from './types.js';

/** host-gw: no device, no encapsulation; the other node is the next hop. */
export class HostGwBackend implements FlannelBackend {
  readonly type = 'host-gw';
  readonly overhead = 0;
  constructor(private opts: AgentOptions) {}
  async setup(): Promise<Record<string, unknown>> {
    return {};
  }
  /** IPv6 the same way: the other node's IPv6 underlay address is the next hop. */
  async setupV6(): Promise<Record<string, unknown>> {
    if (!this.opts.publicIpv6) throw new Error('EnableIPv6 with the host-gw backend needs --public-ipv6: IPv6 routes need an IPv6 next hop');
    return {};
  }
  addRemote(r: Lease) {
    const v6 = r.ipv6Subnet && r.publicIpv6 && this.opts.publicIpv6 ? [['route', 'replace', formatPrefix(r.ipv6Subnet), 'via', r.publicIpv6, 'dev', this.opts.iface]] : [];
    return { ip: [['route', 'replace', formatCidr(r.subnet), 'via', r.publicIp, 'dev', this.opts.iface], ...v6], bridge: [] };
  }
  removeRemote(r: Lease) {
    const v6 = r.ipv6Subnet && this.opts.publicIpv6 ? [['route', 'del', formatPrefix(r.ipv6Subnet)]] : [];
    return { ip: [['route', 'del', formatCidr(r.subnet)], ...v6], bridge: [] };
  }
}
