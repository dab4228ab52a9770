// The user-space half of flannel's UDP backend: packets the kernel routed into
// flannel0 are read by this process, wrapped in UDP and sent to the node that
// leased the destination's subnet; what arrives on UDP 8285 is written back
// into flannel0. Each direction is one tight loop on its own worker thread,
// calling read/sendto and recv/write directly (koffi), with one buffer reused
// for every packet.
//
// On the wire a packet of up to the flannel MTU travels as plain IP in UDP,
// exactly as flannel sends it. A TCP super-packet (TSO, up to 64 KiB) travels
// as one UDP datagram holding the 10-byte virtio_net_hdr and then the packet
// (UDP GSO cuts it for the underlay, UDP GRO joins it again); the first nibble
// tells the two apart (4 for IPv4, 0 for the header). The receiver hands a super-packet to the kernel
// whole, so crossing between kernel and user space happens once per 64 KiB
// instead of once per 1472 bytes.
import { mask, network, type Cidr } from '../../net/ipnet.js';
import { E, errno, libcCalls as c, POLLIN, sockaddrIn } from '../../net/libc.js';
import { VNET, VNET_HDR_LEN } from '../../net/tun.js';

export const UDP_PORT = 8285;
/** IPv4 + UDP headers: what the flannel MTU gives up to the underlay's. */
export const UDP_OVERHEAD = 28;
/** The largest UDP payload over IPv4; bigger packets are left for the kernel to segment. */
export const MAX_DATAGRAM = 65507;
const MSG_DONTWAIT = 0x40;
const IDLE_POLL_MS = 100;

export interface RemoteRoute {
  subnet: Cidr;
  publicIp: string;
}

/** Shared between the agent and the two loops: stop flag and route-table generation. */
export const CTL = { stop: 0, generation: 1, size: 2 } as const;
/** Per-loop counters in a shared Float64Array, read by the agent when it stops. */
export const COUNTERS = { packets: 0, bytes: 0, superPackets: 0, noRoute: 0, errors: 0, size: 5 } as const;

interface Entry {
  net: number;
  mask: number;
  addr: Buffer; // sockaddr_in of the remote node's UDP 8285
}

/** Destination pod subnet → the node that leased it. A handful of entries: a scan is fastest. */
export class RouteTable {
  private entries: Entry[] = [];

  replace(routes: RemoteRoute[], port = UDP_PORT): void {
    this.entries = routes.map((r) => ({ net: network(r.subnet), mask: mask(r.subnet.prefix), addr: sockaddrIn(r.publicIp, port) }));
  }

  lookup(dst: number): Buffer | undefined {
    for (const e of this.entries) if ((dst & e.mask) >>> 0 === e.net) return e.addr;
    return undefined;
  }
}

/**
 * Finish a checksum the kernel left partial (VIRTIO_NET_HDR_F_NEEDS_CSUM): the
 * field already holds the pseudo-header sum; add the bytes from `start` on and
 * store the complement. Plain IP on the wire must carry a valid checksum.
 */
export function finishChecksum(pkt: Uint8Array, len: number, start: number, offset: number): void {
  let sum = 0;
  let i = start;
  for (; i + 1 < len; i += 2) sum += (pkt[i] << 8) | pkt[i + 1];
  if (i < len) sum += pkt[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  let result = ~sum & 0xffff;
  if (result === 0 && offset === 6) result = 0xffff; // UDP: 0 means "no checksum"
  pkt[start + offset] = result >>> 8;
  pkt[start + offset + 1] = result & 0xff;
}

export interface LoopOptions {
  tun: number;
  sock: number;
  ctl: Int32Array;
  counters: Float64Array;
  /** Fresh routes, when the agent has published a new generation. */
  routes: () => RemoteRoute[] | undefined;
  log: (msg: string) => void;
}

/** Block until `fd` is readable or IDLE_POLL_MS passed (then the stop flag is looked at again). */
function makeWaiter(fd: number): () => void {
  const pfd = Buffer.alloc(8); // struct pollfd { int fd; short events; short revents; }
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLIN, 4);
  return () => void c.poll(pfd, 1, IDLE_POLL_MS);
}

function fail(opts: LoopOptions, what: string): void {
  opts.counters[COUNTERS.errors]++;
  if (opts.counters[COUNTERS.errors] <= 10) opts.log(`${what}: ${c.strerror(errno())}`);
}

/** flannel0 → UDP: read a packet, find the node owning its destination, send. */
export function encapLoop(opts: LoopOptions): void {
  const { tun, sock, ctl, counters } = opts;
  const table = new RouteTable();
  let generation = -1;
  const refresh = () => {
    generation = Atomics.load(ctl, CTL.generation);
    const r = opts.routes();
    if (r) table.replace(r);
  };
  const waitTun = makeWaiter(tun);
  const buf = Buffer.allocUnsafe(VNET_HDR_LEN + 65536);
  const pkt = buf.subarray(VNET_HDR_LEN);
  while (Atomics.load(ctl, CTL.stop) === 0) {
    if (Atomics.load(ctl, CTL.generation) !== generation) refresh();
    const n = c.read(tun, buf, buf.length);
    if (n < 0) {
      const e = errno();
      if (e === E.EAGAIN) waitTun();
      else if (e !== E.EINTR) fail(opts, 'read flannel0');
      continue;
    }
    const len = n - VNET_HDR_LEN;
    if (len < 20 || pkt[0] >> 4 !== 4) continue; // IPv4 only, as flannel's pod network
    const dst = pkt.readUInt32BE(16);
    let to = table.lookup(dst);
    if (!to) {
      refresh(); // a node that just joined: its route may be waiting in the queue
      to = table.lookup(dst);
    }
    if (!to) {
      counters[COUNTERS.noRoute]++;
      continue;
    }
    let sent: number;
    if (buf[VNET.gsoType] === VNET.GSO_NONE) {
      if (buf[VNET.flags] & VNET.F_NEEDS_CSUM) finishChecksum(pkt, len, buf.readUInt16LE(VNET.csumStart), buf.readUInt16LE(VNET.csumOffset));
      sent = c.sendto(sock, pkt, len, 0, to, 16);
    } else {
      if (n > MAX_DATAGRAM) continue; // flannel0's gso_max_size keeps the kernel from making these
      sent = c.sendto(sock, buf, n, 0, to, 16);
      counters[COUNTERS.superPackets]++;
    }
    if (sent < 0) {
      fail(opts, 'sendto');
      continue;
    }
    counters[COUNTERS.packets]++;
    counters[COUNTERS.bytes] += len;
  }
}

/**
 * The packets in one received datagram: usually one; more when the kernel
 * coalesced datagrams (UDP GRO), each one's length then read from its IP
 * header. A packet is plain IPv4, or a virtio_net_hdr and a super-packet;
 * `fn` gets where it starts and how many bytes go to the TUN device, header
 * included (for a plain packet, the all-zero header the caller puts in front).
 * Returns how far it got: less than `n` when the rest is not a whole packet.
 */
export function forEachPacket(payload: Buffer, n: number, fn: (at: number, len: number, plain: boolean) => void): number {
  let at = 0;
  while (at + 20 <= n) {
    const version = payload[at] >> 4;
    const plain = version === 4;
    if (!plain && !(version === 0 && at + VNET_HDR_LEN + 20 <= n)) break;
    const len = plain ? payload.readUInt16BE(at + 2) : VNET_HDR_LEN + payload.readUInt16BE(at + VNET_HDR_LEN + 2);
    if (len < 20 || at + len > n) break;
    fn(at, plain ? VNET_HDR_LEN + len : len, plain);
    at += len;
  }
  return at;
}

/** UDP → flannel0: receive a datagram, give the kernel the packet(s) inside it. */
export function decapLoop(opts: LoopOptions): void {
  const { tun, sock, ctl, counters } = opts;
  const waitSock = makeWaiter(sock);
  // A plain packet is handed over after a virtio_net_hdr left all zero ("nothing to do").
  const buf = Buffer.alloc(VNET_HDR_LEN + MAX_DATAGRAM);
  const payload = buf.subarray(VNET_HDR_LEN);
  const deliver = (at: number, len: number, plain: boolean) => {
    // buf[0..10] stays zero; further in, the header goes over the previous packet's tail, already delivered
    const from = plain ? (at === 0 ? buf : buf.fill(0, at, at + VNET_HDR_LEN).subarray(at)) : payload.subarray(at);
    if (c.write(tun, from, len) < 0) return fail(opts, 'write flannel0');
    counters[COUNTERS.packets]++;
    if (!plain) counters[COUNTERS.superPackets]++;
  };
  while (Atomics.load(ctl, CTL.stop) === 0) {
    const n = c.recv(sock, payload, payload.length, MSG_DONTWAIT);
    if (n < 0) {
      const e = errno();
      if (e === E.EAGAIN) waitSock();
      else if (e !== E.EINTR) fail(opts, 'recv');
      continue;
    }
    counters[COUNTERS.bytes] += n;
    if (forEachPacket(payload, n, deliver) < n) counters[COUNTERS.errors]++;
  }
}
