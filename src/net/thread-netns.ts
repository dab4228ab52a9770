// Namespaces entered by this thread alone, for the length of one synchronous
// call: a socket made there or a process spawned there stays there (a socket
// keeps the namespace it was made in, a child starts in its parent thread's),
// and the thread is back before anything else runs.
//
// A process serving several namespaces at once (the CNI daemon of every node
// of a lab) says which one a piece of asynchronous work belongs to with
// `withAmbientNetns`: the processes it spawns, the netlink sockets it opens
// and the sysctls it writes for "this namespace" then go to that one.
import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, openSync } from 'node:fs';
import { createConnection, isIP, Socket } from 'node:net';
import koffi from 'koffi';
import { AF_INET, check, libcCalls, SOCK } from './libc.js';

const AF_INET6 = 10;

const libc = koffi.load('libc.so.6');
export const setns = libc.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number;
export const CLONE_NEWNET = 0x40000000;

/** Run `fn` with this thread in the network namespace at `path`, then come back. */
export function inNetnsThread<T>(path: string, fn: () => T): T {
  const self = openSync('/proc/thread-self/ns/net', 'r');
  try {
    const target = openSync(path, 'r');
    try {
      check(setns(target, CLONE_NEWNET), `entering ${path}`);
    } finally {
      closeSync(target);
    }
    try {
      return fn();
    } finally {
      // Coming back cannot fail for a namespace we were in; if it did, nothing here would be safe to go on with.
      if (setns(self, CLONE_NEWNET) < 0) throw new Error(`cannot return to this process's own namespace: ${libcCalls.strerror(koffi.errno())}`);
    }
  } finally {
    closeSync(self);
  }
}

// Created on first use: a process that never serves another namespace pays nothing for it.
let ambient: AsyncLocalStorage<string> | undefined;

/** Run `fn`, and everything asynchronous it starts, as if this process were in the namespace at `path`. */
export function withAmbientNetns<T>(path: string, fn: () => T): T {
  ambient ??= new AsyncLocalStorage<string>();
  return ambient.run(path, fn);
}

/** The namespace the current work belongs to, when it is not this process's own. */
export function ambientNetns(): string | undefined {
  return ambient?.getStore();
}

/** A synchronous call (a spawn, a socket) made in the current work's namespace. */
export function inAmbientNetns<T>(fn: () => T): T {
  const path = ambient?.getStore();
  return path ? inNetnsThread(path, fn) : fn();
}

/** A TCP socket made in the namespace at `path`, not yet connected: Node uses it from here. */
export function tcpSocketIn(path: string, family: 4 | 6 = 4): Socket {
  const fd = inNetnsThread(path, () => check(libcCalls.socket(family === 6 ? AF_INET6 : AF_INET, SOCK.STREAM | SOCK.NONBLOCK | SOCK.CLOEXEC, 0), `a socket in ${path}`));
  return new Socket({ fd, readable: true, writable: true });
}

/**
 * A TCP connection from the current work's namespace (for node:http's
 * `createConnection`). Node makes a socket a tick after connect() is called,
 * when this thread is back in its own namespace: the socket is made there first.
 */
export function connectInAmbientNetns(opts: { host?: string | null; port?: number | string | null }): Socket {
  const path = ambient?.getStore();
  const to = { host: opts.host ?? 'localhost', port: Number(opts.port) };
  return path ? tcpSocketIn(path, isIP(to.host) === 6 ? 6 : 4).connect(to) : createConnection(to);
}
