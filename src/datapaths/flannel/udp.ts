// flannel's UDP backend: a TUN device flannel0 holding the whole pod network
// (10.10.0.0/16), so the kernel routes every packet for another node's pods
// into this process, which sends it in UDP to that node's port 8285. No
// per-node kernel state: the table of leases lives here, in user space.
import { Worker } from 'node:worker_threads';
import { formatCidr, formatIp, network, type Cidr } from '../../net/ipnet.js';
import type { Ip } from '../../net/ip.js';
import { AF_INET, check, libcCalls as c, setIntOption, SO, SOCK, SOL_SOCKET, SOL_UDP, sockaddrIn, UDP_GRO, UDP_SEGMENT } from '../../net/libc.js';
import { openTun, VNET_HDR_LEN } from '../../net/tun.js';
import type { AgentOptions, FlannelBackend, Lease } from './types.js';
import { COUNTERS, CTL, MAX_DATAGRAM, UDP_OVERHEAD, type RemoteRoute } from './udp-datapath.js';
import type { WorkerData } from './bin/flannel-udp-worker.js';

export const UDP_DEVICE = 'flannel0';
/** Room for the UDP datagrams of the largest super-packet (the check is skb->len >= gso_max_size). */
const GSO_MAX_SIZE = MAX_DATAGRAM - VNET_HDR_LEN + 1;
const SOCKET_BUFFER = 8 << 20;

export interface UdpOptions {
  /** The whole pod network (10.10.0.0/16): flannel0's prefix. */
  network: Cidr;
  port: number;
  /** TSO super-packets through flannel0 (default); off shows the cost of one trip per packet. */
  offload: boolean;
}

export class UdpBackend implements FlannelBackend {
  readonly type = 'udp';
  readonly overhead = UDP_OVERHEAD;
  private readonly routes = new Map<string, RemoteRoute>();
  /** Shared with both threads: the stop flag and the route table's generation. */
  private readonly ctl = new Int32Array(new SharedArrayBuffer(CTL.size * 4));
  private readonly workers: { role: string; worker: Worker; exited: Promise<unknown>; counters: Float64Array }[] = [];
  private fds: number[] = [];

  constructor(
    private ip: Ip,
    private opts: AgentOptions,
    private udp: UdpOptions,
  ) {}

  async setup(local: Cidr): Promise<Record<string, unknown>> {
    const under = await this.ip.link(this.opts.iface);
    if (!under) throw new Error(`underlay device ${this.opts.iface} not found`);
    const tun = openTun(UDP_DEVICE, { offload: this.udp.offload });
    this.fds.push(tun);
    const sock = this.openSocket(under.mtu - this.overhead);
    // The node's address in the pod network, with the network's prefix: its
    // connected route sends all of 10.10.0.0/16 into flannel0 (cni0's /24 is more specific).
    await this.ip.batch([
      ['link', 'set', UDP_DEVICE, 'mtu', String(under.mtu - this.overhead), 'gso_max_size', String(GSO_MAX_SIZE)],
      ['addr', 'add', `${formatIp(network(local))}/${this.udp.network.prefix}`, 'dev', UDP_DEVICE],
      ['link', 'set', UDP_DEVICE, 'up'],
    ]);
    for (const role of ['encap', 'decap'] as const) this.startWorker(role, tun, sock);
    return {};
  }

  /** The UDP socket both threads use; `segment` is the largest payload one underlay packet carries. */
  private openSocket(segment: number): number {
    const sock = check(c.socket(AF_INET, SOCK.DGRAM | SOCK.CLOEXEC, 0), 'socket');
    this.fds.push(sock);
    // Room for a burst of super-packets; the FORCE variants are not capped by rmem_max.
    setIntOption(sock, SOL_SOCKET, SO.SNDBUFFORCE, SOCKET_BUFFER, 'SO_SNDBUFFORCE');
    setIntOption(sock, SOL_SOCKET, SO.RCVBUFFORCE, SOCKET_BUFFER, 'SO_RCVBUFFORCE');
    // A super-packet leaves as one GSO datagram cut into underlay-sized segments by the
    // kernel at the last moment (not IP fragments), and arrives whole again (UDP GRO).
    setIntOption(sock, SOL_UDP, UDP_SEGMENT, segment, 'UDP_SEGMENT');
    setIntOption(sock, SOL_UDP, UDP_GRO, 1, 'UDP_GRO');
    check(c.bind(sock, sockaddrIn(this.opts.publicIp, this.udp.port), 16), `bind ${this.opts.publicIp}:${this.udp.port}`);
    return sock;
  }

  private startWorker(role: 'encap' | 'decap', tun: number, sock: number): void {
    const counters = new SharedArrayBuffer(COUNTERS.size * 8);
    const workerData: WorkerData = { role, tun, sock, ctl: this.ctl.buffer as SharedArrayBuffer, counters };
    const worker = new Worker(new URL('./flannel-udp-worker.js', import.meta.url), { workerData });
    worker.on('error', (e) => {
      console.error(`flanneld: udp ${role} thread failed: ${e.message}`);
      process.exit(1);
    });
    const exited = new Promise((r) => worker.once('exit', r));
    this.workers.push({ role, worker, exited, counters: new Float64Array(counters) });
  }

  /** The encap thread picks the new table up at its next packet. */
  private publish(): void {
    const encap = this.workers.find((w) => w.role === 'encap');
    encap?.worker.postMessage([...this.routes.values()]);
    Atomics.add(this.ctl, CTL.generation, 1);
  }

  addRemote(r: Lease) {
    this.routes.set(formatCidr(r.subnet), { subnet: r.subnet, publicIp: r.publicIp });
    this.publish();
    return { ip: [], bridge: [] };
  }

  removeRemote(r: Lease) {
    this.routes.delete(formatCidr(r.subnet));
    this.publish();
    return { ip: [], bridge: [] };
  }

  /** Stop both threads, then close flannel0 (which removes it) and the socket. */
  async stop(): Promise<string> {
    Atomics.store(this.ctl, CTL.stop, 1);
    await Promise.all(this.workers.map((w) => w.exited));
    for (const fd of this.fds) c.close(fd);
    this.fds = [];
    return this.workers
      .map(({ role, counters: k }) => `${role}: ${k[COUNTERS.packets]} packets (${k[COUNTERS.superPackets]} super-packets), ${k[COUNTERS.bytes]} bytes, ${k[COUNTERS.noRoute]} without route, ${k[COUNTERS.errors]} errors`)
      .join('; ');
  }
}
