// Progress for people (each phase with its time, each step with its verdict)
// or nothing but the final JSON for scripts.
import type { StepOutcome } from './steps.js';

export interface Reporter {
  phase<T>(name: string, fn: () => Promise<T>): Promise<T>;
  step(index: number, total: number, o: StepOutcome): void;
  info(msg: string): void;
  timings(): { phase: string; ms: number }[];
}

const color = (code: number) => (s: string) => (process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[${code}m${s}\x1b[0m` : s);
export const green = color(32);
export const red = color(31);
export const dim = color(2);
export const bold = color(1);

const secs = (ms: number) => `${(ms / 1000).toFixed(2)}s`;

export class TextReporter implements Reporter {
  private done: { phase: string; ms: number }[] = [];
  constructor(
    private out: (line: string) => void = (l) => console.log(l),
    private verbose = false,
  ) {}

  async phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    this.out(`${bold('▸')} ${name}`);
    try {
      const r = await fn();
      const ms = performance.now() - t0;
      this.done.push({ phase: name, ms });
      this.out(`  ${dim(`${name}: ${secs(ms)}`)}`);
      return r;
    } catch (e) {
      this.out(`  ${red('✘')} ${name} failed after ${secs(performance.now() - t0)}`);
      throw e;
    }
  }

  step(i: number, n: number, o: StepOutcome): void {
    if (o.skipped) {
      this.out(`  ${dim('–')} [${i}/${n}] ${o.name} ${dim(`skipped: ${o.skipped}`)}`);
      return;
    }
    const mark = o.ok ? green('✔') : red('✘');
    this.out(`  ${mark} [${i}/${n}] ${o.name} ${dim(secs(o.durationMs))}`);
    if (!o.ok) {
      if (o.command) this.out(`      ran on ${o.target}: ${o.command}`);
      this.out(`      ${o.failure}`);
    } else if (o.metrics) {
      for (const [k, ms] of Object.entries(o.metrics)) this.out(`      ${bold(`${k}: ${ms} ms`)}`);
    }
    if (o.ok && this.verbose && o.stdout) {
      this.out(dim(o.stdout.trimEnd().split('\n').map((l) => `      | ${l}`).join('\n')));
    }
  }

  info(msg: string): void {
    this.out(`  ${dim(msg)}`);
  }

  timings() {
    return this.done;
  }
}

/** Collects timings silently; the caller prints one JSON document at the end. */
export class QuietReporter extends TextReporter {
  constructor() {
    super(() => undefined);
  }
}
