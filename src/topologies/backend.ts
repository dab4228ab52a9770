// The topology model and the interface every backend (netns, docker, vagrant) implements.
// A backend knows how to make nodes on an underlay and how to run things on them;
// it knows nothing of CNI, lessons or checks.
import type { RunResult } from '../net/exec.js';
import type { RunsCommands } from '../net/target.js';
import type { ProcessRecord } from '../lab/state.js';

/** A pod's own resolv.conf, in the pod's directory when the lab runs a cluster DNS: its commands see it as /etc/resolv.conf. */
export const POD_RESOLV_CONF = 'resolv.conf';

export interface NodeSpec {
  name: string;
  /** Underlay address, e.g. 192.168.10.210 */
  address: string;
  /** IPv6 underlay address on a dual-stack underlay, e.g. fd00:192:168:10::210 */
  addressV6?: string;
  /** The device that carries the underlay (hosts: the inventory's interface); eth0 where cnilab makes the node. */
  iface?: string;
}

/** The underlay device of a node cnilab made itself (netns, docker, VMs). */
export const DEFAULT_UNDERLAY_IFACE = 'eth0';

/** The device a node's underlay traffic leaves by: datapaths bind their tunnels and agents to it. */
export const underlayIface = (n: NodeSpec): string => n.iface ?? DEFAULT_UNDERLAY_IFACE;

export interface Topology {
  /** The lab instance name; every resource carries it. */
  lab: string;
  underlay: { subnet: string; prefix: number };
  /** The IPv6 underlay beside it, when the nodes are dual-stack. */
  underlayV6?: { subnet: string; prefix: number };
  nodes: NodeSpec[];
}

export interface CommandOptions {
  /** The command talks to a terminal (an interactive shell): give it one where the transport needs asking (docker -t, ssh -t). */
  tty?: boolean;
}

export interface ExecOptions {
  input?: string;
  env?: Record<string, string>;
  allowFailure?: boolean;
}

/** A long-running process we started: the node whose PID space its PID is of, where it writes its output. */
export interface Started {
  pid: number;
  node: string;
  log: string;
}

/** What names a process we started, to stop it: a `Started`, or a record in the lab's state. */
export type StartedProcess = Pick<ProcessRecord, 'pid' | 'node'>;

export interface Backend {
  /** The underlay is a network of the machines', not one the backend made for the lab (hosts): nothing may take addresses on it. */
  readonly foreignUnderlay?: boolean;
  /** Each node runs a kernel of its own (hosts): preflight asks every node's kernel, not this machine's. */
  readonly nodeKernels?: boolean;
  /** How messages name a node: "w1 (node worker)" where it is a machine of its own. */
  nodeLabel?(node: string): string;
  readonly kind: string;
  /** Build the underlay and the nodes. On failure everything made so far is removed. */
  up(): Promise<void>;
  /** Remove everything this lab made; safe to call twice. */
  down(): Promise<void>;

  /** Run a command on a node to completion. */
  exec(node: string, argv: string[], opts?: ExecOptions): Promise<RunResult>;
  /** Start a long-running process on a node; its PID is recorded before this returns. */
  start(node: string, name: string, argv: string[], opts?: { env?: Record<string, string> }): Promise<Started>;
  /**
   * Optional, where nodes are namespaces of this machine (netns): one process
   * serving several nodes at once, started in the lab's own namespace and
   * recorded under each of those nodes (one PID, stopped with the lab).
   */
  startForNodes?(nodes: string[], name: string, argv: string[], opts?: { env?: Record<string, string> }): Promise<Started>;
  /**
   * Stop a process we started, by its PID on its node: where nodes have PID spaces
   * of their own (hosts, docker, VMs) one PID can be recorded on two nodes.
   */
  stop(p: StartedProcess): Promise<void>;
  /** Whether a process we started is still that process (its PID and start time, read where it runs). */
  isRunning(p: ProcessRecord): Promise<boolean>;

  /** The host path behind a path as the node sees it (/etc/cni/net.d, /var/lib/cni, …). */
  nodePath(node: string, path: string): string;
  writeFile(node: string, path: string, content: string): Promise<void>;
  /** A node's file, or undefined when it does not exist (yet). */
  readFile(node: string, path: string): Promise<string | undefined>;

  /** A pod sandbox: a network namespace (and hostname) that the pod's containers share. */
  createSandbox(node: string, pod: string): Promise<{ netns: string }>;
  removeSandbox(node: string, pod: string): Promise<void>;
  /** Optional: many sandboxes of one node at once, cheaper than one by one (netns does it with one `ip` process). */
  createSandboxes?(node: string, pods: string[]): Promise<{ netns: string }[]>;
  removeSandboxes?(node: string, pods: string[]): Promise<void>;
  /** Run in a pod's sandbox. */
  podExec(node: string, pod: string, argv: string[], opts?: ExecOptions): Promise<RunResult>;
  podStart(node: string, pod: string, name: string, argv: string[]): Promise<Started>;

  /** A node, to run commands on, start processes on, read and write its files. */
  node(name: string): Target;
  /** A pod's sandbox on its node: commands run in the pod's network namespace. */
  pod(node: string, pod: string): Target;

  /**
   * A BPF filesystem of the node's own, for the programs and maps a datapath
   * pins (pins are global to the machine, so nodes and labs never share one);
   * returns its path. Removed with the lab.
   */
  bpffs?(node: string): Promise<string>;
  /** The argv that runs `argv` on a node (or in its pod), for callers that spawn it themselves, such as the benchmark tools and `shell`. */
  commandFor(node: string, pod: string | undefined, argv: string[], opts?: CommandOptions): string[];
  /**
   * The network namespace of a node (or of its pod) as a path on this machine, where the
   * kernel's view there is local (netns; docker with a local engine); undefined where it is not.
   */
  netnsPath?(node: string, pod?: string): string | undefined;
}

/** A node or a pod of a lab, on whatever backend: what commands, checks and the kernel wrappers run on. */
export interface Target extends RunsCommands {
  readonly node: string;
  readonly pod?: string;
  /** Start a long-running process there; its PID is recorded before this returns. */
  start(name: string, argv: string[], opts?: { env?: Record<string, string> }): Promise<Started>;
  /** A file of the node (a pod sees its node's files), or undefined when it does not exist. */
  readFile(path: string): Promise<string | undefined>;
  writeFile(path: string, content: string): Promise<void>;
}

/** The Target every backend hands out, built on its per-node methods. */
export class BackendTarget implements Target {
  constructor(
    private readonly backend: Backend,
    readonly node: string,
    readonly pod?: string,
  ) {}

  get label(): string {
    return this.pod ? `pod ${this.pod} on ${this.node}` : `node ${this.node}`;
  }

  get netns(): string | undefined {
    return this.backend.netnsPath?.(this.node, this.pod);
  }

  run(argv: string[], opts?: ExecOptions): Promise<RunResult> {
    return this.pod ? this.backend.podExec(this.node, this.pod, argv, opts) : this.backend.exec(this.node, argv, opts);
  }

  argv(argv: string[], opts?: CommandOptions): string[] {
    return this.backend.commandFor(this.node, this.pod, argv, opts);
  }

  start(name: string, argv: string[], opts?: { env?: Record<string, string> }): Promise<Started> {
    return this.pod ? this.backend.podStart(this.node, this.pod, name, argv) : this.backend.start(this.node, name, argv, opts);
  }

  readFile(path: string): Promise<string | undefined> {
    return this.backend.readFile(this.node, path);
  }

  writeFile(path: string, content: string): Promise<void> {
    return this.backend.writeFile(this.node, path, content);
  }
}
