// A lab's exercises: the lesson's questions and try-it-yourself steps, in an
// optional `exercises:` block of the lab file. `cnilab lesson` walks them.
import { z } from 'zod';

const tryItem = z
  .strictObject({
    /** Run `run` on this node … */
    node: z.string().optional(),
    /** … or in this pod. */
    pod: z.string().optional(),
    run: z.string().optional(),
    /** Follow a packet between two pods (or nodes); with capture, count it at every hop. */
    trace: z.strictObject({ from: z.string(), to: z.string(), capture: z.boolean().default(false) }).optional(),
    /** Draw the network as the kernel reports it, in the terminal. */
    diagram: z.literal(true).optional(),
  })
  .refine((t) => (t.run !== undefined && (t.node !== undefined) !== (t.pod !== undefined)) || (t.run === undefined && t.node === undefined && t.pod === undefined && (t.trace !== undefined) !== (t.diagram !== undefined)), {
    message: 'a try item is `run` with exactly one of `node` or `pod`, or `trace: {from, to}`, or `diagram: true`',
  });

export const exerciseSchema = z.strictObject({
  title: z.string().min(1),
  /** What the lesson says about it, a few lines. */
  explain: z.string().optional(),
  /** The question to think about before looking. */
  question: z.string().optional(),
  try: z.array(tryItem).default([]),
  /** What to notice in the output, or the lesson's answer. */
  answer: z.string().optional(),
});

export const exercisesSchema = z.array(exerciseSchema);

export type Exercise = z.infer<typeof exerciseSchema>;
export type TryItem = Exercise['try'][number];

/** How a try item reads on screen: "(pod nginx-0) $ ip addr show eth0", with `command` as it will run. */
export function describeTry(t: TryItem, command = t.run): string {
  if (t.trace) return `$ cnilab trace ${t.trace.from} ${t.trace.to}${t.trace.capture ? ' --capture' : ''}`;
  if (t.diagram) return '$ cnilab diagram';
  return `(${t.pod ? `pod ${t.pod}` : `node ${t.node}`}) $ ${command}`;
}

/** Names in try items that refer to nothing in the lab: each with its path in the file, for the error. */
export function exerciseProblems(exercises: Exercise[], nodes: string[], pods: string[]): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const known = (name: string) => nodes.includes(name) || pods.includes(name);
  exercises.forEach((e, i) =>
    e.try.forEach((t, j) => {
      const at = (...rest: (string | number)[]) => ['exercises', i, 'try', j, ...rest];
      if (t.node && !nodes.includes(t.node)) problems.push({ path: at('node'), message: `no node named "${t.node}" (nodes: ${nodes.join(', ')})` });
      if (t.pod && !pods.includes(t.pod)) problems.push({ path: at('pod'), message: `no pod named "${t.pod}" (pods: ${pods.join(', ') || 'none'})` });
      for (const end of ['from', 'to'] as const) {
        const name = t.trace?.[end];
        if (name && !known(name)) problems.push({ path: at('trace', end), message: `no pod or node named "${name}" (pods: ${pods.join(', ') || 'none'}; nodes: ${nodes.join(', ')})` });
      }
    }),
  );
  return problems;
}
