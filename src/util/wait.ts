// Polling, in one place: wait until a probe answers, or fail naming what was awaited.

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class WaitTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WaitTimeoutError';
  }
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** What was awaited, for the error: "the CNI daemon on master to answer". */
  what: string;
  /** Where to look next, appended to the error: a log file, the last output seen. */
  hint?: () => string;
}

/** How many times slower than this machine a lab's nodes run: VMs under software emulation set it. */
let stretch = 1;

/** Every deadline of waitUntil stretches by `factor` (1: as written) until set again. */
export function stretchDeadlines(factor: number): void {
  stretch = factor;
}

/**
 * Calls `probe` until it returns something other than undefined or false, and
 * returns that. A probe that throws ends the wait with its error (a fatal line in
 * a log need not wait for the timeout). Past the timeout: a WaitTimeoutError
 * naming what it waited for.
 */
export async function waitUntil<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs * stretch;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() >= deadline) {
      const hint = opts.hint?.();
      throw new WaitTimeoutError(`timed out after ${timeoutMs / 1000} s waiting for ${opts.what}${hint ? `; ${hint}` : ''}`);
    }
    await sleep(opts.intervalMs ?? 20);
  }
}
