// A lesson's steps: run a command on a node or in a pod (optionally while
// capturing on an interface), then check what came back.
import type { Backend } from '../topologies/backend.js';
import type { RunResult } from '../net/exec.js';
import type { Lab, Step } from '../lab/lab-file.js';
import type { PodRecord } from '../lab/state.js';
import { checkModel, formatVerdicts, judgeModel } from './kubernetes-model.js';
import { parseAddr, parseIp } from '../net/ipnet.js';
import type { ServiceControl } from './services.js';
import type { PolicyControl } from './policies.js';
import { sleep, waitUntil } from '../util/wait.js';

export interface StepContext {
  backend: Backend;
  lab: Lab;
  pods: PodRecord[];
  /** Template values: pods.<name>.ip, nodes.<name>.address, nodes.<name>.iface, and what earlier steps saved. */
  vars: Record<string, string>;
  /** Stops and starts node services for `service` steps. */
  services?: ServiceControl;
  /** Deletes, recreates and scales pods for `delete`, `recreate` and `scale` steps. */
  workloads?: WorkloadControl;
  /** Puts NetworkPolicies in force and takes them out, for `policy` steps. */
  policies?: PolicyControl;
}

export interface WorkloadControl {
  delete(pod: string): Promise<string>;
  recreate(pod: string): Promise<string>;
  scale(workload: string, replicas: number): Promise<string>;
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
  /** What a step with `measure` recorded, in milliseconds. */
  metrics?: Record<string, number>;
  /** Why the step did not run (it is written for another kube-proxy mode); such a step counts as passed. */
  skipped?: string;
}

export class TemplateError extends Error {}

/** Filters after a value: {{pods.a.ip|hex}} gives 0x0a0a0002, for byte matches in capture filters. */
const FILTERS: Record<string, (v: string) => string> = {
  hex: (v) => {
    const ip = parseIp(v);
    if (ip === undefined) throw new TemplateError(`|hex needs an IPv4 address, got "${v}"`);
    return `0x${ip.toString(16).padStart(8, '0')}`;
  },
  // BIRD names a mesh peer Mesh_192_168_10_220 (Mesh_fd00_192_168_10__220 over IPv6); bpftool prints
  // an address as bytes 192,168,10,220 (an IPv6 address as its sixteen bytes: 253,0,0,16,...).
  underscores: (v) => v.replace(/[.:]/g, '_'),
  bytes: (v) => {
    const a = v.includes(':') ? parseAddr(v) : undefined;
    if (!a) return v.replace(/\./g, ',');
    return Array.from({ length: 16 }, (_, i) => Number((a.value >> BigInt(8 * (15 - i))) & 255n)).join(',');
  },
};

export function render(text: string, vars: Record<string, string>): string {
  return text.replace(/\{\{\s*([\w.-]+)\s*(?:\|\s*(\w+)\s*)?\}\}/g, (_, key: string, filter?: string) => {
    if (!(key in vars)) throw new TemplateError(`unknown template value {{${key}}}; known: ${Object.keys(vars).sort().join(', ')}`);
    if (filter && !FILTERS[filter]) throw new TemplateError(`unknown template filter |${filter} in {{${key}|${filter}}}; known: ${Object.keys(FILTERS).join(', ')}`);
    return filter ? FILTERS[filter](vars[key]) : vars[key];
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
  for (const re of asList(e.notCapture)) {
    const pattern = render(re, vars);
    if (new RegExp(pattern, 'm').test(captured ?? '')) return `expected the capture NOT to match /${pattern}/\n    captured:\n${excerpt(captured ?? '')}`;
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
      if (j.min !== undefined && !(typeof got === 'number' && got >= j.min)) return `expected ${j.path} ≥ ${j.min}, got ${JSON.stringify(got)}`;
      if (j.max !== undefined && !(typeof got === 'number' && got <= j.max)) return `expected ${j.path} ≤ ${j.max}, got ${JSON.stringify(got)}`;
    }
  }
  return undefined;
}

async function runCommand(ctx: StepContext, step: Step, command: string): Promise<RunResult> {
  const argv = ['sh', '-c', command];
  if (step.pod) {
    const pod = ctx.pods.find((p) => p.name === step.pod);
    if (!pod) throw new TemplateError(`no pod named "${step.pod}" (pods: ${ctx.pods.map((p) => p.name).join(', ')})`);
    return ctx.backend.pod(pod.node, pod.name).run(argv, { allowFailure: true });
  }
  return ctx.backend.node(step.node!).run(argv, { allowFailure: true });
}

/** Run `fn` while tcpdump listens on a node's interface; returns what tcpdump printed. */
async function withCapture<T>(ctx: StepContext, c: NonNullable<Step['capture']>, fn: () => Promise<T>): Promise<{ result: T; captured: string }> {
  const dev = render(c.interface ?? `{{nodes.${c.node}.iface}}`, ctx.vars);
  const argv = ['tcpdump', '-l', '-n', '-i', dev, '-c', String(c.packets), ...(c.decode ? ['-T', c.decode] : []), render(c.filter, ctx.vars)];
  const started = await ctx.backend.start(c.node, `tcpdump-${Date.now()}`, argv);
  // The log is where tcpdump runs: on the node, read through the backend.
  let last = '';
  const readLog = async () => (last = (await ctx.backend.readFile(c.node, started.log)) ?? '');
  try {
    // Without this the packets sent next would go uncaught and the step would fail for the wrong reason.
    await waitUntil(async () => (await readLog()).includes('listening on'), {
      timeoutMs: 3000,
      what: `tcpdump on ${c.node} ${dev} to start listening`,
      hint: () => `it printed: ${last.trim() || 'nothing'}`,
    });
    const result = await fn();
    for (let i = 0; i < 100 && ((await readLog()).match(/\n/g)?.length ?? 0) < c.packets + 1; i++) await sleep(20);
    return { result, captured: await readLog() };
  } finally {
    await ctx.backend.stop(started);
  }
}

export async function runStep(ctx: StepContext, step: Step): Promise<StepOutcome> {
  const t0 = performance.now();
  const done = (o: Omit<StepOutcome, 'name' | 'durationMs'>): StepOutcome => {
    const durationMs = performance.now() - t0;
    return { name: step.name, durationMs, ...o, ...(step.measure && o.ok ? { metrics: { [step.measure]: Math.round(durationMs) } } : {}) };
  };
  const proxyMode = ctx.lab.network.proxyMode;
  if (step.proxyMode && step.proxyMode !== proxyMode) return done({ ok: true, skipped: `written for kube-proxy's ${step.proxyMode} mode; this run uses ${proxyMode ?? 'none'}` });
  try {
    if (step.service) {
      const { node, name, action } = step.service;
      if (!ctx.services) return done({ ok: false, failure: 'this lab cannot stop or start node services' });
      return done({ ok: true, target: `node ${node}`, command: `${action} ${name}`, stdout: await ctx.services[action](node, name) });
    }
    if (step.delete || step.recreate || step.scale) {
      if (!ctx.workloads) return done({ ok: false, failure: 'this lab cannot delete pods or scale workloads' });
      const w = ctx.workloads;
      const [command, stdout] = step.delete
        ? [`delete pod ${step.delete.pod}`, await w.delete(render(step.delete.pod, ctx.vars))]
        : step.recreate
          ? [`recreate pod ${step.recreate.pod}`, await w.recreate(render(step.recreate.pod, ctx.vars))]
          : [`scale ${step.scale!.workload} --replicas ${step.scale!.replicas}`, await w.scale(step.scale!.workload, step.scale!.replicas)];
      return done({ ok: true, target: 'cluster', command, stdout });
    }
    if (step.policy) {
      if (!ctx.policies) return done({ ok: false, failure: 'this lab has no NetworkPolicy engine' });
      const [verb, refs] = 'apply' in step.policy ? (['apply', step.policy.apply] as const) : (['delete', step.policy.delete] as const);
      return done({ ok: true, target: 'cluster', command: `${verb} policy ${refs.join(', ')}`, stdout: await ctx.policies[verb]([...refs]) });
    }
    if (step.check) {
      const { failure, stdout } = await builtinCheck(ctx, step);
      return done({ ok: !failure, failure, target: 'cluster', command: `check ${step.check}`, stdout });
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

async function builtinCheck(ctx: StepContext, step: Step): Promise<{ failure?: string; stdout?: string }> {
  const e = step.expect ?? {};
  if (step.check === 'pods-running') return { failure: podsRunning(ctx, e) };
  if (step.check === 'kubernetes-model') {
    // Every property gets its verdict; the lab may say which ones it breaks on purpose.
    const verdicts = await checkModel(ctx);
    return { failure: judgeModel(verdicts, e.violates), stdout: formatVerdicts(verdicts) };
  }
  return { failure: `unknown check ${step.check}` };
}

function podsRunning(ctx: StepContext, e: NonNullable<Step['expect']>): string | undefined {
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
