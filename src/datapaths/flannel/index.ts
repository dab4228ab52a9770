// flannel: a /24 per node leased in etcd, reached by VXLAN, by plain routes
// (host-gw), by a user-space UDP daemon over a TUN device, or encrypted by
// WireGuard (the kernel's, or wireguard-go's).
import type { Datapath } from '../types.js';
import { flannelNetwork, type FlannelNetwork } from './schema.js';
import { CNI_PLUGINS } from './cni.js';
import { installFlannel } from './install.js';

// wireguard: wireguard-go needs TUN where the kernel has no wireguard module.
const KERNEL: Record<FlannelNetwork['backend'], string[]> = { vxlan: ['vxlan'], 'host-gw': [], udp: ['tun'], wireguard: ['tun'] };

export const flannel: Datapath = {
  name: 'flannel',
  network: flannelNetwork,
  kernelFeatures: (lab) => KERNEL[(lab.network as FlannelNetwork).backend],
  tools: ['etcd', 'etcdctl', 'ethtool', 'wireguard-go', 'wg'],
  install: installFlannel,
  cniPlugins: CNI_PLUGINS,
};
