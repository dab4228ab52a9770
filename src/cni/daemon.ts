// Thick mode: one long-lived process per node network namespace keeps the
// plugins loaded, so a call costs no Node start-up. The executables in
// dist/cni/bin are a small C program (shim.c) that forwards each call here
// over a unix socket and, when no daemon listens, runs the plugin with node
// itself: a runtime never needs to know whether a daemon is there.
//
// One call per connection:
//   request   <plugin>\0 NAME=value\0 ... \0 <stdin>   (then the caller half-closes)
//   response  <exit code>\n<stdout>
// The socket is <run dir>/cni-<inode of the network namespace>.sock: the shim
// finds the daemon of the namespace it runs in, and only that one. Beside it,
// cni-<inode>.pid names the process, for a daemon the shim started itself.
import { chmodSync, existsSync, mkdirSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { netnsInode } from '../net/netns.js';
import { withAmbientNetns } from '../net/thread-netns.js';
import { CniError, ErrorCode } from './errors.js';
import { dispatch, type Plugin } from './skel.js';
import { CURRENT_VERSION } from './version.js';

export const RUN_DIR_ENV = 'CNILAB_RUN_DIR';
/** "0": a shim that finds no daemon runs the plugin itself instead of starting one (src/cni/shim.c). */
export const AUTOSTART_ENV = 'CNILAB_CNID_AUTOSTART';
/** How long a daemon the shim started stays without a call. */
export const IDLE_ENV = 'CNILAB_CNID_IDLE_MS';
/** A file listing the nodes (HostedNode[], JSON) one daemon process serves together. */
export const NODES_ENV = 'CNILAB_CNID_NODES';
/** One node of a daemon that serves several. */
export interface HostedNode {
  name: string;
  /** Its network namespace, a path. */
  netns: string;
  /** Where its socket goes: the CNILAB_RUN_DIR its runtime passes to the shims. */
  runDir: string;
  log: string;
}
/** In the run dir: the log of the daemons the shim started (shim.c writes the same name). */
export const AUTOSTART_LOG = 'cnid-autostart.log';
// Not /run/cnilab itself: every directory there is a lab's state.
export const DEFAULT_RUN_DIR = '/run/cnilab-cnid';

export function runDir(env: NodeJS.ProcessEnv = process.env): string {
  return env[RUN_DIR_ENV] || DEFAULT_RUN_DIR;
}

export function socketPath(dir: string, inode: number): string {
  return join(dir, `cni-${inode}.sock`);
}

export function pidPath(socket: string): string {
  return socket.replace(/\.sock$/, '.pid');
}

export interface Request {
  plugin: string;
  /** Only the CNI_* variables travel; the daemon has its own PATH. */
  env: Record<string, string>;
  stdin: string;
}

export function encodeRequest(r: Request): Buffer {
  const head = [r.plugin, ...Object.entries(r.env).map(([k, v]) => `${k}=${v}`), ''].join('\0') + '\0';
  return Buffer.concat([Buffer.from(head), Buffer.from(r.stdin)]);
}

export function decodeRequest(buf: Buffer): Request {
  const end = buf.indexOf('\0\0');
  if (end < 0) throw new CniError(ErrorCode.DecodeFailure, 'malformed request to the cnilab daemon: no end of the environment');
  const [plugin, ...vars] = buf.subarray(0, end).toString('utf8').split('\0');
  const env: Record<string, string> = {};
  for (const v of vars) {
    const eq = v.indexOf('=');
    if (eq > 0 && v.startsWith('CNI_')) env[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return { plugin, env, stdin: buf.subarray(end + 2).toString('utf8') };
}

export function encodeResponse(code: number, stdout: string): Buffer {
  return Buffer.from(`${code}\n${stdout}`);
}

export function decodeResponse(buf: Buffer): { code: number; stdout: string } {
  const nl = buf.indexOf('\n');
  if (nl < 0) throw new Error('the cnilab daemon closed the connection without an answer');
  return { code: Number(buf.subarray(0, nl).toString()), stdout: buf.subarray(nl + 1).toString('utf8') };
}

/** Run one call; never throws, as a plugin process never does. */
export async function handle(plugins: Record<string, Plugin<any>>, raw: Buffer): Promise<{ request?: Request; code: number; stdout: string }> {
  let request: Request | undefined;
  try {
    request = decodeRequest(raw);
    const plugin = plugins[request.plugin];
    if (!plugin) throw new CniError(ErrorCode.PluginNotAvailable, `the cnilab daemon does not serve plugin "${request.plugin}"; it serves ${Object.keys(plugins).join(', ')}`);
    let stdout = '';
    const code = await dispatch(plugin, { env: { PATH: process.env.PATH, ...request.env }, stdin: request.stdin, write: (t) => (stdout += t) });
    return { request, code, stdout };
  } catch (e) {
    const err = CniError.from(e);
    return { request, code: Math.min(err.code, 255) || 1, stdout: JSON.stringify(err.toJSON(CURRENT_VERSION)) };
  }
}

/** Whether something answers on a unix socket. */
export function connects(path: string): Promise<boolean> {
  return new Promise((res) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

export interface Serving {
  path: string;
  /** Stop accepting, finish the calls under way, remove the socket. */
  close(): Promise<void>;
}

export interface ServeOptions {
  /** Close by itself after this long without a call. */
  idleMs?: number;
  /** Close by itself, between calls, once this says so (asked every second). */
  unused?: () => boolean;
  /** Told once it closed by itself, and why. */
  onIdleClose?: (why: string) => void;
  /**
   * Serve the network namespace at this path instead of this process's own:
   * the calls run as if in it (src/net/thread-netns.ts). One process then
   * serves the nodes of a lab, each on its own socket.
   */
  netns?: string;
}

/** Listen for the network namespace this process is in, or the one at `opts.netns`. */
export async function serve(plugins: Record<string, Plugin<any>>, dir: string, log: (line: string) => void, opts: ServeOptions = {}): Promise<Serving> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // The shim finds us by the inode of the namespace it runs in.
  const inode = netnsInode(opts.netns ?? '/proc/self/ns/net');
  if (inode === undefined) throw new Error(`network namespace ${opts.netns} does not exist`);
  const path = socketPath(dir, inode);
  if (existsSync(path)) {
    if (await connects(path)) throw new Error(`a cnilab daemon already serves this network namespace (${path})`);
    unlinkSync(path); // left by a daemon that was killed
  }
  let active = 0;
  let lastCall = Date.now();
  // allowHalfOpen: the caller half-closes after its stdin and still waits for the answer.
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    const chunks: Buffer[] = [];
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', () => undefined); // the caller went away; nothing to answer
    sock.on('end', async () => {
      if (chunks.length === 0) return void sock.end(); // a probe that only checks we answer
      const t0 = performance.now();
      active++;
      const raw = Buffer.concat(chunks);
      const { request, code, stdout } = await (opts.netns ? withAmbientNetns(opts.netns, () => handle(plugins, raw)) : handle(plugins, raw));
      active--;
      lastCall = Date.now();
      sock.end(encodeResponse(code, stdout));
      const e = request?.env ?? {};
      log(`${request?.plugin ?? '?'} ${e.CNI_COMMAND ?? '?'} ${e.CNI_CONTAINERID ?? ''} ${e.CNI_IFNAME ?? ''} exit ${code} ${(performance.now() - t0).toFixed(1)} ms`);
    });
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(path, () => res());
  });
  chmodSync(path, 0o600);
  writeFileSync(pidPath(path), `${process.pid}\n`);
  const unlinkOurs = () => {
    for (const f of [path, pidPath(path)]) {
      try {
        unlinkSync(f);
      } catch {
        /* already gone */
      }
    }
  };
  const close = () =>
    new Promise<void>((res) => {
      clearInterval(watch);
      server.close(() => res());
      unlinkOurs();
      try {
        rmdirSync(dir); // only when no other node's daemon still has a socket there
      } catch {
        /* not empty */
      }
    });

  // Idle: the socket goes first, so that no new caller finds us; one that
  // connected just before is still served during a short grace, then we close.
  let closing = false;
  const idleMs = opts.idleMs;
  const check = () => {
    if (closing || active > 0) return;
    const why = idleMs !== undefined && Date.now() - lastCall >= idleMs ? `idle for ${idleMs} ms` : opts.unused?.() ? 'its namespace is no longer in use' : undefined;
    if (!why) return;
    closing = true;
    unlinkOurs();
    setTimeout(() => void close().then(() => opts.onIdleClose?.(why)), 100);
  };
  const watch = idleMs !== undefined || opts.unused ? setInterval(check, Math.min(idleMs ?? 1000, 1000)) : undefined;
  return { path, close };
}
