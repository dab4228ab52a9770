// What a participant's page asks of their running lab: the exercises (and
// running a try-it item), a trace between two pods, and the challenges
// (start, check, hint, give up), with the attempt kept beside the lab's state
// as `cnilab challenge` keeps it.
import type { LabInstance } from '../runner/runner.js';
import { render } from '../runner/steps.js';
import { describeTry } from '../lab/exercises.js';
import { runTry } from '../workshop/lesson.js';
import { plain } from '../workshop/render-trace.js';
import { traceLab, TraceTargetError } from '../workshop/trace-run.js';
import { inspectLab } from '../workshop/inspect.js';
import { applySteps, beginAttempt, challengeContext, fill, grade } from '../challenges/engine.js';
import { attemptRecord, endAttempt, readAttempt, saveAttempt, type Attempt } from '../challenges/attempt.js';
import { highlightTrace } from './highlight.js';

/** A request the page got wrong (an unknown pod, exercise or challenge): a 400 with this message. */
export class BadRequest extends Error {}

const nodesOf = (inst: LabInstance) => inst.lab.topology.nodes.map((n) => n.name);
const filled = (inst: LabInstance, s: string | undefined) => {
  if (!s) return undefined;
  try {
    return render(s, inst.vars).trim();
  } catch {
    return s.trim();
  }
};

export function exercises(inst: LabInstance) {
  inst.fillVars();
  return (inst.lab.exercises ?? []).map((e, i) => ({
    index: i,
    title: e.title,
    explain: filled(inst, e.explain),
    question: filled(inst, e.question),
    answer: filled(inst, e.answer),
    try: e.try.map((t) => describeTry(t, filled(inst, t.run))),
  }));
}

export async function runExerciseItem(inst: LabInstance, exercise: number, item: number): Promise<string> {
  const e = inst.lab.exercises?.[exercise];
  const t = e?.try[item];
  if (!t) throw new BadRequest(`no exercise ${exercise} item ${item}`);
  inst.fillVars();
  const state = inst.state.state;
  return runTry({ lab: inst.lab, backend: inst.backend, state, nodes: nodesOf(inst), vars: inst.vars }, t, plain);
}

export async function trace(inst: LabInstance, from: string, to: string) {
  const state = inst.state.state;
  const names = new Set([...nodesOf(inst), ...state.pods.map((p) => p.name)]);
  if (!names.has(from) || !names.has(to)) throw new BadRequest(`trace between pods or nodes of this lab: ${[...names].join(', ')}`);
  try {
    const r = await traceLab(inst.backend, state, nodesOf(inst), from, to, { capture: true, count: 3 });
    const model = await inspectLab(inst.backend, state, nodesOf(inst));
    return { delivered: r.delivered, reachable: r.reachable, problem: r.problem, capture: r.capture, hops: highlightTrace(model, r) };
  } catch (e) {
    if (e instanceof TraceTargetError) throw new BadRequest(e.message);
    throw e;
  }
}

function challengeOf(inst: LabInstance, name: string) {
  const c = inst.lab.challenges?.find((x) => x.name === name);
  if (!c) throw new BadRequest(`no challenge named "${name}" (challenges: ${(inst.lab.challenges ?? []).map((x) => x.name).join(', ') || 'none'})`);
  return c;
}

/** The lab's challenges, and the attempt if one was started. */
export function challenges(inst: LabInstance) {
  const a = readAttempt(inst.state.state.lab);
  return {
    list: (inst.lab.challenges ?? []).map((c) => ({ name: c.name, title: c.title, hints: c.hints.length })),
    attempt: a ? attemptView(inst, a) : undefined,
  };
}

function attemptView(inst: LabInstance, a: Attempt) {
  const c = challengeOf(inst, a.challenge);
  const vars = { ...inst.vars, ...a.vars };
  const over = a.outcome !== 'open';
  return {
    ...attemptRecord(a),
    story: fill(c.story, vars),
    hints: c.hints.slice(0, over ? c.hints.length : a.hintsUsed).map((h) => fill(h, vars)),
    ...(over ? { teaches: fill(c.teaches, vars) } : {}),
  };
}

export async function startChallenge(inst: LabInstance, name: string, user: string) {
  const c = challengeOf(inst, name);
  const previous = readAttempt(inst.state.state.lab);
  if (previous?.outcome === 'open') throw new BadRequest(`challenge ${previous.challenge} is still open: fix it and check, or give up first`);
  const { attempt } = await beginAttempt(inst, c, { user });
  return attemptView(inst, attempt);
}

function openAttempt(inst: LabInstance) {
  const a = readAttempt(inst.state.state.lab);
  if (!a) throw new BadRequest('no challenge was started in this lab');
  return { a, c: challengeOf(inst, a.challenge) };
}

export async function checkChallenge(inst: LabInstance) {
  const { a, c } = openAttempt(inst);
  const outcomes = await grade(challengeContext(inst, a.vars), c);
  const failing = outcomes.filter((x) => !x.ok).map((x) => x.name);
  a.checks.push({ at: new Date().toISOString(), passed: failing.length === 0, failing });
  if (!failing.length) endAttempt(a, 'fixed');
  saveAttempt(a);
  return { passed: failing.length === 0, results: outcomes.map((x) => ({ name: x.name, ok: x.ok, ...(x.failure ? { failure: x.failure } : {}) })), attempt: attemptView(inst, a) };
}

export function hintChallenge(inst: LabInstance) {
  const { a, c } = openAttempt(inst);
  if (a.outcome === 'open' && a.hintsUsed < c.hints.length) {
    a.hintsUsed++;
    saveAttempt(a);
  }
  return attemptView(inst, a);
}

export async function giveUpChallenge(inst: LabInstance) {
  const { a, c } = openAttempt(inst);
  endAttempt(a, 'gave-up');
  saveAttempt(a);
  const ctx = challengeContext(inst, a.vars);
  const applied = await applySteps(ctx, c.fix);
  const checks = applied.every((x) => x.ok) ? await grade(ctx, c) : [];
  return { fixed: checks.length > 0 && checks.every((x) => x.ok), fix: c.fix.map((s) => ({ name: s.name, command: fill(s.run ?? '', ctx.vars) })), attempt: attemptView(inst, a) };
}
