// Installing the cilium-like eBPF datapath on a lab: the C programs in bpf/
// compiled with clang (cached by content), a BPF filesystem of each node's
// own, the agent on every node (it loads, pins and attaches the programs and
// fills the maps), and the CNI conflist that points the kubelet at cilium-cni.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { underlayIface, type Backend, type NodeSpec } from '../../topologies/backend.js';
import type { Lab } from '../../lab/lab-file.js';
import type { CiliumNetwork } from './schema.js';
import { Ip } from '../../net/ip.js';
import { compileBpf } from '../../net/bpf.js';
import { missingTcBpfOn } from '../../net/kernel-probe.js';
import { THIS_MACHINE, type RunsCommands } from '../../net/target.js';
import { formatCidr, formatPrefix, parseCidr, parsePrefix, subnet, subprefix } from '../../net/ipnet.js';
import { TUNNEL_DEVICE, pinLayout, type CiliumAgentConfig, type ClusterNode } from './agent.js';
import { AGENTS_DIR, ROOT } from '../../lab/paths.js';
import { CONF_DIR, type ConfList } from '../../cni/conflist.js';
import { NAME_PREFIX } from '../../lab/state.js';
import { waitUntil } from '../../util/wait.js';

export const BPF_SOURCE_DIR = join(ROOT, 'bpf');
/** Compiled objects, named by the digest of their sources: shared by every lab, compiled once. */
export const BPF_CACHE_DIR = join(ROOT, 'dist', 'bpf');

export const VXLAN_OVERHEAD = 50;

/** command (or file) -> the Debian package that provides it */
export const CILIUM_TOOLS: Record<string, string> = {
  clang: 'clang',
  bpftool: 'bpftool',
  tc: 'iproute2',
  '/usr/include/bpf/bpf_helpers.h': 'libbpf-dev',
  '/usr/include/linux/bpf.h': 'linux-libc-dev',
};

const AGENT_CONFIG = '/etc/cilium/agent.json';
export const AGENT_SOCKET = '/var/run/cilium/cilium.sock';
/** What the agent programmed for NetworkPolicy (identities, policy map entries, isolated endpoints). */
export const AGENT_POLICY = '/var/run/cilium/policy.json';
const AGENT_READY = '/var/run/cilium/ready.json';

/**
 * Each node's pod CIDR, carved from the lab's pod network in node order, as a
 * controller manager allocates them; dual-stack, an IPv6 one too (podCIDRs).
 */
export function nodePodCidrs(podCIDR: string, subnetLen: number, nodes: NodeSpec[], v6?: { podCIDR: string; subnetLen: number }): ClusterNode[] {
  const net = parseCidr(podCIDR);
  if (!net) throw new Error(`network.podCIDR "${podCIDR}" is not a CIDR`);
  if (subnetLen < net.prefix) throw new Error(`network.subnetLen /${subnetLen} is larger than the pod network ${podCIDR}`);
  if (nodes.length > 2 ** (subnetLen - net.prefix)) throw new Error(`${podCIDR} holds only ${2 ** (subnetLen - net.prefix)} /${subnetLen} subnets for ${nodes.length} nodes`);
  const net6 = v6 ? parsePrefix(v6.podCIDR) : undefined;
  if (v6 && net6?.family !== 6) throw new Error(`network.podCIDRv6 "${v6.podCIDR}" is not an IPv6 CIDR`);
  if (v6 && BigInt(nodes.length) > 2n ** BigInt(v6.subnetLen - net6!.prefix)) throw new Error(`${v6.podCIDR} holds too few /${v6.subnetLen} subnets for ${nodes.length} nodes`);
  return nodes.map((n, i) => ({
    name: n.name,
    address: n.address,
    podCIDR: formatCidr(subnet(net, subnetLen, i)),
    ...(v6 ? { podCIDRv6: formatPrefix(subprefix(net6!, v6.subnetLen, i)) } : {}),
    ...(n.addressV6 ? { addressV6: n.addressV6 } : {}),
  }));
}

/** Lab-file problems: a datapath variant cnilab does not have. */
export async function compileDatapath(): Promise<{ lxc: string; node: string }> {
  const [lxc, node] = await Promise.all(['lxc', 'node'].map((f) => compileBpf(join(BPF_SOURCE_DIR, `${f}.c`), BPF_CACHE_DIR)));
  return { lxc, node };
}

export async function installCilium(backend: Backend, lab: Lab, nodes: NodeSpec[], progress: (msg: string) => void): Promise<void> {
  if (!backend.bpffs) throw new Error(`the ${backend.kind} backend cannot give a node a BPF filesystem of its own, which the cilium datapath needs`);
  const network = lab.network as CiliumNetwork;
  const mode: CiliumAgentConfig['mode'] = network.backend;
  const objects = await compileDatapath();
  const v6 = lab.network.podCIDRv6 ? { podCIDR: lab.network.podCIDRv6, subnetLen: lab.network.subnetLenV6 } : undefined;
  const cluster = nodePodCidrs(lab.network.podCIDR, lab.network.subnetLen, nodes, v6);
  const vni = network.vni;
  await Promise.all(
    cluster.map(async (node) => {
      const iface = underlayIface(nodes.find((n) => n.name === node.name)!);
      const bpffs = await backend.bpffs!(node.name);
      const config: CiliumAgentConfig = {
        node: node.name,
        nodeIp: node.address,
        mode,
        underlayDevice: iface,
        nodes: cluster,
        bpffs,
        objects,
        socket: backend.nodePath(node.name, AGENT_SOCKET),
        readyFile: backend.nodePath(node.name, AGENT_READY),
        policyFile: backend.nodePath(node.name, AGENT_POLICY),
        vni,
        tunnelPort: 8472,
      };
      await backend.writeFile(node.name, AGENT_CONFIG, JSON.stringify(config, null, 2));
      const started = await backend.start(node.name, 'cilium-agent', [process.execPath, join(AGENTS_DIR, 'cilium-agent.js'), '--config', backend.nodePath(node.name, AGENT_CONFIG)]);
      const ready = JSON.parse(await waitForAgent(backend, node.name, started.log, 10_000)) as { pins: string };
      const underlay = await new Ip(backend.node(node.name)).link(iface);
      if (!underlay) throw new Error(`node ${node.name} has no ${iface} (the underlay)`);
      const mtu = underlay.mtu - (mode === 'vxlan' ? VXLAN_OVERHEAD : 0);
      const podCIDRs = [node.podCIDR, ...(node.podCIDRv6 ? [node.podCIDRv6] : [])];
      await backend.writeFile(node.name, `${CONF_DIR}/10-cnilab.conflist`, JSON.stringify(ciliumConfList(backend, node.name, podCIDRs, mtu), null, 2));
      progress(`cilium-agent on ${node.name}: pods ${podCIDRs.join(' ')}, ${mode === 'vxlan' ? `VXLAN through ${TUNNEL_DEVICE}` : 'native routing'}, BPF objects pinned in ${ready.pins}`);
    }),
  );
}

/** One host-local range set per pod CIDR: an address of each family for a dual-stack pod. */
export function ciliumConfList(backend: Backend, node: string, podCIDRs: string[], mtu: number): ConfList {
  return {
    cniVersion: '1.0.0',
    name: 'cilium',
    plugins: [
      {
        type: 'cilium-cni',
        socket: backend.nodePath(node, AGENT_SOCKET),
        mtu,
        ipam: { type: 'host-local', ranges: podCIDRs.map((subnet) => [{ subnet }]), dataDir: backend.nodePath(node, '/var/lib/cni/networks') },
      },
    ],
  };
}

/** The agent's ready file; a fatal error in its log ends the wait at once, quoted. */
/** Until the agent says it is ready; what it printed (`agentLog`, where the backend keeps it) explains a failure. */
async function waitForAgent(backend: Backend, node: string, agentLog: string, timeoutMs: number): Promise<string> {
  let log = '';
  return waitUntil(
    async () => {
      const ready = await backend.readFile(node, AGENT_READY);
      if (ready) return ready;
      log = (await backend.readFile(node, agentLog)) ?? '';
      const fatal = log.split('\n').find((l) => l.startsWith('cilium-agent: '));
      if (fatal) throw new Error(`the cilium agent on ${node} failed: ${fatal.slice('cilium-agent: '.length)}`);
      return undefined;
    },
    { timeoutMs, what: `the cilium agent on ${node} to be ready`, hint: () => `${agentLog} ends: ${log.trim().split('\n').slice(-3).join(' | ') || '(empty)'}` },
  );
}

/**
 * What the kernel must do for this datapath beyond link types: a clsact qdisc
 * and a BPF classifier, tried with a trivial program in a scratch namespace
 * where `where` runs (this machine, or a node with a kernel of its own).
 * Returns the missing features, named; an empty list when all is there.
 */
export async function missingBpfFeatures(where: RunsCommands = THIS_MACHINE): Promise<string[]> {
  const probe = await compileBpf(join(BPF_SOURCE_DIR, 'probe.c'), BPF_CACHE_DIR);
  return missingTcBpfOn(where, probe, `${NAME_PREFIX}preflight-bpf-${process.pid}-${randomBytes(3).toString('hex')}`);
}

/** kube-proxy in ebpf mode writes the service maps the node's agent pinned; NodePorts are on the node's address. */
export async function ciliumProxyArgs(backend: Backend, node: NodeSpec): Promise<string[]> {
  if (!backend.bpffs) throw new Error(`the ${backend.kind} backend cannot give a node a BPF filesystem of its own`);
  return ['--bpf-maps', pinLayout(await backend.bpffs(node.name)).maps, '--node-ip', node.address];
}
