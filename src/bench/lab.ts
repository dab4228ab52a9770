// `cnilab bench <lab>`: bring the lab up, measure, write the result, tear it
// down. A lab this kernel cannot run is skipped and says why.
import { LabInstance, withLab } from '../runner/runner.js';
import { ensureTools, PreflightError } from '../runner/preflight.js';
import { readState } from '../lab/state.js';
import { BENCH_TOOLS } from '../lab/tools.js';
import type { Reporter } from '../runner/reporter.js';
import { NothingToMeasureError } from './plan.js';
import { benchLab, type BenchSettings } from './run.js';
import { writeResult } from './results.js';
import { CannotRunHereError } from '../lab/not-here.js';

export interface BenchOptions extends BenchSettings {
  /** Instance name (default: the lab's), to bench while another copy of the lab is up. */
  name?: string;
  backend?: string;
  /** The hosts backend: the inventory file. */
  inventory?: string;
  install?: boolean;
  resultsDir: string;
  /** The stored result this run repeats. */
  rerunOf?: string;
}

export interface BenchOutcome {
  lab: string;
  status: 'ok' | 'skipped' | 'failed';
  file?: string;
  reason?: string;
}

export async function benchTools(install: boolean, log: (m: string) => void): Promise<void> {
  await ensureTools(BENCH_TOOLS, { install, log });
}

export async function benchOne(labName: string, opts: BenchOptions, reporter: Reporter): Promise<BenchOutcome> {
  // A lab already up under --name is measured as it is and left up.
  const existing = opts.name ? readState(opts.name) : undefined;
  const inst = existing ? LabInstance.attach(existing, reporter) : LabInstance.open(labName, { name: opts.name, backend: opts.backend, inventory: opts.inventory }, reporter);
  const lab = inst.lab.name;
  try {
    await benchTools(opts.install ?? true, (m) => reporter.info(m));
    const bench = () => reporter.phase(`bench ${lab}`, () => benchLab({ backend: inst.backend, lab: inst.lab, pods: inst.pods.list(), labFile: inst.file }, opts, (m) => reporter.info(m)));
    const result = existing ? await bench() : await withLab(inst, { install: opts.install }, bench);
    return { lab, status: 'ok', file: writeResult(opts.rerunOf ? { ...result, rerunOf: opts.rerunOf } : result, opts.resultsDir) };
  } catch (e) {
    if (e instanceof CannotRunHereError || e instanceof NothingToMeasureError) return { lab, status: 'skipped', reason: e.message };
    if (e instanceof PreflightError) throw e; // not root, tools missing: no lab can run, say so once
    return { lab, status: 'failed', reason: (e as Error).message };
  }
}
