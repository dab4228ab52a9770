// What a datapath is, for the rest of cnilab: the `network:` block it accepts
// in a lab file, what it needs from the machine, how it installs into a lab,
// the CNI plugins it ships and the services it runs on each node.
import type { Plugin } from '../cni/skel.js';
import type { Lab, LabProblem, NetworkKind } from '../lab/lab-file.js';
import type { Backend, NodeSpec } from '../topologies/backend.js';

export interface Datapath extends NetworkKind {
  /** Kernel link types the datapath creates (tried in a scratch namespace before the lab starts). */
  kernelFeatures(lab: Lab): string[];
  /** Tools it runs, by their name in the tool table (src/lab/tools.ts). */
  tools: string[];
  /** Kernel features that are not link types, tried before the lab starts; returns the missing ones, named. */
  probeKernel?(lab: Lab): Promise<string[]>;
  install(backend: Backend, lab: Lab, nodes: NodeSpec[], progress: (msg: string) => void): Promise<void>;
  /** Lab-file problems only this datapath can see (beyond its schema); the path names the field. */
  validate?(lab: Lab): LabProblem[];
  /** Long-running services it runs on a node, by name, and the command that starts each (for `service` steps). */
  services?(backend: Backend, lab: Lab, node: NodeSpec): Record<string, string[]>;
  /** The CNI plugins it ships, by the `type` a runtime calls. */
  cniPlugins: Record<string, Plugin<any>>;
}
