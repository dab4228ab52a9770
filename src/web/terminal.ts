// A terminal in the page: a real pty on this machine running the lab's shell
// on a node or in a pod (the argv the backend gives, as `cnilab shell` runs
// it), its output sent to the page as it comes, keys and resizes back.
import type { IPty } from 'node-pty';

let ptySpawn: (typeof import('node-pty'))['spawn'] | undefined;

/**
 * node-pty is a native addon, an optional dependency that npm builds with g++, make,
 * python3 and Node's headers: loaded when `serve` starts, so no other command needs it.
 */
export async function loadPty(): Promise<void> {
  if (ptySpawn) return;
  try {
    ptySpawn = (await import('node-pty')).spawn;
  } catch (e) {
    throw new Error(
      `cnilab serve needs node-pty, a native addon npm builds at install (g++, make and python3 from scripts/setup.sh, and Node's headers); it did not load: ${(e as Error).message.split('\n')[0]}`,
    );
  }
}

export interface TerminalSize {
  cols: number;
  rows: number;
}

export interface PtyPeer {
  /** Output of the shell, for the page. */
  output(data: string): void;
  exited(code: number): void;
}

/** The pty's environment: nothing of the server's own (its tokens, its paths) goes in. */
export function shellEnv(): Record<string, string> {
  return { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', TERM: 'xterm-256color', HOME: '/root', LANG: process.env.LANG ?? 'C.UTF-8' };
}

const clamp = (n: unknown, lo: number, hi: number, dflt: number) => (typeof n === 'number' && Number.isInteger(n) ? Math.min(hi, Math.max(lo, n)) : dflt);

export function sizeOf(v: { cols?: unknown; rows?: unknown }): TerminalSize {
  return { cols: clamp(v.cols, 10, 500, 100), rows: clamp(v.rows, 4, 200, 30) };
}

export class PtySession {
  private readonly pty: IPty;

  constructor(argv: string[], size: TerminalSize, peer: PtyPeer) {
    if (!ptySpawn) throw new Error('PtySession before loadPty()');
    this.pty = ptySpawn(argv[0], argv.slice(1), { name: 'xterm-256color', cols: size.cols, rows: size.rows, cwd: '/', env: shellEnv() });
    this.pty.onData((d) => peer.output(d));
    this.pty.onExit(({ exitCode }) => peer.exited(exitCode));
  }

  get pid(): number {
    return this.pty.pid;
  }

  /** Keys as typed: Ctrl-C is \x03, and the pty's line discipline turns it into SIGINT for the foreground job. */
  input(data: string): void {
    this.pty.write(data);
  }

  resize(size: TerminalSize): void {
    this.pty.resize(size.cols, size.rows);
  }

  close(): void {
    try {
      this.pty.kill('SIGHUP');
    } catch {
      // already gone
    }
  }
}
