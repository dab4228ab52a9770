// Pod sandboxes by the hundred: namespaces made and removed through one
// `ip -batch` each, and the per-pod parts that would otherwise cost a process
// each (loopback up, a hostname pinned in a UTS namespace, its unmount) done
// with system calls from this thread, which enters each namespace in turn and
// comes back before anything else runs.
import { closeSync, existsSync, openSync } from 'node:fs';
import koffi from 'koffi';
import { Ip } from './ip.js';
import { netnsPath } from './exec.js';
import { check, libcCalls, AF_INET, SOCK } from './libc.js';
import { inNetnsThread, setns, tcpSocketIn } from './thread-netns.js';

export { inNetnsThread };

const libc = koffi.load('libc.so.6');
const sys = {
  setns,
  unshare: libc.func('int unshare(int flags)') as (flags: number) => number,
  sethostname: libc.func('int sethostname(const char *name, unsigned long len)') as (name: string, len: number) => number,
  mount: libc.func('int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const void *data)') as (
    src: string,
    target: string,
    fstype: string | null,
    flags: number,
    data: null,
  ) => number,
  umount2: libc.func('int umount2(const char *target, int flags)') as (target: string, flags: number) => number,
};
const CLONE_NEWUTS = 0x04000000;
const MS_BIND = 0x1000;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;

/** Make named namespaces (under /run/netns) in one `ip` process. */
export async function addNetnsMany(names: string[]): Promise<void> {
  await new Ip().batch(names.map((n) => ['netns', 'add', n]));
}

/** Remove named namespaces in one `ip` process; missing ones are skipped. */
export async function deleteNetnsMany(names: string[]): Promise<void> {
  await new Ip().batch(names.filter((n) => existsSync(netnsPath(n))).map((n) => ['netns', 'del', n]));
}

/**
 * Call `fn` with this thread in the network and UTS namespaces at `ns`, and
 * come back before returning. A process spawned inside `fn` starts in them
 * (a child inherits its parent thread's namespaces), without an `nsenter`
 * exec in front of it. Undefined when a namespace file is missing: the
 * caller then takes the nsenter path, which reports that as a failed command.
 */
export function spawnedIn<T>(ns: { net: string; uts: string }, fn: () => T): T | undefined {
  if (!existsSync(ns.net) || !existsSync(ns.uts)) return undefined;
  const selfUts = openSync('/proc/thread-self/ns/uts', 'r');
  try {
    const uts = openSync(ns.uts, 'r');
    try {
      return inNetnsThread(ns.net, () => {
        if (sys.setns(uts, CLONE_NEWUTS) < 0) return undefined; // not a UTS namespace (yet): the nsenter path says why
        try {
          return fn();
        } finally {
          if (sys.setns(selfUts, CLONE_NEWUTS) < 0) throw new Error(`cannot return to this process's own UTS namespace: ${libcCalls.strerror(koffi.errno())}`);
        }
      });
    } finally {
      closeSync(uts);
    }
  } finally {
    closeSync(selfUts);
  }
}

/** Loopback up in each namespace (what a runtime does before calling CNI). */
export function loopbackUp(netnsPaths: string[]): void {
  const ifr = Buffer.alloc(40);
  ifr.write('lo', 0);
  for (const path of netnsPaths) {
    inNetnsThread(path, () => {
      const fd = check(libcCalls.socket(AF_INET, SOCK.DGRAM | SOCK.CLOEXEC, 0), `a socket in ${path}`);
      try {
        check(libcCalls.ioctlPtr(fd, SIOCGIFFLAGS, ifr), `reading lo's flags in ${path}`);
        ifr.writeUInt16LE(ifr.readUInt16LE(16) | IFF_UP, 16);
        check(libcCalls.ioctlPtr(fd, SIOCSIFFLAGS, ifr), `setting lo up in ${path}`);
      } finally {
        libcCalls.close(fd);
      }
    });
  }
}

/**
 * A new UTS namespace holding `hostname`, pinned by a bind mount on `file`
 * (which must exist), as `unshare --uts=FILE hostname NAME` does.
 */
export function pinHostname(file: string, hostname: string): void {
  const self = openSync('/proc/thread-self/ns/uts', 'r');
  try {
    check(sys.unshare(CLONE_NEWUTS), 'a new UTS namespace');
    try {
      check(sys.sethostname(hostname, Buffer.byteLength(hostname)), `setting hostname ${hostname}`);
      check(sys.mount('/proc/thread-self/ns/uts', file, null, MS_BIND, null), `pinning the UTS namespace on ${file}`);
    } finally {
      if (sys.setns(self, CLONE_NEWUTS) < 0) throw new Error(`cannot return to this process's own UTS namespace: ${libcCalls.strerror(koffi.errno())}`);
    }
  } finally {
    closeSync(self);
  }
}

/** Unmount each path; one that is not mounted (or gone) is skipped. */
export function unmountMany(paths: string[]): void {
  for (const p of paths) sys.umount2(p, 0);
}


/**
 * The HTTP status of `GET url-path` on `ip:port`, asked from a socket that
 * lives in the namespace at `netnsPath` (made there, then used from here), or
 * undefined when nothing answers in time. No process per call: readiness of
 * a thousand pods costs a thousand sockets, not a thousand curls.
 */
export function httpStatusIn(netnsPath: string, ip: string, port: number, path: string, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const sock = tcpSocketIn(netnsPath);
    let answer = '';
    const done = (status: number | undefined) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.on('error', () => done(undefined));
    sock.on('data', (d) => {
      answer += d.toString('latin1');
      const m = /^HTTP\/\d\.\d (\d{3})/.exec(answer);
      if (m) done(Number(m[1]));
    });
    sock.on('end', () => done(undefined));
    sock.connect(port, ip, () => sock.write(`GET ${path} HTTP/1.0\r\nHost: ${ip}\r\n\r\n`));
  });
}
