// TUN devices: a network interface whose packets a process reads and writes
// through a file descriptor. Opened with the TUNSETIFF ioctl on /dev/net/tun.
import { check, libcCalls as c, O } from './libc.js';

// <linux/if_tun.h>
const TUNSETIFF = 0x400454ca; // _IOW('T', 202, int)
const TUNSETOFFLOAD = 0x400454d0; // _IOW('T', 208, unsigned int)
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
const TUN_F_TSO_ECN = 0x08;

/**
 * Every packet read or written carries a struct virtio_net_hdr in front
 * (<linux/virtio_net.h>, native byte order): what a TSO super-packet is made
 * of, and where a checksum the kernel left for us to finish lives.
 */
export const VNET_HDR_LEN = 10;
export const VNET = {
  F_NEEDS_CSUM: 1,
  GSO_NONE: 0,
  /** offsets in the header */
  flags: 0,
  gsoType: 1,
  hdrLen: 2,
  gsoSize: 4,
  csumStart: 6,
  csumOffset: 8,
} as const;

export interface TunOptions {
  /**
   * Let the kernel hand over TCP super-packets (up to 64 KiB, TSO) with their
   * checksums unfinished, instead of one MTU-sized packet per read.
   */
  offload: boolean;
}

/**
 * Create (or attach to) TUN device `name` in the current network namespace and
 * return its file descriptor, non-blocking. The device lives as long as the fd.
 */
export function openTun(name: string, opts: TunOptions): number {
  if (Buffer.byteLength(name) > 15) throw new Error(`TUN device name "${name}" is longer than 15 bytes`);
  const fd = check(c.open('/dev/net/tun', O.RDWR | O.NONBLOCK | O.CLOEXEC), 'open /dev/net/tun');
  try {
    const ifreq = Buffer.alloc(40); // struct ifreq: char ifr_name[16]; short ifr_flags; …
    ifreq.write(name, 0);
    ifreq.writeUInt16LE(IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, 16);
    check(c.ioctlPtr(fd, TUNSETIFF, ifreq), `TUNSETIFF ${name}`);
    const offload = opts.offload ? TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN : 0;
    check(c.ioctlInt(fd, TUNSETOFFLOAD, offload), `TUNSETOFFLOAD ${name}`);
    return fd;
  } catch (e) {
    c.close(fd);
    throw e;
  }
}
