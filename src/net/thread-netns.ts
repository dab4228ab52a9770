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
import koffi from 'koffi';
import { check, libcCalls } from './libc.js';

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
