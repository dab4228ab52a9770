// What /proc says about processes and their sockets: which process holds a TUN
// device open (the kernel hands that device's packets to it), and which UDP
// ports it listens on. Read-only; nothing here spawns a process.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface TunOwner {
  pid: number;
  comm: string;
  ifname: string;
  udpPorts: number[];
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function fds(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
}

/** The device a tun fd is attached to: fdinfo of /dev/net/tun carries "iff:\t<name>". */
export function parseTunIff(fdinfo: string): string | undefined {
  return /^iff:\s*(\S+)/m.exec(fdinfo)?.[1];
}

/** Local UDP ports by socket inode, from the text of /proc/PID/net/udp. */
export function parseProcNetUdp(text: string): Map<number, number> {
  const byInode = new Map<number, number>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const port = parseInt(f[1].split(':')[1], 16);
    byInode.set(Number(f[9]), port);
  }
  return byInode;
}

/** UDP ports the process has sockets bound to. */
export function udpPortsOf(pid: number): number[] {
  const table = parseProcNetUdp(read(`/proc/${pid}/net/udp`) ?? '');
  const ports = new Set<number>();
  for (const fd of fds(pid)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    const port = inode ? table.get(Number(inode)) : undefined;
    if (port) ports.add(port);
  }
  return [...ports].sort((a, b) => a - b);
}

/** Among `pids`, the processes holding a TUN device open, with the device's name and their UDP ports. */
export function tunOwners(pids: number[]): TunOwner[] {
  const owners: TunOwner[] = [];
  for (const pid of pids) {
    const devices = new Set<string>();
    for (const fd of fds(pid)) {
      const iff = parseTunIff(read(`/proc/${pid}/fdinfo/${fd}`) ?? '');
      if (iff) devices.add(iff);
    }
    if (!devices.size) continue;
    const comm = (read(`/proc/${pid}/comm`) ?? '?').trim();
    const udpPorts = udpPortsOf(pid);
    for (const ifname of devices) owners.push({ pid, comm, ifname, udpPorts });
  }
  return owners;
}
