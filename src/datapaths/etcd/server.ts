// The datastore flannel and calico keep their leases and blocks in: a real
// one-member etcd from Debian's etcd-server, started on a node by PID.
import type { Backend, NodeSpec } from '../../topologies/backend.js';
import { waitUntil } from '../../util/wait.js';

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
  const health = ['curl', '-s', '--max-time', '1', `http://127.0.0.1:${ETCD_CLIENT_PORT}/health`];
  await waitUntil(async () => (await backend.exec(node.name, health, { allowFailure: true })).stdout.includes('"health":"true"'), {
    timeoutMs: 5000,
    intervalMs: 25,
    what: `etcd on ${node.name} to become healthy`,
    hint: () => `see ${backend.nodePath(node.name, '/var/log/etcd.log')}`,
  });
  return endpoint;
}

export async function etcdPut(backend: Backend, node: NodeSpec, key: string, value: string): Promise<void> {
  await backend.exec(node.name, ['etcdctl', '--endpoints', `http://127.0.0.1:${ETCD_CLIENT_PORT}`, 'put', key, value], { env: { ETCDCTL_API: '3' } });
}

/** Many keys in one transaction, one etcdctl process: values quoted as etcdctl's txn reads them (Go string syntax, which JSON strings are). */
export async function etcdPutMany(backend: Backend, node: NodeSpec, entries: [string, string][]): Promise<void> {
  if (entries.length === 0) return;
  // No comparisons, the puts on success, nothing on failure: three blocks ended by an empty line.
  const input = `\n${entries.map(([k, v]) => `put ${k} ${JSON.stringify(v)}`).join('\n')}\n\n\n`;
  await backend.exec(node.name, ['etcdctl', '--endpoints', `http://127.0.0.1:${ETCD_CLIENT_PORT}`, 'txn'], { input, env: { ETCDCTL_API: '3' } });
}
