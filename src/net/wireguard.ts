// WireGuard through wireguard-tools (`wg`), on a kernel link or on the TUN
// device of wireguard-go, the user-space implementation. Both speak to `wg`:
// the kernel over netlink, wireguard-go over a socket in /run/wireguard. Nodes
// of the netns backend share one filesystem, so each node gets its own socket
// directory, bind-mounted over /run/wireguard in a private mount namespace for
// wireguard-go and for every `wg` that talks to it.
import { inNetns, run, type Netns } from './exec.js';

export const WG_SOCKET_DIR = '/run/wireguard';

/** argv that runs `cmd args` with `runDir` seen as /run/wireguard (as it is when runDir is /run/wireguard). */
export function withSocketDir(runDir: string, cmd: string, args: string[]): string[] {
  if (runDir === WG_SOCKET_DIR) return [cmd, ...args];
  const script = `mkdir -p "$1" ${WG_SOCKET_DIR} && mount --bind "$1" ${WG_SOCKET_DIR} && shift && exec "$@"`;
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', runDir, cmd, ...args];
}

/** wireguard-go in the foreground for `ifname`: the process is the daemon, so its PID is the one to stop. */
export function wireguardGoArgv(runDir: string, ifname: string): string[] {
  return withSocketDir(runDir, 'wireguard-go', ['--foreground', ifname]);
}

export class Wg {
  constructor(
    readonly netns: Netns = undefined,
    /** Where wireguard-go's socket lives for this node. */
    readonly runDir = WG_SOCKET_DIR,
  ) {}

  async cmd(args: string[], input?: string): Promise<string> {
    return (await run(inNetns(this.netns, ...splitFirst(withSocketDir(this.runDir, 'wg', args))), input === undefined ? {} : { input })).stdout;
  }

  async genKey(): Promise<string> {
    return (await run(['wg', 'genkey'])).stdout.trim();
  }

  async pubKey(privateKey: string): Promise<string> {
    return (await run(['wg', 'pubkey'], { input: privateKey + '\n' })).stdout.trim();
  }

  /** `wg set IFNAME …`: keys, port, peers. */
  async set(ifname: string, ...args: string[]): Promise<void> {
    await this.cmd(['set', ifname, ...args]);
  }

  /** The public keys of the device's peers. */
  async peers(ifname: string): Promise<string[]> {
    return (await this.cmd(['show', ifname, 'peers'])).split('\n').filter(Boolean);
  }
}

const splitFirst = (argv: string[]): [string, string[]] => [argv[0], argv.slice(1)];
