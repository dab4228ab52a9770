// rtnetlink from this process: the few link, address and route messages a
// CNI ADD needs, sent on a NETLINK_ROUTE socket instead of starting an `ip`.
// A socket belongs to the network namespace it was opened in, so one opened
// inside a container's namespace (this thread enters it, opens the socket,
// comes back) configures that namespace from here. Each request waits for
// the kernel's answer, which the kernel gives before sendto returns: the
// calls are synchronous and take microseconds; a link deletion, which waits
// for the kernel to let go of the device, runs on a worker thread.
//
// The encoding follows include/uapi/linux/{netlink,rtnetlink,if_link,if_addr}.h;
// `ip` sends the same bytes (test/unit/netlink.test.ts compares them).
import { closeSync, openSync } from 'node:fs';
import { errno, libcCalls, setIntOption } from './libc.js';
import { inAmbientNetns, inNetnsThread } from './thread-netns.js';
import { trace } from './exec.js';

const AF_NETLINK = 16;
const NETLINK_ROUTE = 0;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;

export const NLM_F = { REQUEST: 0x1, ACK: 0x4, REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400 } as const;
const NLM_F_ACK_TLVS = 0x200; // in an error message: extended ack attributes follow
const NLMSG_ERROR = 2;
const NLMSGERR_ATTR_MSG = 1;
export const RTM = { NEWLINK: 16, DELLINK: 17, GETLINK: 18, NEWADDR: 20, NEWROUTE: 24 } as const;
export const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, MASTER: 10, LINKINFO: 18, NET_NS_FD: 28, EXT_MASK: 29 } as const;
const RTEXT_FILTER_SKIP_STATS = 1 << 3;
const IFLA_INFO = { KIND: 1, DATA: 2, SLAVE_DATA: 5 } as const;
const VETH_INFO_PEER = 1;
const IFLA_BRPORT_MODE = 4; // hairpin
const IFA = { ADDRESS: 1, LOCAL: 2 } as const;
const RTA = { DST: 1, OIF: 4, GATEWAY: 5 } as const;
export const IFF = { UP: 0x1, PROMISC: 0x100 } as const;
export const IFA_F_NODAD = 0x02;
const AF = { UNSPEC: 0, INET: 2, INET6: 10 } as const;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3; // what `ip route add` marks its routes with
const RT_SCOPE = { UNIVERSE: 0, LINK: 253 } as const;
const RTN_UNICAST = 1;
const NLA_F_NESTED = 0x8000;

export const ERRNO = { ENOENT: 2, EEXIST: 17, ENODEV: 19 } as const;

/** A request the kernel refused: errno and, when it says more, its extended message. */
export class NetlinkError extends Error {
  constructor(
    readonly what: string,
    readonly errno: number,
    readonly detail?: string,
  ) {
    super(`${what}: ${libcCalls.strerror(errno)}${detail ? ` (${detail})` : ''}`);
    this.name = 'NetlinkError';
  }
}

// --- encoding ---

const align4 = (n: number) => (n + 3) & ~3;

/** One attribute (struct rtattr), padded to 4 bytes. */
export function attr(type: number, data: Buffer): Buffer {
  const b = Buffer.alloc(align4(4 + data.length));
  b.writeUInt16LE(4 + data.length, 0);
  b.writeUInt16LE(type, 2);
  data.copy(b, 4);
  return b;
}

// Without NLA_F_NESTED, as `ip` sends them: the veth peer is an ifinfomsg, not attributes.
export const nested = (type: number, ...attrs: Buffer[]) => attr(type, Buffer.concat(attrs));
export const str = (s: string) => Buffer.from(`${s}\0`);
/** A link kind, without the NUL, as `ip` sends it. */
const kind = (s: string) => attr(IFLA_INFO.KIND, Buffer.from(s));
export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}
const u8 = (v: number) => Buffer.from([v]);

export function mac(text: string): Buffer {
  const b = Buffer.from(text.split(':').map((x) => parseInt(x, 16)));
  if (b.length !== 6 || text.split(':').some((x) => !/^[0-9a-f]{1,2}$/i.test(x))) throw new Error(`not a MAC address: ${text}`);
  return b;
}

/** An IPv4 or IPv6 address in network order, and its family. */
export function ipBytes(text: string): { family: number; bytes: Buffer } {
  if (!text.includes(':')) {
    const parts = text.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`not an IPv4 address: ${text}`);
    return { family: AF.INET, bytes: Buffer.from(parts) };
  }
  if (text.split('::').length > 2) throw new Error(`not an IPv6 address: ${text}`);
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const words = (s: string | undefined) => (s ? s.split(':').flatMap((w) => (w.includes('.') ? v4Words(w) : [parseInt(w, 16)])) : []);
  const h = words(head);
  const t = tail === undefined ? [] : words(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8 || all.some((w) => !(w >= 0 && w <= 0xffff))) throw new Error(`not an IPv6 address: ${text}`);
  const bytes = Buffer.alloc(16);
  all.forEach((w, i) => bytes.writeUInt16BE(w, 2 * i));
  return { family: AF.INET6, bytes };
}
const v4Words = (s: string) => {
  const b = ipBytes(s).bytes;
  return [b.readUInt16BE(0), b.readUInt16BE(2)];
};

/** struct ifinfomsg */
export function ifinfomsg(o: { index?: number; flags?: number; change?: number } = {}): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(AF.UNSPEC, 0);
  b.writeInt32LE(o.index ?? 0, 4);
  b.writeUInt32LE(o.flags ?? 0, 8);
  b.writeUInt32LE(o.change ?? 0, 12);
  return b;
}

/** struct ifaddrmsg */
export function ifaddrmsg(o: { family: number; prefixLength: number; flags?: number; index: number }): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(o.family, 0);
  b.writeUInt8(o.prefixLength, 1);
  b.writeUInt8(o.flags ?? 0, 2);
  b.writeUInt8(RT_SCOPE.UNIVERSE, 3);
  b.writeUInt32LE(o.index, 4);
  return b;
}

/** struct rtmsg for a unicast route in the main table, as `ip route add` makes it. */
export function rtmsg(o: { family: number; dstLength: number; scope: number }): Buffer {
  return Buffer.from([o.family, o.dstLength, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, o.scope, RTN_UNICAST, 0, 0, 0, 0]);
}

/** A whole message: struct nlmsghdr, then the body. */
export function message(type: number, flags: number, seq: number, ...body: Buffer[]): Buffer {
  const payload = Buffer.concat(body);
  const head = Buffer.alloc(16);
  head.writeUInt32LE(16 + payload.length, 0);
  head.writeUInt16LE(type, 4);
  head.writeUInt16LE(flags, 6);
  head.writeUInt32LE(seq, 8);
  head.writeUInt32LE(0, 12);
  return Buffer.concat([head, payload]);
}

// --- decoding ---

/** The attributes in `b` from `offset` on, by type (the nested flag cleared). */
export function attrs(b: Buffer, offset = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let i = offset; i + 4 <= b.length; ) {
    const len = b.readUInt16LE(i);
    if (len < 4) break;
    out.set(b.readUInt16LE(i + 2) & ~NLA_F_NESTED & 0xffff, b.subarray(i + 4, i + len));
    i += align4(len);
  }
  return out;
}

const cString = (b: Buffer | undefined) => (b ? b.toString('utf8', 0, b.indexOf(0) < 0 ? b.length : b.indexOf(0)) : undefined);

/** What a link answer says that the callers use. */
export interface NlLink {
  index: number;
  name: string;
  flags: number;
  mtu?: number;
  address?: string;
  kind?: string;
  master?: number;
}

export function parseLink(msg: Buffer): NlLink {
  const a = attrs(msg, 32);
  const info = a.get(IFLA.LINKINFO);
  const addr = a.get(IFLA.ADDRESS);
  return {
    index: msg.readInt32LE(20),
    flags: msg.readUInt32LE(24),
    name: cString(a.get(IFLA.IFNAME)) ?? '',
    mtu: a.get(IFLA.MTU)?.readUInt32LE(0),
    address: addr && addr.length === 6 ? [...addr].map((x) => x.toString(16).padStart(2, '0')).join(':') : undefined,
    kind: info ? cString(attrs(info).get(IFLA_INFO.KIND)) : undefined,
    master: a.get(IFLA.MASTER)?.readUInt32LE(0),
  };
}

// --- the socket ---

const sendtoAsync = (libcCalls.sendto as unknown as { async: (...a: unknown[]) => void }).async;
const KERNEL = (() => {
  const b = Buffer.alloc(12); // struct sockaddr_nl, pid 0: the kernel
  b.writeUInt16LE(AF_NETLINK, 0);
  return b;
})();

export interface RouteSpec {
  dst: string;
  gw?: string;
  index: number;
}

export class Rtnl {
  private seq = 1;
  private readonly buf = Buffer.alloc(65536);

  private constructor(
    private fd: number,
    readonly where: string,
  ) {}

  /** A socket in this process's namespace, or in the one at `netnsPath` (opened there, used from here). */
  static open(netnsPath?: string): Rtnl {
    const t0 = performance.now();
    const make = () => libcCalls.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    const fd = netnsPath ? inNetnsThread(netnsPath, make) : inAmbientNetns(make);
    const where = netnsPath ?? 'this namespace';
    if (fd < 0) throw new NetlinkError(`a netlink socket in ${where}`, errno());
    // The kernel then says what it refused, not only an errno; an error ack
    // echoes only the request's header, so its message sits at a fixed place.
    try {
      setIntOption(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1, 'capped acks');
      setIntOption(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1, 'extended acks');
    } catch {
      /* older kernel: errno only */
    }
    trace?.(['netlink', netnsPath ? 'open (other namespace)' : 'open'], t0);
    return new Rtnl(fd, where);
  }

  close(): void {
    if (this.fd >= 0) libcCalls.close(this.fd);
    this.fd = -1;
  }

  /** The link named `name`, or undefined when there is none. */
  getLink(name: string): NlLink | undefined {
    try {
      // Without the counters, as ip asks: half the answer's size.
      const [msg] = this.request('get link', `reading link ${name}`, RTM.GETLINK, 0, ifinfomsg(), attr(IFLA.EXT_MASK, u32(RTEXT_FILTER_SKIP_STATS)), attr(IFLA.IFNAME, str(name)));
      return parseLink(msg);
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ERRNO.ENODEV) return undefined;
      throw e;
    }
  }

  /** A new bridge, up. EEXIST when a link of that name exists. */
  addBridge(name: string, mtu: number): void {
    this.request('new bridge', `adding bridge ${name}`, RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL, ...bridgeBody(name, mtu));
  }

  /**
   * A veth pair made in place: this end here, up, a port of `master`; the
   * peer created directly in the namespace open at `peer.netnsFd`, down (the
   * kernel refuses to bring up a peer it is still moving: ENOTCONN).
   */
  addVeth(host: { name: string; mac: string; mtu: number; master: number }, peer: { name: string; mac: string; mtu: number; netnsFd: number }): void {
    this.request('new veth', `adding veth ${host.name} with peer ${peer.name}`, RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL, ...vethBody(host, peer));
  }

  /** Set and clear interface flags (IFF_UP, IFF_PROMISC). */
  setFlags(index: number, flags: number, mask: number): void {
    this.request('set flags', `setting flags of link ${index}`, RTM.NEWLINK, 0, ifinfomsg({ index, flags, change: mask }));
  }

  /** Hairpin on a bridge port, as `ip link set dev X type bridge_slave hairpin on`. */
  setHairpin(index: number): void {
    this.request('set hairpin', `hairpin on link ${index}`, RTM.NEWLINK, 0, ...hairpinBody(index));
  }

  /** `ip addr add|replace ADDR/LEN dev INDEX [nodad]`. */
  addAddress(index: number, cidr: string, o: { replace?: boolean; nodad?: boolean } = {}): void {
    this.request('new address', `adding ${cidr} to link ${index}`, RTM.NEWADDR, NLM_F.CREATE | (o.replace ? NLM_F.REPLACE : NLM_F.EXCL), ...addressBody(index, cidr, o.nodad));
  }

  /** `ip route add DST [via GW] dev INDEX`. */
  addRoute(r: RouteSpec): void {
    this.request('new route', `adding route ${r.dst}${r.gw ? ` via ${r.gw}` : ''}`, RTM.NEWROUTE, NLM_F.CREATE | NLM_F.EXCL, ...routeBody(r));
  }

  /** Delete the link named `name` (its veth peer goes with it), on a worker thread: the kernel may take tens of ms. */
  async deleteLink(name: string): Promise<void> {
    const seq = this.seq++;
    const msg = message(RTM.DELLINK, NLM_F.REQUEST | NLM_F.ACK, seq, ifinfomsg(), attr(IFLA.IFNAME, str(name)));
    const t0 = performance.now();
    const sent = await new Promise<number>((res, rej) => sendtoAsync(this.fd, msg, msg.length, 0, KERNEL, KERNEL.length, (err: unknown, n: number) => (err ? rej(err) : res(n))));
    if (sent < 0) throw new NetlinkError(`deleting link ${name} in ${this.where}`, errno());
    this.answers(`deleting link ${name} in ${this.where}`, seq);
    trace?.(['netlink', 'del link'], t0);
  }

  /** Send one request with NLM_F_ACK; the answers before the ack (a GET's reply). Throws on an error ack. */
  private request(op: string, what: string, type: number, flags: number, ...body: Buffer[]): Buffer[] {
    const seq = this.seq++;
    const msg = message(type, NLM_F.REQUEST | NLM_F.ACK | flags, seq, ...body);
    const t0 = performance.now();
    if (libcCalls.sendto(this.fd, msg, msg.length, 0, KERNEL, KERNEL.length) < 0) throw new NetlinkError(`${what} in ${this.where}`, errno());
    const out = this.answers(`${what} in ${this.where}`, seq);
    trace?.(['netlink', op], t0);
    return out;
  }

  /** Read until the ack of `seq`; the kernel queued it before sendto returned. */
  private answers(what: string, seq: number): Buffer[] {
    const out: Buffer[] = [];
    for (;;) {
      const n = libcCalls.recv(this.fd, this.buf, this.buf.length, 0);
      if (n < 0) {
        if (errno() === 4) continue; // EINTR
        throw new NetlinkError(`${what}: reading the answer`, errno());
      }
      for (let i = 0; i + 16 <= n; ) {
        const len = this.buf.readUInt32LE(i);
        if (len < 16) break;
        const m = Buffer.from(this.buf.subarray(i, i + len));
        i += align4(len);
        if (m.readUInt32LE(8) !== seq) continue; // an answer to an earlier request that gave up
        if (m.readUInt16LE(4) !== NLMSG_ERROR) {
          out.push(m);
          continue;
        }
        const error = -m.readInt32LE(16);
        if (error === 0) return out;
        // Extended ack attributes follow the error and the echoed request header.
        const detail = m.readUInt16LE(6) & NLM_F_ACK_TLVS ? cString(attrs(m, 16 + 4 + 16).get(NLMSGERR_ATTR_MSG)) : undefined;
        throw new NetlinkError(what, error, detail);
      }
    }
  }
}

// Bodies, apart for the encoding test; attributes in the order `ip` sends them.

export function bridgeBody(name: string, mtu: number): Buffer[] {
  return [ifinfomsg({ flags: IFF.UP, change: IFF.UP }), attr(IFLA.MTU, u32(mtu)), attr(IFLA.IFNAME, str(name)), nested(IFLA.LINKINFO, kind('bridge'))];
}

export function vethBody(host: { name: string; mac: string; mtu: number; master: number }, peer: { name: string; mac: string; mtu: number; netnsFd: number }): Buffer[] {
  const peerInfo = Buffer.concat([
    ifinfomsg(),
    attr(IFLA.ADDRESS, mac(peer.mac)),
    attr(IFLA.MTU, u32(peer.mtu)),
    attr(IFLA.NET_NS_FD, u32(peer.netnsFd)),
    attr(IFLA.IFNAME, str(peer.name)),
  ]);
  return [
    ifinfomsg({ flags: IFF.UP, change: IFF.UP }),
    attr(IFLA.ADDRESS, mac(host.mac)),
    attr(IFLA.MTU, u32(host.mtu)),
    attr(IFLA.MASTER, u32(host.master)),
    attr(IFLA.IFNAME, str(host.name)),
    nested(IFLA.LINKINFO, kind('veth'), nested(IFLA_INFO.DATA, nested(VETH_INFO_PEER, peerInfo))),
  ];
}

export function hairpinBody(index: number): Buffer[] {
  // ip names the port's kind in IFLA_INFO_KIND; the kernel goes by the master's type either way.
  return [ifinfomsg({ index }), nested(IFLA.LINKINFO, kind('bridge_slave'), nested(IFLA_INFO.SLAVE_DATA, attr(IFLA_BRPORT_MODE, u8(1))))];
}

export function addressBody(index: number, cidr: string, nodad = false): Buffer[] {
  const [ip, len] = cidr.split('/');
  const { family, bytes } = ipBytes(ip);
  const prefixLength = len === undefined ? bytes.length * 8 : Number(len);
  return [ifaddrmsg({ family, prefixLength, flags: nodad ? IFA_F_NODAD : 0, index }), attr(IFA.LOCAL, bytes), attr(IFA.ADDRESS, bytes)];
}

export function routeBody(r: RouteSpec): Buffer[] {
  const [dst, len] = r.dst.split('/');
  const { family, bytes } = ipBytes(dst);
  const dstLength = len === undefined ? bytes.length * 8 : Number(len);
  const out = [rtmsg({ family, dstLength, scope: r.gw ? RT_SCOPE.UNIVERSE : RT_SCOPE.LINK })];
  if (dstLength > 0) out.push(attr(RTA.DST, bytes));
  if (r.gw) out.push(attr(RTA.GATEWAY, ipBytes(r.gw).bytes));
  out.push(attr(RTA.OIF, u32(r.index)));
  return out;
}

/** An open fd on a namespace file, for IFLA_NET_NS_FD; closed after `fn`. */
export function withNetnsFd<T>(netnsPath: string, fn: (fd: number) => T): T {
  const fd = openSync(netnsPath, 'r');
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}
