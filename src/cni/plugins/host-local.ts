// host-local IPAM: addresses from configured ranges, one lease file per address.
//
// A lease is claimed by creating its file with O_EXCL, so two parallel ADDs can
// never get the same address: the kernel's create is the lock. A crash between
// create and write leaves an empty file, which GC reclaims.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { CmdArgs } from '../env.js';
import { CniError, ErrorCode, invalidConfig } from '../errors.js';
import { Fields, type NetConf } from '../config.js';
import type { Plugin, GcArgs } from '../skel.js';
import type { Result, RouteEntry } from '../result.js';
import { broadcast, contains, formatCidr, formatIp, network, overlaps, parseCidr, parseIp, type Cidr } from '../../net/ipnet.js';

export interface Range {
  subnet: Cidr;
  start: number;
  end: number;
  gateway?: number;
}

export interface HostLocalConf extends NetConf {
  rangeSets: Range[][];
  routes: RouteEntry[];
  dataDir: string;
}

export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';

function parseRange(f: Fields): Range {
  const subnetText = f.string('subnet', { required: true })!;
  if (subnetText.includes(':')) throw new CniError(ErrorCode.UnsupportedField, `${f.name('subnet')}: IPv6 ranges are not supported yet ("${subnetText}")`);
  const subnet = parseCidr(subnetText);
  if (!subnet) throw invalidConfig(f.name('subnet'), `"${subnetText}" is not a CIDR like 10.10.0.0/24`);
  if (subnet.prefix > 30) throw invalidConfig(f.name('subnet'), `"${subnetText}" is too small; use /30 or larger`);
  const address = (key: string, fallback: number): number => {
    const text = f.string(key);
    if (text === undefined) return fallback;
    const ip = parseIp(text);
    if (ip === undefined) throw invalidConfig(f.name(key), `"${text}" is not an IPv4 address`);
    if (!contains(subnet, ip)) throw invalidConfig(f.name(key), `${text} is outside the subnet ${subnetText}`);
    return ip;
  };
  const gateway = address('gateway', network(subnet) + 1);
  const start = address('rangeStart', network(subnet) + 1);
  const end = address('rangeEnd', broadcast(subnet) - 1);
  if (start > end) throw invalidConfig(f.name('rangeStart'), `${formatIp(start)} comes after rangeEnd ${formatIp(end)}`);
  return { subnet, start, end, gateway };
}

export function loadHostLocal(conf: NetConf): HostLocalConf {
  if (!conf.ipam) throw invalidConfig('ipam', 'is required');
  const ipam = new Fields(conf.ipam, 'ipam');
  const rangeSets: Range[][] = [];
  const sets = ipam.list('ranges');
  if (sets) {
    sets.forEach((set, i) => {
      if (!Array.isArray(set) || set.length === 0) throw invalidConfig(`ipam.ranges[${i}]`, 'must be a non-empty list of ranges');
      rangeSets.push(set.map((r, j) => parseRange(new Fields(r as Record<string, unknown>, `ipam.ranges[${i}][${j}]`))));
    });
  } else if (conf.ipam.subnet !== undefined) {
    rangeSets.push([parseRange(ipam)]);
  } else {
    throw invalidConfig('ipam.ranges', 'is required (or the older ipam.subnet)');
  }
  // No two ranges may overlap: the same address would be two leases.
  const all = rangeSets.flatMap((set, i) => set.map((r, j) => ({ r, where: `ipam.ranges[${i}][${j}]` })));
  for (let a = 0; a < all.length; a++) {
    for (let b = a + 1; b < all.length; b++) {
      if (overlaps(all[a].r.subnet, all[b].r.subnet)) {
        throw invalidConfig(`${all[b].where}.subnet`, `${formatCidr(all[b].r.subnet)} overlaps ${formatCidr(all[a].r.subnet)} of ${all[a].where}`);
      }
    }
  }
  const routes = (ipam.list('routes') ?? []).map((r, i) => {
    const rf = new Fields(r as Record<string, unknown>, `ipam.routes[${i}]`);
    const dst = rf.string('dst', { required: true })!;
    if (!parseCidr(dst)) throw invalidConfig(rf.name('dst'), `"${dst}" is not a CIDR`);
    const gw = rf.string('gw');
    if (gw !== undefined && parseIp(gw) === undefined) throw invalidConfig(rf.name('gw'), `"${gw}" is not an IPv4 address`);
    return gw ? { dst, gw } : { dst };
  });
  const dataDir = ipam.string('dataDir') ?? DEFAULT_DATA_DIR;
  return { ...conf, rangeSets, routes, dataDir };
}

function leaseDir(conf: HostLocalConf): string {
  return join(conf.dataDir, conf.name);
}

interface Lease {
  ip: string;
  file: string;
  containerId: string;
  ifname: string;
}

function readLeases(dir: string): Lease[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const leases: Lease[] = [];
  for (const name of names) {
    if (parseIp(name) === undefined) continue; // last_reserved_ip.N and other bookkeeping
    const file = join(dir, name);
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const [containerId = '', ifname = ''] = text.split(/\r?\n/).map((s) => s.trim());
    leases.push({ ip: name, file, containerId, ifname });
  }
  return leases;
}

/** Claim the first free address of a range set, starting after the last one handed out. */
function allocate(dir: string, set: Range[], setIndex: number, owner: string): { ip: number; range: Range } {
  const hintFile = join(dir, `last_reserved_ip.${setIndex}`);
  let hint: number | undefined;
  try {
    hint = parseIp(readFileSync(hintFile, 'utf8').trim());
  } catch {
    /* first allocation */
  }
  // Candidates in order: every range of the set, rotated to start after the hint.
  const candidates: { ip: number; range: Range }[] = [];
  for (const range of set) for (let ip = range.start; ip <= range.end; ip++) if (ip !== range.gateway) candidates.push({ ip, range });
  const after = hint === undefined ? -1 : candidates.findIndex((c) => c.ip === hint);
  for (let k = 1; k <= candidates.length; k++) {
    const c = candidates[(after + k) % candidates.length];
    let fd: number;
    try {
      fd = openSync(join(dir, formatIp(c.ip)), 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new CniError(ErrorCode.IOFailure, `cannot write lease in ${dir}: ${(e as Error).message}`);
    }
    writeSync(fd, owner);
    closeSync(fd);
    writeFileSync(hintFile, formatIp(c.ip));
    return c;
  }
  const ranges = set.map((r) => `${formatIp(r.start)}-${formatIp(r.end)}`).join(', ');
  throw new CniError(ErrorCode.AddressRangeExhausted, `no free address left in ${ranges} (every address has a lease in ${dir})`);
}

export async function ipamAdd(args: CmdArgs, conf: HostLocalConf): Promise<Result> {
  const dir = leaseDir(conf);
  mkdirSync(dir, { recursive: true });
  const mine = readLeases(dir).filter((l) => l.containerId === args.containerId && l.ifname === args.ifname);
  if (mine.length) {
    throw new CniError(ErrorCode.InvalidConfig, `container ${args.containerId} already has ${mine.map((l) => l.ip).join(', ')} for ${args.ifname} in network ${conf.name}`);
  }
  const owner = `${args.containerId}\r\n${args.ifname}`;
  const claimed: string[] = [];
  try {
    const ips = conf.rangeSets.map((set, i) => {
      const { ip, range } = allocate(dir, set, i, owner);
      claimed.push(join(dir, formatIp(ip)));
      return { address: `${formatIp(ip)}/${range.subnet.prefix}`, ...(range.gateway !== undefined ? { gateway: formatIp(range.gateway) } : {}) };
    });
    return { cniVersion: conf.cniVersion, ips, routes: conf.routes, dns: {} };
  } catch (e) {
    for (const f of claimed) unlinkSync(f);
    throw e;
  }
}

export async function ipamDel(args: CmdArgs, conf: HostLocalConf): Promise<void> {
  for (const l of readLeases(leaseDir(conf))) {
    if (l.containerId === args.containerId && l.ifname === args.ifname) unlinkQuiet(l.file);
  }
}

function unlinkQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

export const hostLocal: Plugin<HostLocalConf> = {
  loadConfig: loadHostLocal,
  add: ipamAdd,
  del: ipamDel,

  async check(args, conf) {
    const found = readLeases(leaseDir(conf)).some((l) => l.containerId === args.containerId && l.ifname === args.ifname);
    if (!found) throw new CniError(ErrorCode.UnknownContainer, `no address leased to container ${args.containerId} (${args.ifname}) in network ${conf.name}`);
  },

  async gc(_args, conf, gc: GcArgs) {
    const valid = new Set(gc.validAttachments.map((a) => `${a.containerID}\n${a.ifname}`));
    for (const l of readLeases(leaseDir(conf))) {
      if (!valid.has(`${l.containerId}\n${l.ifname}`)) unlinkQuiet(l.file);
    }
  },

  async status(_args, conf) {
    const taken = new Set(readLeases(leaseDir(conf)).map((l) => l.ip));
    conf.rangeSets.forEach((set, i) => {
      const free = set.some((r) => {
        for (let ip = r.start; ip <= r.end; ip++) if (ip !== r.gateway && !taken.has(formatIp(ip))) return true;
        return false;
      });
      if (!free) throw new CniError(ErrorCode.PluginNotAvailable, `range set ipam.ranges[${i}] of network ${conf.name} has no free address`);
    });
  },
};
