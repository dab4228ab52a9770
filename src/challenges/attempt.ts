// One attempt at a challenge, kept beside the lab's state (so `down` and
// `clean` remove it with the lab), and the record an instructor collects.
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { labDir } from '../lab/state.js';

export interface CheckRun {
  at: string;
  passed: boolean;
  /** The names of the check steps that failed. */
  failing: string[];
}

export interface Attempt {
  lab: string;
  instance: string;
  challenge: string;
  title: string;
  /** Who attempted it (the login behind sudo, if any). */
  user: string;
  /** When the lab was broken: the clock of "time to fix" starts here. */
  startedAt: string;
  outcome: 'open' | 'fixed' | 'gave-up' | 'abandoned';
  endedAt?: string;
  hintsUsed: number;
  hintsTotal: number;
  checks: CheckRun[];
  /** Values the break steps saved (an interface name, a MAC), for the check and fix steps. */
  vars: Record<string, string>;
  /** Where the record is appended when the attempt ends; none when empty. */
  log?: string;
}

/** What an instructor collects, one JSON line per finished attempt. */
export interface AttemptRecord {
  lab: string;
  instance: string;
  challenge: string;
  title: string;
  user: string;
  outcome: Attempt['outcome'];
  startedAt: string;
  endedAt?: string;
  /** Seconds from the break to the first passing check; absent unless fixed. */
  secondsToFix?: number;
  hintsUsed: number;
  hintsTotal: number;
  checksRun: number;
  checks: CheckRun[];
}

export const attemptFile = (instance: string) => join(labDir(instance), 'challenge.json');

export function readAttempt(instance: string): Attempt | undefined {
  try {
    return JSON.parse(readFileSync(attemptFile(instance), 'utf8')) as Attempt;
  } catch {
    return undefined;
  }
}

export function saveAttempt(a: Attempt): void {
  const file = attemptFile(a.instance);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file + '.tmp', JSON.stringify(a, null, 2));
  renameSync(file + '.tmp', file);
}

export function attemptRecord(a: Attempt): AttemptRecord {
  const fixed = a.outcome === 'fixed' && a.endedAt;
  return {
    lab: a.lab,
    instance: a.instance,
    challenge: a.challenge,
    title: a.title,
    user: a.user,
    outcome: a.outcome,
    startedAt: a.startedAt,
    ...(a.endedAt ? { endedAt: a.endedAt } : {}),
    ...(fixed ? { secondsToFix: Math.round((Date.parse(a.endedAt!) - Date.parse(a.startedAt)) / 1000) } : {}),
    hintsUsed: a.hintsUsed,
    hintsTotal: a.hintsTotal,
    checksRun: a.checks.length,
    checks: a.checks,
  };
}

/**
 * End an open attempt and append its record to the log (the caller saves it); an attempt already ended stays as it was.
 * `abandoned`: the lab was taken down while the attempt was open.
 */
export function endAttempt(a: Attempt, outcome: 'fixed' | 'gave-up' | 'abandoned', at = new Date()): boolean {
  if (a.outcome !== 'open') return false;
  a.outcome = outcome;
  a.endedAt = at.toISOString();
  if (a.log) {
    mkdirSync(dirname(a.log), { recursive: true });
    appendFileSync(a.log, JSON.stringify(attemptRecord(a)) + '\n');
  }
  return true;
}

/** "4m 12s" */
export function formatDuration(seconds: number): string {
  const m = Math.floor(seconds / 60);
  return m ? `${m}m ${String(seconds % 60).padStart(2, '0')}s` : `${seconds}s`;
}
