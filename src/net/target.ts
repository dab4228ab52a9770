// Where a command runs: a node or a pod of some backend. The kernel wrappers in
// src/net take one, so the same code reads a namespace on this machine, inside a
// Docker container or on a VM over ssh.
import { inNetns, run, type Netns, type RunResult } from './exec.js';

export interface TargetRunOptions {
  input?: string;
  env?: Record<string, string>;
  /** Return the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
}

export interface RunsCommands {
  /** "node master", "pod nginx-0 on master": for messages. */
  readonly label: string;
  /** Run a command there to completion. */
  run(argv: string[], opts?: TargetRunOptions): Promise<RunResult>;
  /** The argv that runs `argv` there, for callers that spawn it themselves (a timeout, a terminal). */
  argv(argv: string[], opts?: { tty?: boolean }): string[];
  /** The network namespace as a path on this machine, when the kernel's view there is local; undefined otherwise. */
  readonly netns?: string;
}

/** A failed command on a target, named with where it ran. */
export function targetError(t: RunsCommands, argv: string[], r: RunResult): Error {
  return new Error(`${argv.join(' ')} on ${t.label} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().slice(0, 500) || 'no output'}`);
}

/** A namespace of this machine (a name, a path, or none for this process's own), or a node or pod of any backend. */
export type Where = Netns | RunsCommands;

/** Run a command where `where` says: entering the namespace here when it is local, through the target otherwise. */
export function runAt(where: Where, argv: string[], opts: TargetRunOptions = {}): Promise<RunResult> {
  if (typeof where === 'object' && !where.netns) return where.run(argv, opts);
  const netns = typeof where === 'object' ? where.netns : where;
  return run(inNetns(netns, argv[0], argv.slice(1)), { input: opts.input, allowFailure: opts.allowFailure, env: opts.env ? { ...process.env, ...opts.env } : undefined });
}

/** This machine in this process's own namespaces: where the nodes share its kernel, preflight asks it here. */
export const THIS_MACHINE: RunsCommands = {
  label: 'this machine',
  run: (argv, opts) => runAt(undefined, argv, opts),
  argv: (argv) => argv,
};
