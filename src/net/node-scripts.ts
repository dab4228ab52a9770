// The kernel work on a node that is reached only through a shell (docker exec,
// ssh), one round trip each: the node made a node, pod sandboxes made and
// removed, a command run inside one. Arguments travel as positional parameters,
// never pasted into a script.

/** Quote one word for a POSIX shell. */
export function shQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** `sh -c script` with `args` as $1, $2, … */
export function shArgv(script: string, ...args: string[]): string[] {
  return ['sh', '-c', script, 'sh', ...args];
}

/**
 * Make a node as a node has it: the node-private directories a CNI runtime and
 * agents use, forwarding on, strict reverse-path filtering off, and no default
 * route (nothing of a lab leaves the machine) unless the backend keeps it: a
 * real host's own routes are never the lab's to change.
 */
export function nodeInitArgv(dirs: string[], opts: { keepDefaultRoute?: boolean } = {}): string[] {
  const script = [
    'mkdir -p "$@"',
    'sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0',
    ...(opts.keepDefaultRoute ? [] : ['ip route del default 2>/dev/null; true']),
  ].join(' && ');
  return shArgv(script, ...dirs);
}

/** The sysctls nodeInitArgv sets: a backend that keeps the machine (hosts) puts them back afterwards. */
export const NODE_INIT_SYSCTLS = ['net.ipv4.ip_forward', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.default.rp_filter'];

/** Where a pod's hostname (a UTS namespace pinned on a file) lives inside its node. */
export function podUtsFile(pod: string): string {
  return `/run/cnilab/pods/${pod}/uts`;
}

/** A pod sandbox inside a node: a named network namespace with loopback up, and a hostname. */
export function createSandboxArgv(netns: string, pod: string): string[] {
  const script = [
    'ip netns add "$1"',
    'ip -n "$1" link set lo up',
    'mkdir -p "$(dirname "$2")"',
    ': > "$2"',
    'unshare --uts="$2" hostname "$3"',
  ].join(' && ');
  return shArgv(script, netns, podUtsFile(pod), pod);
}

/** Stop what runs in a sandbox (SIGTERM, then SIGKILL), then remove it; missing parts are fine. */
export function removeSandboxArgv(netns: string, pod: string): string[] {
  const script = [
    'pids() { ip netns pids "$1" 2>/dev/null; }',
    'for p in $(pids "$1"); do kill -TERM "$p" 2>/dev/null; done',
    'i=0; while [ -n "$(pids "$1")" ] && [ $i -lt 100 ]; do sleep 0.02; i=$((i+1)); done',
    'for p in $(pids "$1"); do kill -KILL "$p" 2>/dev/null; done',
    'ip netns del "$1" 2>/dev/null',
    'umount "$2" 2>/dev/null',
    'rm -rf "$(dirname "$2")"',
    'true',
  ].join('\n');
  return shArgv(script, netns, podUtsFile(pod));
}

/** Run a command inside a pod's sandbox on its node. */
export function podArgv(netns: string, pod: string, argv: string[]): string[] {
  return ['nsenter', `--net=/run/netns/${netns}`, `--uts=${podUtsFile(pod)}`, '--', ...argv];
}
