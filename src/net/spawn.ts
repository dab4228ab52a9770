// Starting a process with posix_spawn (glibc: clone with CLONE_VM|CLONE_VFORK)
// instead of Node's fork-then-exec. A fork copies the page tables of this
// whole process and write-protects its heap, so each later write to the heap
// faults once: with a few hundred MB resident that is milliseconds a process,
// and a thousand pods start thousands of them. The child shares our memory
// until it execs, which costs the same at any heap size.
//
// Children started here are not libuv's: we reap them ourselves after SIGCHLD.
import koffi from 'koffi';
import { check } from './libc.js';

const libc = koffi.load('libc.so.6');
const c = {
  faInit: libc.func('int posix_spawn_file_actions_init(void *fa)') as (fa: Buffer) => number,
  faDestroy: libc.func('int posix_spawn_file_actions_destroy(void *fa)') as (fa: Buffer) => number,
  faDup2: libc.func('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)') as (fa: Buffer, fd: number, newfd: number) => number,
  faOpen: libc.func('int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int oflag, unsigned int mode)') as (
    fa: Buffer,
    fd: number,
    path: string,
    oflag: number,
    mode: number,
  ) => number,
  faChdir: libc.func('int posix_spawn_file_actions_addchdir_np(void *fa, const char *path)') as (fa: Buffer, path: string) => number,
  attrInit: libc.func('int posix_spawnattr_init(void *attr)') as (attr: Buffer) => number,
  attrDestroy: libc.func('int posix_spawnattr_destroy(void *attr)') as (attr: Buffer) => number,
  attrFlags: libc.func('int posix_spawnattr_setflags(void *attr, short flags)') as (attr: Buffer, flags: number) => number,
  attrSigdefault: libc.func('int posix_spawnattr_setsigdefault(void *attr, void *set)') as (attr: Buffer, set: Buffer) => number,
  attrSigmask: libc.func('int posix_spawnattr_setsigmask(void *attr, void *set)') as (attr: Buffer, set: Buffer) => number,
  spawnp: libc.func('int posix_spawnp(_Out_ int *pid, const char *file, void *fa, void *attr, const char **argv, const char **envp)') as (
    pid: number[],
    file: string,
    fa: Buffer,
    attr: Buffer,
    argv: (string | null)[],
    envp: (string | null)[],
  ) => number,
  waitpid: libc.func('int waitpid(int pid, _Out_ int *status, int options)') as (pid: number, status: number[], options: number) => number,
  pipe2: libc.func('int pipe2(void *fds, int flags)') as (fds: Buffer, flags: number) => number,
  strerror: libc.func('const char *strerror(int errnum)') as (errnum: number) => string,
};

// glibc's values (spawn.h, signal numbers on Linux).
const SPAWN = { SETSIGDEF: 0x04, SETSIGMASK: 0x08, SETSID: 0x80 } as const;
const SIGPIPE = 13;
const WNOHANG = 1;
const O_RDONLY = 0;
// Larger than glibc's posix_spawn_file_actions_t (80 bytes), posix_spawnattr_t (336) and sigset_t (128).
const OPAQUE = 512;

/** Node ignores SIGPIPE, and an ignored signal stays ignored across exec: the child gets the default back. */
const sigDefault = (() => {
  const set = Buffer.alloc(128);
  set[(SIGPIPE - 1) >> 3] |= 1 << ((SIGPIPE - 1) & 7);
  return set;
})();
const noSignalsBlocked = Buffer.alloc(128);

/** Children started here and not reaped yet (detached daemons: nobody here waits for them). */
const children = new Set<number>();
/** Children someone waits for (a command's exit code): few at a time, looked at on every SIGCHLD. */
const waited = new Map<number, (status: number) => void>();
let reaping = false;
let sweep: NodeJS.Timeout | undefined;

/** Reap the waited-for children that have exited (also called by a waiter that knows its child is ending). */
export function reapWaited(): void {
  for (const [pid, done] of waited) {
    const status = [0];
    if (c.waitpid(pid, status, WNOHANG) === pid) {
      waited.delete(pid);
      done(status[0]);
    }
  }
}

/** Reap what has exited, at most once a second: a thousand daemons must not cost a thousand waitpid calls per SIGCHLD. */
function reapSoon(): void {
  reapWaited();
  sweep ??= setTimeout(() => {
    sweep = undefined;
    for (const pid of children) if (c.waitpid(pid, [0], WNOHANG) === pid) children.delete(pid);
  }, 1000).unref();
}

export class SpawnError extends Error {
  constructor(
    readonly file: string,
    readonly errno: number,
  ) {
    super(`cannot start ${file}: ${c.strerror(errno)}`);
  }
  /** As Node names it, for callers that tell a missing program apart. */
  get code(): string | undefined {
    return this.errno === 2 ? 'ENOENT' : this.errno === 13 ? 'EACCES' : undefined;
  }
}

export interface SpawnOptions {
  /** Descriptors for the child's 0, 1 and 2; stdin undefined means /dev/null. */
  stdin?: number;
  stdout: number;
  stderr: number;
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Told the raw wait status once it has exited (it is then reaped at once, not in the next sweep). */
  onExit?: (status: number) => void;
  /** A session of its own (Node's `detached`): no terminal signals from ours. */
  setsid?: boolean;
}

/** Start `argv` (looked up in PATH) and return its PID; throws SpawnError when it cannot be executed. */
export function posixSpawn(argv: string[], opts: SpawnOptions): number {
  if (!reaping) {
    // Node's signal handles do not keep the process alive; libuv reaps only its own children.
    process.on('SIGCHLD', reapSoon);
    reaping = true;
  }
  const fa = Buffer.alloc(OPAQUE);
  const attr = Buffer.alloc(OPAQUE);
  check(c.faInit(fa) === 0 ? 0 : -1, 'posix_spawn_file_actions_init');
  check(c.attrInit(attr) === 0 ? 0 : -1, 'posix_spawnattr_init');
  try {
    if (opts.stdin === undefined) c.faOpen(fa, 0, '/dev/null', O_RDONLY, 0);
    else c.faDup2(fa, opts.stdin, 0);
    c.faDup2(fa, opts.stdout, 1);
    c.faDup2(fa, opts.stderr, 2);
    if (opts.cwd) c.faChdir(fa, opts.cwd);
    c.attrSigdefault(attr, sigDefault);
    c.attrSigmask(attr, noSignalsBlocked);
    c.attrFlags(attr, SPAWN.SETSIGDEF | SPAWN.SETSIGMASK | (opts.setsid ? SPAWN.SETSID : 0));
    const env = Object.entries(opts.env)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v}`);
    const pid = [0];
    const err = c.spawnp(pid, argv[0], fa, attr, [...argv, null], [...env, null]);
    if (err !== 0) throw new SpawnError(argv[0], err);
    if (opts.onExit) waited.set(pid[0], opts.onExit);
    else children.add(pid[0]);
    return pid[0];
  } finally {
    c.faDestroy(fa);
    c.attrDestroy(attr);
  }
}

/** A pipe whose both ends close on exec (the child gets its end through dup2). */
export function pipe(): [read: number, write: number] {
  const fds = Buffer.alloc(8);
  check(c.pipe2(fds, O_CLOEXEC), 'a pipe');
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}
const O_CLOEXEC = 0o2000000;

/** The exit code of a wait status (128 + signal for a killed process, as a shell says it). */
export function exitCode(status: number): number {
  const signal = status & 0x7f;
  return signal === 0 ? (status >> 8) & 0xff : 128 + signal;
}
