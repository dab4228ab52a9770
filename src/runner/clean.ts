// `cnilab clean`: remove everything any lab made, from the state each lab
// recorded and, for what a crash left unrecorded, from the cnilab- name prefix.
import { netnsPath } from '../net/exec.js';
import { deleteNetns, listNetns, netnsInode } from '../net/netns.js';
import { cleanNetnsLab } from '../topologies/netns.js';
import { cleanDockerLab, cleanDockerOrphans } from '../topologies/docker.js';
import { cleanVagrantLab } from '../topologies/vagrant.js';
import { listLabs, NAME_PREFIX, readState } from '../lab/state.js';
import { pidsInNetns, stopPid } from '../lab/processes.js';

export interface CleanReport {
  labs: string[];
  orphanNamespaces: string[];
  /** Docker containers and networks of this prefix that no state named (on the engine DOCKER_HOST names). */
  orphanContainers: string[];
  /** What could not be removed, and why (an engine that does not answer). */
  warnings: string[];
}

const CLEANERS: Record<string, (lab: string) => Promise<{ unreachable?: string } | void>> = {
  netns: cleanNetnsLab,
  docker: cleanDockerLab,
  vagrant: cleanVagrantLab,
};

/** Remove one lab instance, whatever backend it used. */
export async function cleanLab(lab: string): Promise<string | undefined> {
  const state = readState(lab);
  const backend = state?.backend ?? 'netns';
  const clean = CLEANERS[backend];
  if (!clean) throw new Error(`lab ${lab} uses backend "${backend}", which clean does not know (known: ${Object.keys(CLEANERS).join(', ')})`);
  const r = await clean(lab);
  return r ? r.unreachable : undefined;
}

export async function cleanAll(): Promise<CleanReport> {
  const labs = listLabs();
  const warnings: string[] = [];
  for (const lab of labs) {
    const warning = await cleanLab(lab);
    if (warning) warnings.push(warning);
  }
  // Whatever still carries the prefix was never recorded (a crash before the first save).
  const orphans = listNetns().filter((n) => n.startsWith(NAME_PREFIX));
  const inodes = new Set(orphans.map((n) => netnsInode(netnsPath(n))).filter((i): i is number => i !== undefined));
  await Promise.all(pidsInNetns(inodes).map((pid) => stopPid(pid)));
  for (const n of orphans) await deleteNetns(n);
  const docker = await cleanDockerOrphans();
  return { labs, orphanNamespaces: orphans, orphanContainers: [...docker.containers, ...docker.networks], warnings };
}
