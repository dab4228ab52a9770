// Break-and-fix challenges, in an optional `challenges:` block of a lab file.
// A challenge breaks the running lab with steps, tells the student a story,
// and grades the repair with check steps that read the kernel: connectivity
// and the state that proves the cause is gone. Its fix and a plausible wrong
// fix are what `giveup` shows and what the tests type as a student would.
import { z } from 'zod';

const name = z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'lower-case letters, digits and "-"');

/** The block, built on the lab file's own step schema (passed in: this file stays free of the lab model). */
export function challengesSchema<S extends z.ZodType>(step: S) {
  return z.array(
    z.strictObject({
      name,
      title: z.string().min(1),
      /** What the student is told: the symptom, never the cause. */
      story: z.string().min(1),
      /** The fact of the lessons it teaches; shown once it is fixed or given up. */
      teaches: z.string().min(1),
      /** Steps that break the running lab, deterministically; what they `save` the other steps can use. */
      break: z.array(step).min(1),
      /** Revealed one at a time by `cnilab hint`. */
      hints: z.array(z.string().min(1)).default([]),
      /** Every step must pass for the challenge to count as fixed; each step's name says what it proves. */
      check: z.array(step).min(1),
      /** What a student types to repair it (`run` on a node or in a pod); `giveup` shows and applies it. */
      fix: z.array(step).min(1),
      /** A workaround that restores the symptom but not the cause, so `check` must still fail; `undo` takes it back. */
      wrongFix: z.strictObject({
        why: z.string().min(1),
        steps: z.array(step).min(1),
        undo: z.array(step).default([]),
      }),
    }),
  );
}

type StepLike = { node?: string; pod?: string; run?: string; check?: unknown; service?: { node: string }; capture?: { node: string } };
type ChallengeLike = { name: string; break: StepLike[]; check: StepLike[]; fix: StepLike[]; wrongFix: { steps: StepLike[]; undo: StepLike[] } };

/** Names that refer to nothing in the lab, repeated challenge names, fixes a student could not type: each with its path. */
export function challengeProblems(challenges: ChallengeLike[], nodes: string[], pods: string[]): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const seen = new Set<string>();
  challenges.forEach((c, i) => {
    if (seen.has(c.name)) problems.push({ path: ['challenges', i, 'name'], message: `challenge "${c.name}" is listed twice` });
    seen.add(c.name);
    const lists: [(string | number)[], StepLike[], boolean][] = [
      [['break'], c.break, false],
      [['check'], c.check, false],
      [['fix'], c.fix, true],
      [['wrongFix', 'steps'], c.wrongFix.steps, true],
      [['wrongFix', 'undo'], c.wrongFix.undo, true],
    ];
    for (const [where, steps, typed] of lists) {
      steps.forEach((s, j) => {
        const at = (...rest: (string | number)[]) => ['challenges', i, ...where, j, ...rest];
        if (s.node && !nodes.includes(s.node)) problems.push({ path: at('node'), message: `no node named "${s.node}" (nodes: ${nodes.join(', ')})` });
        if (s.pod && !pods.includes(s.pod)) problems.push({ path: at('pod'), message: `no pod named "${s.pod}" (pods: ${pods.join(', ') || 'none'})` });
        if (s.service && !nodes.includes(s.service.node)) problems.push({ path: at('service', 'node'), message: `no node named "${s.service.node}" (nodes: ${nodes.join(', ')})` });
        if (s.capture && !nodes.includes(s.capture.node)) problems.push({ path: at('capture', 'node'), message: `no node named "${s.capture.node}"` });
        if (typed && (s.run === undefined || s.check !== undefined || s.service !== undefined || s.capture !== undefined)) {
          problems.push({ path: at(), message: 'a fix is what a student types: `run` on a node or in a pod, without check, service or capture' });
        }
      });
    }
  });
  return problems;
}
