// The few libc calls the user-space datapath needs (TUN device, UDP socket,
// poll), through koffi. Calls return -1 on failure; errno() says why. Buffers
// are passed as pointers to their bytes, no copy.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

export const libcCalls = {
  open: libc.func('int open(const char *path, int flags)') as (path: string, flags: number) => number,
  close: libc.func('int close(int fd)') as (fd: number) => number,
  /** ioctl with a pointer argument (struct ifreq) */
  ioctlPtr: libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']) as (fd: number, req: number, arg: Buffer) => number,
  /** ioctl with an integer argument (TUNSETOFFLOAD takes the flags by value) */
  ioctlInt: libc.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']) as (fd: number, req: number, arg: number) => number,
  read: libc.func('long read(int fd, void *buf, unsigned long count)') as (fd: number, buf: Uint8Array, count: number) => number,
  write: libc.func('long write(int fd, void *buf, unsigned long count)') as (fd: number, buf: Uint8Array, count: number) => number,
  socket: libc.func('int socket(int domain, int type, int protocol)') as (domain: number, type: number, protocol: number) => number,
  bind: libc.func('int bind(int fd, void *addr, unsigned int len)') as (fd: number, addr: Buffer, len: number) => number,
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, void *value, unsigned int len)') as (fd: number, level: number, name: number, value: Buffer, len: number) => number,
  sendto: libc.func('long sendto(int fd, void *buf, unsigned long len, int flags, void *addr, unsigned int addrlen)') as (fd: number, buf: Uint8Array, len: number, flags: number, addr: Buffer, addrlen: number) => number,
  recv: libc.func('long recv(int fd, void *buf, unsigned long len, int flags)') as (fd: number, buf: Uint8Array, len: number, flags: number) => number,
  poll: libc.func('int poll(void *fds, unsigned long nfds, int timeout)') as (fds: Buffer, nfds: number, timeoutMs: number) => number,
  strerror: libc.func('const char *strerror(int errnum)') as (errnum: number) => string,
};

export const errno = (): number => koffi.errno();

export const E = { EINTR: 4, EAGAIN: 11, EMSGSIZE: 90 } as const;
export const O = { RDWR: 0o2, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;
export const AF_INET = 2;
export const SOCK = { STREAM: 1, DGRAM: 2, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;
export const SOL_SOCKET = 1;
export const SO = { SNDBUFFORCE: 32, RCVBUFFORCE: 33 } as const;
export const SOL_UDP = 17;
/** UDP GSO: a larger send leaves as segments of this size; UDP_GRO: they arrive as one. */
export const UDP_SEGMENT = 103;
export const UDP_GRO = 104;
export const POLLIN = 0x001;

/** Throw with the call, errno's text and a hint of what was being done. */
export function check(ret: number, what: string): number {
  if (ret < 0) {
    const e = errno();
    throw new Error(`${what}: ${libcCalls.strerror(e)} (errno ${e})`);
  }
  return ret;
}

/** struct sockaddr_in for an IPv4 address and port. */
export function sockaddrIn(ip: string, port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  ip.split('.').forEach((octet, i) => (b[4 + i] = Number(octet)));
  return b;
}

export function setIntOption(fd: number, level: number, name: number, value: number, what: string): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value);
  check(libcCalls.setsockopt(fd, level, name, v, 4), what);
}
