// Named network namespaces (/run/netns/<name>), created and removed with `ip netns`.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { run, netnsPath } from './exec.js';

export async function addNetns(name: string): Promise<string> {
  await run(['ip', 'netns', 'add', name]);
  return netnsPath(name);
}

/** Remove a named namespace; a missing one is not an error. */
export async function deleteNetns(name: string): Promise<void> {
  if (!existsSync(netnsPath(name))) return;
  await run(['ip', 'netns', 'del', name], { allowFailure: true });
}

export function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

export function netnsExists(netns: string): boolean {
  return existsSync(netnsPath(netns));
}

/** The inode that identifies a namespace: two paths name the same namespace when these match. */
export function netnsInode(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** The name under /run/netns of the namespace at `path`, if it has one. */
export function netnsNameOf(path: string): string | undefined {
  const inode = netnsInode(path);
  return inode === undefined ? undefined : listNetns().find((n) => netnsInode(netnsPath(n)) === inode);
}

/**
 * argv that runs `argv` with `file` in place of /etc/resolv.conf, in a mount
 * namespace of its own: pods share their node's files, but each needs the
 * cluster DNS and search path its kubelet would write.
 */
export function withResolvConf(file: string, argv: string[]): string[] {
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', file, ...argv];
}

/** The same, decided where the command runs: for a node whose files this machine cannot see (the file may not be there). */
export function withResolvConfIfThere(file: string, argv: string[]): string[] {
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', '{ [ ! -e "$0" ] || mount --bind "$0" /etc/resolv.conf; } && exec "$@"', file, ...argv];
}
