// The participants of a served workshop and their labs: one seat per link,
// each with its own lab instance (ws-<n>), brought up on demand or by the
// instructor, reset, and torn down with the server. Work on one seat runs one
// operation at a time; bring-ups across seats go through one queue.
import { EventEmitter } from 'node:events';
import { LabInstance } from '../runner/runner.js';
import { QuietReporter } from '../runner/reporter.js';
import { cleanLab } from '../runner/clean.js';
import { readAttempt } from '../challenges/attempt.js';
import { Limiter } from './limit.js';
import { newToken } from './tokens.js';

export type SeatStatus = 'down' | 'starting' | 'up' | 'stopping' | 'failed';

export interface Seat {
  id: number;
  token: string;
  /** The lab instance: ws-<id>. */
  lab: string;
  status: SeatStatus;
  /** When the lab came up. */
  since?: string;
  error?: string;
  inst?: LabInstance;
  /** The lab's own steps, run once it is up: do the labs work? */
  verify?: { passed: number; total: number; failing: string[] };
  /** Exercises the participant ran something of, by index. */
  tried: Set<number>;
  /** The seat's operations, one after another. */
  queue: Promise<unknown>;
}

export interface ClassroomOptions {
  /** The lab file every participant gets. */
  labName: string;
  backend: string;
  install: boolean;
  /** Run the lab's own steps after each bring-up. */
  verify: boolean;
  /** Most seats a --lab-per-visitor server hands out. */
  maxSeats: number;
  /** Labs brought up at the same time. */
  upAtOnce: number;
}

/** What the instructor's page lists per participant. */
export interface SeatSummary {
  id: number;
  lab: string;
  labFile: string;
  status: SeatStatus;
  since?: string;
  error?: string;
  verify?: Seat['verify'];
  exercises: { tried: number; total: number };
  challenge?: { name: string; outcome: string; hintsUsed: number; checks: number };
}

export const seatLab = (id: number) => `ws-${id}`;
export const SEAT_LAB = /^ws-\d+$/;

export class Classroom extends EventEmitter {
  readonly seats: Seat[] = [];
  private readonly ups: Limiter;
  private readonly verifies = new Limiter(1);
  private exercisesTotal = 0;

  constructor(readonly opts: ClassroomOptions, exercisesTotal: number) {
    super();
    this.ups = new Limiter(opts.upAtOnce);
    this.exercisesTotal = exercisesTotal;
  }

  addSeat(): Seat {
    if (this.seats.length >= this.opts.maxSeats) throw new Error(`all ${this.opts.maxSeats} seats are taken`);
    const id = this.seats.length + 1;
    const seat: Seat = { id, token: newToken(), lab: seatLab(id), status: 'down', tried: new Set(), queue: Promise.resolve() };
    this.seats.push(seat);
    this.emit('change', seat);
    return seat;
  }

  seat(id: number): Seat | undefined {
    return this.seats.find((s) => s.id === id);
  }

  private set(seat: Seat, patch: Partial<Seat>): void {
    Object.assign(seat, patch);
    this.emit('change', seat);
  }

  /** Run `fn` after the seat's earlier operations; errors reach the caller and leave the queue going. */
  private serial<T>(seat: Seat, fn: () => Promise<T>): Promise<T> {
    const next = seat.queue.then(fn, fn);
    seat.queue = next.catch(() => undefined);
    return next;
  }

  /** Bring the seat's lab up (nothing to do when it is up or coming up). */
  up(seat: Seat): Promise<void> {
    if (seat.status === 'up' || seat.status === 'starting') return seat.queue.then(() => undefined);
    this.set(seat, { status: 'starting', error: undefined });
    return this.serial(seat, () =>
      this.ups.run(async () => {
        if (seat.status === 'up') return;
        this.set(seat, { status: 'starting' });
        const inst = LabInstance.open(this.opts.labName, { name: seat.lab, backend: this.opts.backend }, new QuietReporter());
        try {
          await inst.up({ install: this.opts.install });
        } catch (e) {
          this.set(seat, { status: 'failed', error: (e as Error).message, inst: undefined });
          throw e;
        }
        seat.tried.clear();
        this.set(seat, { status: 'up', since: new Date().toISOString(), inst, verify: undefined });
        if (this.opts.verify) void this.verify(seat).catch(() => undefined);
      }),
    );
  }

  /** Run the lab's own steps (read-only checks of what it built), one lab at a time. */
  verify(seat: Seat): Promise<void> {
    return this.verifies.run(() =>
      this.serial(seat, async () => {
        if (seat.status !== 'up' || !seat.inst) return;
        const outcomes = await seat.inst.steps();
        this.set(seat, { verify: { passed: outcomes.filter((o) => o.ok).length, total: outcomes.length, failing: outcomes.filter((o) => !o.ok).map((o) => o.name) } });
      }),
    );
  }

  /** Tear the seat's lab down (its challenge attempt goes with its state directory). */
  down(seat: Seat): Promise<void> {
    return this.serial(seat, async () => {
      if (seat.status === 'down') return;
      this.set(seat, { status: 'stopping' });
      try {
        await cleanLab(seat.lab);
      } finally {
        this.set(seat, { status: 'down', since: undefined, inst: undefined, verify: undefined });
      }
    });
  }

  async reset(seat: Seat): Promise<void> {
    await this.down(seat);
    await this.up(seat);
  }

  downAll(): Promise<void[]> {
    return Promise.all(this.seats.map((s) => this.down(s)));
  }

  summary(seat: Seat): SeatSummary {
    const a = seat.status === 'up' ? readAttempt(seat.lab) : undefined;
    return {
      id: seat.id,
      lab: seat.lab,
      labFile: this.opts.labName,
      status: seat.status,
      ...(seat.since ? { since: seat.since } : {}),
      ...(seat.error ? { error: seat.error } : {}),
      ...(seat.verify ? { verify: seat.verify } : {}),
      exercises: { tried: seat.tried.size, total: this.exercisesTotal },
      ...(a ? { challenge: { name: a.challenge, outcome: a.outcome, hintsUsed: a.hintsUsed, checks: a.checks.length } } : {}),
    };
  }
}
