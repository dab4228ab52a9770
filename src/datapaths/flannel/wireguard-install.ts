// The node side of flannel's wireguard backend, before the agent starts: which
// implementation carries flannel-wg (the kernel module when `ip link add type
// wireguard` works in a scratch namespace, else Debian's wireguard-go), and
// for wireguard-go the daemon itself, started inside the node's namespace and
// recorded by PID like every node process. The agent then makes the keys and
// configures the device with `wg`, whichever implementation made it.
import { randomBytes } from 'node:crypto';
import type { Backend, NodeSpec } from '../../topologies/backend.js';
import { Ip } from '../../net/ip.js';
import { addNetns, deleteNetns } from '../../net/netns.js';
import { LINK_KINDS } from '../../net/link-kinds.js';
import { WG_SOCKET_DIR, wireguardGoArgv } from '../../net/wireguard.js';
import { WG_DEVICE } from './wireguard.js';
import { NAME_PREFIX } from '../../lab/state.js';

export type WireguardImplementation = 'kernel' | 'wireguard-go';

/** The kernel's own answer: can a wireguard link be made? */
export async function wireguardImplementation(): Promise<WireguardImplementation> {
  const scratch = `${NAME_PREFIX}wgprobe-${process.pid}-${randomBytes(3).toString('hex')}`;
  await addNetns(scratch);
  try {
    const ok = await new Ip(scratch).cmd(...LINK_KINDS.wireguard.probe!('wgprobe', '')).then(
      () => true,
      () => false,
    );
    return ok ? 'kernel' : 'wireguard-go';
  } finally {
    await deleteNetns(scratch);
  }
}

/**
 * With wireguard-go: start it on the node (foreground, so the recorded PID is
 * the daemon's) and wait for its control socket. Returns the flanneld flags
 * that point `wg` at that socket.
 */
export async function prepareWireguard(backend: Backend, node: NodeSpec, impl: WireguardImplementation, progress: (msg: string) => void): Promise<string[]> {
  const runDir = backend.nodePath(node.name, WG_SOCKET_DIR);
  if (impl === 'kernel') {
    progress(`wireguard on ${node.name}: the kernel module`);
    return ['--wg-run-dir', runDir];
  }
  const { pid, log } = await backend.start(node.name, 'wireguard-go', wireguardGoArgv(runDir, WG_DEVICE));
  const socket = `${runDir}/${WG_DEVICE}.sock`;
  for (let waited = 0; waited < 10_000; waited += 20) {
    if ((await backend.exec(node.name, ['test', '-S', socket], { allowFailure: true })).exitCode === 0) {
      progress(`wireguard on ${node.name}: wireguard-go (user space, PID ${pid}), no kernel module`);
      return ['--wg-run-dir', runDir];
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`wireguard-go on ${node.name} made no control socket ${socket} within 10 s; see ${log}`);
}
