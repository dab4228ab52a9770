// `npm run bench:backends`: what a backend adds. Every lab runs on each backend
// (netns, docker, hosts) in the same process, alternately (so all see the same
// machine load), --repeat times each (default 3); medians with min–max, per
// phase, and each backend's ratio to netns. A private dockerd is started for
// the run (the engine DOCKER_HOST names with --use-docker-host) and everything
// on it removed before it stops by PID; the hosts are containers of the node
// image reached over ssh (test/helpers/ssh-hosts.ts), on an underlay of their
// own with a device not called eth0; --vagrant (or vagrant in --backends) adds
// VMs booted with qemu (minutes per run under software emulation). Run it under
// the machine's docker lock:
//   flock /run/cnilab-docker.lock npm run bench:backends -- --lab flannel-vxlan
import { runLab, type RunOptions, type RunReport } from '../src/runner/runner.js';
import { QuietReporter } from '../src/runner/reporter.js';
import { listLabFiles } from '../src/lab/lab-file.js';
import { requireBuilt } from '../src/lab/paths.js';
import { connectDocker, dockerHost } from '../src/topologies/docker-engine.js';
import { ensureNodeImage } from '../src/topologies/docker-image.js';
import { median } from '../src/bench/stats.js';
import { startEngine, stopTestEngine, type TestEngine } from '../test/helpers/private-engine.js';
import { startSshHosts } from '../test/helpers/ssh-hosts.js';
import { numberOption, parseOptions, usageError } from './args.js';

const values = parseOptions(
  {
    script: 'bench:backends',
    about: "What a backend adds: every lab on each backend alternately, phase by phase, with each backend's ratio to netns (run it under flock /run/cnilab-docker.lock).",
    example: '--lab flannel-vxlan --repeat 3',
  },
  {
    repeat: { type: 'string', default: '3', value: 'n', help: 'runs of each lab on each backend' },
    lab: { type: 'string', multiple: true, value: 'name', shown: 'every lab', help: 'a lab to run' },
    backends: { type: 'string', default: 'netns,docker,hosts', value: 'list', help: 'the backends, netns first; vagrant too' },
    'use-docker-host': { type: 'boolean', default: false, help: 'use the engine DOCKER_HOST names, not a private dockerd' },
    vagrant: { type: 'boolean', default: false, help: 'add VMs booted with qemu (minutes a run)' },
    json: { type: 'boolean', default: false, help: 'print the results as JSON' },
  },
);
const repeat = numberOption('repeat', values.repeat, { min: 1 });

/**
 * Each backend: what it needs ready before timing starts, and the options its
 * labs run with; netns is the reference every ratio divides by.
 */
const SETUPS: Record<string, () => Promise<Partial<RunOptions>>> = {
  netns: async () => ({}),
  // VMs booted with qemu: the box is built (or taken from its cache) by the first run, minutes under emulation.
  vagrant: async () => ({}),
  docker: async () => {
    if (values['use-docker-host']) await ensureNodeImage(await connectDocker(dockerHost()), (m) => console.error(m));
    else process.env.DOCKER_HOST = (await engine()).engine.host;
    return {};
  },
  hosts: async () => {
    const hosts = await startSshHosts(await engine(), {
      subnet: '172.31.7.0/24',
      gateway: '172.31.7.254',
      nodes: { master: { host: 'm1', address: '172.31.7.11', iface: 'eth0' }, worker: { host: 'w1', address: '172.31.7.12', iface: 'ens5' } },
    });
    return { inventory: hosts.inventory };
  },
};
const BACKENDS = [...values.backends.split(','), ...(values.vagrant && !values.backends.includes('vagrant') ? ['vagrant'] : [])];
for (const b of BACKENDS) if (!SETUPS[b]) usageError(`--backends: no setup for "${b}" here (${Object.keys(SETUPS).join(', ')})`);
if (BACKENDS[0] !== 'netns') usageError('--backends: netns first, the reference the others are divided by');
const labs = values.lab ?? listLabFiles();
requireBuilt();

let started: TestEngine | undefined;
async function engine(): Promise<TestEngine> {
  if (started) return started;
  const t = await startEngine({ ssh: 'openssh-client', 'ssh-keygen': 'openssh-client' });
  if (typeof t === 'string') throw new Error(t);
  return (started = t);
}

interface Sample {
  totalMs: number;
  phases: Record<string, number>;
}
const samples: Record<string, Record<string, Sample[]>> = {};
const failures: string[] = [];
/** Labs this kernel cannot run (a missing feature, named): not timed, not failures. */
const skipped = new Set<string>();
const options: Record<string, Partial<RunOptions>> = {};
try {
  for (const b of BACKENDS) options[b] = await SETUPS[b]();
  for (const lab of labs) {
    samples[lab] = Object.fromEntries(BACKENDS.map((b) => [b, []]));
    for (let i = 0; i < repeat; i++) {
      for (const backend of BACKENDS) {
        const t0 = performance.now();
        let r: RunReport;
        try {
          r = await runLab(lab, { name: `bench-${backend}-${lab}`.slice(0, 31), backend, install: false, ...options[backend] }, new QuietReporter());
        } catch (e) {
          // A lab this backend's machines cannot hold (the inventory names other nodes): a failure of that pair, not of the run.
          failures.push(`${lab} on ${backend}: ${(e as Error).message}`);
          continue;
        }
        const totalMs = performance.now() - t0;
        if (r.skipped) {
          skipped.add(`${lab} on ${backend}: ${r.skipped}`);
          continue;
        }
        if (!r.ok) failures.push(`${lab} on ${backend}: ${r.error ?? r.steps.filter((s) => !s.ok).map((s) => s.name).join('; ')}`);
        // Phase names carry details ("nodes (master, worker) on docker"): keep the first word.
        samples[lab][backend].push({ totalMs, phases: Object.fromEntries(r.phases.map((p) => [p.phase.split(' ')[0], p.ms])) });
      }
    }
  }
} finally {
  await stopTestEngine(started);
}

interface Stat {
  medianMs: number;
  minMs: number;
  maxMs: number;
}
const stat = (xs: number[]): Stat => (!xs.length ? { medianMs: NaN, minMs: NaN, maxMs: NaN } : { medianMs: Math.round(median(xs)), minMs: Math.round(Math.min(...xs)), maxMs: Math.round(Math.max(...xs)) });
interface Row {
  lab: string;
  name: string;
  /** Per backend, and its median over netns's. */
  stats: Record<string, Stat>;
  overNetns: Record<string, number>;
}

// A lab a backend skips (macvlan on hosts) keeps its row, with "–" there.
const timed = labs.filter((lab) => samples[lab].netns.length > 0);
const rows: Row[] = timed.flatMap((lab) => {
  const phaseNames = [...new Set(BACKENDS.flatMap((b) => samples[lab][b].flatMap((s) => Object.keys(s.phases))))];
  const row = (name: string, pick: (s: Sample) => number | undefined): Row => {
    const stats = Object.fromEntries(BACKENDS.map((b) => [b, stat(samples[lab][b].map(pick).filter((x): x is number => x !== undefined))]));
    const overNetns = Object.fromEntries(BACKENDS.slice(1).map((b) => [b, +(stats[b].medianMs / stats.netns.medianMs).toFixed(2)]));
    return { lab, name, stats, overNetns };
  };
  return [row('whole run', (s) => s.totalMs), ...phaseNames.map((p) => row(p, (s) => s.phases[p]))];
});

if (values.json) {
  console.log(JSON.stringify({ repeat, backends: BACKENDS, rows, failures, skipped: [...skipped] }, null, 2));
} else {
  const others = BACKENDS.slice(1);
  console.log(`every lab on ${BACKENDS.join(', ')}, alternately, ${repeat} runs each (median ms; min–max)\n`);
  console.log(`${'lab'.padEnd(18)} ${'phase'.padEnd(12)} ${BACKENDS.map((b) => b.padStart(20)).join(' ')}  ${others.map((b) => `${b}/netns`).join('  ')}`);
  const cell = (s: Stat) => (Number.isNaN(s.medianMs) ? '–' : `${s.medianMs} (${s.minMs}–${s.maxMs})`).padStart(20);
  for (const r of rows) {
    const ratios = others.map((b) => (Number.isFinite(r.overNetns[b]) ? `${r.overNetns[b]}x` : '–').padStart(b.length + 6)).join('  ');
    console.log(`${r.lab.padEnd(18)} ${r.name.padEnd(12)} ${BACKENDS.map((b) => cell(r.stats[b])).join(' ')}  ${ratios}`);
  }
  if (skipped.size) console.log(`\nnot timed:\n  ${[...skipped].join('\n  ')}`);
  console.log(failures.length ? `\nfailed runs:\n  ${failures.join('\n  ')}` : '\nall steps passed in every run');
}
process.exitCode = failures.length ? 1 : 0;
