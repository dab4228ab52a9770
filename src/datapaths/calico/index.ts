// Calico: no bridge, a /32 route per pod, /26 blocks per node in etcd,
// exchanged by BIRD over BGP or carried in VXLAN (or IPIP).
import type { Datapath } from '../types.js';
import { calicoNetwork, type CalicoNetwork } from './schema.js';
import { CNI_PLUGINS } from './cni.js';
import { calicoServices, installCalico } from './install.js';
import { calicoPodAdded, calicoPodRemoved, calicoSetPolicies } from './policy.js';

const KERNEL: Record<CalicoNetwork['backend'], string[]> = { bgp: [], vxlan: ['vxlan'], ipip: ['ipip'] };

export const calico: Datapath = {
  name: 'calico',
  network: calicoNetwork,
  kernelFeatures: (lab) => KERNEL[(lab.network as CalicoNetwork).backend],
  tools: ['etcd', 'etcdctl', 'bird', 'birdc', 'iptables-restore', 'ipset'],
  install: installCalico,
  services: calicoServices,
  cniPlugins: CNI_PLUGINS,
  enforcesPolicy: true,
  policy: { podAdded: calicoPodAdded, podRemoved: calicoPodRemoved, setPolicies: calicoSetPolicies },
};
