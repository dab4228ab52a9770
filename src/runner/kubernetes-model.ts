// The Kubernetes network model (lesson 000), checked from the kernel and the
// servers' own logs. Each of its four properties gets its own verdict, so a lab
// that breaks the model on purpose (docker-bridge) can say which ones it breaks,
// and a lab that should hold it says exactly what went wrong when it does not.
import { parseAddr, parsePrefix, prefixContains, type Family } from '../net/ipnet.js';
import type { PodRecord } from '../lab/state.js';
import type { Backend } from '../topologies/backend.js';
import type { Lab } from '../lab/lab-file.js';

import { MODEL_PROPERTIES, type ModelProperty } from '../lab/lab-file.js';
import { Ip } from '../net/ip.js';

/** What the check reads of a running lab (a step's context has all of it). */
export interface ModelContext {
  backend: Backend;
  lab: Lab;
  pods: PodRecord[];
  vars: Record<string, string>;
}

export { MODEL_PROPERTIES, type ModelProperty };

/** The four assumptions, as the lesson states them. */
export const MODEL_STATEMENTS: Record<ModelProperty, string> = {
  'unique-ip': 'each pod in the cluster has a unique IP address',
  'shared-ip': 'all containers within a pod share the same IP address',
  'one-network': 'all pods in the cluster belong to one pod network',
  'no-nat': 'pods reach pods on other nodes at their own addresses, without NAT',
};

export interface ModelVerdict {
  property: ModelProperty;
  holds: boolean;
  /** The evidence: what was seen, in one sentence. */
  detail: string;
}

/** The pod's address of one family: a dual-stack lab checks the model once per family. */
const ipOf = (p: PodRecord, family: Family) => (family === 6 ? p.ip6 : p.ip);
const podAt = (p: PodRecord, family: Family = 4) => `${p.name} (${p.node}, ${ipOf(p, family) ?? 'no address'})`;

/** unique-ip and one-network: from the addresses the CNI results gave the pods. Pure. */
export function addressVerdicts(pods: PodRecord[], podCIDR: string, family: Family = 4): ModelVerdict[] {
  const holders = new Map<string, PodRecord[]>();
  for (const p of pods) holders.set(ipOf(p, family) ?? '', [...(holders.get(ipOf(p, family) ?? '') ?? []), p]);
  const repeated = [...holders.entries()].filter(([ip, ps]) => ip && ps.length > 1);
  const missing = holders.get('') ?? [];
  const unique: ModelVerdict = missing.length
    ? { property: 'unique-ip', holds: false, detail: `${missing.map((p) => p.name).join(', ')} got no address` }
    : repeated.length
      ? { property: 'unique-ip', holds: false, detail: repeated.map(([ip, ps]) => `${ip} is held by ${ps.map((p) => `${p.name} on ${p.node}`).join(' and by ')}`).join('; ') }
      : { property: 'unique-ip', holds: true, detail: `${pods.length} pods, ${pods.length} different addresses` };

  const cidr = parsePrefix(podCIDR);
  const outside = pods.filter((p) => {
    const a = parseAddr(ipOf(p, family) ?? '');
    return !cidr || !a || !prefixContains(cidr, a);
  });
  const one: ModelVerdict = outside.length
    ? { property: 'one-network', holds: false, detail: `${outside.map((p) => podAt(p, family)).join(', ')} ${outside.length > 1 ? 'are' : 'is'} outside the pod network ${podCIDR}` }
    : { property: 'one-network', holds: true, detail: `every pod address is in ${podCIDR}` };
  return [unique, one];
}

/** Which pod answered, from the body our nginx serves: "pod nginx-1 on worker, address …". */
export function answeredBy(body: string): { pod: string; node: string } | undefined {
  const m = /^pod (\S+) on (\S+),/.exec(body);
  return m ? { pod: m[1], node: m[2] } : undefined;
}

/** A pod's log, read on its node (where nginx writes it). */
async function readLog(ctx: ModelContext, pod: PodRecord, file: string | undefined): Promise<string> {
  return file ? ((await ctx.backend.readFile(pod.node, file)) ?? '') : '';
}

/** The access-log line for `marker` written after offset `before`; nginx writes it just after answering, so wait a little. */
async function logLine(read: () => Promise<string>, before: number, marker: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const line = (await read()).slice(before).split('\n').find((l) => l.includes(marker));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 20));
  }
  return '';
}

async function sharedAddress(ctx: ModelContext, family: Family): Promise<ModelVerdict> {
  for (const p of ctx.pods) {
    // A second process in the sandbox, as a sidecar container would be.
    const [eth0] = await new Ip(ctx.backend.pod(p.node, p.name)).addrs('eth0').catch(() => []);
    const seen = (eth0?.addr_info ?? []).filter((a) => a.family === (family === 6 ? 'inet6' : 'inet') && a.scope !== 'link').map((a) => a.local);
    const ip = ipOf(p, family);
    if (!ip || !seen.includes(ip)) {
      return { property: 'shared-ip', holds: false, detail: `a second process in ${p.name} sees ${seen.join(', ') || `no IPv${family} address on eth0`} instead of ${ip}` };
    }
  }
  return { property: 'shared-ip', holds: true, detail: `a second process in each of the ${ctx.pods.length} pods sees the pod's address` };
}

/** Every pod asks a pod on another node at that pod's address; the answer and the server's log tell the rest. */
async function noNat(ctx: ModelContext, family: Family): Promise<ModelVerdict> {
  const fail = (detail: string): ModelVerdict => ({ property: 'no-nat', holds: false, detail });
  const pairs: string[] = [];
  for (const client of ctx.pods) {
    const server = ctx.pods.find((p) => p.node !== client.node);
    if (!server) continue;
    const read = () => readLog(ctx, server, ctx.vars[`pods.${server.name}.accessLog`]);
    const before = (await read()).length;
    const serverIp = ipOf(server, family);
    const clientIp = ipOf(client, family);
    const url = family === 6 ? `http://[${serverIp}]/model-check` : `http://${serverIp}/model-check`;
    const ask = () => ctx.backend.pod(client.node, client.name).run(['curl', '-s', '--max-time', '5', url], { allowFailure: true });
    // A timeout (28) is asked again, up to three times: on a loaded machine a first SYN (and the neighbour
    // resolution before it) can be late; a refusal or a reset is an answer.
    let r = await ask();
    for (let again = 0; again < 2 && r.exitCode === 28; again++) r = await ask();
    const asked = `${client.name} on ${client.node} asked ${serverIp} for ${server.name} on ${server.node}`;
    if (r.exitCode !== 0) return fail(`${asked}: no answer (curl exit ${r.exitCode})`);
    const who = answeredBy(r.stdout);
    if (who && who.pod !== server.name) {
      const itself = who.pod === client.name ? ' (itself)' : '';
      return fail(`${asked} and was answered by ${who.pod} on ${who.node}${itself}: from ${client.node}, that address is a different pod`);
    }
    const source = (await logLine(read, before, '/model-check')).split(' ')[0];
    if (source !== clientIp) return fail(`${asked}; ${server.name} saw the request come from ${source || 'nowhere'}, not from ${client.name}'s own address ${clientIp}`);
    pairs.push(`${client.name}→${server.name}`);
  }
  if (!pairs.length) return fail('cannot be shown: no two pods run on different nodes');
  return { property: 'no-nat', holds: true, detail: `${pairs.join(', ')}: each server logged the client pod's own address` };
}

async function checkFamily(ctx: ModelContext, family: Family, podCIDR: string): Promise<ModelVerdict[]> {
  const [unique, one] = addressVerdicts(ctx.pods, podCIDR, family);
  return [unique, await sharedAddress(ctx, family), one, await noNat(ctx, family)];
}

/** Each property, for IPv4 and (dual-stack) for IPv6: it holds only when it holds for every family. */
export async function checkModel(ctx: ModelContext): Promise<ModelVerdict[]> {
  const v4 = await checkFamily(ctx, 4, ctx.lab.network.podCIDR);
  if (!ctx.lab.network.podCIDRv6) return v4;
  const v6 = await checkFamily(ctx, 6, ctx.lab.network.podCIDRv6);
  return v4.map((a, i) => mergeFamilies(a, v6[i]));
}

export function mergeFamilies(v4: ModelVerdict, v6: ModelVerdict): ModelVerdict {
  return { property: v4.property, holds: v4.holds && v6.holds, detail: `IPv4: ${v4.detail}; IPv6: ${v6.detail}` };
}

/** One line per property: ✔ holds or ✘ violated, what it says, and the evidence. */
export function formatVerdicts(verdicts: ModelVerdict[]): string {
  return verdicts.map((v) => `${v.holds ? '✔ holds   ' : '✘ violated'} ${v.property}: ${MODEL_STATEMENTS[v.property]} — ${v.detail}`).join('\n');
}

/** The step's verdict: undefined when exactly the expected properties are violated (none, unless the lab says so). */
export function judgeModel(verdicts: ModelVerdict[], expectedViolations: readonly ModelProperty[] = []): string | undefined {
  const problems: string[] = [];
  for (const v of verdicts) {
    const expected = expectedViolations.includes(v.property);
    if (!v.holds && !expected) problems.push(`${v.property} is violated: ${MODEL_STATEMENTS[v.property]}, but ${v.detail}`);
    if (v.holds && expected) problems.push(`${v.property} was expected to be violated in this lab, but it holds: ${v.detail}`);
  }
  if (!problems.length) return undefined;
  return `the Kubernetes network model: ${problems.join('; ')}\n${formatVerdicts(verdicts)
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n')}`;
}
