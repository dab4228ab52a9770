// `npm run bench:backends`: what a backend adds. Every lab runs on netns and on
// docker in the same process, alternately (so both see the same machine load),
// --repeat times each (default 3); medians with min–max, per phase, and the
// docker/netns ratio. A private dockerd is started for the run and stopped by
// PID at the end (or the engine DOCKER_HOST names, with --use-docker-host); the
// node image is made ready before timing starts. With --vagrant, each lab also
// runs on VMs booted with qemu (minutes per run under software emulation).
import { mkdtempSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { runLab, type RunReport } from '../src/runner/runner.js';
import { QuietReporter } from '../src/runner/reporter.js';
import { listLabFiles } from '../src/lab/lab-file.js';
import { requireBuilt } from '../src/lab/paths.js';
import { connectDocker, dockerHost, startPrivateEngine, stopPrivateEngine, type PrivateEngine } from '../src/topologies/docker-engine.js';
import { ensureNodeImage } from '../src/topologies/docker-image.js';
import { median } from '../src/bench/stats.js';

const { values } = parseArgs({
  options: {
    repeat: { type: 'string', default: '3' },
    lab: { type: 'string', multiple: true },
    'use-docker-host': { type: 'boolean', default: false },
    vagrant: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const repeat = Number(values.repeat);
const labs = values.lab ?? listLabFiles();
const BACKENDS: ('netns' | 'docker' | 'vagrant')[] = ['netns', 'docker', ...(values.vagrant ? (['vagrant'] as const) : [])];
requireBuilt();

let engine: PrivateEngine | undefined;
if (!values['use-docker-host']) {
  engine = await startPrivateEngine(mkdtempSync('/tmp/cnilab-dockerd-'));
  process.env.DOCKER_HOST = engine.host;
}

interface Sample {
  totalMs: number;
  phases: Record<string, number>;
}
const samples: Record<string, Record<string, Sample[]>> = {};
const failures: string[] = [];
/** Labs this kernel cannot run (a missing feature, named): not timed, not failures. */
const skipped = new Set<string>();
try {
  await ensureNodeImage(await connectDocker(dockerHost()), (m) => console.error(m));
  for (const lab of labs) {
    samples[lab] = Object.fromEntries(BACKENDS.map((b) => [b, []]));
    for (let i = 0; i < repeat; i++) {
      for (const backend of BACKENDS) {
        const t0 = performance.now();
        const r: RunReport = await runLab(lab, { name: `bench-${backend}-${lab}`.slice(0, 31), backend, install: false }, new QuietReporter());
        const totalMs = performance.now() - t0;
        if (r.skipped) {
          skipped.add(`${lab}: ${r.skipped}`);
          continue;
        }
        if (!r.ok) failures.push(`${lab} on ${backend}: ${r.error ?? r.steps.filter((s) => !s.ok).map((s) => s.name).join('; ')}`);
        // Phase names carry details ("nodes (master, worker) on docker"): keep the first word.
        samples[lab][backend].push({ totalMs, phases: Object.fromEntries(r.phases.map((p) => [p.phase.split(' ')[0], p.ms])) });
      }
    }
  }
} finally {
  if (engine) {
    await stopPrivateEngine(engine);
    await execa('rm', ['-rf', '--one-file-system', engine.dir], { reject: false });
  }
}

interface Stat {
  medianMs: number;
  minMs: number;
  maxMs: number;
}
const stat = (xs: number[]): Stat => ({ medianMs: Math.round(median(xs)), minMs: Math.round(Math.min(...xs)), maxMs: Math.round(Math.max(...xs)) });
interface Row {
  lab: string;
  name: string;
  netns: Stat;
  docker: Stat;
  dockerOverNetns: number;
  vagrant?: Stat;
  vagrantOverNetns?: number;
}

const timed = labs.filter((lab) => BACKENDS.every((b) => samples[lab][b].length > 0));
const rows: Row[] = timed.flatMap((lab) => {
  const phaseNames = [...new Set(BACKENDS.flatMap((b) => samples[lab][b].flatMap((s) => Object.keys(s.phases))))];
  const row = (name: string, pick: (s: Sample) => number | undefined): Row => {
    const of = (b: (typeof BACKENDS)[number]) => stat(samples[lab][b].map(pick).filter((x): x is number => x !== undefined));
    const [netns, docker] = [of('netns'), of('docker')];
    const row: Row = { lab, name, netns, docker, dockerOverNetns: +(docker.medianMs / netns.medianMs).toFixed(2) };
    if (values.vagrant) {
      row.vagrant = of('vagrant');
      row.vagrantOverNetns = +(row.vagrant.medianMs / netns.medianMs).toFixed(2);
    }
    return row;
  };
  return [row('whole run', (s) => s.totalMs), ...phaseNames.map((p) => row(p, (s) => s.phases[p]))];
});

if (values.json) {
  console.log(JSON.stringify({ repeat, rows, failures, skipped: [...skipped] }, null, 2));
} else {
  console.log(`every lab on ${BACKENDS.join(', ')}, alternately, ${repeat} runs each (median ms; min–max)\n`);
  const vm = values.vagrant ? ` ${'vagrant'.padStart(24)}  vagrant/netns` : '';
  console.log(`${'lab'.padEnd(18)} ${'phase'.padEnd(12)} ${'netns'.padStart(20)} ${'docker'.padStart(20)}  docker/netns${vm}`);
  const cell = (s: Stat, width = 20) => (isFinite(s.medianMs) ? `${s.medianMs} (${s.minMs}–${s.maxMs})` : '-').padStart(width);
  for (const r of rows) {
    const vmCells = r.vagrant ? ` ${cell(r.vagrant, 24)}  ${String(r.vagrantOverNetns).padStart(12)}x` : '';
    console.log(`${r.lab.padEnd(18)} ${r.name.padEnd(12)} ${cell(r.netns)} ${cell(r.docker)}  ${String(r.dockerOverNetns).padStart(11)}x${vmCells}`);
  }
  if (skipped.size) console.log(`\nnot timed:\n  ${[...skipped].join('\n  ')}`);
  console.log(failures.length ? `\nfailed runs:\n  ${failures.join('\n  ')}` : '\nall steps passed in every run');
}
process.exitCode = failures.length ? 1 : 0;
