// The cilium datapath's NetworkPolicy engine from the lab's side: the cluster
// as the Kubernetes API would show it (pods with labels, namespaces, policies)
// is kept in a file on the first node and pushed whole to every node's agent
// (PUT /v1/policy on its socket), which answers once its maps are programmed.
import type { Backend } from '../../topologies/backend.js';
import type { Lab } from '../../lab/lab-file.js';
import type { PodRecord } from '../../lab/state.js';
import type { NetworkPolicy } from '../../policy/schema.js';
import type { CiliumView } from '../../policy/cilium.js';
import { AGENT_SOCKET } from './install.js';

const VIEW_FILE = '/var/lib/cilium/cluster-view.json';
const PUSH_FILE = '/var/run/cilium/cluster-view.json';

/**
 * Pods are added on several nodes at once, and each change reads the view, changes it and
 * writes it back: one change at a time, or two pods added together would lose one of them.
 */
let queue: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(change: () => Promise<T>): Promise<T> {
  const next = queue.then(change, change);
  queue = next.catch(() => undefined);
  return next;
}

async function readView(backend: Backend, lab: Lab): Promise<CiliumView> {
  const text = await backend.readFile(lab.topology.nodes[0].name, VIEW_FILE);
  return text ? (JSON.parse(text) as CiliumView) : { pods: [], namespaces: [], policies: [] };
}

/** Save the view and hand it to every node's agent; returns once each has programmed it. */
async function push(backend: Backend, lab: Lab, view: CiliumView): Promise<void> {
  view.namespaces = lab.namespaces.map((n) => ({ name: n.name, labels: { ...n.labels } }));
  const text = JSON.stringify(view);
  await backend.writeFile(lab.topology.nodes[0].name, VIEW_FILE, text);
  await Promise.all(
    lab.topology.nodes.map(async (n) => {
      await backend.writeFile(n.name, PUSH_FILE, text);
      const argv = ['curl', '-sS', '--max-time', '20', '--unix-socket', backend.nodePath(n.name, AGENT_SOCKET), '-X', 'PUT', '--data-binary', `@${backend.nodePath(n.name, PUSH_FILE)}`, '-w', '\n%{http_code}', 'http://localhost/v1/policy'];
      const r = await backend.exec(n.name, argv, { allowFailure: true });
      if (r.exitCode !== 0 || !r.stdout.trim().endsWith('200')) throw new Error(`the cilium agent on ${n.name} did not take the policy: ${(r.stdout + r.stderr).trim()}`);
    }),
  );
}

export async function ciliumPodAdded(backend: Backend, lab: Lab, pod: PodRecord): Promise<void> {
  if (!pod.ip) return;
  await oneAtATime(async () => {
    const view = await readView(backend, lab);
    view.pods = [...view.pods.filter((p) => p.name !== pod.name), { name: pod.name, namespace: pod.namespace ?? 'default', labels: pod.labels ?? { app: pod.workload }, ip: pod.ip!, ...(pod.ip6 ? { ip6: pod.ip6 } : {}), node: pod.node }];
    await push(backend, lab, view);
  });
}

export async function ciliumPodRemoved(backend: Backend, lab: Lab, pod: PodRecord): Promise<void> {
  await oneAtATime(async () => {
    const view = await readView(backend, lab);
    view.pods = view.pods.filter((p) => p.name !== pod.name);
    await push(backend, lab, view);
  });
}

export async function ciliumSetPolicies(backend: Backend, lab: Lab, policies: NetworkPolicy[]): Promise<void> {
  await oneAtATime(async () => {
    const view = await readView(backend, lab);
    view.policies = policies;
    await push(backend, lab, view);
  });
}
