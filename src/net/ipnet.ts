// Pure IP arithmetic: no kernel, no I/O. IPv4 addresses are unsigned 32-bit
// numbers (the older API below); either family, IPv6 included, as BigInt further down.

export interface Cidr {
  ip: number; // the address as written (may have host bits)
  prefix: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseIp(text: string): number | undefined {
  const m = IPV4.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, extra] = text.split('/');
  if (extra !== undefined || len === undefined || !/^\d{1,2}$/.test(len)) return undefined;
  const ip = parseIp(addr);
  const prefix = Number(len);
  if (ip === undefined || prefix > 32) return undefined;
  return { ip, prefix };
}

export function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function network(c: Cidr): number {
  return (c.ip & mask(c.prefix)) >>> 0;
}

export function broadcast(c: Cidr): number {
  return (network(c) | ~mask(c.prefix)) >>> 0;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.ip)}/${c.prefix}`;
}

/** The network itself, host bits cleared: 10.10.0.7/24 -> 10.10.0.0/24. */
export function networkCidr(c: Cidr): Cidr {
  return { ip: network(c), prefix: c.prefix };
}

export function contains(c: Cidr, ip: number): boolean {
  return (ip & mask(c.prefix)) >>> 0 === network(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, network(b)) || contains(b, network(a));
}

/** The nth subnet of length `len` inside `parent`: subnet(10.10.0.0/16, 24, 1) = 10.10.1.0/24. */
export function subnet(parent: Cidr, len: number, index: number): Cidr {
  return { ip: (network(parent) + index * 2 ** (32 - len)) >>> 0, prefix: len };
}

// ---------------------------------------------------------------------------
// Both families. An address of either family is a BigInt (IPv4 fits in 32 bits,
// IPv6 needs 128); the family travels with it, so ::a.b.c.d and a.b.c.d differ.

export type Family = 4 | 6;

export interface Addr {
  family: Family;
  value: bigint;
}

export interface Prefix {
  family: Family;
  ip: bigint; // the address as written (may have host bits)
  prefix: number;
}

export const BITS: Record<Family, number> = { 4: 32, 6: 128 };

/** Parse an IPv6 address (RFC 4291 text forms: ::, leading zeros, an embedded IPv4 tail); no zone. */
export function parseIp6(text: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length > 45) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i];
      if (i === pieces.length - 1 && p.includes('.')) {
        const v4 = parseIp(p);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  // An IPv4 tail is only allowed at the very end.
  if (halves.length === 2 && halves[0].includes('.')) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  return all.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (2+) of zero groups as ::. */
export function formatIp6(value: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

export function familyOf(text: string): Family | undefined {
  return parseAddr(text)?.family;
}

export function parseAddr(text: string): Addr | undefined {
  const v4 = parseIp(text);
  if (v4 !== undefined) return { family: 4, value: BigInt(v4) };
  const v6 = parseIp6(text);
  return v6 === undefined ? undefined : { family: 6, value: v6 };
}

export function formatAddr(a: Addr): string {
  return a.family === 4 ? formatIp(Number(a.value)) : formatIp6(a.value);
}

/** An address or prefix of either family as text, in its canonical form (IPv6 compressed). */
export function canonicalAddr(text: string): string | undefined {
  const a = parseAddr(text);
  return a && formatAddr(a);
}

export function parsePrefix(text: string): Prefix | undefined {
  const [addr, len, extra] = text.split('/');
  if (extra !== undefined || len === undefined || !/^\d{1,3}$/.test(len)) return undefined;
  const a = parseAddr(addr);
  const prefix = Number(len);
  if (!a || prefix > BITS[a.family]) return undefined;
  return { family: a.family, ip: a.value, prefix };
}

export function formatPrefix(p: Prefix): string {
  return `${formatAddr({ family: p.family, value: p.ip })}/${p.prefix}`;
}

export function prefixMask(family: Family, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefix))) & all;
}

/** The first address of the prefix (host bits cleared). */
export function firstAddr(p: Prefix): bigint {
  return p.ip & prefixMask(p.family, p.prefix);
}

/** The last address of the prefix (all host bits set: the IPv4 broadcast). */
export function lastAddr(p: Prefix): bigint {
  return firstAddr(p) | (~prefixMask(p.family, p.prefix) & ((1n << BigInt(BITS[p.family])) - 1n));
}

export function networkPrefix(p: Prefix): Prefix {
  return { family: p.family, ip: firstAddr(p), prefix: p.prefix };
}

export function prefixContains(p: Prefix, a: Addr): boolean {
  return a.family === p.family && (a.value & prefixMask(p.family, p.prefix)) === firstAddr(p);
}

export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  const shorter = Math.min(a.prefix, b.prefix);
  const m = prefixMask(a.family, shorter);
  return (a.ip & m) === (b.ip & m);
}

/** The nth prefix of length `len` inside `parent`: subprefix(fd00::/48, 64, 1) = fd00:0:0:1::/64. */
export function subprefix(parent: Prefix, len: number, index: bigint | number): Prefix {
  if (len < parent.prefix || len > BITS[parent.family]) throw new RangeError(`/${len} does not fit in ${formatPrefix(parent)}`);
  const i = BigInt(index);
  if (i < 0n || i >= 1n << BigInt(len - parent.prefix)) throw new RangeError(`${formatPrefix(parent)} has no subnet /${len} number ${i}`);
  return { family: parent.family, ip: firstAddr(parent) + (i << BigInt(BITS[parent.family] - len)), prefix: len };
}

/** The nth address of the prefix, counting from its first (0): nthAddr(fd00::/64, 1) = fd00::1. */
export function nthAddr(p: Prefix, n: bigint | number): Addr {
  const i = BigInt(n);
  const size = 1n << BigInt(BITS[p.family] - p.prefix);
  if (i < 0n || i >= size) throw new RangeError(`${formatPrefix(p)} has no address number ${i}`);
  return { family: p.family, value: firstAddr(p) + i };
}

/** How many addresses the prefix holds. */
export function prefixSize(p: Prefix): bigint {
  return 1n << BigInt(BITS[p.family] - p.prefix);
}
