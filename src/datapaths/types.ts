// What a datapath is, for the rest of cnilab: the `network:` block it accepts
// in a lab file, what it needs from the machine, how it installs into a lab,
// the CNI plugins it ships and the services it runs on each node.
import type { Plugin } from '../cni/skel.js';
import type { Lab, LabProblem, NetworkKind } from '../lab/lab-file.js';
import type { Backend, NodeSpec } from '../topologies/backend.js';
import type { PodRecord } from '../lab/state.js';
import type { NetworkPolicy } from '../policy/schema.js';
import type { RunsCommands } from '../net/target.js';

/** A datapath's NetworkPolicy engine: what it learns of pods, and the policies to put in force. */
export interface PolicyEngine {
  /** A pod got its address (hostIface: the host side of its interface, from the CNI result). */
  podAdded(backend: Backend, lab: Lab, pod: PodRecord, hostIface: string): Promise<void>;
  podRemoved(backend: Backend, lab: Lab, pod: PodRecord): Promise<void>;
  /** Exactly these policies in force; resolves once every node enforces them (and every pod added so far). */
  setPolicies(backend: Backend, lab: Lab, policies: NetworkPolicy[]): Promise<void>;
}

export interface Datapath extends NetworkKind {
  /** Kernel link types the datapath creates (tried in a scratch namespace before the lab starts). */
  kernelFeatures(lab: Lab): string[];
  /** Tools it runs, by their name in the tool table (src/lab/tools.ts). */
  tools: string[];
  /** Kernel features that are not link types, tried before the lab starts where `where` runs (each node's own kernel on hosts); returns the missing ones, named. */
  probeKernel?(lab: Lab, where: RunsCommands): Promise<string[]>;
  install(backend: Backend, lab: Lab, nodes: NodeSpec[], progress: (msg: string) => void): Promise<void>;
  /** Lab-file problems only this datapath can see (beyond its schema); the path names the field. */
  validate?(lab: Lab): LabProblem[];
  /** Long-running services it runs on a node, by name, and the command that starts each (for `service` steps). */
  services?(backend: Backend, lab: Lab, node: NodeSpec): Record<string, string[]>;
  /** The CNI plugins it ships, by the `type` a runtime calls. */
  cniPlugins: Record<string, Plugin<any>>;
  /** Arguments for a node's kube-proxy in a mode only this datapath offers (ebpf: its pinned service maps). */
  proxyArgs?(backend: Backend, node: NodeSpec): Promise<string[]>;
  /** Its NetworkPolicy engine; absent, it enforces none (and `enforcesPolicy` stays unset). */
  policy?: PolicyEngine;
  /** Pods take addresses of the underlay itself: it runs only where the underlay is the lab's own. */
  podsOnUnderlay?: boolean;
}
