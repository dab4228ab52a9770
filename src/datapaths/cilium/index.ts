// A Cilium-like eBPF datapath: tc programs on every pod's lxc veth, routed
// natively or carried in one metadata-mode VXLAN device.
import type { Datapath } from '../types.js';
import { ciliumNetwork, type CiliumNetwork } from './schema.js';
import { CNI_PLUGINS } from './cni.js';
import { installCilium, missingBpfFeatures } from './install.js';
import { ciliumPodAdded, ciliumPodRemoved, ciliumSetPolicies } from './policy.js';

export const cilium: Datapath = {
  name: 'cilium',
  network: ciliumNetwork,
  kernelFeatures: (lab) => ((lab.network as CiliumNetwork).backend === 'vxlan' ? ['vxlan'] : []),
  tools: ['clang', 'bpftool', 'tc', 'curl', '/usr/include/bpf/bpf_helpers.h', '/usr/include/linux/bpf.h'],
  probeKernel: missingBpfFeatures,
  install: installCilium,
  cniPlugins: CNI_PLUGINS,
  enforcesPolicy: true,
  policy: { podAdded: ciliumPodAdded, podRemoved: ciliumPodRemoved, setPolicies: ciliumSetPolicies },
};
