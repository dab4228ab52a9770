// What a running lab made, on disk, so that `clean` finds it after any crash.
// Every change is written at once (synchronously) before the next step runs.
import { statFields } from '../util/proc-stat.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostSnapshot } from '../net/host-snapshot.js';

/** Where labs record what they made. CNILAB_STATE_DIR and CNILAB_PREFIX let test runs keep apart from each other. */
export const STATE_ROOT = process.env.CNILAB_STATE_DIR ?? '/run/cnilab';
/** Every namespace a lab makes starts with this, so orphans are found by name. */
export const NAME_PREFIX = process.env.CNILAB_PREFIX ?? 'cnilab-';

export interface ProcessRecord {
  pid: number;
  /** Start time in clock ticks since boot (/proc/PID/stat field 22): guards against PID reuse. */
  startTime: number;
  name: string;
  node: string;
}

export interface LabState {
  lab: string;
  labFile?: string;
  backend: string;
  createdAt: string;
  status: 'starting' | 'up' | 'stopping';
  netns: string[];
  mounts: string[];
  processes: ProcessRecord[];
  pods: PodRecord[];
  /** Docker backend: the engine, and the network and containers made there (also labelled with the lab). */
  /** pids: each node container's first process as this machine numbers it (the engine is local), for its namespaces. */
  docker?: { host: string; network?: string; containers: string[]; pids?: Record<string, number> };
  /** Hosts backend: the inventory, and per node what cnilab found and made on its machine. */
  hosts?: { inventory: string; sshConfig: string; nodes: Record<string, HostNodeRecord> };
  /** The underlay the lab runs with, where the backend's differs from the lab file's (hosts: read from their interfaces). */
  topology?: { underlay: string; nodes: { name: string; address: string; iface?: string }[] };
  /** Vagrant backend booting its VMs with qemu: each VM's qemu process (host PIDs), in the lab's own namespace. */
  /** A vagrant lab's VMs: on the lab's libvirtd through vagrant-libvirt, or qemu processes of cnilab's own. */
  vm?: { accel?: string; driver?: 'libvirt' | 'qemu'; qemu: ProcessRecord[]; libvirtd?: ProcessRecord; vagrant?: ProcessRecord };
}

export interface HostNodeRecord {
  /** The Host in the ssh config. */
  host: string;
  /** The host's interface that carries the underlay. */
  interface: string;
  /** Commands go through `sudo -n` (the login is not root). */
  sudo?: boolean;
  /** The Node.js that runs cnilab's bundle there: the host's own, or the copy in the lab's directory. */
  node?: string;
  /** Directories above the lab's directory on the host that cnilab made (removed when empty). */
  madeDirs?: string[];
  /** Debian packages cnilab installed there (--install), removed again. */
  installed?: string[];
  /** The host as it was before the lab: down removes what is new since. */
  before?: HostSnapshot;
}

export interface PodRecord {
  name: string;
  node: string;
  netns: string;
  ip?: string;
  /** Dual-stack: the pod's IPv6 address beside `ip`. */
  ip6?: string;
  workload: string;
  /** Kubernetes namespace (default: default) and labels (default: app: <workload>), for NetworkPolicy. */
  namespace?: string;
  labels?: Record<string, string>;
  status: 'Pending' | 'Running' | 'Terminating' | 'Failed';
  containerId: string;
  /** Ports published on the node, passed to CNI as runtimeConfig.portMappings. */
  ports?: { containerPort: number; hostPort: number; protocol: 'tcp' | 'udp' }[];
  /** The pod's annotations (kubernetes.io/ingress-bandwidth, …), read as a runtime reads them. */
  annotations?: Record<string, string>;
}

export function labDir(lab: string): string {
  return join(STATE_ROOT, lab);
}

export class StateFile {
  readonly dir: string;
  state: LabState;

  constructor(lab: string, init?: Partial<LabState>) {
    this.dir = labDir(lab);
    const existing = readState(lab);
    this.state = existing ?? {
      lab,
      backend: 'netns',
      createdAt: new Date().toISOString(),
      status: 'starting',
      netns: [],
      mounts: [],
      processes: [],
      pods: [],
      ...init,
    };
  }

  save(): void {
    mkdirSync(this.dir, { recursive: true });
    const file = join(this.dir, 'state.json');
    writeFileSync(file + '.tmp', JSON.stringify(this.state, null, 2));
    renameSync(file + '.tmp', file);
    this.dirty = false;
  }

  private held = 0;
  private dirty = false;

  update(fn: (s: LabState) => void): void {
    fn(this.state);
    if (this.held) this.dirty = true;
    else this.save();
  }

  /**
   * Many changes, one write: while `fn` runs, updates are kept in memory and
   * written when it ends (a thousand pods would otherwise rewrite the file
   * thousands of times). What must be on disk before the next step (a
   * namespace about to be made) calls flush().
   */
  async batch<T>(fn: () => Promise<T>): Promise<T> {
    this.held++;
    try {
      return await fn();
    } finally {
      this.held--;
      if (this.dirty) this.save();
    }
  }

  /** Write now what a batch holds. */
  flush(): void {
    if (this.dirty) this.save();
  }
}

export function readState(lab: string): LabState | undefined {
  try {
    return JSON.parse(readFileSync(join(labDir(lab), 'state.json'), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

/** Lab instances with a state directory. */
export function listLabs(): string[] {
  if (!existsSync(STATE_ROOT)) return [];
  return readdirSync(STATE_ROOT).filter((d) => !d.startsWith('.'));
}

/** Start time of a process in clock ticks, or undefined if it is gone. */
export function processStartTime(pid: number): number | undefined {
  const rest = statFields(pid);
  return rest && Number(rest[19]);
}
