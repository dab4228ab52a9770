// Calico's NetworkPolicy engine from the lab's side: what the Kubernetes API
// and Calico's CNI plugin would put in the datastore (a WorkloadEndpoint per
// pod, a Profile per namespace, the policies), written to etcd; calico-node on
// every node programs it (src/policy/felix.ts) and reports the revision it reached.
import type { Backend, NodeSpec } from '../../topologies/backend.js';
import type { Lab } from '../../lab/lab-file.js';
import type { PodRecord } from '../../lab/state.js';
import type { NetworkPolicy } from '../../policy/schema.js';
import { ETCD_CLIENT_PORT } from '../etcd/server.js';
import { waitUntil } from '../../util/wait.js';
import { POLICIES_PREFIX, policyKey, profileKey, profileResource, wepKey, wepResource } from './policy-keys.js';
import type { NodeStatus } from './node-agent.js';
import { CALICO_PATHS } from './install.js';

function etcdctl(backend: Backend, lab: Lab, args: string[]) {
  const control = lab.topology.nodes[0];
  return backend.exec(control.name, ['etcdctl', '--endpoints', `http://127.0.0.1:${ETCD_CLIENT_PORT}`, ...args], { env: { ETCDCTL_API: '3' } });
}

/** The pod's labels and namespace, as the Kubernetes API would have them. */
export function podMeta(pod: PodRecord): { namespace: string; labels: Record<string, string> } {
  return { namespace: pod.namespace ?? 'default', labels: pod.labels ?? { app: pod.workload } };
}

export async function calicoPodAdded(backend: Backend, lab: Lab, pod: PodRecord, hostIface: string): Promise<void> {
  if (!pod.ip) return;
  const { namespace, labels } = podMeta(pod);
  const ns = { name: namespace, labels: lab.namespaces.find((n) => n.name === namespace)?.labels ?? {} };
  await etcdctl(backend, lab, ['put', profileKey(namespace), JSON.stringify(profileResource(ns))]);
  const wep = { name: pod.name, namespace, labels, ip: pod.ip, node: pod.node, iface: hostIface };
  await etcdctl(backend, lab, ['put', wepKey(wep), JSON.stringify(wepResource(wep))]);
}

export async function calicoPodRemoved(backend: Backend, lab: Lab, pod: PodRecord): Promise<void> {
  const { namespace } = podMeta(pod);
  await etcdctl(backend, lab, ['del', wepKey({ namespace, node: pod.node, name: pod.name })]);
}

/** Exactly these policies in force; returns once calico-node on every node has programmed them. */
export async function calicoSetPolicies(backend: Backend, lab: Lab, policies: NetworkPolicy[]): Promise<void> {
  const keys = (await etcdctl(backend, lab, ['get', '--prefix', '--keys-only', POLICIES_PREFIX])).stdout.split('\n').filter(Boolean);
  const wanted = new Map(policies.map((p) => [policyKey(p), JSON.stringify(p)]));
  for (const k of keys) if (!wanted.has(k)) await etcdctl(backend, lab, ['del', k]);
  for (const [k, v] of wanted) await etcdctl(backend, lab, ['put', k, v]);
  await calicoPolicySettled(backend, lab);
}

/** Wait until every node's calico-node has programmed the datastore as it is now. */
export async function calicoPolicySettled(backend: Backend, lab: Lab): Promise<void> {
  const header = JSON.parse((await etcdctl(backend, lab, ['get', '/', '--prefix', '--limit', '1', '-w', 'json'])).stdout) as { header: { revision: string | number } };
  const revision = Number(header.header.revision);
  for (const node of lab.topology.nodes) await waitForRevision(backend, node, revision);
}

async function waitForRevision(backend: Backend, node: NodeSpec, revision: number): Promise<void> {
  let status: NodeStatus | undefined;
  await waitUntil(
    async () => {
      const text = await backend.readFile(node.name, CALICO_PATHS.status);
      status = text ? (JSON.parse(text) as NodeStatus) : undefined;
      if (status?.policy?.error) throw new Error(`calico-node on ${node.name} could not program policy: ${status.policy.error}`);
      return status !== undefined && status.revision >= revision;
    },
    {
      timeoutMs: 10_000,
      what: `calico-node on ${node.name} to program datastore revision ${revision}`,
      hint: () => `it is at ${status?.revision}; see ${backend.nodePath(node.name, '/var/log/calico-node.log')}`,
    },
  );
}
