// `cnilab lesson`: the lab's exercises one at a time. Each shows what the lesson
// says and asks its question; Enter runs the try-it steps on the live lab and
// shows what to notice; s opens a shell where the exercise points; q quits.
import { createInterface } from 'node:readline';
import type { Lab } from '../lab/lab-file.js';
import { render } from '../runner/steps.js';
import type { LabState } from '../lab/state.js';
import type { Backend } from '../topologies/backend.js';
import { describeTry, type Exercise, type TryItem } from '../lab/exercises.js';
import { inspectLab } from './inspect.js';
import { renderText } from './render-text.js';
import { formatTrace, plain, type TextStyle } from './render-trace.js';
import { traceLab } from './trace-run.js';

export type Key = 'next' | 'quit' | 'shell';

export interface LessonIO {
  write(text: string): void;
  /** Start a fresh screen for the next exercise. */
  clear(): void;
  key(): Promise<Key>;
  shell(node: string, pod?: string): Promise<void>;
}

export interface LessonContext {
  lab: Lab;
  backend: Backend;
  state: LabState;
  nodes: string[];
  /** Template values: pods.<name>.ip, nodes.<name>.address, … */
  vars: Record<string, string>;
}

const MAX_OUTPUT_LINES = 30;

/** Output indented under its command; a long command output is cut (a diagram or trace is shown whole). */
function indent(text: string, max = Infinity): string {
  const lines = text.trimEnd().split('\n');
  const kept = lines.length > max ? [...lines.slice(0, max), `… (${lines.length - max} more lines)`] : lines;
  return kept.map((l) => '    ' + l).join('\n');
}

/** Run one try item on the live lab; returns what it printed. */
export async function runTry(ctx: LessonContext, t: TryItem, style: TextStyle): Promise<string> {
  if (t.diagram) return renderText(await inspectLab(ctx.backend, ctx.state, ctx.nodes), style).join('\n');
  if (t.trace) {
    const r = await traceLab(ctx.backend, ctx.state, ctx.nodes, t.trace.from, t.trace.to, { capture: t.trace.capture });
    return formatTrace(r, style).join('\n');
  }
  const command = render(t.run!, ctx.vars);
  const pod = t.pod ? ctx.state.pods.find((p) => p.name === t.pod) : undefined;
  const argv = ['sh', '-c', command];
  const target = pod ? ctx.backend.pod(pod.node, pod.name) : ctx.backend.node(t.node!);
  const r = await target.run(argv, { allowFailure: true });
  const out = (r.stdout + r.stderr).trimEnd() || '(no output)';
  return r.exitCode === 0 ? out : `${out}\n${style.red(`(exit code ${r.exitCode})`)}`;
}

/** Where `s` opens a shell: the first pod or node the exercise runs something in. */
function shellTarget(ctx: LessonContext, e: Exercise): { node: string; pod?: string } {
  for (const t of e.try) {
    if (t.pod) return { node: ctx.state.pods.find((p) => p.name === t.pod)!.node, pod: t.pod };
    if (t.node) return { node: t.node };
  }
  return { node: ctx.nodes[0] };
}

const describeTarget = (t: { node: string; pod?: string }) => (t.pod ? `pod ${t.pod}` : `node ${t.node}`);

export interface LessonResult {
  total: number;
  /** Exercises the learner went through to the end. */
  completed: number;
  quit: boolean;
}

export async function walkExercises(ctx: LessonContext, io: LessonIO, style: TextStyle = plain): Promise<LessonResult> {
  const exercises = ctx.lab.exercises ?? [];
  const text = (s: string | undefined) => (s ? render(s, ctx.vars).trim() : '');
  let completed = 0;
  for (const [i, e] of exercises.entries()) {
    const target = shellTarget(ctx, e);
    const wait = async (prompt: string): Promise<'next' | 'quit'> => {
      for (;;) {
        io.write(`\n${style.dim(prompt)}\n`);
        const k = await io.key();
        if (k !== 'shell') return k;
        io.write(`\n${style.dim(`shell on ${describeTarget(target)}; exit to come back to the lesson`)}\n`);
        await io.shell(target.node, target.pod);
      }
    };
    const shown = (t: TryItem) => describeTry(t, t.run === undefined ? undefined : render(t.run, ctx.vars));
    io.clear();
    io.write(`${style.bold(`Exercise ${i + 1}/${exercises.length} · ${e.title}`)}\n\n`);
    if (e.explain) io.write(`${text(e.explain)}\n\n`);
    if (e.question) io.write(`${style.bold('?')} ${text(e.question)}\n\n`);
    if (e.try.length) {
      io.write(`Try it:\n${e.try.map((t) => `  ${shown(t)}`).join('\n')}\n`);
      if ((await wait(`[Enter] run ${e.try.length === 1 ? 'it' : 'them'} · [s] shell on ${describeTarget(target)} · [q] quit`)) === 'quit') return { total: exercises.length, completed, quit: true };
      for (const t of e.try) {
        io.write(`\n${style.bold(shown(t))}\n`);
        try {
          io.write(`${indent(await runTry(ctx, t, style), t.run ? MAX_OUTPUT_LINES : Infinity)}\n`);
        } catch (err) {
          io.write(`${indent(style.red((err as Error).message))}\n`);
        }
      }
    }
    if (e.answer) io.write(`\n${style.green('What to notice:')} ${text(e.answer)}\n`);
    const last = i === exercises.length - 1;
    if ((await wait(last ? `That was the last exercise. [Enter] finish · [s] shell · [q] quit` : `[Enter] next exercise · [s] shell on ${describeTarget(target)} · [q] quit`)) === 'quit') {
      return { total: exercises.length, completed: completed + 1, quit: true };
    }
    completed++;
  }
  return { total: exercises.length, completed, quit: false };
}

/**
 * Keys from the terminal: single keystrokes when stdin is a TTY, otherwise
 * lines (an empty line is Enter). End of input counts as q.
 */
export function terminalKeys(input: NodeJS.ReadStream = process.stdin): { key(): Promise<Key>; pause(): void; close(): void } {
  if (input.isTTY) {
    return {
      key: () =>
        new Promise<Key>((resolve) => {
          input.setRawMode(true);
          input.resume();
          const onData = (buf: Buffer) => {
            const k = buf.toString();
            const key: Key | undefined = k === '\r' || k === '\n' || k === ' ' ? 'next' : /^[qQ]$/.test(k) || k === '\x03' || k === '\x04' ? 'quit' : /^[sS]$/.test(k) ? 'shell' : undefined;
            if (!key) return;
            input.off('data', onData);
            input.setRawMode(false);
            input.pause();
            resolve(key);
          };
          input.on('data', onData);
        }),
      pause: () => input.pause(),
      close: () => input.pause(),
    };
  }
  const rl = createInterface({ input });
  const lines: string[] = [];
  const waiting: ((l: string | undefined) => void)[] = [];
  let ended = false;
  rl.on('line', (l) => (waiting.length ? waiting.shift()!(l) : lines.push(l)));
  rl.on('close', () => {
    ended = true;
    while (waiting.length) waiting.shift()!(undefined);
  });
  const next = () => (lines.length ? Promise.resolve(lines.shift()) : ended ? Promise.resolve(undefined) : new Promise<string | undefined>((r) => waiting.push(r)));
  return {
    key: async () => {
      for (;;) {
        const l = await next();
        if (l === undefined) return 'quit';
        const t = l.trim().toLowerCase();
        if (t === '') return 'next';
        if (t === 'q' || t === 'quit') return 'quit';
        if (t === 's' || t === 'shell') return 'shell';
      }
    },
    pause: () => rl.pause(),
    close: () => rl.close(),
  };
}
