// Where a running lab's memory goes: every process living in one of its
// namespaces, read from /proc (RSS, and PSS, which splits shared pages such as
// nginx's code between the processes that map them), summed by kind.
import { statFields } from '../util/proc-stat.js';
import { readFileSync, readlinkSync } from 'node:fs';
import { pidsInNetns } from '../lab/processes.js';
import { netnsInode } from '../net/netns.js';
import { netnsPath } from '../net/exec.js';
import type { LabState } from '../lab/state.js';

export interface KindMemory {
  kind: string;
  /** pod processes or node processes */
  where: 'pod' | 'node';
  processes: number;
  rssKb: number;
  pssKb: number;
  /** CPU seconds so far, with the commands it ran. */
  cpuS: number;
}

function rollup(pid: number): { rss: number; pss: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return { rss: kb('Rss'), pss: kb('Pss') };
  } catch {
    return undefined;
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** The lab's processes by kind: a recorded process by the name it was started as (flanneld, cnid, etcd), others by command. */
export function labMemory(state: LabState): KindMemory[] {
  const podNs = new Set(state.pods.map((p) => netnsInode(p.netns)).filter((i): i is number => i !== undefined));
  const all = new Set(state.netns.map((n) => netnsInode(netnsPath(n))).filter((i): i is number => i !== undefined));
  const recorded = new Map(state.processes.map((p) => [p.pid, p]));
  const podNames = new Set(state.pods.map((p) => p.name));
  const kinds = new Map<string, KindMemory>();
  for (const pid of pidsInNetns(all)) {
    const mem = rollup(pid);
    if (!mem) continue;
    let inode = 0;
    try {
      inode = Number(readlinkSync(`/proc/${pid}/ns/net`).slice(5, -1));
    } catch {
      continue;
    }
    const where = podNs.has(inode) ? 'pod' : 'node';
    const rec = recorded.get(pid);
    // Pod processes are recorded as <pod>-<name>: the kind is the name.
    let kind = rec?.name ?? comm(pid);
    if (rec) for (const pod of podNames) if (kind.startsWith(`${pod}-`)) kind = kind.slice(pod.length + 1);
    if (!rec && kind === 'node') kind = 'node (unrecorded)';
    if (!rec && where === 'pod' && kind === 'nginx') kind = 'nginx worker';
    const key = `${where}:${kind}`;
    const k = kinds.get(key) ?? { kind, where, processes: 0, rssKb: 0, pssKb: 0, cpuS: 0 };
    k.processes++;
    k.rssKb += mem.rss;
    k.pssKb += mem.pss;
    k.cpuS += cpuFields(pid, 4);
    kinds.set(key, k);
  }
  return [...kinds.values()].sort((a, b) => a.where.localeCompare(b.where) || b.pssKb - a.pssKb);
}

/** MemAvailable from /proc/meminfo in kB: the whole machine's view (kernel memory of namespaces and links included). */
export function memAvailableKb(): number {
  return Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
}

/** CPU seconds this process and the children it has waited for have used (utime, stime, cutime, cstime). */
export function selfCpuSeconds(): number {
  return cpuFields('self', 4);
}

/** CPU seconds used so far by the lab's running processes (its daemons and pods' processes) and the commands they ran. */
export function labCpuSeconds(state: LabState): number {
  const all = new Set(state.netns.map((n) => netnsInode(netnsPath(n))).filter((i): i is number => i !== undefined));
  return pidsInNetns(all).reduce((sum, pid) => sum + cpuFields(pid, 4), 0);
}

const TICKS = 100; // USER_HZ on Linux

function cpuFields(pid: number | 'self', count: 2 | 4): number {
  // Fields 14-17 of /proc/PID/stat: utime stime cutime cstime (statFields starts at field 3).
  return (statFields(pid) ?? []).slice(11, 11 + count).reduce((a, v) => a + Number(v), 0) / TICKS;
}
