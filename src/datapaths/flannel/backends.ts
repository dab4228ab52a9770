// flannel's backends by the `Backend.Type` of the network config: one entry each.
// udp is imported when chosen: it loads a native library (koffi) that every other
// backend's agent would otherwise load, and hold in memory, for nothing.
import type { Ip } from '../../net/ip.js';
import type { Cidr } from '../../net/ipnet.js';
import { HostGwBackend } from './host-gw.js';
import type { AgentOptions, FlannelBackend, NetworkConfig } from './types.js';
import { VxlanBackend } from './vxlan.js';
import { WG_PORT, WireguardBackend, keyFileFor } from './wireguard.js';

type MakeBackend = (ip: Ip, opts: AgentOptions, config: NetworkConfig, net: Cidr) => FlannelBackend | Promise<FlannelBackend>;

export const FLANNEL_BACKENDS: Record<string, MakeBackend> = {
  vxlan: (ip, opts, c) => new VxlanBackend(ip, opts, c.Backend?.VNI ?? 1, c.Backend?.Port ?? 8472),
  'host-gw': (_ip, opts) => new HostGwBackend(opts),
  udp: async (ip, opts, c, net) => new (await import('./udp.js')).UdpBackend(ip, opts, { network: net, port: c.Backend?.Port ?? 8285, offload: c.Backend?.Offload ?? true }),
  wireguard: (ip, opts, c, net) => new WireguardBackend(ip, { ...opts, keyFile: keyFileFor(opts.subnetFile) }, net, c.Backend?.Port ?? WG_PORT),
};

export async function makeBackend(ip: Ip, opts: AgentOptions, config: NetworkConfig, net: Cidr): Promise<FlannelBackend> {
  const type = config.Backend?.Type ?? 'vxlan';
  const make = FLANNEL_BACKENDS[type];
  if (!make) throw new Error(`backend type "${type}" is not supported (${Object.keys(FLANNEL_BACKENDS).join(', ')})`);
  return make(ip, opts, config, net);
}
