// The topology model and the interface every backend (netns, docker, vagrant) implements.
// A backend knows how to make nodes on an underlay and how to run things on them;
// it knows nothing of CNI, lessons or checks.
import type { RunResult } from '../net/exec.js';

export interface NodeSpec {
  name: string;
  /** Underlay address, e.g. 192.168.10.210 */
  address: string;
}

export interface Topology {
  /** The lab instance name; every resource carries it. */
  lab: string;
  underlay: { subnet: string; prefix: number };
  nodes: NodeSpec[];
}

export interface ExecOptions {
  input?: string;
  env?: Record<string, string>;
  allowFailure?: boolean;
}

/** Where a long-running process writes its output, and the PID we record to stop it. */
export interface Started {
  pid: number;
  log: string;
}

export interface Backend {
  readonly kind: string;
  /** Build the underlay and the nodes. On failure everything made so far is removed. */
  up(): Promise<void>;
  /** Remove everything this lab made; safe to call twice. */
  down(): Promise<void>;

  /** Run a command on a node to completion. */
  exec(node: string, argv: string[], opts?: ExecOptions): Promise<RunResult>;
  /** Start a long-running process on a node; its PID is recorded before this returns. */
  start(node: string, name: string, argv: string[], opts?: { env?: Record<string, string> }): Promise<Started>;
  /** Stop a process we started, by its PID. */
  stop(pid: number): Promise<void>;

  /** The host path behind a path as the node sees it (/etc/cni/net.d, /var/lib/cni, …). */
  nodePath(node: string, path: string): string;
  writeFile(node: string, path: string, content: string): Promise<void>;
  /** A node's file, or undefined when it does not exist (yet). */
  readFile(node: string, path: string): Promise<string | undefined>;

  /** A pod sandbox: a network namespace (and hostname) that the pod's containers share. */
  createSandbox(node: string, pod: string): Promise<{ netns: string }>;
  removeSandbox(node: string, pod: string): Promise<void>;
  /** Run in a pod's sandbox. */
  podExec(node: string, pod: string, argv: string[], opts?: ExecOptions): Promise<RunResult>;
  podStart(node: string, pod: string, name: string, argv: string[]): Promise<Started>;

  /**
   * A BPF filesystem of the node's own, for the programs and maps a datapath
   * pins (pins are global to the machine, so nodes and labs never share one);
   * returns its path. Removed with the lab.
   */
  bpffs?(node: string): Promise<string>;
  /** The argv that runs `argv` on a node (or in its pod), for callers that spawn it themselves, such as the benchmark tools. */
  commandFor?(node: string, pod: string | undefined, argv: string[]): string[];
  /** The network namespace of a node (or of its pod) as a path nsenter takes, so the kernel's view there can be read. */
  netnsPath?(node: string, pod?: string): string;
}
