// Docker's default bridge network on every node, as lesson 6 shows it: a
// docker0 bridge with 172.17.0.0/16, the same range on every host, pods
// masqueraded behind their node on the way out. Addresses repeat across hosts,
// so another host's pod can only be reached through a port published on its
// node: the chained portmap plugin writes a DNAT rule per published port, from
// the ports the workload declares (passed as runtimeConfig.portMappings).
import type { Backend, NodeSpec } from '../../topologies/backend.js';
import { CONF_DIR, type ConfList } from '../../cni/conflist.js';
import type { Lab } from '../../lab/lab-file.js';

export const DOCKER_BRIDGE = 'docker0';

export function dockerBridgeConfList(backend: Backend, lab: Lab, node: string): ConfList {
  return {
    cniVersion: '1.0.0',
    name: 'bridge',
    plugins: [
      {
        type: 'bridge',
        bridge: DOCKER_BRIDGE,
        isGateway: true,
        isDefaultGateway: true,
        ipMasq: true,
        // Every node hands out the whole range on its own: that is Docker's model, and the lesson's point.
        ipam: { type: 'host-local', ranges: [[{ subnet: lab.network.podCIDR }]], dataDir: backend.nodePath(node, '/var/lib/cni/networks') },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

export async function installDockerBridge(backend: Backend, lab: Lab, nodes: NodeSpec[], progress: (msg: string) => void): Promise<void> {
  for (const node of nodes) {
    await backend.writeFile(node.name, `${CONF_DIR}/10-cnilab.conflist`, JSON.stringify(dockerBridgeConfList(backend, lab, node.name), null, 2));
    progress(`${DOCKER_BRIDGE} on ${node.name}: ${lab.network.podCIDR}, NAT behind ${node.address}`);
  }
}
