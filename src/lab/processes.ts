// Stopping processes: only by the PID we started (checked against its start
// time, so a reused PID is never hit), or found by the namespace it lives in.
import { statFields } from '../util/proc-stat.js';
import { readdirSync, readlinkSync } from 'node:fs';
import { processStartTime, type ProcessRecord } from './state.js';
import { sleep } from '../util/wait.js';

/** Running: it exists and has not exited (a zombie has, and only waits to be reaped). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !isZombie(pid);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopPid(pid: number, graceMs = 2000): Promise<void> {
  if (!isRunning(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isRunning(pid)) return;
    await sleep(20);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** Many at once: SIGTERM to all, one loop waiting for them, SIGKILL to what is left after `graceMs`. */
export async function stopPids(pids: number[], graceMs = 2000): Promise<void> {
  let alive = pids.filter(isRunning);
  for (const pid of alive) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive.length && Date.now() < deadline) {
    await sleep(20);
    alive = alive.filter(isRunning);
  }
  for (const pid of alive) signal(pid, 'SIGKILL');
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone meanwhile */
  }
}

/** The recorded processes that are still the ones we started (PIDs not reused since). */
export function stillOurs(records: ProcessRecord[]): number[] {
  return records.filter((p) => processStartTime(p.pid) === p.startTime).map((p) => p.pid);
}

/** A zombie has exited; only its parent's wait is missing. */
function isZombie(pid: number): boolean {
  return statFields(pid)?.[0] === 'Z';
}

/** Stop a recorded process if it is still the one we started. */
export async function stopRecorded(p: ProcessRecord): Promise<void> {
  if (processStartTime(p.pid) !== p.startTime) return; // gone, or the PID now belongs to someone else
  await stopPid(p.pid);
}

/** PIDs of every process whose network namespace is one of `inodes`. */
export function pidsInNetns(inodes: Set<number>): number[] {
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const link = readlinkSync(`/proc/${entry}/ns/net`); // "net:[4026532281]"
      const inode = Number(link.slice(5, -1));
      if (inodes.has(inode)) pids.push(Number(entry));
    } catch {
      /* exited meanwhile, or a kernel thread */
    }
  }
  return pids;
}
