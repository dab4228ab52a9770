// flannel: a /24 per node leased in etcd, reached by VXLAN, by plain routes
// (host-gw) or by a user-space UDP daemon over a TUN device.
import type { Datapath } from '../types.js';
import { flannelNetwork, type FlannelNetwork } from './schema.js';
import { CNI_PLUGINS } from './cni.js';
import { installFlannel } from './install.js';

const KERNEL: Record<FlannelNetwork['backend'], string[]> = { vxlan: ['vxlan'], 'host-gw': [], udp: ['tun'] };

export const flannel: Datapath = {
  name: 'flannel',
  network: flannelNetwork,
  kernelFeatures: (lab) => KERNEL[(lab.network as FlannelNetwork).backend],
  tools: ['etcd', 'etcdctl', 'ethtool'],
  install: installFlannel,
  cniPlugins: CNI_PLUGINS,
};
