// One `ip` process kept running for the namespace this process is in: a batch
// goes down a pipe instead of starting a process, which costs about as much
// as the kernel work itself. A long-lived process (the CNI daemon) turns it
// on; a one-shot plugin has nothing to keep.
//
// ip reads `-batch -` from the pipe. Every batch ends with `link show dev lo`,
// whose JSON line says that the lines before it are done: each `show` line
// prints exactly one JSON line, the others print none. ip stops, and exits,
// at the first failing line, as `ip -batch` does; the next batch starts a new
// ip. stdout and stderr arrive merged, in the order ip wrote them. A line
// that failed on a stale name (see runBatch) is run again once in a new ip.
import type { ChildProcess } from 'node:child_process';
import { CommandError, inNetns, startPiped, trace, type Netns } from './exec.js';

const ARGS = ['-json', '-details', '-batch', '-'];
const END = ['link', 'show', 'dev', 'lo'];

interface Pending {
  /** JSON lines that finish the batch: one per show line, one for END. */
  want: number;
  done(text: string, exited: boolean): void;
}

const isJson = (line: string) => line.startsWith('[') || line.startsWith('{');

export class IpSession {
  private child?: ChildProcess;
  private stream = '';
  private pending?: Pending;
  private queue: Promise<unknown> = Promise.resolve();
  /** Lines the current ip has been sent: ip numbers its failures from its own start. */
  private sent = 0;
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
    const job = this.queue.then(() => this.runBatch(lines));
    this.queue = job.catch(() => undefined);
    if (trace) void job.finally(() => trace!(['ip-session', `(${lines.length} lines)`], t0)).catch(() => undefined);
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

  private async runBatch(lines: string[][], retried = false): Promise<string> {
    const child = this.start();
    const first = this.sent + 1;
    this.sent += lines.length + 1;
    const { text, exited } = await new Promise<{ text: string; exited: boolean }>((resolve) => {
      this.pending = { want: lines.filter((l) => l[1] === 'show').length + 1, done: (text, exited) => resolve({ text, exited }) };
      child.stdin!.write([...lines, END].map((l) => l.join(' ')).join('\n') + '\n');
    });
    const all = text.split('\n').filter(Boolean);
    const json = all.filter(isJson);
    if (!exited) return json.slice(0, -1).map((l) => l + '\n').join(''); // without END's line
    const stdout = json.map((l) => l + '\n').join('');
    const failed = all.map((l) => /^Command failed .*:(\d+)$/.exec(l)).find(Boolean);
    if (!failed) throw new CommandError(this.argv, null, `ip stopped in the middle of a batch: ${all.filter((l) => !isJson(l)).join('\n')}`, stdout);
    const errors = all.filter((l) => !isJson(l) && !l.startsWith('Command failed'));
    const line = Number(failed[1]) - first + 1;
    // ip keeps the index it first saw for a name. A link deleted by someone else and added again
    // under that name (a pod recreated under its own name) has a new index, and the kernel answers
    // "No such device" for the old one. The failed line did nothing: a new ip, which looks the name
    // up afresh, runs it and the rest.
    if (!retried && line <= lines.length && errors.some((e) => e.includes('No such device'))) {
      try {
        return stdout + (await this.runBatch(lines.slice(line - 1), true));
      } catch (e) {
        if (!(e instanceof CommandError)) throw e;
        const again = /Command failed -:(\d+)/.exec(e.stderr);
        throw new CommandError(this.argv, 1, e.stderr.replace(/Command failed -:\d+/, `Command failed -:${Number(again?.[1] ?? 1) + line - 1}`), stdout + e.stdout);
      }
    }
    throw new CommandError(this.argv, 1, `${errors.join('\n')}\nCommand failed -:${line}\n`, stdout);
  }

  private start(): ChildProcess {
    if (this.child) return this.child;
    const child = startPiped(this.argv);
    this.sent = 0;
    this.stream = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      this.stream += d;
      this.settle();
    });
    const gone = () => {
      if (this.child === child) this.child = undefined;
      const p = this.pending;
      this.pending = undefined;
      p?.done(this.stream, true);
      this.stream = '';
    };
    // 'close' comes after the last of its output has been read.
    child.on('close', gone);
    child.on('error', gone);
    child.stdin!.on('error', () => undefined); // reported by 'close'
    this.child = child;
    return child;
  }

  /** Hand the pending batch its text once its last JSON line has arrived. */
  private settle(): void {
    const p = this.pending;
    if (!p) return;
    let seen = 0;
    let end = -1;
    for (let i = 0; i < this.stream.length && seen < p.want; ) {
      const nl = this.stream.indexOf('\n', i);
      if (nl < 0) return;
      if (isJson(this.stream.slice(i, nl))) seen++;
      i = nl + 1;
      end = i;
    }
    if (seen < p.want) return;
    const text = this.stream.slice(0, end);
    this.stream = this.stream.slice(end);
    this.pending = undefined;
    p.done(text, false);
  }
}
