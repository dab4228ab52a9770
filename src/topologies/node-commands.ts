// What a remote node runs, as pure functions of their inputs. The docker and
// vagrant backends reach a node through a shell (`docker exec`, `vagrant ssh`)
// and send it these same argvs; the netns backend needs none of them.
// Arguments always travel as positional parameters ("$1", "$@"), never pasted
// into the script, so no value needs quoting inside it. The kernel work among
// them (a node's forwarding and routes, pod sandboxes) is in src/net/node-scripts.ts.
import { shArgv } from '../net/node-scripts.js';

export { createSandboxArgv, nodeInitArgv, podArgv, podUtsFile, removeSandboxArgv, shArgv, shQuote } from '../net/node-scripts.js';

/** Field 22 of /proc/PID/stat (start time in clock ticks); the command name may hold spaces, so cut after its ")". */
const startTimeOf = (pid: string) => `sed 's/.*) //' /proc/${pid}/stat 2>/dev/null | cut -d' ' -f20`;

/**
 * Start a long-running command in its own session (so neither the end of this
 * exec nor a closed ssh session stops it), with its output appended to `log`.
 * Prints "PID STARTTIME" of the command itself and returns at once.
 */
export function startArgv(log: string, argv: string[]): string[] {
  const script = [
    'log="$1"; shift',
    'mkdir -p "$(dirname "$log")" || exit 1',
    'setsid "$@" >>"$log" 2>&1 </dev/null &',
    `echo "$! $(${startTimeOf('$!')})"`,
  ].join('\n');
  return shArgv(script, log, ...argv);
}

/** Parse what startArgv printed. */
export function parseStarted(stdout: string): { pid: number; startTime: number } {
  const m = /^(\d+) (\d+)\s*$/m.exec(stdout);
  if (!m) throw new Error(`could not read the PID of a started process from ${JSON.stringify(stdout.slice(0, 200))}`);
  return { pid: Number(m[1]), startTime: Number(m[2]) };
}

/**
 * Stop a process by PID if it is still the one we started (same start time):
 * SIGTERM, then SIGKILL after `graceMs`. A process that is gone already is fine.
 */
export function stopArgv(pid: number, startTime: number, graceMs = 2000): string[] {
  const tries = Math.max(1, Math.round(graceMs / 20));
  const script = [
    `[ "$(${startTimeOf('$1')})" = "$2" ] || exit 0`,
    'kill -TERM "$1" 2>/dev/null || exit 0',
    `i=0; while [ $i -lt ${tries} ]; do`,
    `  st=$(sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f1); [ -z "$st" ] || [ "$st" = Z ] && exit 0`,
    '  sleep 0.02; i=$((i+1))',
    'done',
    'kill -KILL "$1" 2>/dev/null; exit 0',
  ].join('\n');
  return shArgv(script, String(pid), String(startTime));
}

/** Prints the start time of PID, nothing when there is no such process. */
export function startTimeArgv(pid: number): string[] {
  return shArgv(startTimeOf('$1'), String(pid));
}

/** Create a file with the content on stdin, and its directory. */
export function writeFileArgv(path: string): string[] {
  return shArgv('mkdir -p "$(dirname "$1")" && cat > "$1"', path);
}

export function readFileArgv(path: string): string[] {
  return ['cat', path];
}

/** Directories every node has, as the netns backend makes them. */
export const NODE_DIRS = ['/etc/cni/net.d', '/var/lib/cni', '/run/flannel', '/var/log'];

/** A BPF filesystem on /sys/fs/bpf, unless one is there: the node's own mount, gone with the node. */
export function bpffsArgv(dir = '/sys/fs/bpf'): string[] {
  return shArgv('[ "$(stat -f -c %T "$1" 2>/dev/null)" = bpf_fs ] || { mkdir -p "$1" && mount -t bpf bpf "$1"; }', dir);
}

/** `env K=V … argv`: for transports (ssh) that carry no environment of their own. */
export function withEnv(env: Record<string, string> | undefined, argv: string[]): string[] {
  const pairs = Object.entries(env ?? {}).map(([k, v]) => `${k}=${v}`);
  return pairs.length ? ['env', ...pairs, ...argv] : argv;
}
