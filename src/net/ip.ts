// A typed wrapper over iproute2 (`ip`, `bridge`), bound to one network namespace.
// Reads use `ip -json`; several changes go through one `ip -batch` spawn, or,
// in a long-lived process that asked for it, to an ip kept running (ip-session.ts).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { CommandError, inNetns, run, type Netns } from './exec.js';
import { IpSession } from './ip-session.js';
import { ambientNetns, inAmbientNetns } from './thread-netns.js';
import type { RunsCommands } from './target.js';

export interface AddrInfo {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
  scope?: string;
}

export interface Link {
  ifindex: number;
  ifname: string;
  link?: string;
  link_index?: number;
  link_netnsid?: number;
  flags: string[];
  mtu: number;
  operstate: string;
  master?: string;
  address?: string;
  link_type?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown>; info_slave_kind?: string; info_slave_data?: Record<string, unknown> };
  addr_info?: AddrInfo[];
}

export interface Route {
  /** Set for anything but a plain unicast route: blackhole, local, unreachable, … */
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  flags?: string[];
  metric?: number;
}

export interface Neighbour {
  dst: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

export interface FdbEntry {
  mac: string;
  ifname?: string;
  dst?: string;
  master?: string;
  flags?: string[];
  state?: string;
}

/** The ip kept running per namespace ('' for this process's own), while a long-lived process asked for them. */
let sessions: Map<string, IpSession> | undefined;

/**
 * Keep one `ip` process running for the namespace this process is in (and,
 * in a process serving several, one for each namespace it works in: see
 * thread-netns.ts), and send the batches of `new Ip()` to it (the CNI daemon
 * does this). Returns the function that stops them.
 */
export function keepIpRunning(): () => Promise<void> {
  const mine = (sessions = new Map());
  return async () => {
    if (sessions === mine) sessions = undefined;
    await Promise.all([...mine.values()].map((s) => s.close()));
  };
}

/** The kept ip of the namespace the current work is in; made on first use. */
function keptSession(): IpSession | undefined {
  if (!sessions) return undefined;
  const ns = ambientNetns() ?? '';
  let s = sessions.get(ns);
  if (!s) sessions.set(ns, (s = new IpSession(ns || undefined)));
  return s;
}

/** What `ip route get` answers: the kernel's own forwarding decision for one address. */
export interface RouteLookup {
  type?: string;
  dst: string;
  from?: string;
  gateway?: string;
  dev?: string;
  prefsrc?: string;
  iif?: string;
  flags?: string[];
}

/** Another namespace as this one numbers it (`ip netns list-id`); the name when it is a named one. */
export interface NetnsId {
  nsid: number;
  name?: string;
}

export class Ip {
  /** The namespace on this machine, when there is one to enter; otherwise commands go through `remote`. */
  readonly netns: Netns;
  private readonly remote?: RunsCommands;

  /** A namespace of this machine (a name or a path; none: this process's own), or a node or pod of any backend. */
  constructor(where: Netns | RunsCommands = undefined) {
    if (typeof where === 'object') {
      this.netns = where.netns;
      if (!where.netns) this.remote = where;
    } else this.netns = where;
  }

  private argv(tool: 'ip' | 'bridge', args: string[]): string[] {
    // `ip -n NAME` enters a named namespace itself: one process instead of nsenter + ip.
    const name = this.netns && namedNetns(this.netns);
    return name ? [tool, '-n', name, ...args] : inNetns(this.netns, tool, args);
  }

  private async exec(tool: 'ip' | 'bridge', args: string[], input?: string): Promise<string> {
    if (!this.remote) return (await run(this.argv(tool, args), { input })).stdout;
    const argv = [tool, ...args];
    const r = await this.remote.run(argv, { input, allowFailure: true });
    if (r.exitCode !== 0) throw new CommandError(argv, r.exitCode, r.stderr, r.stdout);
    return r.stdout;
  }

  /** Run one `ip` command. */
  async cmd(...args: string[]): Promise<string> {
    return this.exec('ip', args);
  }

  /** Run several `ip` commands in one process; stops at the first failure and says which line. */
  async batch(lines: string[][]): Promise<void> {
    if (lines.length === 0) return;
    const session = !this.netns && !this.remote ? keptSession() : undefined;
    if (session) {
      await session.batch(lines);
      return;
    }
    if (lines.length === 1) {
      await this.cmd(...lines[0]);
      return;
    }
    const text = lines.map((l) => l.join(' ')).join('\n') + '\n';
    await this.exec('ip', ['-batch', '-'], text);
  }

  /**
   * Several commands in one `ip -json -details -batch`: returns one array per
   * `show` line, in order. On failure the CommandError names the line
   * (see failedBatchLine) and its stdout holds what the lines before printed.
   */
  async batchJson<T>(lines: string[][]): Promise<T[][]> {
    const session = !this.netns && !this.remote ? keptSession() : undefined;
    if (session) return parseJsonLines<T>(await session.batch(lines));
    const text = lines.map((l) => l.join(' ')).join('\n') + '\n';
    return parseJsonLines<T>(await this.exec('ip', ['-json', '-details', '-batch', '-'], text));
  }

  async json<T>(...args: string[]): Promise<T> {
    const out = await this.cmd('-json', ...args);
    return (out.trim() ? JSON.parse(out) : []) as T;
  }

  async bridgeJson<T>(...args: string[]): Promise<T> {
    const out = await this.exec('bridge', ['-json', ...args]);
    return (out.trim() ? JSON.parse(out) : []) as T;
  }

  async bridgeCmd(...args: string[]): Promise<void> {
    await this.exec('bridge', args);
  }

  /** Several `bridge` commands (FDB entries) in one process. */
  async bridgeBatch(lines: string[][]): Promise<void> {
    if (lines.length === 0) return;
    if (lines.length === 1) return this.bridgeCmd(...lines[0]);
    await this.exec('bridge', ['-batch', '-'], lines.map((l) => l.join(' ')).join('\n') + '\n');
  }

  /** A link by name, or undefined when it does not exist. */
  async link(name: string): Promise<Link | undefined> {
    try {
      const links = await this.json<Link[]>('-details', 'link', 'show', 'dev', name);
      return links[0];
    } catch (e) {
      if (e instanceof CommandError && /does not exist|Cannot find device/.test(e.stderr)) return undefined;
      throw e;
    }
  }

  async links(): Promise<Link[]> {
    return this.json<Link[]>('-details', 'link', 'show');
  }

  async addrs(dev?: string): Promise<Link[]> {
    return dev ? this.json<Link[]>('addr', 'show', 'dev', dev) : this.json<Link[]>('addr', 'show');
  }

  async routes(...filter: string[]): Promise<Route[]> {
    return this.json<Route[]>('route', 'show', ...filter);
  }

  /** The IPv6 routes of the main table (`ip route show` lists IPv4 only). */
  async routes6(...filter: string[]): Promise<Route[]> {
    return this.json<Route[]>('-6', 'route', 'show', ...filter);
  }

  async neighbours(dev?: string): Promise<Neighbour[]> {
    return dev ? this.json<Neighbour[]>('neigh', 'show', 'dev', dev) : this.json<Neighbour[]>('neigh', 'show');
  }

  async fdb(dev: string): Promise<FdbEntry[]> {
    return this.bridgeJson<FdbEntry[]>('fdb', 'show', 'dev', dev);
  }

  /** Every FDB entry: bridge ports, VXLAN remotes, the bridges' own addresses. */
  async fdbAll(): Promise<FdbEntry[]> {
    return this.bridgeJson<FdbEntry[]>('fdb', 'show');
  }

  /** Links with their addresses and details (kind, VXLAN id, bridge port) in one call. */
  async linksWithAddrs(): Promise<Link[]> {
    return this.json<Link[]>('-details', 'addr', 'show');
  }

  /**
   * The kernel's route decision for `dst`. With `iif` (and `from`), the decision for a
   * packet arriving on that interface, as a forwarding node makes it.
   */
  async routeGet(dst: string, opts: { from?: string; iif?: string } = {}): Promise<RouteLookup> {
    const args = ['route', 'get', dst, ...(opts.from ? ['from', opts.from] : []), ...(opts.iif ? ['iif', opts.iif] : [])];
    const [answer] = await this.json<RouteLookup[]>(...args);
    return answer;
  }

  async netnsIds(): Promise<NetnsId[]> {
    return this.json<NetnsId[]>('netns', 'list-id');
  }

  async deleteLink(name: string): Promise<boolean> {
    try {
      await this.cmd('link', 'del', 'dev', name);
      return true;
    } catch (e) {
      if (e instanceof CommandError && /does not exist|Cannot find device/.test(e.stderr)) return false;
      throw e;
    }
  }

  /** Write sysctls inside this namespace (/proc/sys/net is per namespace). Keys with an interface name use the slash form. */
  async sysctl(values: Record<string, string | number>): Promise<void> {
    if (this.remote) {
      await this.remote.run(['sysctl', '-q', '-w', ...Object.entries(values).map(([k, v]) => `${k}=${v}`)]);
      return;
    }
    if (!this.netns) {
      // Already in the namespace: /proc/sys is ours, no process needed.
      // /proc/sys/net shows the namespace of the thread that opens it.
      inAmbientNetns(() => {
        for (const [k, v] of Object.entries(values)) writeFileSync(`/proc/sys/${k.includes('/') ? k : k.replace(/\./g, '/')}`, String(v));
      });
      return;
    }
    const args = Object.entries(values).map(([k, v]) => `${k}=${v}`);
    await run(inNetns(this.netns, 'sysctl', ['-q', '-w', ...args]));
  }

  /** A sysctl's value; undefined when the key does not exist. */
  async readSysctl(key: string): Promise<string | undefined> {
    if (this.remote) return (await this.remote.run(['sysctl', '-n', key], { allowFailure: true })).stdout.trim() || undefined;
    if (!this.netns) {
      // As in sysctl(): read from this thread, in the namespace of the work that asks.
      try {
        return inAmbientNetns(() => readFileSync(`/proc/sys/${key.includes('/') ? key : key.replace(/\./g, '/')}`, 'utf8')).trim();
      } catch {
        return undefined;
      }
    }
    return (await run(inNetns(this.netns, 'sysctl', ['-n', key]), { allowFailure: true })).stdout.trim() || undefined;
  }
}

/** The name of a namespace under /run/netns (what `ip -n` takes), or undefined for any other path. */
/**
 * A MAC for a tunnel device, given at creation as flannel and Felix do: a
 * kernel-chosen one may be replaced by udev (MACAddressPolicy=persistent) after
 * it was published, and then the other nodes send to a MAC the device drops.
 */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0] & 0xfe) | 0x02; // unicast, locally administered
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function namedNetns(netns: string): string | undefined {
  if (!netns.startsWith('/')) return netns;
  const m = /^(?:\/var)?\/run\/netns\/([^/]+)$/.exec(netns);
  return m ? m[1] : undefined;
}

/** `ip -json -batch` prints each `show` as one JSON array on its own line. */
export function parseJsonLines<T>(out: string): T[][] {
  return out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T[]);
}

/** The 1-based line of an `ip -batch` input that failed, from ip's "Command failed -:N". */
export function failedBatchLine(e: unknown): number | undefined {
  const m = e instanceof CommandError ? /Command failed [^\n]*:(\d+)/.exec(e.stderr) : null;
  return m ? Number(m[1]) : undefined;
}

export function isNotFound(e: unknown): boolean {
  return e instanceof CommandError && /does not exist|Cannot find device|No such file|Cannot open network namespace/.test(e.stderr);
}
