// Calico: no bridge, a /32 route per pod, /26 blocks per node in etcd,
// exchanged by BIRD over BGP or carried in VXLAN (or IPIP).
import type { Datapath } from '../types.js';
import { calicoNetwork, type CalicoNetwork } from './schema.js';
import { CNI_PLUGINS } from './cni.js';
import { calicoServices, installCalico } from './install.js';

const KERNEL: Record<CalicoNetwork['backend'], string[]> = { bgp: [], vxlan: ['vxlan'], ipip: ['ipip'] };

export const calico: Datapath = {
  name: 'calico',
  network: calicoNetwork,
  kernelFeatures: (lab) => KERNEL[(lab.network as CalicoNetwork).backend],
  tools: ['etcd', 'etcdctl', 'bird', 'birdc'],
  install: installCalico,
  services: calicoServices,
  cniPlugins: CNI_PLUGINS,
};
