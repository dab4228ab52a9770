// host-local IPAM: addresses from configured ranges, one lease file per address.
//
// A lease is claimed by creating its file with O_EXCL, so two parallel ADDs can
// never get the same address: the kernel's create is the lock. A crash between
// create and write leaves an empty file, which GC reclaims.
// Beside the leases, one small file per attachment (owner.<id>:<ifname>) lists
// its addresses, so ADD's duplicate check, CHECK and DEL read one file rather
// than every lease of the node: with a thousand pods, reading them all on each
// ADD was most of its cost. Lease files stay as the reference plugin writes them.
import { closeSync, constants, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { CmdArgs } from '../env.js';
import { CniError, ErrorCode, invalidConfig } from '../errors.js';
import { Fields, type NetConf } from '../config.js';
import type { Plugin, GcArgs } from '../skel.js';
import type { DNS, Result, RouteEntry } from '../result.js';
import { formatAddr, formatPrefix, lastAddr, firstAddr, parseAddr, parsePrefix, prefixContains, prefixesOverlap, BITS, type Family, type Prefix } from '../../net/ipnet.js';
import { compareVersions } from '../version.js';

/** One range of one family; addresses are BigInt so IPv4 and IPv6 walk alike. */
export interface Range {
  family: Family;
  subnet: Prefix;
  start: bigint;
  end: bigint;
  gateway?: bigint;
}

export interface HostLocalConf extends NetConf {
  rangeSets: Range[][];
  routes: RouteEntry[];
  dataDir: string;
  resolvConf?: string;
}

export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';

const familyName = (f: Family) => `IPv${f}`;

function parseRange(f: Fields): Range {
  const subnetText = f.string('subnet', { required: true })!;
  const subnet = parsePrefix(subnetText);
  if (!subnet) throw invalidConfig(f.name('subnet'), `"${subnetText}" is not a CIDR like 10.10.0.0/24 or fd00:10::/64`);
  // Room for a gateway and at least one pod, as the reference requires (/30, /126).
  if (subnet.prefix > BITS[subnet.family] - 2) throw invalidConfig(f.name('subnet'), `"${subnetText}" is too small; use /${BITS[subnet.family] - 2} or larger`);
  const family = subnet.family;
  const address = (key: string, fallback: bigint): bigint => {
    const text = f.string(key);
    if (text === undefined) return fallback;
    const a = parseAddr(text);
    if (!a) throw invalidConfig(f.name(key), `"${text}" is not an ${familyName(family)} address`);
    if (a.family !== family) throw invalidConfig(f.name(key), `${text} is ${familyName(a.family)} but the subnet ${subnetText} is ${familyName(family)}`);
    if (!prefixContains(subnet, a)) throw invalidConfig(f.name(key), `${text} is outside the subnet ${subnetText}`);
    return a.value;
  };
  const first = firstAddr(subnet);
  // The last usable address: IPv4 keeps its broadcast out, IPv6 has none (as the reference).
  const last = lastAddr(subnet) - (family === 4 ? 1n : 0n);
  const gateway = address('gateway', first + 1n);
  const start = address('rangeStart', first + 1n);
  const end = address('rangeEnd', last);
  if (start > end) throw invalidConfig(f.name('rangeStart'), `${fmt(family, start)} comes after rangeEnd ${fmt(family, end)}`);
  return { family, subnet, start, end, gateway };
}

const fmt = (family: Family, value: bigint) => formatAddr({ family, value });

export function loadHostLocal(conf: NetConf): HostLocalConf {
  if (!conf.ipam) throw invalidConfig('ipam', 'is required');
  const ipam = new Fields(conf.ipam, 'ipam');
  const rangeSets: Range[][] = [];
  const sets = ipam.list('ranges');
  if (sets) {
    // The reference refuses an empty list too: an ADD would give a pod no address.
    if (sets.length === 0) throw invalidConfig('ipam.ranges', 'is empty; list at least one range set, e.g. [[{"subnet": "10.10.0.0/24"}]]');
    sets.forEach((set, i) => {
      if (!Array.isArray(set) || set.length === 0) throw invalidConfig(`ipam.ranges[${i}]`, 'must be a non-empty list of ranges');
      const parsed = set.map((r, j) => parseRange(new Fields(r as Record<string, unknown>, `ipam.ranges[${i}][${j}]`)));
      // One lease per set: its ranges must be of one family.
      const mixed = parsed.findIndex((r) => r.family !== parsed[0].family);
      if (mixed >= 0) {
        throw invalidConfig(`ipam.ranges[${i}][${mixed}].subnet`, `is ${familyName(parsed[mixed].family)} but ipam.ranges[${i}][0] is ${familyName(parsed[0].family)}; a range set holds one family (put the other family in a set of its own)`);
      }
      rangeSets.push(parsed);
    });
  } else if (conf.ipam.subnet !== undefined) {
    rangeSets.push([parseRange(ipam)]);
  } else {
    throw invalidConfig('ipam.ranges', 'is required (or the older ipam.subnet)');
  }
  if (rangeSets.length > 1 && compareVersions(conf.cniVersion, '0.3.0') < 0) {
    throw invalidConfig('ipam.ranges', `cniVersion ${conf.cniVersion} carries one address; more than one range set needs 0.3.0 or later`);
  }
  // No two ranges may overlap: the same address would be two leases.
  const all = rangeSets.flatMap((set, i) => set.map((r, j) => ({ r, where: `ipam.ranges[${i}][${j}]` })));
  for (let a = 0; a < all.length; a++) {
    for (let b = a + 1; b < all.length; b++) {
      if (prefixesOverlap(all[a].r.subnet, all[b].r.subnet)) {
        throw invalidConfig(`${all[b].where}.subnet`, `${formatPrefix(all[b].r.subnet)} overlaps ${formatPrefix(all[a].r.subnet)} of ${all[a].where}`);
      }
    }
  }
  const routes = (ipam.list('routes') ?? []).map((r, i) => {
    const rf = new Fields(r as Record<string, unknown>, `ipam.routes[${i}]`);
    const dst = rf.string('dst', { required: true })!;
    const to = parsePrefix(dst);
    if (!to) throw invalidConfig(rf.name('dst'), `"${dst}" is not a CIDR`);
    const gw = rf.string('gw');
    if (gw !== undefined) {
      const via = parseAddr(gw);
      if (!via) throw invalidConfig(rf.name('gw'), `"${gw}" is not an IP address`);
      if (via.family !== to.family) throw invalidConfig(rf.name('gw'), `${gw} is ${familyName(via.family)} but dst ${dst} is ${familyName(to.family)}`);
    }
    return gw ? { dst, gw } : { dst };
  });
  const dataDir = ipam.string('dataDir') ?? DEFAULT_DATA_DIR;
  return { ...conf, rangeSets, routes, dataDir, resolvConf: ipam.string('resolvConf') };
}

/** nameserver, domain, search and options lines of a resolv.conf, as the reference reads them. */
export function parseResolvConf(text: string): DNS {
  const dns: DNS = {};
  for (const line of text.split('\n')) {
    const [key, ...rest] = line.trim().split(/\s+/);
    if (key === 'nameserver' && rest[0]) (dns.nameservers ??= []).push(rest[0]);
    else if (key === 'domain' && rest[0]) dns.domain = rest[0];
    else if (key === 'search') dns.search = rest;
    else if (key === 'options') (dns.options ??= []).push(...rest);
  }
  return dns;
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
    if (parseAddr(name) === undefined) continue; // last_reserved_ip.N and other bookkeeping
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

/**
 * Every address of a set in order, starting after `hint` and wrapping round to
 * it, gateways left out. Lazy: an IPv6 range holds 2^64 addresses and more, and
 * the walk stops at the first free one.
 */
function* walk(set: Range[], hint?: bigint): Generator<{ ip: bigint; range: Range }> {
  const r = hint === undefined ? -1 : set.findIndex((x) => hint >= x.start && hint <= x.end);
  if (r < 0) {
    for (const range of set) yield* span(range, range.start, range.end);
    return;
  }
  yield* span(set[r], hint! + 1n, set[r].end);
  for (let k = 1; k < set.length; k++) {
    const range = set[(r + k) % set.length];
    yield* span(range, range.start, range.end);
  }
  yield* span(set[r], set[r].start, hint!);
}

function* span(range: Range, lo: bigint, hi: bigint): Generator<{ ip: bigint; range: Range }> {
  for (let ip = lo; ip <= hi; ip++) if (ip !== range.gateway) yield { ip, range };
}

/**
 * Rewrite a small file in place, never cut to zero on the way: ext4 flushes a
 * file that was truncated to zero when it is closed (auto_da_alloc), which
 * cost milliseconds on every ADD.
 */
function overwrite(file: string, text: string): void {
  const b = Buffer.from(text);
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT, 0o644);
  try {
    writeSync(fd, b, 0, b.length, 0);
    ftruncateSync(fd, b.length);
  } finally {
    closeSync(fd);
  }
}

/** Claim the first free address of a range set, starting after the last one handed out. */
function allocate(dir: string, set: Range[], setIndex: number, owner: string): { ip: bigint; range: Range } {
  const hintFile = join(dir, `last_reserved_ip.${setIndex}`);
  const family = set[0].family;
  let hint: bigint | undefined;
  try {
    const a = parseAddr(readFileSync(hintFile, 'utf8').trim());
    if (a?.family === family) hint = a.value;
  } catch {
    /* first allocation */
  }
  for (const c of walk(set, hint)) {
    let fd: number;
    try {
      fd = openSync(join(dir, fmt(family, c.ip)), 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new CniError(ErrorCode.IOFailure, `cannot write lease in ${dir}: ${(e as Error).message}`);
    }
    writeSync(fd, owner);
    closeSync(fd);
    overwrite(hintFile, fmt(family, c.ip));
    return c;
  }
  const ranges = set.map((r) => `${fmt(family, r.start)}-${fmt(family, r.end)}`).join(', ');
  throw new CniError(ErrorCode.AddressRangeExhausted, `no free address left in ${ranges} (every address has a lease in ${dir})`);
}

const ownerFile = (dir: string, args: { containerId: string; ifname: string }) => join(dir, `owner.${args.containerId}:${args.ifname}`); // neither may hold a colon

/**
 * The attachment's leases, through its owner file. Without one (leases written
 * by another implementation, or a crash before the owner file), DEL, CHECK and
 * GC look through every lease; ADD does not, to stay O(1).
 */
function ownedLeases(dir: string, args: { containerId: string; ifname: string }): Lease[] | undefined {
  let text: string;
  try {
    text = readFileSync(ownerFile(dir, args), 'utf8');
  } catch {
    return undefined;
  }
  const leases: Lease[] = [];
  for (const ip of text.split('\n').filter(Boolean)) {
    const file = join(dir, ip);
    try {
      const [containerId = '', ifname = ''] = readFileSync(file, 'utf8').split(/\r?\n/).map((x) => x.trim());
      if (containerId === args.containerId && ifname === args.ifname) leases.push({ ip, file, containerId, ifname });
    } catch {
      /* released meanwhile */
    }
  }
  return leases;
}

function leasesOf(dir: string, args: CmdArgs): Lease[] {
  return ownedLeases(dir, args) ?? readLeases(dir).filter((l) => l.containerId === args.containerId && l.ifname === args.ifname);
}

export async function ipamAdd(args: CmdArgs, conf: HostLocalConf): Promise<Result> {
  const dir = leaseDir(conf);
  mkdirSync(dir, { recursive: true });
  // Checked before reading: a missing file would cost an exception, the dearest part of a usual ADD.
  const mine = existsSync(ownerFile(dir, args)) ? (ownedLeases(dir, args) ?? []) : [];
  if (mine.length) {
    throw new CniError(ErrorCode.InvalidConfig, `container ${args.containerId} already has ${mine.map((l) => l.ip).join(', ')} for ${args.ifname} in network ${conf.name}`);
  }
  const owner = `${args.containerId}\r\n${args.ifname}`;
  const claimed: string[] = [];
  try {
    let dns: DNS = {};
    if (conf.resolvConf) {
      try {
        dns = parseResolvConf(readFileSync(conf.resolvConf, 'utf8'));
      } catch (e) {
        throw invalidConfig('ipam.resolvConf', `cannot read ${conf.resolvConf}: ${(e as Error).message}`);
      }
    }
    // One address per range set: a dual-stack network has an IPv4 set and an IPv6 set.
    const ips = conf.rangeSets.map((set, i) => {
      const { ip, range } = allocate(dir, set, i, owner);
      const text = fmt(range.family, ip);
      claimed.push(join(dir, text));
      return { address: `${text}/${range.subnet.prefix}`, ...(range.gateway !== undefined ? { gateway: fmt(range.family, range.gateway) } : {}) };
    });
    writeFileSync(ownerFile(dir, args), ips.map((i) => i.address.split('/')[0] + '\n').join(''));
    return { cniVersion: conf.cniVersion, ips, routes: conf.routes, dns };
  } catch (e) {
    for (const f of claimed) unlinkSync(f);
    throw e;
  }
}

export async function ipamDel(args: CmdArgs, conf: HostLocalConf): Promise<void> {
  const dir = leaseDir(conf);
  for (const l of leasesOf(dir, args)) unlinkQuiet(l.file);
  unlinkQuiet(ownerFile(dir, args)); // last: a DEL cut short is finished by the next one
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
    const found = leasesOf(leaseDir(conf), args).length > 0;
    if (!found) throw new CniError(ErrorCode.UnknownContainer, `no address leased to container ${args.containerId} (${args.ifname}) in network ${conf.name}`);
  },

  async gc(_args, conf, gc: GcArgs) {
    const valid = new Set(gc.validAttachments.map((a) => `${a.containerID}\n${a.ifname}`));
    for (const l of readLeases(leaseDir(conf))) {
      if (!valid.has(`${l.containerId}\n${l.ifname}`)) unlinkQuiet(l.file);
    }
    let names: string[] = [];
    try {
      names = readdirSync(leaseDir(conf));
    } catch {
      /* nothing leased yet */
    }
    for (const name of names.filter((n) => n.startsWith('owner.'))) {
      const [, id, ifname] = /^owner\.([^:]+):(.+)$/.exec(name) ?? [];
      if (!valid.has(`${id}\n${ifname}`)) unlinkQuiet(join(leaseDir(conf), name));
    }
  },

  async status(_args, conf) {
    const taken = new Set(readLeases(leaseDir(conf)).map((l) => l.ip));
    conf.rangeSets.forEach((set, i) => {
      let free = false;
      for (const c of walk(set)) {
        if (!taken.has(fmt(c.range.family, c.ip))) {
          free = true;
          break;
        }
      }
      if (!free) throw new CniError(ErrorCode.PluginNotAvailable, `range set ipam.ranges[${i}] of network ${conf.name} has no free address`);
    });
  },
};
