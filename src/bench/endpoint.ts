// Running the measurement tools on a node or in a pod. Commands are spawned
// with execa (timeouts that kill a hung client, errors that quote the command
// and keep its output); servers are started and stopped by PID through the backend.
import { execa } from 'execa';
import type { Backend, Started } from '../topologies/backend.js';
import type { Endpoint } from './plan.js';
import { waitUntil } from '../util/wait.js';

export class BenchCommandError extends Error {
  constructor(
    readonly where: string,
    readonly argv: string[],
    readonly detail: string,
  ) {
    super(`on ${where}: \`${argv.join(' ')}\` ${detail}`);
    this.name = 'BenchCommandError';
  }
}

export const endpointLabel = (e: Endpoint) => (e.pod ? `pod ${e.pod}` : `node ${e.node}`);

export interface ToolRun {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Run argv on an endpoint to completion; a non-zero exit throws unless `allowFailure`. */
export async function runOn(backend: Backend, ep: Endpoint, argv: string[], opts: { timeoutMs?: number; allowFailure?: boolean } = {}): Promise<ToolRun> {
  // Spawned here from the target's argv, so a hung tool is killed at the timeout on every backend.
  const [cmd, ...args] = backend.commandFor(ep.node, ep.pod, argv);
  const res = await execa(cmd, args, { reject: false, timeout: opts.timeoutMs ?? 30_000, stripFinalNewline: false });
  if (res.timedOut) throw new BenchCommandError(endpointLabel(ep), argv, `did not finish within ${(opts.timeoutMs ?? 30_000) / 1000} s`);
  const r: ToolRun = { stdout: res.stdout, stderr: res.stderr, exitCode: res.exitCode ?? 1 };
  if (r.exitCode !== 0 && !opts.allowFailure) {
    throw new BenchCommandError(endpointLabel(ep), argv, `failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().slice(0, 500) || 'no output'}`);
  }
  return r;
}

/** A server process on an endpoint, started by PID and stopped by that PID. */
export class Server {
  private constructor(
    readonly backend: Backend,
    readonly started: Started,
  ) {}

  /** Start it and wait until it listens on the TCP port. */
  static async start(backend: Backend, ep: Endpoint, name: string, argv: string[], port: number): Promise<Server> {
    const started = ep.pod ? await backend.podStart(ep.node, ep.pod, name, argv) : await backend.start(ep.node, `${name}-${ep.node}`, argv);
    const server = new Server(backend, started);
    try {
      await waitUntil(async () => (await runOn(backend, ep, ['ss', '-Hltn', `sport = :${port}`], { allowFailure: true })).stdout.trim() !== '', {
        timeoutMs: 3000,
        what: `${argv[0]} to listen on port ${port}`,
      });
      return server;
    } catch (e) {
      await server.stop();
      throw new BenchCommandError(endpointLabel(ep), argv, `${(e as Error).message}; see ${started.log}`);
    }
  }

  stop(): Promise<void> {
    return this.backend.stop(this.started);
  }
}
