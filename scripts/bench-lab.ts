// `npm run bench:lab`: the wall time of `cnilab run flannel-vxlan`, phase by
// phase, and the time from start to the first cross-node ping that succeeds.
// Repeated (default 3, --repeat N); medians printed with min and max.
import { LabInstance } from '../src/runner/runner.js';
import { QuietReporter } from '../src/runner/reporter.js';
import { median } from '../src/bench/stats.js';
import { numberOption, parseOptions } from './args.js';

const values = parseOptions(
  {
    script: 'bench:lab',
    about: 'The wall time of `cnilab run <lab>` phase by phase and to the first cross-node ping, repeated; medians with min and max.',
    example: '--repeat 5',
  },
  {
    repeat: { type: 'string', default: '3', value: 'n', help: 'runs to take the medians of' },
    lab: { type: 'string', default: 'flannel-vxlan', value: 'name', help: 'the lab to run' },
    json: { type: 'boolean', default: false, help: 'print the results as JSON' },
  },
);
const repeat = numberOption('repeat', values.repeat, { min: 1 });

interface Sample {
  phases: Record<string, number>;
  firstCrossNodePing: number;
  total: number;
  stepsPassed: boolean;
}

async function once(): Promise<Sample> {
  const reporter = new QuietReporter();
  const t0 = performance.now();
  const inst = LabInstance.open(values.lab, { name: `bench-${values.lab}` }, reporter);
  let firstCrossNodePing = NaN;
  let stepsPassed = false;
  try {
    await inst.up();
    const pods = inst.pods.list();
    const a = pods[0];
    const b = pods.find((p) => p.node !== a.node)!;
    for (;;) {
      const r = await inst.backend.podExec(a.node, a.name, ['ping', '-c', '1', '-W', '1', b.ip!], { allowFailure: true });
      if (r.exitCode === 0) break;
    }
    firstCrossNodePing = performance.now() - t0;
    stepsPassed = (await reporter.phase('steps', () => inst.steps())).every((s) => s.ok);
  } finally {
    await reporter.phase('teardown', () => inst.down());
  }
  const phases = Object.fromEntries(reporter.timings().map((t) => [t.phase.split(' ')[0], t.ms]));
  return { phases, firstCrossNodePing, total: performance.now() - t0, stepsPassed };
}

const samples: Sample[] = [];
for (let i = 0; i < repeat; i++) samples.push(await once());

const row = (name: string, xs: number[], target?: number) => ({
  name,
  medianMs: Math.round(median(xs)),
  minMs: Math.round(Math.min(...xs)),
  maxMs: Math.round(Math.max(...xs)),
  ...(target ? { targetMs: target, ratioToTarget: +(median(xs) / target).toFixed(2) } : {}),
});
const phaseNames = Object.keys(samples[0].phases);
const rows = [
  ...phaseNames.map((p) => row(p, samples.map((s) => s.phases[p]))),
  row('start → first cross-node ping', samples.map((s) => s.firstCrossNodePing), 3000),
  row('whole run (up, steps, down)', samples.map((s) => s.total), 10000),
];
if (values.json) {
  console.log(JSON.stringify({ lab: values.lab, repeat, rows, allStepsPassed: samples.every((s) => s.stepsPassed) }, null, 2));
} else {
  console.log(`cnilab run ${values.lab}: ${repeat} runs on this machine (medians; min–max)\n`);
  console.log(`${'phase'.padEnd(32)} ${'median'.padStart(8)} ${'min–max'.padStart(14)}   target`);
  for (const r of rows) {
    const target = 'targetMs' in r ? `${r.targetMs} ms (${r.ratioToTarget}x of target)` : '';
    console.log(`${r.name.padEnd(32)} ${`${r.medianMs} ms`.padStart(8)} ${`${r.minMs}–${r.maxMs}`.padStart(14)}   ${target}`);
  }
  console.log(`\nall steps passed in every run: ${samples.every((s) => s.stepsPassed)}`);
}
