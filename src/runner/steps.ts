// A lesson's steps: run a command on a node or in a pod (optionally while
// capturing on an interface), then check what came back.
import { readFileSync } from 'node:fs';
import type { Backend } from '../topologies/backend.js';
import type { RunResult } from '../net/exec.js';
import type { Lab, Step } from './lab-file.js';
import type { PodRecord } from './state.js';
import { parseCidr, parseIp, contains } from '../cni/ipnet.js';

export interface StepContext {
  backend: Backend;
  lab: Lab;
  pods: PodRecord[];
  /** Template values: pods.<name>.ip, nodes.<name>.address, and what earlier steps saved. */
  vars: Record<string, string>;
}

export interface StepOutcome {
  name: string;
  ok: boolean;
  durationMs: number;
  target?: string;
  command?: string;
  /** What was expected and what came back, when a check failed. */
  failure?: string;
  stdout?: string;
}

export class TemplateError extends Error {}

export function render(text: string, vars: Record<string, string>): string {
  return text.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (_, key: string) => {
    if (!(key in vars)) throw new TemplateError(`unknown template value {{${key}}}; known: ${Object.keys(vars).sort().join(', ')}`);
    return vars[key];
  });
}

/** A dotted path into JSON: "0.linkinfo.info_data.id". */
export function jsonPath(value: unknown, path: string): unknown {
  let cur: unknown = value;
  for (const part of path.split('.').filter(Boolean)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

const asList = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function excerpt(text: string, lines = 12): string {
  const all = text.trimEnd().split('\n');
  const head = all.slice(0, lines).map((l) => `      | ${l}`);
  return (all.length > lines ? [...head, `      | … (${all.length - lines} more lines)`] : head).join('\n') || '      | (empty)';
}

/** Check one command's output against `expect`; returns what failed, or undefined. */
export function checkExpectations(step: Step, r: RunResult, vars: Record<string, string>, captured?: string): string | undefined {
  const e = step.expect ?? {};
  const wantExit = e.exitCode ?? 0;
  if (r.exitCode !== wantExit) return `expected exit code ${wantExit}, got ${r.exitCode}\n    stderr:\n${excerpt(r.stderr || r.stdout)}`;
  for (const re of asList(e.stdout)) {
    const pattern = render(re, vars);
    if (!new RegExp(pattern, 'm').test(r.stdout)) return `expected output to match /${pattern}/\n    got:\n${excerpt(r.stdout)}`;
  }
  for (const re of asList(e.notStdout)) {
    const pattern = render(re, vars);
    if (new RegExp(pattern, 'm').test(r.stdout)) return `expected output NOT to match /${pattern}/\n    got:\n${excerpt(r.stdout)}`;
  }
  for (const re of asList(e.capture)) {
    const pattern = render(re, vars);
    if (!new RegExp(pattern, 'm').test(captured ?? '')) return `expected the capture to match /${pattern}/\n    captured:\n${excerpt(captured ?? '')}`;
  }
  if (e.json) {
    let doc: unknown;
    try {
      doc = JSON.parse(r.stdout);
    } catch {
      return `expected JSON output\n    got:\n${excerpt(r.stdout)}`;
    }
    for (const j of e.json) {
      const got = jsonPath(doc, j.path);
      if (j.equals !== undefined && JSON.stringify(got) !== JSON.stringify(j.equals)) return `expected ${j.path} = ${JSON.stringify(j.equals)}, got ${JSON.stringify(got)}`;
      if (j.matches !== undefined && !new RegExp(render(j.matches, vars)).test(String(got))) return `expected ${j.path} to match /${j.matches}/, got ${JSON.stringify(got)}`;
    }
  }
  return undefined;
}

async function runCommand(ctx: StepContext, step: Step, command: string): Promise<RunResult> {
  const argv = ['sh', '-c', command];
  if (step.pod) {
    const pod = ctx.pods.find((p) => p.name === step.pod);
    if (!pod) throw new TemplateError(`no pod named "${step.pod}" (pods: ${ctx.pods.map((p) => p.name).join(', ')})`);
    return ctx.backend.podExec(pod.node, pod.name, argv, { allowFailure: true });
  }
  return ctx.backend.exec(step.node!, argv, { allowFailure: true });
}

/** Run `fn` while tcpdump listens on a node's interface; returns what tcpdump printed. */
async function withCapture<T>(ctx: StepContext, c: NonNullable<Step['capture']>, fn: () => Promise<T>): Promise<{ result: T; captured: string }> {
  const argv = ['tcpdump', '-l', '-n', '-i', c.interface, '-c', String(c.packets), ...(c.decode ? ['-T', c.decode] : []), c.filter];
  const started = await ctx.backend.start(c.node, `tcpdump-${Date.now()}`, argv);
  try {
    for (let i = 0; i < 150 && !readLog(started.log).includes('listening on'); i++) await sleep(20);
    const result = await fn();
    for (let i = 0; i < 100 && (readLog(started.log).match(/\n/g)?.length ?? 0) < c.packets + 1; i++) await sleep(20);
    return { result, captured: readLog(started.log) };
  } finally {
    await ctx.backend.stop(started.pid);
  }
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runStep(ctx: StepContext, step: Step): Promise<StepOutcome> {
  const t0 = performance.now();
  const done = (o: Omit<StepOutcome, 'name' | 'durationMs'>): StepOutcome => ({ name: step.name, durationMs: performance.now() - t0, ...o });
  try {
    if (step.check) {
      const failure = await builtinCheck(ctx, step);
      return done({ ok: !failure, failure, target: 'cluster', command: `check ${step.check}` });
    }
    const command = render(step.run!, ctx.vars);
    const target = step.pod ? `pod ${step.pod}` : `node ${step.node}`;
    let r!: RunResult;
    let captured: string | undefined;
    const attempts = step.retry?.times ?? 1;
    let failure: string | undefined;
    for (let a = 0; a < attempts; a++) {
      if (step.capture) ({ result: r, captured } = await withCapture(ctx, step.capture, () => runCommand(ctx, step, command)));
      else r = await runCommand(ctx, step, command);
      failure = checkExpectations(step, r, ctx.vars, captured);
      if (!failure) break;
      if (a + 1 < attempts) await sleep(step.retry!.intervalMs);
    }
    if (!failure) {
      for (const [key, re] of Object.entries(step.save ?? {})) {
        const m = new RegExp(render(re, ctx.vars), 'm').exec(r.stdout);
        if (!m) {
          failure = `could not save {{${key}}}: /${re}/ matched nothing in\n${excerpt(r.stdout)}`;
          break;
        }
        ctx.vars[key] = m[1] ?? m[0];
      }
    }
    return done({ ok: !failure, failure, target, command, stdout: r.stdout });
  } catch (e) {
    return done({ ok: false, failure: (e as Error).message });
  }
}

async function builtinCheck(ctx: StepContext, step: Step): Promise<string | undefined> {
  const e = step.expect ?? {};
  if (step.check === 'pods-running') {
    const running = ctx.pods.filter((p) => p.status === 'Running');
    if (e.count !== undefined && running.length !== e.count) return `expected ${e.count} running pods, got ${running.length} (${ctx.pods.map((p) => `${p.name}:${p.status}`).join(', ')})`;
    for (const [node, n] of Object.entries(e.nodes ?? {})) {
      const have = running.filter((p) => p.node === node).length;
      if (have !== n) return `expected ${n} pods on ${node}, got ${have}`;
    }
    const ips = running.map((p) => p.ip);
    if (new Set(ips).size !== ips.length) return `pod addresses are not unique: ${ips.join(', ')}`;
    return undefined;
  }
  if (step.check === 'kubernetes-model') return kubernetesModel(ctx);
  return `unknown check ${step.check}`;
}

/**
 * The Kubernetes network model, checked from the kernel and the servers' own logs:
 * every pod has its own address in the pod CIDR; a second process in a pod sees the
 * same address (containers share it); a pod reaches a pod on another node and the
 * server sees the client pod's own address (no NAT).
 */
export async function kubernetesModel(ctx: StepContext): Promise<string | undefined> {
  const cidr = parseCidr(ctx.lab.network.podCIDR)!;
  const pods = ctx.pods;
  const ips = pods.map((p) => p.ip ?? '');
  if (new Set(ips).size !== ips.length) return `unique IP per pod: addresses repeat (${ips.join(', ')})`;
  for (const p of pods) {
    if (!contains(cidr, parseIp(p.ip ?? '') ?? -1)) return `one pod network: ${p.name} has ${p.ip}, outside ${ctx.lab.network.podCIDR}`;
    const seen = await ctx.backend.podExec(p.node, p.name, ['ip', '-4', '-o', 'addr', 'show', 'eth0'], { allowFailure: true });
    if (!seen.stdout.includes(` ${p.ip}/`)) return `containers share the pod's address: a second process in ${p.name} sees ${seen.stdout.trim() || 'no eth0'} instead of ${p.ip}`;
  }
  for (const client of pods) {
    const server = pods.find((p) => p.node !== client.node);
    if (!server) continue;
    const log = ctx.vars[`pods.${server.name}.accessLog`];
    const before = readLog(log).length;
    const r = await ctx.backend.podExec(client.node, client.name, ['curl', '-s', '--max-time', '3', `http://${server.ip}/model-check`], { allowFailure: true });
    if (r.exitCode !== 0) return `pods reach each other across nodes: ${client.name} (${client.node}) could not reach ${server.name} at ${server.ip} (curl exit ${r.exitCode})`;
    const line = readLog(log).slice(before).split('\n').find((l) => l.includes('/model-check')) ?? '';
    const source = line.split(' ')[0];
    if (source !== client.ip) return `no NAT: ${server.name} saw the request from ${source || 'nowhere'}, not from ${client.name}'s own address ${client.ip}`;
  }
  return undefined;
}
