// At most `n` of a kind of work at once (bringing labs up, reading the kernel):
// a shared 2-core machine serves a room better one queue than thirty at once.
export class Limiter {
  private running = 0;
  private waiting: (() => void)[] = [];

  constructor(readonly n: number) {}

  /** `first`: ahead of the queue (a page still waiting for its first drawing). */
  async run<T>(fn: () => Promise<T>, first = false): Promise<T> {
    if (this.running >= this.n) await new Promise<void>((r) => (first ? this.waiting.unshift(r) : this.waiting.push(r)));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}
