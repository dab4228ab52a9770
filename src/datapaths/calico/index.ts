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
  // Calico's dual-stack: IPv6 blocks and /128 routes, carried by a second BGP session per peer
  // over the IPv6 underlay (bird6) or by vxlan-v6.calico. IPIP is IPv4 only, as upstream.
  dualStack: true,
  validate(lab) {
    const network = lab.network as CalicoNetwork;
    if (network.routeReflectors) {
      if (network.backend !== 'bgp') return [{ path: ['network', 'routeReflectors'], message: `route reflectors carry BGP routes: backend is ${network.backend}, set backend: bgp or drop routeReflectors` }];
      if (network.podCIDRv6) return [{ path: ['network', 'routeReflectors'], message: 'route reflectors are IPv4 only here: drop podCIDRv6 or routeReflectors' }];
      const names = lab.topology.nodes.map((n) => n.name);
      const i = network.routeReflectors.findIndex((r) => !names.includes(r));
      if (i >= 0) return [{ path: ['network', 'routeReflectors', i], message: `no node named ${network.routeReflectors[i]} in topology.nodes (${names.join(', ')})` }];
    }
    if (!network.podCIDRv6) return [];
    if (network.backend === 'ipip') return [{ path: ['network', 'backend'], message: 'calico ipip carries IPv4 only (as upstream: IPIP has no IPv6); dual-stack (podCIDRv6) needs backend bgp or vxlan' }];
    if (!lab.topology.underlayV6) return [{ path: ['topology', 'underlayV6'], message: `calico ${network.backend} carries IPv6 pods between the nodes' IPv6 addresses (${network.backend === 'bgp' ? 'BGP sessions, as bird6' : 'vxlan-v6.calico'}): give the nodes an IPv6 underlay` }];
    return [];
  },
  cniPlugins: CNI_PLUGINS,
  enforcesPolicy: true,
  policy: { podAdded: calicoPodAdded, podRemoved: calicoPodRemoved, setPolicies: calicoSetPolicies },
};
