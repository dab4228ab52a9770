// Control-plane services a lab runs on its nodes: real etcd from Debian's etcd-server.
import type { Backend } from '../topologies/backend.js';
import type { NodeSpec } from '../topologies/backend.js';
import type { StateFile } from '../lab/state.js';

export const ETCD_CLIENT_PORT = 2379;

export function etcdEndpoint(node: NodeSpec): string {
  return `http://${node.address}:${ETCD_CLIENT_PORT}`;
}

/** Start a one-member etcd on `node`, listening on its underlay address; resolves when it is healthy. */
export async function startEtcd(backend: Backend, node: NodeSpec): Promise<string> {
  const endpoint = etcdEndpoint(node);
  await backend.start(node.name, 'etcd', [
    'etcd',
    '--name', node.name,
    '--data-dir', backend.nodePath(node.name, '/var/lib/etcd'),
    '--listen-client-urls', `${endpoint},http://127.0.0.1:${ETCD_CLIENT_PORT}`,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', 'http://127.0.0.1:2380',
    '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
    '--initial-cluster', `${node.name}=http://127.0.0.1:2380`,
    '--log-level', 'warn',
    // One member on a quiet link: elect itself in ~0.1 s instead of the default 1 s.
    '--heartbeat-interval', '10',
    '--election-timeout', '100',
  ]);
  for (let i = 0; i < 200; i++) {
    const r = await backend.exec(node.name, ['curl', '-s', '--max-time', '1', `http://127.0.0.1:${ETCD_CLIENT_PORT}/health`], { allowFailure: true });
    if (r.stdout.includes('"health":"true"')) return endpoint;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`etcd on ${node.name} did not become healthy within 5 s; see ${backend.nodePath(node.name, '/var/log/etcd.log')}`);
}

export async function etcdPut(backend: Backend, node: NodeSpec, key: string, value: string): Promise<void> {
  await backend.exec(node.name, ['etcdctl', '--endpoints', `http://127.0.0.1:${ETCD_CLIENT_PORT}`, 'put', key, value], { env: { ETCDCTL_API: '3' } });
}

/** Stop and start a node's services by name, for `service` steps (a fault, then the recovery). */
export interface ServiceControl {
  stop(node: string, name: string): Promise<string>;
  start(node: string, name: string): Promise<string>;
}

/** Stops only the PID recorded for the service; starts it again with the command its network plugin gives. */
export class NodeServices implements ServiceControl {
  constructor(
    private backend: Backend,
    private state: StateFile,
    /** The services a node runs and the command that starts each. */
    private commands: (node: string) => Record<string, string[]>,
  ) {}

  private running(node: string, name: string) {
    return this.state.state.processes.find((p) => p.node === node && p.name === name);
  }

  async stop(node: string, name: string): Promise<string> {
    const p = this.running(node, name);
    if (!p) {
      const there = this.state.state.processes.filter((q) => q.node === node).map((q) => q.name);
      throw new Error(`no service "${name}" is running on ${node} (running there: ${there.join(', ') || 'nothing'})`);
    }
    await this.backend.stop(p.pid);
    return `stopped ${name} on ${node} (pid ${p.pid})`;
  }

  async start(node: string, name: string): Promise<string> {
    const p = this.running(node, name);
    if (p) throw new Error(`${name} is already running on ${node} (pid ${p.pid})`);
    const commands = this.commands(node);
    const argv = commands[name];
    if (!argv) throw new Error(`"${name}" is not a service the network runs on ${node} (services: ${Object.keys(commands).join(', ') || 'none'})`);
    const started = await this.backend.start(node, name, argv);
    return `started ${name} on ${node} (pid ${started.pid})`;
  }
}
