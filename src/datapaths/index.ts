// Network plugins a lab can install, by the lab's `network.plugin`. Each one
// says what it needs (kernel link types, tools) so preflight can check first.
import type { Backend, NodeSpec } from '../topologies/backend.js';
import type { Lab } from '../lab/lab-file.js';
import { installFlannel } from './flannel/install.js';
import { installMacvlan, validateMacvlan } from './macvlan/install.js';
import { installDockerBridge } from './docker-bridge/install.js';
import { calicoMode, calicoServices, installCalico, validateCalico } from './calico/install.js';
import { CILIUM_TOOLS, installCilium, missingBpfFeatures, validateCilium } from './cilium/install.js';

export interface NetworkPlugin {
  /** Kernel link types the datapath creates (tested in a scratch namespace before the lab starts). */
  kernelFeatures(lab: Lab): string[];
  /** Extra commands it runs (or files it needs, by absolute path), and the Debian package of each. */
  tools?: Record<string, string>;
  /** Kernel features that are not link types, tried before the lab starts; returns the missing ones, named. */
  probeKernel?(lab: Lab): Promise<string[]>;
  install(backend: Backend, lab: Lab, nodes: NodeSpec[], progress: (msg: string) => void): Promise<void>;
  /** Lab-file problems only this plugin can see; the path names the field. */
  validate?(lab: Lab): { path: (string | number)[]; message: string }[];
  /** Long-running services it runs on a node, by name, and the command that starts each (for `service` steps). */
  services?(backend: Backend, lab: Lab, node: NodeSpec): Record<string, string[]>;
}

export const NETWORKS: Record<string, NetworkPlugin> = {
  flannel: {
    kernelFeatures: (lab) => ({ vxlan: ['vxlan'], udp: ['tun'] })[lab.network.backend ?? 'vxlan'] ?? [],
    tools: { etcd: 'etcd-server', etcdctl: 'etcd-client' },
    install: installFlannel,
  },
  macvlan: {
    kernelFeatures: () => ['macvlan'],
    install: installMacvlan,
    validate: validateMacvlan,
  },
  'docker-bridge': {
    kernelFeatures: () => [],
    tools: { 'iptables-restore': 'iptables' },
    install: installDockerBridge,
  },
  calico: {
    kernelFeatures: (lab) => ({ bgp: [], vxlan: ['vxlan'], ipip: ['ipip'] })[calicoMode(lab)],
    tools: { etcd: 'etcd-server', etcdctl: 'etcd-client', bird: 'bird2', birdc: 'bird2' },
    install: installCalico,
    services: calicoServices,
    validate: validateCalico,
  },
  cilium: {
    kernelFeatures: (lab) => (lab.network.backend === 'vxlan' ? ['vxlan'] : []),
    tools: CILIUM_TOOLS,
    probeKernel: missingBpfFeatures,
    validate: validateCilium,
    install: installCilium,
  },
};

export function networkPlugin(name: string): NetworkPlugin {
  const p = NETWORKS[name];
  if (!p) throw new Error(`network plugin "${name}" is unknown; available: ${Object.keys(NETWORKS).join(', ')}`);
  return p;
}

export async function installNetwork(backend: Backend, lab: Lab, nodes: NodeSpec[], progress: (msg: string) => void): Promise<void> {
  await networkPlugin(lab.network.plugin).install(backend, lab, nodes, progress);
}
