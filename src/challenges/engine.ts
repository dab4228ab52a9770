// Running a challenge's steps on a live lab: break it, grade it (every check
// step, so the student sees all that still fails), apply a fix. The steps are
// the lab file's own, run by the lesson's step runner.
import type { Challenge, Step } from '../lab/lab-file.js';
import type { LabInstance } from '../runner/runner.js';
import { datapath } from '../datapaths/index.js';
import { NodeServices } from '../runner/services.js';
import { render, runStep, type StepContext, type StepOutcome } from '../runner/steps.js';
import { saveAttempt, type Attempt } from './attempt.js';

export class ChallengeError extends Error {}

/** The step context of a running lab: its pods, its template values plus what the break saved, its services. */
export function challengeContext(inst: LabInstance, saved: Record<string, string> = {}): StepContext {
  inst.fillVars();
  const { lab, backend, state } = inst;
  const plugin = datapath(lab.network.plugin);
  const nodeSpec = (name: string) => lab.topology.nodes.find((n) => n.name === name)!;
  const services = new NodeServices(backend, state, (node) => plugin.services?.(backend, lab, nodeSpec(node)) ?? {});
  return { backend, lab, pods: inst.pods.list(), vars: { ...inst.vars, ...saved }, services };
}

/** Run steps in order; with `stopOnFailure`, the first failure ends the run. */
async function runSteps(ctx: StepContext, steps: Step[], stopOnFailure: boolean): Promise<StepOutcome[]> {
  const outcomes: StepOutcome[] = [];
  for (const step of steps) {
    const o = await runStep(ctx, step);
    outcomes.push(o);
    if (!o.ok && stopOnFailure) break;
  }
  return outcomes;
}

/** Break the lab; returns the values the break steps saved. A step that fails is a broken challenge, not the student's. */
export async function breakLab(ctx: StepContext, c: Challenge): Promise<Record<string, string>> {
  const before = new Set(Object.keys(ctx.vars));
  const outcomes = await runSteps(ctx, c.break, true);
  const failed = outcomes.find((o) => !o.ok);
  if (failed) throw new ChallengeError(`challenge ${c.name} could not break the lab at step "${failed.name}": ${failed.failure}`);
  return Object.fromEntries(Object.entries(ctx.vars).filter(([k]) => !before.has(k)));
}

/** Break the running lab for challenge `c` and record the open attempt in the lab's state (the CLI and the web page alike). */
export async function beginAttempt(inst: LabInstance, c: Challenge, who: { user: string; log?: string }): Promise<{ attempt: Attempt; ctx: StepContext }> {
  const ctx = challengeContext(inst);
  const saved = await breakLab(ctx, c);
  const attempt: Attempt = {
    lab: inst.lab.name,
    instance: inst.state.state.lab,
    challenge: c.name,
    title: c.title,
    user: who.user,
    startedAt: new Date().toISOString(),
    outcome: 'open',
    hintsUsed: 0,
    hintsTotal: c.hints.length,
    checks: [],
    vars: saved,
    ...(who.log ? { log: who.log } : {}),
  };
  saveAttempt(attempt);
  return { attempt, ctx };
}

/**
 * Every check step, each with its verdict. Checks only read the lab, so they
 * run side by side (a failing ping waits out its timeout and retries); when a
 * step saves a value for a later one they run in order.
 */
export function grade(ctx: StepContext, c: Challenge): Promise<StepOutcome[]> {
  if (c.check.some((s) => s.save)) return runSteps(ctx, c.check, false);
  return Promise.all(c.check.map((s) => runStep(ctx, s)));
}

/** Type a fix (or the wrong fix, or its undo) as the student would; stops at the first command that fails. */
export function applySteps(ctx: StepContext, steps: Step[]): Promise<StepOutcome[]> {
  return runSteps(ctx, steps, true);
}

/** Where a step runs, for people: "node master" or "pod nginx-0". */
export const stepTarget = (s: Step) => (s.pod ? `pod ${s.pod}` : s.node ? `node ${s.node}` : s.service ? `node ${s.service.node}` : 'cluster');

/** A step as a student would type it: the command with the lab's values filled in. */
export function stepCommand(s: Step, vars: Record<string, string>): string {
  if (s.service) return `${s.service.action} the ${s.service.name} service`;
  if (s.check) return `check ${s.check}`;
  try {
    return render(s.run ?? '', vars).trim();
  } catch {
    return (s.run ?? '').trim();
  }
}

/** A story, hint or lesson with the lab's values filled in (left as written where a value is unknown). */
export function fill(text: string, vars: Record<string, string>): string {
  try {
    return render(text, vars).trim();
  } catch {
    return text.trim();
  }
}
