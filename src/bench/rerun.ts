// `cnilab bench --rerun <file>`: the experiment a results file records, made
// again: its lab file (the recorded content, not today's copy), its backend and
// its settings. The lab file goes to a private temporary directory only when
// the shipped one has changed since.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { ROOT } from '../lab/paths.js';
import type { BenchTest } from './metrics.js';
import { ResultFileError, type BenchResult } from './results.js';
import type { BenchSettings } from './run.js';

export interface RerunPlan {
  /** The lab file to open: the recorded path when its content is unchanged, else a copy of the recorded content. */
  labFile: string;
  backend: string;
  settings: BenchSettings;
  /** What differs from the recorded run and cannot be helped (another kernel, tool versions). */
  notes: string[];
}

export function rerunPlan(stored: BenchResult, file: string, now: { kernel: string }): RerunPlan {
  const recorded = stored.labFile;
  if (!recorded) throw new ResultFileError(file, 'labFile: absent (a schema-version-1 file records no lab file), so this run cannot be repeated');
  const sha = createHash('sha256').update(recorded.content).digest('hex');
  if (sha !== recorded.sha256) throw new ResultFileError(file, `labFile.sha256: ${recorded.sha256} is not the hash of labFile.content (${sha}): the file was edited`);
  const onDisk = isAbsolute(recorded.path) ? recorded.path : join(ROOT, recorded.path);
  const notes: string[] = [];
  let labFile = onDisk;
  if (!existsSync(onDisk) || readFileSync(onDisk, 'utf8') !== recorded.content) {
    const dir = mkdtempSync(join(tmpdir(), 'cnilab-rerun-'));
    labFile = join(dir, `${stored.lab}.yaml`);
    writeFileSync(labFile, recorded.content);
    notes.push(`${recorded.path} changed since the run (or is gone): the recorded content is run from ${labFile}`);
  }
  if (stored.host.kernel !== now.kernel) notes.push(`kernel ${now.kernel} now, ${stored.host.kernel} then`);
  const s = stored.settings;
  return {
    labFile,
    backend: stored.backend,
    settings: { repeat: s.repeat, minRepeat: s.minRepeat, durationS: s.durationS, ciTargetPct: s.ciTargetPct, pin: s.pin, tests: s.tests as BenchTest[], sweep: s.sweep, mirrored: s.mirrored ?? false },
    notes,
  };
}
