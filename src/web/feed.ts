// The live diagram of one lab for the pages watching it: the kernel is read
// every few seconds while someone watches, and the SVG is pushed only when the
// drawing changed (the time it was read aside). Reads across labs share a limit.
import { renderSvg } from '../workshop/render-svg.js';
import type { NetModel } from '../workshop/model.js';
import { sleep } from '../util/wait.js';
import type { Limiter } from './limit.js';

export interface Watcher {
  send(msg: object): void;
}

export interface DiagramSource {
  /** The lab's model now, or undefined when the lab is not up. */
  read(): Promise<NetModel | undefined>;
}

export interface FeedOptions {
  intervalMs: number;
  limiter: Limiter;
}

/** Names on the page's pickers: the nodes and pods the model shows. */
export const namesOf = (m: NetModel) => ({
  nodes: m.namespaces.filter((n) => n.kind === 'node').map((n) => n.name),
  pods: m.namespaces.filter((n) => n.kind === 'pod').map((n) => ({ name: n.name, node: n.node })),
});

export class DiagramFeed {
  private readonly watchers = new Set<Watcher>();
  private last?: { key: string; msg: object };
  private polling = false;
  private wake?: () => void;

  constructor(
    private readonly source: DiagramSource,
    private readonly opts: FeedOptions,
  ) {}

  get watching(): number {
    return this.watchers.size;
  }

  add(w: Watcher): void {
    this.watchers.add(w);
    if (this.last) w.send(this.last.msg);
    this.poll();
  }

  remove(w: Watcher): void {
    this.watchers.delete(w);
  }

  /** Read again now (the lab came up, a fix was applied), not at the next tick. */
  nudge(): void {
    this.wake?.();
    this.poll();
  }

  /** Forget the drawing (the lab went down): the next one is sent whatever it is. */
  reset(): void {
    this.last = undefined;
  }

  private poll(): void {
    if (this.polling || !this.watchers.size) return;
    this.polling = true;
    void (async () => {
      try {
        while (this.watchers.size) {
          await this.tick().catch((e) => this.broadcast({ type: 'diagram-error', message: (e as Error).message }));
          await Promise.race([sleep(this.opts.intervalMs), new Promise<void>((r) => (this.wake = r))]);
        }
      } finally {
        this.polling = false;
      }
    })();
  }

  private async tick(): Promise<void> {
    const model = await this.opts.limiter.run(() => this.source.read(), !this.last);
    if (!model) return;
    const key = renderSvg({ ...model, takenAt: '' });
    if (key === this.last?.key) return;
    const msg = { type: 'diagram', svg: renderSvg(model), takenAt: model.takenAt, ...namesOf(model) };
    this.last = { key, msg };
    this.broadcast(msg);
  }

  broadcast(msg: object): void {
    for (const w of this.watchers) w.send(msg);
  }
}
