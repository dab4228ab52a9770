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
  // flannel's EnableIPv6: vxlan (flannel-v6.<VNI>) and host-gw, both over an IPv6 underlay as upstream.
  dualStack: true,
  validate(lab) {
    const network = lab.network as FlannelNetwork;
    if (!network.podCIDRv6) return [];
    if (network.backend !== 'vxlan' && network.backend !== 'host-gw') return [{ path: ['network', 'backend'], message: `${network.backend} carries IPv4 only in cnilab; dual-stack (podCIDRv6) needs vxlan or host-gw` }];
    if (!lab.topology.underlayV6) return [{ path: ['topology', 'underlayV6'], message: 'flannel carries IPv6 pods over an IPv6 underlay (flannel-v6 VXLAN, or IPv6 routes for host-gw): give the nodes one' }];
    return [];
  },
  cniPlugins: CNI_PLUGINS,
};
