// ADD and DEL latency of our bridge + host-local against the reference
// plugins (/usr/lib/cni), interleaved in one run, each executed as a runtime
// does: exec with CNI_* env and the config on stdin, from inside a node
// namespace. Ours three ways: through the node's daemon a lab starts; cold, as
// a runtime without a lab calls it (the first call's shim starts the daemon,
// the "first ADD" column shows that once-off cost); and with no daemon at all.
// The breakdown inside the daemon comes from a second, traced daemon measured
// in the same loop, so that the tracing costs nothing to the figures of ours.
// `npm run bench:cni [-- --cycles 30 --warmup 5 --json]`.
//
// The process re-executes itself inside the node namespace for the timed
// loop, so no nsenter stands between the clock and the plugin.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { release, tmpdir, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { inNetns, netnsPath } from '../src/net/exec.js';
import { addNetns, deleteNetns, listNetns, netnsInode } from '../src/net/netns.js';
import { summarize, type Summary } from '../src/bench/stats.js';
import { daemonBreakdown, type Breakdown } from '../src/bench/cni-trace.js';
import { AUTOSTART_ENV, pidPath, RUN_DIR_ENV, socketPath } from '../src/cni/daemon.js';
import { startCnid, stopCnid, type Cnid } from '../src/runner/cnid.js';
import { numberOption, parseOptions } from './args.js';

const OURS = resolve('dist/cni/bin');
const TRACED = 'ours-traced';
const REFERENCE = '/usr/lib/cni';

interface Impl {
  key: string;
  label: string;
  dir: string;
  env: Record<string, string>;
}

/** What the parent hands the timed loop inside the node namespace. */
interface Plan {
  id: string;
  cycles: number;
  warmup: number;
  dataDir: string;
  impls: Impl[];
}

interface Measured {
  add: number[];
  del: number[];
  /** The very first ADD, in the warm-up: what a cold start costs once. */
  firstAdd?: number;
}

interface Outcome {
  results: Record<string, { add: Summary; del: Summary; firstAdd: number }>;
  components: { what: string; median: number }[];
  /** Inside the daemon, from its trace log. */
  daemon?: { add?: Breakdown; del?: Breakdown };
}

function netconf(impl: Impl, index: number, dataDir: string): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: `cnitest-b-${impl.key}`,
    type: 'bridge',
    bridge: `cnib-${index}`,
    isGateway: true,
    ipam: { type: 'host-local', ranges: [[{ subnet: `10.77.${index}.0/24` }]], dataDir },
  });
}

function exec(file: string, env: NodeJS.ProcessEnv, input: string, args: string[] = []): { ms: number; code: number; stdout: string; stderr: string } {
  const t0 = performance.now();
  const r = spawnSync(file, args, { env, input, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.error) throw r.error;
  return { ms, code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

function cniCall(impl: Impl, command: 'ADD' | 'DEL', conf: string, containerId: string, netns: string) {
  const env = {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: netns,
    CNI_IFNAME: 'eth0',
    CNI_PATH: impl.dir,
    ...impl.env,
  };
  const r = exec(join(impl.dir, 'bridge'), env, conf);
  if (r.code !== 0) throw new Error(`${impl.label} ${command} failed (exit ${r.code}): ${r.stdout}${r.stderr}`);
  if (command === 'ADD' && !JSON.parse(r.stdout).ips?.length) throw new Error(`${impl.label} ADD returned no address: ${r.stdout}`);
  return r.ms;
}

function medianOf(n: number, fn: () => number): number {
  const xs = Array.from({ length: n }, fn);
  return summarize(xs).median;
}

/** Fixed costs that explain the totals: process start-up, module load, one `ip`. */
function components(plan: Plan, probe: string): { what: string; median: number }[] {
  const n = 30;
  const clean = { PATH: process.env.PATH }; // what a runtime passes, give or take; no NODE_* start-up options
  const time = (argv: string[], env: NodeJS.ProcessEnv = clean) => () => {
    const r = exec(argv[0], env, '', argv.slice(1));
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${r.code} ${r.stderr}`);
    return r.ms;
  };
  const version = (impl: Impl) => time([join(impl.dir, 'bridge')], { PATH: process.env.PATH, CNI_COMMAND: 'VERSION', ...impl.env });
  const out = [
    { what: 'exec of /bin/true from this process (the floor under every number)', median: medianOf(n, time(['/bin/true'])) },
    { what: 'node -e 0 (Node start-up)', median: medianOf(n, time([process.execPath, '-e', '0'])) },
  ];
  for (const impl of plan.impls) out.push({ what: `${impl.label}: VERSION (start-up and load, no kernel work)`, median: medianOf(n, version(impl)) });
  out.push({ what: 'one `ip link show` spawn in this namespace', median: medianOf(n, time(['ip', 'link', 'show', 'lo'])) });
  out.push({ what: 'one `ip -n <ctr> link show` spawn (ip enters the namespace itself)', median: medianOf(n, time(['ip', '-n', probe, 'link', 'show', 'lo'])) });
  return out;
}

/** The timed loop; runs inside the node namespace. */
async function inside(plan: Plan): Promise<Outcome> {
  const confs = plan.impls.map((impl, i) => netconf(impl, i, plan.dataDir));
  const samples: Measured[] = plan.impls.map(() => ({ add: [], del: [] }));
  const total = plan.warmup + plan.cycles;
  for (let cycle = 0; cycle < total; cycle++) {
    // Rotate the order every cycle so that no implementation always goes first.
    for (let k = 0; k < plan.impls.length; k++) {
      const i = (cycle + k) % plan.impls.length;
      const impl = plan.impls[i];
      const ctr = `${plan.id}-c${cycle}-${i}`;
      await addNetns(ctr);
      try {
        const add = cniCall(impl, 'ADD', confs[i], `bench${cycle}`, netnsPath(ctr));
        const del = cniCall(impl, 'DEL', confs[i], `bench${cycle}`, netnsPath(ctr));
        samples[i].firstAdd ??= add;
        if (cycle >= plan.warmup) {
          samples[i].add.push(add);
          samples[i].del.push(del);
        }
      } finally {
        await deleteNetns(ctr);
      }
    }
    if (cycle % 10 === 9) process.stderr.write(`  cycle ${cycle + 1}/${total}\n`);
  }
  const probe = `${plan.id}-probe`;
  await addNetns(probe);
  try {
    const results: Outcome['results'] = {};
    plan.impls.forEach((impl, i) => (results[impl.key] = { add: summarize(samples[i].add), del: summarize(samples[i].del), firstAdd: samples[i].firstAdd! }));
    return { results, components: components(plan, probe) };
  } finally {
    await deleteNetns(probe);
  }
}

/** The timed loop's process while it runs: stopped by its PID when the benchmark is interrupted. */
let loop: ReturnType<typeof spawn> | undefined;

function childOutput(argv: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    loop = child;
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', rej);
    child.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`benchmark loop failed (exit ${code})`))));
  });
}

function versionOf(argv: string[]): string {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  return (r.stdout || r.stderr || '').split('\n')[0].trim();
}

function fmt(ms: number): string {
  return ms.toFixed(1).padStart(8);
}

/** Each of ours against the reference: ADD and DEL, median and p90. */
function ratios(plan: Plan, outcome: Outcome): Record<string, Record<string, number>> {
  const ref = outcome.results.reference;
  const out: Record<string, Record<string, number>> = {};
  for (const impl of plan.impls.filter((i) => i.key !== 'reference' && i.key !== TRACED)) {
    const r = outcome.results[impl.key];
    out[impl.key] = { addMedian: r.add.median / ref.add.median, addP90: r.add.p90 / ref.add.p90, delMedian: r.del.median / ref.del.median, delP90: r.del.p90 / ref.del.p90 };
  }
  return out;
}

function printTable(plan: Plan, outcome: Outcome): void {
  const { results } = outcome;
  console.log(`\nCNI ADD/DEL latency in ms, ${plan.cycles} cycles after ${plan.warmup} warm-up, interleaved`);
  console.log('config: bridge + host-local, isGateway, cniVersion 1.0.0, one bridge and /24 per implementation\n');
  const w = Math.max(...plan.impls.map((i) => i.label.length)) + 2;
  console.log(`${''.padEnd(w)}ADD median  ADD p90  DEL median  DEL p90  first ADD`);
  for (const impl of plan.impls) {
    const r = results[impl.key];
    console.log(`${impl.label.padEnd(w)}${fmt(r.add.median)}   ${fmt(r.add.p90)}${fmt(r.del.median)}    ${fmt(r.del.p90)}   ${fmt(r.firstAdd)}`);
  }
  console.log('');
  const x = (v: number) => `${v.toFixed(2)}x`;
  for (const [key, r] of Object.entries(ratios(plan, outcome))) {
    const label = plan.impls.find((i) => i.key === key)!.label;
    console.log(`ratio ${label} / reference: ADD median ${x(r.addMedian)}, ADD p90 ${x(r.addP90)}, DEL median ${x(r.delMedian)}, DEL p90 ${x(r.delP90)}`);
  }
  console.log('\nwhere the time goes (median of 30, ms):');
  for (const c of outcome.components) console.log(`  ${fmt(c.median)}  ${c.what}`);
  for (const [verb, b] of Object.entries(outcome.daemon ?? {})) {
    if (!b) continue;
    console.log(`\ninside the daemon, one ${verb.toUpperCase()} (medians, ms; the rest of the time above is the shim, the socket and the exec):`);
    console.log(`  ${fmt(b.total)}  in all`);
    for (const c of b.commands) console.log(`  ${fmt(c.median)}  ${c.command}${c.perCall === 1 ? '' : ` (${c.perCall.toFixed(2)} per call)`}`);
    console.log(`  ${fmt(b.rest)}  everything else (IPAM files, JSON, sysctl, the event loop)`);
  }
}

async function main(): Promise<void> {
  const values = parseOptions(
    {
      script: 'bench:cni',
      about: 'CNI ADD and DEL latency of our bridge + host-local (through the daemon, cold, without one) against the reference plugins in /usr/lib/cni.',
      example: '--cycles 30 --warmup 5 --json',
    },
    {
      cycles: { type: 'string', default: '30', value: 'n', help: 'timed ADD/DEL cycles of each implementation' },
      warmup: { type: 'string', default: '5', value: 'n', help: 'cycles before the timed ones, not counted' },
      json: { type: 'boolean', default: false, help: 'print the results as JSON' },
      inside: { type: 'string', hidden: true, help: 'the timed loop, in the node namespace (the script re-executes itself)' },
    },
  );
  const cycles = numberOption('cycles', values.cycles, { min: 1 });
  const warmup = numberOption('warmup', values.warmup);
  if (values.inside) {
    process.stdout.write(JSON.stringify(await inside(JSON.parse(values.inside) as Plan)));
    return;
  }
  for (const dir of [OURS, REFERENCE]) {
    if (!existsSync(join(dir, 'bridge'))) throw new Error(`${dir}/bridge is missing (run npm run build; install containernetworking-plugins)`);
  }
  if (readFileSync(join(OURS, 'bridge')).subarray(0, 4).toString('latin1') !== '\x7fELF') {
    throw new Error(`${OURS}/bridge is not the shim (the build found no C compiler): install gcc and libc6-dev, then npm run build`);
  }

  const id = `cnitest-b-bench-${process.pid}`;
  const tmp = mkdtempSync(join(tmpdir(), 'cnitest-b-bench-'));
  const noDaemon = join(tmp, 'no-daemon'); // a run dir without a socket: the shim runs the plugin itself
  mkdirSync(noDaemon);
  const runDir = join(tmp, 'run'); // the daemon's socket: private to this run, not /run/cnilab-cnid
  const autoDir = join(tmp, 'auto'); // where the shim starts its own daemon: cold as a runtime without a lab finds it
  const tracedDir = join(tmp, 'traced');
  const impls: Impl[] = [
    { key: 'reference', label: 'reference (Go, /usr/lib/cni)', dir: REFERENCE, env: {} },
    { key: 'ours', label: 'ours (shim + node daemon)', dir: OURS, env: { [RUN_DIR_ENV]: runDir } },
    { key: 'ours-cold', label: 'ours cold (shim starts the daemon)', dir: OURS, env: { [RUN_DIR_ENV]: autoDir } },
    { key: 'ours-standalone', label: 'ours without daemon (autostart off)', dir: OURS, env: { [RUN_DIR_ENV]: noDaemon, [AUTOSTART_ENV]: '0' } },
    // A second daemon that logs every step with its time, for the breakdown only: the
    // logging itself costs a few tenths of a millisecond a call, so it is kept out of "ours".
    { key: TRACED, label: 'ours traced (for the breakdown)', dir: OURS, env: { [RUN_DIR_ENV]: tracedDir } },
  ];
  const plan: Plan = { id, cycles, warmup, dataDir: join(tmp, 'leases'), impls };
  let nodeCreated = false;
  const daemons: Cnid[] = [];
  // Everything this run made goes, whether it ends, fails or is interrupted (Ctrl-C, kill, a closed pipe).
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      if (loop?.pid && loop.exitCode === null && loop.signalCode === null) {
        const exited = new Promise((r) => loop!.once('exit', r));
        loop.kill('SIGKILL');
        await exited;
      }
      if (nodeCreated) {
        // The one the shim started serves the same namespace from its own run dir: stopped by its PID too.
        const auto = socketPath(autoDir, netnsInode(netnsPath(id))!);
        if (existsSync(pidPath(auto))) await stopCnid({ pid: Number(readFileSync(pidPath(auto), 'utf8')), socket: auto, netns: id });
      }
      for (const daemon of daemons) {
        await stopCnid(daemon);
        if (existsSync(daemon.socket)) console.error(`daemon socket ${daemon.socket} was left behind`);
      }
      for (const ns of listNetns().filter((n) => n.startsWith(`${id}-`))) await deleteNetns(ns);
      if (nodeCreated) await deleteNetns(id);
      rmSync(tmp, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: removing the benchmark's namespaces and daemons\n`);
      void cleanUp().finally(() => process.exit(130));
    });
  }
  // `| head` closes the pipe early: the rest of the output is lost, not the clean-up.
  process.stdout.on('error', () => undefined);
  try {
    await addNetns(id);
    nodeCreated = true;
    daemons.push(await startCnid(id, { log: join(tmp, 'cnid.log'), runDir }));
    daemons.push(await startCnid(id, { log: join(tmp, 'cnid-traced.log'), runDir: tracedDir, trace: true }));
    if (!values.json) process.stderr.write(`node namespace ${id}; ${warmup + cycles} cycles of ${impls.length} implementations\n`);
    const script = process.argv[1];
    const out = await childOutput(inNetns(id, process.execPath, [...process.execArgv, script, '--inside', JSON.stringify(plan)]));
    const outcome = JSON.parse(out) as Outcome;
    const log = readFileSync(join(tmp, 'cnid-traced.log'), 'utf8');
    const measured = (containerId: string) => Number(containerId.replace('bench', '')) >= warmup;
    outcome.daemon = { add: daemonBreakdown(log, 'ADD', measured), del: daemonBreakdown(log, 'DEL', measured) };
    if (values.json) {
      const env = {
        kernel: release(),
        cpus: cpus().length,
        node: process.version,
        ip: versionOf(['ip', '-V']),
        reference: versionOf(['dpkg-query', '-W', '-f=containernetworking-plugins ${Version}', 'containernetworking-plugins']),
      };
      const config = JSON.parse(netconf(impls[0], 0, plan.dataDir));
      const round = (_k: string, v: unknown) => (typeof v === 'number' ? Math.round(v * 100) / 100 : v);
      console.log(JSON.stringify({ cycles, warmup, env, config, ...outcome, ratios: ratios(plan, outcome) }, round, 2));
    } else {
      printTable(plan, outcome);
    }
  } finally {
    await cleanUp();
  }
}

await main();
