// A Cilium-like eBPF datapath: tc programs on every pod's lxc veth, routed
// natively or carried in one metadata-mode VXLAN device.
import type { Datapath } from '../types.js';
import { ciliumNetwork, type CiliumNetwork } from './schema.js';
import { CNI_PLUGINS } from './cni.js';
import { ciliumProxyArgs, installCilium, missingBpfFeatures } from './install.js';
import { ciliumPodAdded, ciliumPodRemoved, ciliumSetPolicies } from './policy.js';

export const cilium: Datapath = {
  name: 'cilium',
  network: ciliumNetwork,
  kernelFeatures: (lab) => ((lab.network as CiliumNetwork).backend === 'vxlan' ? ['vxlan'] : []),
  tools: ['clang', 'bpftool', 'tc', 'curl', '/usr/include/bpf/bpf_helpers.h', '/usr/include/linux/bpf.h'],
  probeKernel: (_lab, where) => missingBpfFeatures(where),
  install: installCilium,
  // IPv6 pods as Cilium carries them: native routing over an IPv6 underlay, or the same VXLAN tunnel over an IPv4 one.
  dualStack: true,
  validate(lab) {
    const network = lab.network as CiliumNetwork;
    if (network.podCIDRv6 && network.backend === 'native' && !lab.topology.underlayV6)
      return [{ path: ['topology', 'underlayV6'], message: 'cilium routes IPv6 pods natively to the other node\'s IPv6 address: give the nodes an IPv6 underlay, or use backend: vxlan (IPv6 pods in the IPv4 tunnel)' }];
    return [];
  },
  cniPlugins: CNI_PLUGINS,
  enforcesPolicy: true,
  // Only ebpf: the programs hand a reply straight into the client pod (bpf_redirect_peer),
  // past the node's nat table, so iptables' or nftables' DNAT would never be reversed.
  proxyModes: ['ebpf'],
  proxyArgs: ciliumProxyArgs,
  policy: { podAdded: ciliumPodAdded, podRemoved: ciliumPodRemoved, setPolicies: ciliumSetPolicies },
};
