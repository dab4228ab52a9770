// The one place that runs kernel tools (ip, bridge, sysctl, iptables, nsenter).
// It uses node:child_process rather than execa on purpose: CNI plugins are
// bundled from this code and every millisecond of start-up counts there.
import { execFile, spawn, type ChildProcess, type ExecFileException } from 'node:child_process';
import { Socket } from 'node:net';
import { closeSync } from 'node:fs';
import { exitCode, pipe, posixSpawn, reapWaited, SpawnError } from './spawn.js';
import { inAmbientNetns } from './thread-netns.js';

/** A network namespace: a name under /run/netns, an absolute path, or undefined for "the one we are in". */
export type Netns = string | undefined;

export class CommandError extends Error {
  constructor(
    readonly command: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    /** What the command printed before it failed (an `ip -batch` prints the lines that worked). */
    readonly stdout = '',
  ) {
    super(`${command.join(' ')} failed (exit ${exitCode}): ${stderr.trim() || 'no error output'}`);
    this.name = 'CommandError';
  }
}

export function netnsPath(netns: string): string {
  return netns.startsWith('/') ? netns : `/run/netns/${netns}`;
}

/** argv that runs `cmd args` inside a network namespace (nsenter takes paths, `ip -n` only names). */
export function inNetns(netns: Netns, cmd: string, args: string[]): string[] {
  if (!netns) return [cmd, ...args];
  return ['nsenter', `--net=${netnsPath(netns)}`, '--', cmd, ...args];
}

export interface RunOptions {
  input?: string;
  /** Return the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

// CNILAB_TRACE=1: one stderr line per command with its wall time, to see where a plugin's time goes.
export const trace = process.env.CNILAB_TRACE ? (argv: string[], t0: number) => process.stderr.write(`trace ${(performance.now() - t0).toFixed(2)} ms ${argv.join(' ')}\n`) : undefined;

export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const done = (err: ExecFileException | null, stdout: string, stderr: string) => {
      trace?.(argv, t0);
      const exitCode = err ? (typeof err.code === 'number' ? err.code : 127) : 0;
      if (err && !opts.allowFailure) {
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        reject(new CommandError(argv, exitCode, missing ? `${argv[0]} is not installed` : stderr, stdout));
        return;
      }
      resolve({ stdout, stderr, exitCode });
    };
    // Started in the namespace of the work that asks (thread-netns.ts): the fork happens on this thread, now.
    const child = inAmbientNetns(() => execFile(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env }, done));
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * run() through posix_spawn, for the commands a lab runs by the thousand (a
 * pod's CNI plugins): the same result, without a fork of this process.
 */
export function runSpawned(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const t0 = performance.now();
  const [inR, inW] = opts.input !== undefined ? pipe() : [undefined, undefined];
  const [outR, outW] = pipe();
  const [errR, errW] = pipe();
  // 127 and the reason, as a shell says a program it cannot start; the pipes' ends close either way.
  let failed: SpawnError | undefined;
  const exited = new Promise<number>((resolve) => {
    try {
      inAmbientNetns(() => posixSpawn(argv, { stdin: inR, stdout: outW, stderr: errW, env: opts.env ?? process.env, onExit: resolve }));
    } catch (e) {
      if (!(e instanceof SpawnError)) throw e;
      failed = e;
      resolve(127 << 8);
    } finally {
      for (const fd of [inR, outW, errW]) if (fd !== undefined) closeSync(fd);
    }
  });
  const collect = (fd: number) =>
    new Promise<string>((resolve) => {
      let text = '';
      const s = new Socket({ fd, readable: true, writable: false });
      s.setEncoding('utf8');
      s.on('data', (d: string) => (text += d));
      s.on('error', () => undefined);
      s.on('close', () => resolve(text));
    });
  if (inW !== undefined) {
    const s = new Socket({ fd: inW, readable: false, writable: true });
    s.on('error', () => undefined); // a command that does not read its input
    s.end(opts.input ?? '');
  }
  // Its output ends when it exits; SIGCHLD usually reaps it by then, else a short poll
  // does (a signal handler does not keep this process alive, a timer does).
  const reaped = async (): Promise<number> => {
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      reapWaited();
      const status = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(r, wait))]);
      if (status !== undefined) return status;
    }
  };
  return Promise.all([collect(outR), collect(errR)]).then(async ([stdout, stderr]) => {
    const status = await reaped();
    trace?.(argv, t0);
    const code = exitCode(status);
    if (code !== 0 && !opts.allowFailure) throw new CommandError(argv, code, failed?.code === 'ENOENT' ? `${argv[0]} is not installed` : (failed?.message ?? stderr), stdout);
    return { stdout, stderr, exitCode: code };
  });
}

/**
 * A command that keeps running, fed on its stdin; its stdout and stderr come
 * merged into one stream, in the order it wrote them. It ends with us: its
 * stdin closes when we exit.
 */
export function startPiped(argv: string[]): ChildProcess {
  return inAmbientNetns(() => spawn('sh', ['-c', 'exec "$@" 2>&1', 'sh', ...argv], { stdio: ['pipe', 'pipe', 'ignore'] }));
}

/**
 * Start a long-running process detached from us (a session of its own), with
 * output to a file descriptor; returns its PID. Through posix_spawn: a pod's
 * daemon costs the same however large this process has grown.
 */
export function startDetached(argv: string[], opts: { stdout: number; stderr: number; env?: NodeJS.ProcessEnv; cwd?: string }): number {
  try {
    return inAmbientNetns(() => posixSpawn(argv, { stdout: opts.stdout, stderr: opts.stderr, env: opts.env ?? process.env, cwd: opts.cwd, setsid: true }));
  } catch (e) {
    throw new Error(`could not start ${argv.join(' ')}: ${(e as Error).message}`);
  }
}

/**
 * Run a command on the caller's terminal (an interactive shell in a namespace)
 * and resolve with its exit code. Ctrl-C belongs to the command meanwhile, not to us.
 */
export function runInteractive(argv: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit', env: opts.env ?? process.env });
    const done = () => process.off('SIGINT', ignore);
    child.once('error', (e) => {
      done();
      reject(e);
    });
    child.once('exit', (code, signal) => {
      done();
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}
