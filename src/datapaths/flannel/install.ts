// Installing flannel on a lab: the network config in etcd, each node's lease
// claimed in node order (so subnets come out as the lesson shows), the agents
// started together (each finds its lease by its public IP and takes it), and
// the CNI conflist that points the kubelet at the flannel plugin.
import { join } from 'node:path';
import { underlayIface, type Backend, type NodeSpec } from '../../topologies/backend.js';
import { AGENTS_DIR } from '../../lab/paths.js';
import { CONF_DIR, type ConfList } from '../../cni/conflist.js';
import { etcdPut, etcdPutMany, startEtcd } from '../etcd/server.js';
import type { Lab } from '../../lab/lab-file.js';
import type { FlannelNetwork } from './schema.js';
import { claimLease, subnetKey, type NetworkConfig } from './types.js';
import { waitUntil } from '../../util/wait.js';
import { mapLimit } from '../../util/limit.js';
import { Ip } from '../../net/ip.js';
import { prepareWireguard, wireguardImplementation } from './wireguard-install.js';
import { formatCidr, networkCidr, parseCidr, subnet } from '../../net/ipnet.js';

export const FLANNEL_PREFIX = '/coreos.com/network';
/** Agents started, or waited for, at once: on the docker and hosts backends each start is a command of its own. */
const STARTS_AT_ONCE = 8;

export async function installFlannel(backend: Backend, lab: Lab, nodes: NodeSpec[], progress: (msg: string) => void): Promise<void> {
  const control = nodes[0];
  const endpoint = await startEtcd(backend, control);
  progress(`etcd on ${control.name} at ${endpoint}`);
  // backendConfig: more of flannel's Backend settings (VNI, Port, Offload), as in its net-conf.json
  const network = lab.network as FlannelNetwork;
  const config: NetworkConfig = {
    Network: network.podCIDR,
    SubnetLen: network.subnetLen,
    ...(network.podCIDRv6 ? { EnableIPv6: true, IPv6Network: network.podCIDRv6, IPv6SubnetLen: network.subnetLenV6 } : {}),
    Backend: { Type: network.backend, ...network.backendConfig },
  };
  await etcdPut(backend, control, `${FLANNEL_PREFIX}/config`, JSON.stringify(config));

  // Node i gets the i-th subnet whatever order the agents come up in: the
  // leases exist before them, as a controller hands out node.spec.podCIDR,
  // each as its agent would claim it (with the IPv6 subnet on a dual-stack network).
  const net = parseCidr(network.podCIDR)!;
  await etcdPutMany(
    backend,
    control,
    nodes.map((node, i) => {
      const s = subnet(net, network.subnetLen, i);
      return [subnetKey(FLANNEL_PREFIX, s), JSON.stringify(claimLease(config, s, node.address, network.podCIDRv6 ? node.addressV6 : undefined))];
    }),
  );

  // Every agent is started before any is waited for: their start-ups overlap, so their leases
  // complete close together and each agent folds the others' into a few reconcile passes
  // (one at a time, an agent that started early reprograms once for every later one).
  const wireguard = network.backend === 'wireguard' ? await wireguardImplementation() : undefined;
  await mapLimit(nodes, STARTS_AT_ONCE, async (node) => {
    const wgFlags = wireguard ? await prepareWireguard(backend, node, wireguard, progress) : [];
    await backend.start(node.name, 'flanneld', [
      process.execPath,
      join(AGENTS_DIR, 'flanneld.js'),
      '--etcd-endpoints', endpoint,
      '--etcd-prefix', FLANNEL_PREFIX,
      '--iface', underlayIface(node),
      '--public-ip', node.address,
      ...(network.podCIDRv6 && node.addressV6 ? ['--public-ipv6', node.addressV6] : []),
      '--subnet-file', backend.nodePath(node.name, '/run/flannel/subnet.env'),
      ...wgFlags,
    ]);
  });
  // They share the machine while starting: the wait grows with their number.
  const startMs = 10_000 + 250 * nodes.length;
  const peerRoutes = new Map<string, string>();
  await mapLimit(nodes, STARTS_AT_ONCE, async (node) => {
    const env = await waitForFile(backend, node.name, '/run/flannel/subnet.env', startMs);
    const subnets = [...env.matchAll(/^FLANNEL_(?:IPV6_)?SUBNET=(\S+)/gm)].map((m) => m[1]);
    progress(`flanneld on ${node.name}: ${subnets.join(' ')}`);
    const own = env.match(/^FLANNEL_SUBNET=(\S+)/m)?.[1];
    const cidr = own ? parseCidr(own) : undefined;
    if (cidr) peerRoutes.set(node.name, formatCidr(networkCidr(cidr)));
    await backend.writeFile(node.name, `${CONF_DIR}/10-cnilab.conflist`, JSON.stringify(flannelConfList(backend, node.name), null, 2));
  });
  // The network is up when every node routes every other node's subnet: on slow nodes (VMs under
  // emulation) an agent writes its subnet file well before it programs its peers. vxlan and host-gw
  // route each peer's subnet; udp and wireguard route the whole network through their device.
  if (network.backend === 'vxlan' || network.backend === 'host-gw') {
    await mapLimit(nodes, STARTS_AT_ONCE, (node) => waitForRoutes(backend, node.name, [...peerRoutes].filter(([peer]) => peer !== node.name).map(([, r]) => r), startMs));
  }
}

/** Until the node's routing table has every one of `routes` (one `ip route` a try, however many peers). */
async function waitForRoutes(backend: Backend, node: string, routes: string[], timeoutMs: number): Promise<void> {
  const ip = new Ip(backend.node(node));
  let missing = routes;
  await waitUntil(
    async () => {
      const have = new Set((await ip.routes().catch(() => [])).map((r) => r.dst));
      missing = routes.filter((r) => !have.has(r));
      return missing.length === 0;
    },
    {
      timeoutMs,
      intervalMs: 50,
      what: `flanneld on ${node} to route every peer's subnet`,
      hint: () => `still missing ${missing.join(', ')}; see ${backend.nodePath(node, '/var/log/flanneld.log')}`,
    },
  );
}

export function flannelConfList(backend: Backend, node: string): ConfList {
  return {
    cniVersion: '1.0.0',
    name: 'cbr0',
    plugins: [
      {
        type: 'flannel',
        subnetFile: backend.nodePath(node, '/run/flannel/subnet.env'),
        dataDir: backend.nodePath(node, '/var/lib/cni/flannel'),
        ipam: { dataDir: backend.nodePath(node, '/var/lib/cni/networks') },
        delegate: { hairpinMode: true, isDefaultGateway: true },
      },
      // Shapes pods that carry kubernetes.io/ingress-bandwidth or egress-bandwidth; others pass through.
      { type: 'bandwidth', capabilities: { bandwidth: true } },
    ],
  };
}

export async function waitForFile(backend: Backend, node: string, path: string, timeoutMs: number): Promise<string> {
  return waitUntil(async () => (await backend.readFile(node, path)) || undefined, {
    timeoutMs,
    what: `${path} to appear on ${node}`,
    hint: () => `see ${backend.nodePath(node, '/var/log/flanneld.log')}`,
  });
}
