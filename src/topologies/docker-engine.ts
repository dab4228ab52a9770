// Reaching a Docker engine, and starting a private one (Debian's docker.io) by PID.
// A private dockerd keeps every file under one directory and touches nothing in
// the root namespace: no iptables rules (starting dockerd normally sets the
// FORWARD policy to DROP), no docker0 bridge, no ip_forward change. cnilab labs
// need none of that: their underlay is a Docker network with no address on the
// host side, and nothing of a lab leaves the machine.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { startDetached } from '../net/exec.js';
import { isRunning, stopPid } from '../lab/processes.js';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

/** The engine to use: DOCKER_HOST as the docker CLI reads it, else the usual socket. */
export function dockerHost(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_HOST || DEFAULT_DOCKER_HOST;
}

/** The socket behind a DOCKER_HOST value (unix:// only: engines here are local). */
export function socketPath(host: string): string {
  if (!host.startsWith('unix://')) throw new Error(`DOCKER_HOST=${host}: cnilab drives local engines only (unix:///path/to/docker.sock)`);
  return host.slice('unix://'.length);
}

/** A dockerode client for a DOCKER_HOST value; dockerode is loaded on first use, so labs on other backends never pay for it. */
export async function connectDocker(host: string): Promise<Docker> {
  const path = socketPath(host);
  const { default: Dockerode } = await import('dockerode');
  return new Dockerode({ socketPath: path });
}

/** An engine is worth asking only when its socket exists (asking costs loading dockerode). */
export function engineSocketExists(host: string): boolean {
  return existsSync(socketPath(host));
}

/** True when the engine answers a ping within `timeoutMs`. */
export async function engineAnswers(docker: Docker, timeoutMs = 2000): Promise<boolean> {
  try {
    await Promise.race([docker.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs))]);
    return true;
  } catch {
    return false;
  }
}

export interface PrivateEngine {
  pid: number;
  /** DOCKER_HOST for this engine. */
  host: string;
  dir: string;
  log: string;
  docker: Docker;
}

/** The dockerd command line for a private engine kept under `dir`. */
export function dockerdArgv(dir: string): string[] {
  return [
    'dockerd',
    '--data-root', join(dir, 'data'),
    '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'dockerd.pid'),
    '-H', `unix://${join(dir, 'docker.sock')}`,
    '--iptables=false',
    '--ip6tables=false',
    '--ip-forward=false',
    '--bridge=none',
  ];
}

/**
 * Start dockerd under `dir` and wait until it answers. On failure it is
 * stopped again and the error quotes the end of its log.
 */
export async function startPrivateEngine(dir: string, timeoutMs = 30_000): Promise<PrivateEngine> {
  mkdirSync(dir, { recursive: true });
  const log = join(dir, 'dockerd.log');
  const fd = openSync(log, 'a');
  let pid: number;
  try {
    pid = startDetached(dockerdArgv(dir), { stdout: fd, stderr: fd });
  } finally {
    closeSync(fd);
  }
  const host = `unix://${join(dir, 'docker.sock')}`;
  const docker = await connectDocker(host);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(join(dir, 'docker.sock')) && (await engineAnswers(docker, 1000))) return { pid, host, dir, log, docker };
    if (!isRunning(pid)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stopPid(pid, 10_000);
  const tail = readTail(log);
  throw new Error(`dockerd did not start within ${timeoutMs / 1000} s (log ${log}):\n${tail}`);
}

/** Stop a private engine by the PID we started; dockerd stops its containers and its containerd first. */
export async function stopPrivateEngine(engine: PrivateEngine): Promise<void> {
  await stopPid(engine.pid, 20_000);
}

function readTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
