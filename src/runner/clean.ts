// `cnilab clean`: remove everything any lab made, from the state each lab
// recorded (each backend's own cleaner, by the backend the state names) and,
// for what a crash left unrecorded, from names and labels.
import { backendEntry, cleanAllOrphans } from '../topologies/registry.js';
import { listLabs, readState } from '../lab/state.js';

export interface CleanReport {
  labs: string[];
  /** What no state named but carried the prefix (namespaces here; containers and networks on the engine DOCKER_HOST names). */
  orphans: string[];
  /** What could not be removed, and why (an engine or a host that does not answer). */
  warnings: string[];
}

/** Remove one lab instance, whatever backend it used; returns what could not be reached. */
export async function cleanLab(lab: string): Promise<string | undefined> {
  const backend = readState(lab)?.backend ?? 'netns';
  return (await backendEntry(backend).clean(lab)).unreachable;
}

export async function cleanAll(): Promise<CleanReport> {
  const labs = listLabs();
  const warnings: string[] = [];
  for (const lab of labs) {
    const warning = await cleanLab(lab);
    if (warning) warnings.push(warning);
  }
  return { labs, orphans: await cleanAllOrphans(), warnings };
}
