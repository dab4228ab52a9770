// `cnilab bench <lab>`: bring the lab up, measure, write the result, tear it
// down. A lab this kernel cannot run is skipped and says why.
import { existsSync } from 'node:fs';
import { LabInstance, tearDownOnSignal } from '../runner/runner.js';
import { aptInstall, MissingFeatureError, PreflightError } from '../runner/preflight.js';
import type { Reporter } from '../runner/reporter.js';
import { NothingToMeasureError } from './plan.js';
import { benchLab, type BenchSettings } from './run.js';
import { writeResult } from './results.js';

/** command → Debian package, for what the benchmark runs inside the lab. */
export const BENCH_TOOLS: Record<string, string> = { iperf3: 'iperf3', sockperf: 'sockperf', ethtool: 'ethtool', ss: 'iproute2', ping: 'iputils-ping' };

export interface BenchOptions extends BenchSettings {
  /** Instance name (default: the lab's), to bench while another copy of the lab is up. */
  name?: string;
  backend?: string;
  install?: boolean;
  resultsDir: string;
}

export interface BenchOutcome {
  lab: string;
  status: 'ok' | 'skipped' | 'failed';
  file?: string;
  reason?: string;
}

const onPath = (cmd: string) => (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => existsSync(`${d}/${cmd}`));

export async function benchTools(install: boolean, log: (m: string) => void): Promise<void> {
  const missing = Object.keys(BENCH_TOOLS).filter((t) => !onPath(t));
  if (!missing.length) return;
  const packages = [...new Set(missing.map((t) => BENCH_TOOLS[t]))];
  if (!install || !existsSync('/usr/bin/apt-get')) throw new PreflightError(`the benchmark needs ${missing.join(', ')} (Debian packages: ${packages.join(' ')})`);
  log(`installing ${packages.join(' ')} with apt-get`);
  await aptInstall(packages);
}

export async function benchOne(labName: string, opts: BenchOptions, reporter: Reporter): Promise<BenchOutcome> {
  const inst = LabInstance.open(labName, { name: opts.name, backend: opts.backend }, reporter);
  const lab = inst.lab.name;
  return tearDownOnSignal(inst, async () => {
    try {
      await benchTools(opts.install ?? true, (m) => reporter.info(m));
      await inst.up({ install: opts.install });
      const result = await reporter.phase(`bench ${lab}`, () => benchLab({ backend: inst.backend, lab: inst.lab, pods: inst.pods.list() }, opts, (m) => reporter.info(m)));
      return { lab, status: 'ok', file: writeResult(result, opts.resultsDir) };
    } catch (e) {
      if (e instanceof MissingFeatureError || e instanceof NothingToMeasureError) return { lab, status: 'skipped', reason: e.message };
      if (e instanceof PreflightError) throw e; // not root, tools missing: no lab can run, say so once
      return { lab, status: 'failed', reason: (e as Error).message };
    } finally {
      await inst.down().catch(() => undefined);
    }
  });
}
