// tc (traffic control) in one network namespace: token-bucket shapers, the
// ingress qdisc, and a filter that redirects a device's incoming packets to
// another device (ifb), which is how egress from a pod gets shaped on the node.
// The one place that runs tc for shaping (bpf.ts runs it for BPF programs).
import { inNetns, run, type Netns } from './exec.js';

export interface Tbf {
  /** Bytes per second. */
  rate: number;
  /** Bucket size in bytes. */
  burst: number;
  /** Bytes that may wait in the queue. */
  limit: number;
}

export interface Qdisc {
  kind: string;
  handle: string;
  root?: boolean;
  parent?: string;
  options?: Record<string, unknown>;
}

export interface Filter {
  kind?: string;
  protocol?: string;
  pref?: number;
  options?: { actions?: { kind: string; to_dev?: string; mirred_action?: string }[] } & Record<string, unknown>;
}

const tc = (netns: Netns, args: string[]) => run(inNetns(netns, 'tc', args));

/** Several tc commands in one process. */
async function tcBatch(netns: Netns, lines: string[][]): Promise<void> {
  await run(inNetns(netns, 'tc', ['-batch', '-']), { input: lines.map((l) => l.join(' ')).join('\n') + '\n' });
}

/** `tc qdisc add dev DEV root handle 1: tbf …`: rate in bytes/s (bps), burst and limit in bytes. */
export function tbfLine(dev: string, t: Tbf): string[] {
  return ['qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'tbf', 'rate', `${t.rate}bps`, 'burst', `${t.burst}b`, 'limit', `${t.limit}b`];
}

export async function addTbf(netns: Netns, dev: string, t: Tbf): Promise<void> {
  await tc(netns, tbfLine(dev, t));
}

/**
 * Everything that arrives on `dev` goes out of `to` instead (ingress qdisc,
 * a u32 filter matching all, mirred egress redirect), where a root qdisc of
 * `to` can shape it: a pod's egress is its host veth's ingress.
 */
export async function addIngressRedirect(netns: Netns, dev: string, to: string): Promise<void> {
  await tcBatch(netns, [
    ['qdisc', 'add', 'dev', dev, 'handle', 'ffff:', 'ingress'],
    ['filter', 'add', 'dev', dev, 'parent', 'ffff:', 'protocol', 'all', 'prio', '1', 'u32', 'match', 'u32', '0', '0', 'classid', '1:1', 'action', 'mirred', 'egress', 'redirect', 'dev', to],
  ]);
}

export async function qdiscs(netns: Netns, dev: string): Promise<Qdisc[]> {
  const out = (await tc(netns, ['-json', 'qdisc', 'show', 'dev', dev])).stdout;
  return out.trim() ? (JSON.parse(out) as Qdisc[]) : [];
}

export async function ingressFilters(netns: Netns, dev: string): Promise<Filter[]> {
  const r = await run(inNetns(netns, 'tc', ['-json', 'filter', 'show', 'dev', dev, 'parent', 'ffff:']), { allowFailure: true });
  return r.exitCode === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as Filter[]) : [];
}

/** Remove the root qdisc (back to the default) or the ingress qdisc with its filters; absent is fine. */
export async function deleteQdisc(netns: Netns, dev: string, which: 'root' | 'ingress'): Promise<void> {
  const r = await run(inNetns(netns, 'tc', ['qdisc', 'del', 'dev', dev, ...(which === 'root' ? ['root'] : ['handle', 'ffff:', 'ingress'])]), { allowFailure: true });
  if (r.exitCode !== 0 && !/No such file|Cannot find device|Invalid handle|Cannot delete qdisc with handle of zero/.test(r.stderr)) {
    throw new Error(`tc qdisc del dev ${dev} ${which} failed: ${r.stderr.trim()}`);
  }
}
