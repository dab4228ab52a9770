// Starting and stopping the CNI daemon of one node (src/cni/daemon.ts): it
// runs inside the node's network namespace, is known by its PID, and leaves
// no socket behind when stopped.
import { closeSync, existsSync, openSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { inNetns, netnsPath, startDetached } from '../net/exec.js';
import { netnsInode } from '../net/netns.js';
import { connects, DEFAULT_RUN_DIR, pidPath, RUN_DIR_ENV, socketPath } from '../cni/daemon.js';
import { ROOT } from '../lab/paths.js';
import { isRunning, stopPid } from '../lab/processes.js';
import { sleep } from '../util/wait.js';

export const CNID_SCRIPT = join(ROOT, 'dist', 'cni', 'cnid.mjs');

export interface Cnid {
  pid: number;
  socket: string;
  netns: string;
}

/**
 * Start the daemon inside a node namespace (name or path), detached, its log
 * appended to `log`; resolves once it answers on its socket. `runDir` must be
 * the CNILAB_RUN_DIR the node's runtime passes to the plugins; `trace` logs
 * every command the plugins run, with its time.
 */
export async function startCnid(netns: string, opts: { log: string; runDir?: string; trace?: boolean }): Promise<Cnid> {
  const runDir = opts.runDir ?? DEFAULT_RUN_DIR;
  if (!existsSync(CNID_SCRIPT)) throw new Error(`${CNID_SCRIPT} is missing: run npm run build`);
  const inode = netnsInode(netnsPath(netns));
  if (inode === undefined) throw new Error(`network namespace ${netns} does not exist`);
  const socket = socketPath(runDir, inode);
  if (existsSync(socket) && (await connects(socket))) throw new Error(`a CNI daemon already serves ${netns} (${socket})`);
  const fd = openSync(opts.log, 'a');
  let pid: number;
  try {
    // nsenter execs node in place: the PID we get is the daemon's.
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, [RUN_DIR_ENV]: runDir };
    if (opts.trace) env.CNILAB_TRACE = '1'; // log each command with its time
    pid = startDetached(inNetns(netns, process.execPath, [CNID_SCRIPT]), { stdout: fd, stderr: fd, env });
  } finally {
    closeSync(fd);
  }
  const cnid = { pid, socket, netns };
  for (let waited = 0; waited < 10_000; waited += 20) {
    if (existsSync(cnid.socket) && (await connects(cnid.socket))) return cnid;
    if (!isRunning(pid)) throw new Error(`the CNI daemon for ${netns} exited at start; see ${opts.log}`);
    await sleep(20);
  }
  await stopCnid(cnid);
  throw new Error(`the CNI daemon for ${netns} did not answer on ${cnid.socket} within 10 s; see ${opts.log}`);
}

/** Stop it by PID (SIGTERM, SIGKILL after 5 s); its socket goes either way. */
export async function stopCnid(cnid: Cnid): Promise<void> {
  await stopPid(cnid.pid, 5000);
  for (let waited = 0; isRunning(cnid.pid) && waited < 5000; waited += 20) await sleep(20);
  for (const f of [cnid.socket, pidPath(cnid.socket)]) {
    try {
      unlinkSync(f); // only still there if it had to be killed
    } catch {
      /* removed by the daemon */
    }
  }
}
