// One `ip` process kept running for the namespace this process is in: each
// command goes down a pipe instead of starting a process, which costs about as
// much as the kernel work itself. A long-lived process (the CNI daemon) turns
// it on; a one-shot plugin has nothing to keep.
//
// ip runs with -force so that it survives a failing command; after every
// command we send a `link show` of a name longer than any interface can have.
// Its error marks where the command's output ends in the one stream that
// carries ip's stdout and stderr, in the order ip wrote them.
import type { ChildProcess } from 'node:child_process';
import { CommandError, inNetns, startPiped, trace, type Netns } from './exec.js';

const ARGS = ['-json', '-details', '-force', '-batch', '-'];

interface Pending {
  marker: string;
  resolve(text: string): void;
  reject(e: Error): void;
}

export class IpSession {
  private child?: ChildProcess;
  private stream = '';
  private pending?: Pending;
  private queue: Promise<unknown> = Promise.resolve();
  private seq = 0;
  private readonly argv: string[];

  /** For the namespace this process is in, or (for tests) another one. */
  constructor(netns: Netns = undefined) {
    this.argv = inNetns(netns, 'ip', ARGS);
  }

  /** The ip process, while one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Like `ip -json -details -batch`: runs the lines in order, stops at the
   * first failure (a CommandError whose stderr names the line, whose stdout
   * holds what the lines before printed), returns what the show lines printed.
   */
  batch(lines: string[][]): Promise<string> {
    const t0 = performance.now();
    const job = this.queue.then(() => this.runLines(lines));
    if (trace) void job.finally(() => trace!(['ip-session', `(${lines.length} lines)`], t0)).catch(() => undefined);
    this.queue = job.catch(() => undefined);
    return job;
  }

  /** End ip (its stdin closes) and wait until it is gone; SIGKILL after 2 s. */
  async close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.stdin?.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }

  private async runLines(lines: string[][]): Promise<string> {
    let stdout = '';
    for (let i = 0; i < lines.length; i++) {
      const text = await this.one(lines[i].join(' '));
      const out = text.split('\n').filter((l) => l.startsWith('[') || l.startsWith('{'));
      const rest = text.split('\n').filter((l) => l && !l.startsWith('[') && !l.startsWith('{'));
      stdout += out.map((l) => l + '\n').join('');
      if (rest.length && /^Command failed /.test(rest[rest.length - 1])) {
        const errors = rest.slice(0, -1).join('\n');
        throw new CommandError(this.argv, 1, `${errors}\nCommand failed -:${i + 1}\n`, stdout);
      }
    }
    return stdout;
  }

  private one(line: string): Promise<string> {
    const child = this.start();
    const marker = `cnilab-sentinel-${++this.seq}`;
    return new Promise<string>((resolve, reject) => {
      this.pending = { marker, resolve, reject };
      child.stdin!.write(`${line}\nlink show dev ${marker}\n`);
    });
  }

  private start(): ChildProcess {
    if (this.child) return this.child;
    const child = startPiped(this.argv);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      this.stream += d;
      this.settle();
    });
    const gone = (why: string) => {
      if (this.child === child) this.child = undefined;
      this.stream = '';
      this.pending?.reject(new CommandError(this.argv, null, `ip stopped: ${why}`));
      this.pending = undefined;
    };
    child.on('exit', (code, signal) => gone(`exit ${code ?? signal}`));
    child.on('error', (e) => gone(e.message));
    child.stdin!.on('error', () => undefined); // reported by 'exit'
    this.child = child;
    return child;
  }

  /** Hand the pending command its text once the sentinel's error has arrived. */
  private settle(): void {
    const p = this.pending;
    if (!p) return;
    const end = new RegExp(`Device "${p.marker}" does not exist\\.\\nCommand failed -:\\d+\\n`).exec(this.stream);
    if (!end) return;
    const text = this.stream.slice(0, end.index);
    this.stream = this.stream.slice(end.index + end[0].length);
    this.pending = undefined;
    p.resolve(text);
  }
}
