// Sidecars: a second program in a pod beside its workload, as a second
// container of the pod would run. iperf3-server listens on the pod's address
// (port 5201) so lab steps can measure what reaches the pod and what leaves it.
import type { Backend } from '../topologies/backend.js';
import type { Lab } from '../lab/lab-file.js';
import type { PodRecord } from '../lab/state.js';
import { waitUntil } from '../util/wait.js';

export type Sidecar = NonNullable<Lab['workloads'][number]['sidecars']>[number];

export async function startSidecar(backend: Backend, pod: PodRecord, sidecar: Sidecar): Promise<void> {
  const { log } = await backend.podStart(pod.node, pod.name, sidecar, ['iperf3', '--server', '--bind', pod.ip!]);
  const listening = ['ss', '-H', '-l', '-t', '-n', 'sport = :5201'];
  await waitUntil(async () => (await backend.podExec(pod.node, pod.name, listening, { allowFailure: true })).stdout.trim() !== '', {
    timeoutMs: 3000,
    what: `${sidecar} in pod ${pod.name} to listen on ${pod.ip}:5201`,
    hint: () => `see ${log}`,
  });
}
