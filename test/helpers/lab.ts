// Helpers for tests that run whole labs on the real kernel.
import { existsSync, readFileSync } from 'node:fs';
import { listNetns } from '../../src/net/netns.js';
import { labDir, NAME_PREFIX, readState } from '../../src/lab/state.js';
import type { RunReport } from '../../src/runner/runner.js';

/** What an instance left behind: namespaces with its prefix, its state dir, mounts below it. */
export function leftovers(instance: string): string[] {
  const found: string[] = [];
  for (const n of listNetns()) if (n.startsWith(`${NAME_PREFIX}${instance}-`)) found.push(`netns ${n}`);
  if (existsSync(labDir(instance))) found.push(`dir ${labDir(instance)}`);
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mount = line.split(' ')[4];
    if (mount?.startsWith(labDir(instance) + '/')) found.push(`mount ${mount}`);
  }
  return found;
}

export { isRunning as alive } from '../../src/lab/processes.js';

/** A readable summary of failed steps, for assertion messages. */
export function failures(r: RunReport): string {
  if (r.error) return r.error;
  // The heading ends in a colon and a newline: mocha cuts a message at its first
  // "<text>: expected", which would hide every step's own "expected output to match ...".
  const failed = r.steps.filter((s) => !s.ok);
  if (failed.length === 0) return '';
  return `steps failed:\n${failed.map((s) => `${s.name}\n      ${s.failure}`).join('\n')}\n`;
}

export function recordedPids(instance: string): number[] {
  return readState(instance)?.processes.map((p) => p.pid) ?? [];
}
