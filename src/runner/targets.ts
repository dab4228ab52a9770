// A node or pod of a running lab, by the name a person types: `cnilab exec
// master`, `cnilab shell nginx-0`. Pods first (their names cannot be a node's).
import type { LabState } from '../lab/state.js';
import type { Backend, Target } from '../topologies/backend.js';

export class NoSuchTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoSuchTargetError';
  }
}

export function targetByName(backend: Backend, state: LabState, nodes: string[], name: string): Target {
  const pod = state.pods.find((p) => p.name === name);
  if (pod) return backend.pod(pod.node, pod.name);
  if (nodes.includes(name)) return backend.node(name);
  throw new NoSuchTargetError(
    `no node or pod named "${name}" in ${state.lab} (nodes: ${nodes.join(', ')}; pods: ${state.pods.map((p) => p.name).join(', ') || 'none'}); see \`cnilab get pods\``,
  );
}
