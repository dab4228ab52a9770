// Pure IPv4 arithmetic: no kernel, no I/O. Addresses are unsigned 32-bit numbers.

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
