// Installing Calico on a lab: etcd and the IP pool, calico-node on every node
// (one at a time, so blocks come out in node order), BIRD on every node in BGP
// mode, and the CNI conflist that points the kubelet at the calico plugin.
import { join } from 'node:path';
import { underlayIface, type Backend, type NodeSpec } from '../../topologies/backend.js';
import { AGENTS_DIR } from '../../lab/paths.js';
import { CONF_DIR, type ConfList } from '../../cni/conflist.js';
import { etcdEndpoint, etcdPut, startEtcd } from '../etcd/server.js';
import type { Lab } from '../../lab/lab-file.js';
import type { CalicoNetwork } from './schema.js';
import { POOLS_PREFIX, poolResource, type IpPool } from './store.js';
import type { CalicoMode, NodeStatus } from './node-agent.js';
import { bgpPeersOf, meshProtocolName, parseProtocols, peerProtocolName } from './bird.js';
import { waitUntil } from '../../util/wait.js';

export const CALICO_AS = 64512;
/** Pod MTU: the underlay's minus what the encapsulation adds. */
const MTU: Record<CalicoMode, number> = { bgp: 1500, vxlan: 1450, ipip: 1480 };

/** Where a node keeps Calico's files, as the node sees them. */
export const CALICO_PATHS = {
  birdConfig: '/etc/calico/confd/config/bird.cfg',
  birdSocket: '/var/run/calico/bird.ctl',
  status: '/var/run/calico/status.json',
};

/** Dual-stack: an IPv6 pool beside the IPv4 one, and BGP over the IPv6 underlay too. */
export const dualStack = (lab: Lab) => lab.network.podCIDRv6 !== undefined;

/** The cluster id Calico's docs give route reflectors (any IPv4-shaped id works; one for all of ours). */
export const RR_CLUSTER_ID = '244.0.0.1';

const reflectors = (lab: Lab) => (lab.network as CalicoNetwork).routeReflectors ?? [];

/** The BGP sessions a node holds and their BIRD names: Mesh_<addr> in the mesh, Node_<addr> with reflectors. */
export function bgpSessions(lab: Lab, node: NodeSpec, nodes: NodeSpec[]): { peer: NodeSpec; name: string }[] {
  const rr = (n: NodeSpec) => (reflectors(lab).includes(n.name) ? { routeReflectorClusterID: RR_CLUSTER_ID } : {});
  const { mesh, peers } = bgpPeersOf(rr(node), nodes.filter((n) => n !== node).map((n) => ({ ...rr(n), node: n })));
  return peers.map((p) => ({ peer: p.node, name: (mesh ? meshProtocolName : peerProtocolName)(p.node.address) }));
}

export function calicoMode(lab: Lab): CalicoMode {
  return (lab.network as CalicoNetwork).backend;
}

/** The services Calico runs on a node and how each starts: calico-node always, BIRD in BGP mode. */
export function calicoServices(backend: Backend, lab: Lab, node: NodeSpec): Record<string, string[]> {
  const control = lab.topology.nodes[0];
  const path = (p: string) => backend.nodePath(node.name, p);
  const prefix = lab.topology.underlay.split('/')[1];
  const ip6 = dualStack(lab) && node.addressV6 ? ['--ip6', `${node.addressV6}/${lab.topology.underlayV6!.split('/')[1]}`] : [];
  const services: Record<string, string[]> = {
    'calico-node': [
      process.execPath,
      join(AGENTS_DIR, 'calico-node.js'),
      '--etcd-endpoints', etcdEndpoint(control),
      '--nodename', node.name,
      '--ip', `${node.address}/${prefix}`,
      ...ip6,
      '--iface', underlayIface(node),
      '--as', String(CALICO_AS),
      ...(reflectors(lab).includes(node.name) ? ['--route-reflector-cluster-id', RR_CLUSTER_ID] : []),
      '--bird-config', path(CALICO_PATHS.birdConfig),
      '--bird-socket', path(CALICO_PATHS.birdSocket),
      '--status-file', path(CALICO_PATHS.status),
    ],
  };
  // -f: stay in the foreground, so the PID we record is BIRD's own.
  if (calicoMode(lab) === 'bgp') services.bird = ['bird', '-f', '-c', path(CALICO_PATHS.birdConfig), '-s', path(CALICO_PATHS.birdSocket)];
  return services;
}

export async function installCalico(backend: Backend, lab: Lab, nodes: NodeSpec[], progress: (msg: string) => void): Promise<void> {
  const mode = calicoMode(lab);
  const control = nodes[0];
  const endpoint = await startEtcd(backend, control);
  progress(`etcd on ${control.name} at ${endpoint}`);
  const pool: IpPool = {
    name: 'default-ipv4-ippool',
    cidr: lab.network.podCIDR,
    blockSize: lab.network.subnetLen,
    vxlanMode: mode === 'vxlan' ? 'Always' : 'Never',
    ipipMode: mode === 'ipip' ? 'Always' : 'Never',
  };
  await etcdPut(backend, control, POOLS_PREFIX + pool.name, JSON.stringify(poolResource(pool)));
  if (dualStack(lab)) {
    const pool6: IpPool = { ...pool, name: 'default-ipv6-ippool', cidr: lab.network.podCIDRv6!, blockSize: lab.network.subnetLenV6 };
    await etcdPut(backend, control, POOLS_PREFIX + pool6.name, JSON.stringify(poolResource(pool6)));
  }

  for (const node of nodes) {
    await backend.start(node.name, 'calico-node', calicoServices(backend, lab, node)['calico-node']);
    const status = await waitForStatus(backend, node, () => true, 'up');
    progress(`calico-node on ${node.name}: block ${status.blocks.join(', ')} (${mode})`);
    await backend.writeFile(node.name, `${CONF_DIR}/10-cnilab.conflist`, JSON.stringify(calicoConfList(node, endpoint, mode, dualStack(lab), lab.workloads.some((w) => w.ports?.length)), null, 2));
  }
  // Every node knows every other one (BIRD's peers, or routes to their blocks) before anything else starts.
  for (const node of nodes) await waitForStatus(backend, node, (s) => s.peers.length === nodes.length - 1, 'to know every other node');
  if (mode !== 'bgp') return;

  for (const node of nodes) await backend.start(node.name, 'bird', calicoServices(backend, lab, node).bird);
  const t0 = performance.now();
  const blocks = new Map<NodeSpec, string[]>();
  for (const node of nodes) blocks.set(node, (await waitForStatus(backend, node, () => true, 'up')).blocks);
  for (const node of nodes) await waitForMesh(backend, node, bgpSessions(lab, node, nodes), nodes.filter((n) => n !== node), blocks, dualStack(lab), 15_000);
  const how = reflectors(lab).length ? `route reflectors ${reflectors(lab).join(', ')}` : 'mesh';
  progress(`BGP ${how} established in ${((performance.now() - t0) / 1000).toFixed(2)} s (AS ${CALICO_AS}, ${nodes.length} nodes)`);
}

/**
 * Calico's conflist: the calico plugin with calico-ipam, pointed at etcd and named for its node;
 * portmap chained after it, as Calico's manifests do, when a workload publishes host ports.
 */
export function calicoConfList(node: NodeSpec, endpoint: string, mode: CalicoMode, dual = false, portmap = false): ConfList {
  return {
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    plugins: [
      {
        type: 'calico',
        datastore_type: 'etcdv3',
        etcd_endpoints: endpoint,
        nodename: node.name,
        // One MTU for the pod's veth: with IPv6 VXLAN too, the smaller of the two (70 bytes of IPv6 envelope).
        mtu: dual && mode === 'vxlan' ? 1430 : MTU[mode],
        ipam: { type: 'calico-ipam', ...(dual ? { assign_ipv4: 'true', assign_ipv6: 'true' } : {}) },
      },
      ...(portmap ? [{ type: 'portmap', capabilities: { portMappings: true } }] : []),
    ],
  };
}

async function waitForStatus(backend: Backend, node: NodeSpec, ok: (s: NodeStatus) => boolean, what: string): Promise<NodeStatus> {
  return waitUntil(
    async () => {
      const text = await backend.readFile(node.name, CALICO_PATHS.status);
      const status = text ? (JSON.parse(text) as NodeStatus) : undefined;
      return status && ok(status) && status;
    },
    { timeoutMs: 10_000, what: `calico-node on ${node.name} to come ${what}`, hint: () => `see ${backend.nodePath(node.name, '/var/log/calico-node.log')}` },
  );
}

/**
 * What Calico's readiness check does (calico-node -bird-ready): every BGP
 * session Established; and, so the lesson's first look finds them, every other node's blocks in BIRD's table.
 */
async function waitForMesh(backend: Backend, node: NodeSpec, sessions: { peer: NodeSpec; name: string }[], others: NodeSpec[], blocks: Map<NodeSpec, string[]>, dual: boolean, timeoutMs: number): Promise<void> {
  const socket = backend.nodePath(node.name, CALICO_PATHS.birdSocket);
  let last = '';
  await waitUntil(
    async () => {
      const r = await backend.exec(node.name, ['birdc', '-s', socket, 'show', 'protocols'], { allowFailure: true });
      last = r.stdout || r.stderr;
      const rows = parseProtocols(r.stdout);
      const up = (name: string) => rows.some((row) => row.name === name && row.info.startsWith('Established'));
      // With dual-stack, the session over the IPv6 underlay too.
      const established = (s: { peer: NodeSpec; name: string }) => up(s.name) && (!dual || up(meshProtocolName(s.peer.addressV6!)));
      if (r.exitCode !== 0 || !sessions.every(established)) return false;
      const routes = await backend.exec(node.name, ['birdc', '-s', socket, 'show', 'route'], { allowFailure: true });
      last = routes.stdout;
      return others.every((p) => blocks.get(p)!.every((b) => routes.stdout.includes(b)));
    },
    {
      timeoutMs,
      intervalMs: 50,
      what: `BGP sessions on ${node.name} to be Established with the peers' blocks in BIRD's table`,
      hint: () => `birdc said:\n${last}\nsee ${backend.nodePath(node.name, '/var/log/bird.log')}`,
    },
  );
}
