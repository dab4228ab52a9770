// Backends by name, each with its whole lifecycle: how a lab's nodes are made,
// how a lab is removed from its state alone (`down`, `clean`), and what a
// crash may have left unrecorded. A new backend is one file and one entry here.
import type { Backend, Topology } from './backend.js';
import { cleanNetnsLab, cleanNetnsOrphans, NetnsBackend } from './netns.js';
import { cleanDockerLab, cleanDockerOrphans, DockerBackend } from './docker.js';
import { cleanVagrantLab, VagrantBackend } from './vagrant.js';
import { cleanVmLab, QemuVmBackend } from './vm.js';
import { cleanHostsLab, HostsBackend } from './hosts.js';
import { readState, type StateFile } from '../lab/state.js';

/** What `run`/`up` pass a backend beyond the topology. */
export interface BackendOptions {
  /** The hosts backend's inventory file (the nodes' machines). */
  inventory?: string;
  /** Install missing Debian packages on machines the lab does not own (hosts) only when this is true. */
  install?: boolean;
}

export interface BackendEntry {
  create(topo: Topology, state: StateFile, opts: BackendOptions): Backend;
  /** Remove one lab of this backend from its state (and labels, names) alone; says what could not be reached. */
  clean(lab: string): Promise<{ unreachable?: string }>;
  /** Remove what a crash left with no state file; returns what was removed. */
  cleanOrphans?(): Promise<string[]>;
  /** The backend reads an inventory (`--inventory`). */
  inventory?: boolean;
}

const BACKENDS: Record<string, BackendEntry> = {
  netns: {
    create: (t, s) => new NetnsBackend(t, s),
    clean: async (lab) => (await cleanNetnsLab(lab), {}),
    cleanOrphans: cleanNetnsOrphans,
  },
  docker: {
    create: (t, s) => new DockerBackend(t, s),
    clean: cleanDockerLab,
    cleanOrphans: async () => {
      const r = await cleanDockerOrphans();
      return [...r.containers, ...r.networks];
    },
  },
  // VMs booted by vagrant-libvirt on the lab's own libvirtd (or qemu directly); CNILAB_VAGRANT_DRIVER=vagrant drives the top-level Vagrantfile with the user's provider instead.
  // Labs whose VMs cnilab booted record their qemu processes: that tells the cleaners apart.
  vagrant: {
    create: (t, s) => (process.env.CNILAB_VAGRANT_DRIVER === 'vagrant' ? new VagrantBackend(t, s) : new QemuVmBackend(t, s)),
    clean: (lab) => (readState(lab)?.vm ? cleanVmLab(lab) : cleanVagrantLab(lab)),
  },
  hosts: { create: (t, s, o) => new HostsBackend(t, s, o.inventory, { install: o.install }), clean: cleanHostsLab, inventory: true },
};

export function backendNames(): string[] {
  return Object.keys(BACKENDS);
}

export function backendEntry(kind: string): BackendEntry {
  const entry = BACKENDS[kind];
  if (!entry) throw new Error(`unknown backend "${kind}"; available: ${backendNames().join(', ')}`);
  return entry;
}

export function createBackend(kind: string, topo: Topology, state: StateFile, opts: BackendOptions = {}): Backend {
  const entry = backendEntry(kind);
  if (opts.inventory && !entry.inventory) throw new Error(`--inventory is for the ${backendNames().filter((n) => BACKENDS[n].inventory).join(', ')} backend; ${kind} makes its own nodes`);
  return entry.create(topo, state, opts);
}

/** Every backend's cleaner of what a crash left unrecorded, in turn. */
export async function cleanAllOrphans(): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of Object.values(BACKENDS)) removed.push(...((await entry.cleanOrphans?.()) ?? []));
  return removed;
}
