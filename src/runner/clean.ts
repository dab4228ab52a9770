// `cnilab clean`: remove everything any lab made, from the state each lab
// recorded and, for what a crash left unrecorded, from the cnilab- name prefix.
import { netnsPath } from '../net/exec.js';
import { deleteNetns, listNetns, netnsInode } from '../net/netns.js';
import { cleanNetnsLab } from '../topologies/netns.js';
import { listLabs, NAME_PREFIX, readState } from './state.js';
import { pidsInNetns, stopPid } from './processes.js';

export interface CleanReport {
  labs: string[];
  orphanNamespaces: string[];
}

/** Remove one lab instance, whatever backend it used. */
export async function cleanLab(lab: string): Promise<void> {
  const state = readState(lab);
  const backend = state?.backend ?? 'netns';
  if (backend !== 'netns') throw new Error(`lab ${lab} uses backend "${backend}", which clean does not know`);
  await cleanNetnsLab(lab);
}

export async function cleanAll(): Promise<CleanReport> {
  const labs = listLabs();
  for (const lab of labs) await cleanLab(lab);
  // Whatever still carries the prefix was never recorded (a crash before the first save).
  const orphans = listNetns().filter((n) => n.startsWith(NAME_PREFIX));
  const inodes = new Set(orphans.map((n) => netnsInode(netnsPath(n))).filter((i): i is number => i !== undefined));
  await Promise.all(pidsInNetns(inodes).map((pid) => stopPid(pid)));
  for (const n of orphans) await deleteNetns(n);
  return { labs, orphanNamespaces: orphans };
}
