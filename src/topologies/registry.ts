// Backends by name. An unknown name lists the valid ones.
import type { Backend, Topology } from './backend.js';
import { NetnsBackend } from './netns.js';
import { DockerBackend } from './docker.js';
import { VagrantBackend } from './vagrant.js';
import type { StateFile } from '../lab/state.js';

const BACKENDS: Record<string, (topo: Topology, state: StateFile) => Backend> = {
  netns: (t, s) => new NetnsBackend(t, s),
  docker: (t, s) => new DockerBackend(t, s),
  vagrant: (t, s) => new VagrantBackend(t, s),
};

export function backendNames(): string[] {
  return Object.keys(BACKENDS);
}

export function createBackend(kind: string, topo: Topology, state: StateFile): Backend {
  const make = BACKENDS[kind];
  if (!make) throw new Error(`unknown backend "${kind}"; available: ${backendNames().join(', ')}`);
  return make(topo, state);
}
