import { formatCidr } from '../../net/ipnet.js';
import type { AgentOptions, FlannelBackend, Lease } from './types.js';

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
