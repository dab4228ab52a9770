// The commands for measuring and reporting: bench, results, compare. Thin
// over src/bench and src/report; cli.ts registers them and maps errors to exit codes.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Command, Option } from 'commander';
import { listLabFiles } from '../lab/lab-file.js';
import { QuietReporter, TextReporter, bold, dim, green, red } from '../runner/reporter.js';
import { backendNames } from '../topologies/registry.js';
import { compareResults, formatRatio, rowsOf, shortCommit } from '../report/compare.js';
import { runGate } from '../report/gate.js';
import { renderGate, renderMarkdown, repetitionsLine } from '../report/markdown.js';
import { writeReport } from '../report/write.js';
import { benchOne, type BenchOutcome } from '../bench/lab.js';
import { BENCH_TESTS, type BenchTest } from '../bench/metrics.js';
import { defaultResultsDir, latestPerLab, loadResults, readResult, type StoredResult } from '../bench/results.js';
import { rerunPlan } from '../bench/rerun.js';
import { compareRuns, meanLoad, renderMoves } from '../report/rerun.js';
import { buildHistory, historyGate, renderHistoryText } from '../report/history.js';
import { renderHistoryHtml } from '../report/history-html.js';
import { release } from 'node:os';
import { DEFAULT_SETTINGS } from '../bench/run.js';

export interface CommandContext {
  usageError: (msg: string) => Error;
  exit: { ok: number; stepsFailed: number; labFile: number; runtime: number };
}

const positiveInt = (what: string, ctx: CommandContext, min = 1) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw ctx.usageError(`${what} must be a whole number ≥ ${min}, got "${v}"`);
  return n;
};

const rel = (f: string) => {
  const r = relative(process.cwd(), f);
  return !r || r.startsWith('..') ? f : r;
};

const positiveNumber = (what: string, ctx: CommandContext) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw ctx.usageError(`${what} must be a number > 0, got "${v}"`);
  return n;
};

const nonNegative = (what: string, ctx: CommandContext) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw ctx.usageError(`${what} must be a number ≥ 0, got "${v}"`);
  return n;
};

function parseTests(v: string, ctx: CommandContext): BenchTest[] {
  const tests = v.split(',').map((t) => t.trim());
  const bad = tests.filter((t) => !(BENCH_TESTS as readonly string[]).includes(t));
  if (bad.length) throw ctx.usageError(`unknown test ${bad.join(', ')}; tests: ${BENCH_TESTS.join(', ')}`);
  return tests as BenchTest[];
}

function benchCommand(ctx: CommandContext): Command {
  return new Command('bench')
    .description('measure labs: TCP 1 and 4 streams, UDP loss and jitter, ping and request/response latency, each against the raw underlay in the same run')
    .argument('[labs...]', 'lab names or YAML files')
    .option('--all', 'every lab cnilab ships (labs this kernel cannot run are listed as skipped)')
    .option('--repeat <n>', 'the most repetitions of a test (it stops earlier once its intervals are narrow)', positiveInt('--repeat', ctx), DEFAULT_SETTINGS.repeat)
    .option('--min-repeat <n>', 'the fewest repetitions of a test (6: the first count whose min..max is a 95% interval)', positiveInt('--min-repeat', ctx), DEFAULT_SETTINGS.minRepeat)
    .option('--duration <seconds>', 'seconds per throughput measurement (iperf3 sends what the observed rate carries in that time)', positiveNumber('--duration', ctx), DEFAULT_SETTINGS.durationS)
    .option('--ci-target <percent>', 'stop a test once every figure and ratio is within ± this percentage (95% interval)', nonNegative('--ci-target', ctx), DEFAULT_SETTINGS.ciTargetPct)
    .option('--no-pin', 'do not pin client and server to distinct CPUs')
    .option('--no-mirror', 'run each pair once per repetition (default: twice, forward then backward, half as long each, their mean kept)')
    .option('--sweep', 'also sweep message sizes (64 B to 64 KB, TCP one write per message) on the underlay and the cross-node pair')
    .option('--rerun <file>', 'run the experiment a results file records again (its lab file and settings) and say which figures moved beyond their intervals')
    .option('--tests <list>', `comma-separated subset of ${BENCH_TESTS.join(',')} (default: the lab's bench block, or all)`, (v) => parseTests(v, ctx))
    .option('--name <instance>', 'instance name, when that lab is already up under its own name (one lab only)')
    .addOption(new Option('--backend <kind>', `where nodes live (${backendNames().join(', ')})`).default('netns'))
    .option('--inventory <file>', 'the hosts backend: which machine each node is (an ssh config and, per node, its Host and underlay interface)')
    .option('--no-install', 'do not install missing Debian packages')
    .option('--results-dir <dir>', 'where results/<lab>/<timestamp>.json go', defaultResultsDir())
    .option('--report-dir <dir>', 'where the comparison (comparison.md, index.html) goes (default: <results-dir>/report)')
    .option('--json', 'print one JSON summary instead of progress')
    .addHelpText('after', '\nExamples:\n  cnilab bench flannel-vxlan\n  cnilab bench --all --repeat 12 --ci-target 2\n  cnilab bench --rerun results/flannel-vxlan/2026-01-01T00-00-00Z.json\n  cnilab bench flannel-host-gw --tests tcp,rr\n  cnilab bench flannel-vxlan --backend hosts --inventory hosts.yaml\n  cnilab bench flannel-vxlan-dual --tests tcp,ping   # IPv4 and IPv6 pairs, each against the underlay of its family')
    .action(async (labs: string[], o) => {
      if (o.rerun) return rerun(ctx, o, labs);
      if (o.all && labs.length) throw ctx.usageError('give lab names or --all, not both');
      const names = o.all ? listLabFiles() : labs;
      if (!names.length) throw ctx.usageError(`which lab? name one (${listLabFiles().join(', ')}) or pass --all`);
      if (o.name && names.length > 1) throw ctx.usageError('--name needs exactly one lab');
      const reporter = o.json ? new QuietReporter() : new TextReporter();
      const outcomes: BenchOutcome[] = [];
      for (const name of names) {
        const r = await benchOne(name, { repeat: o.repeat, minRepeat: o.minRepeat, durationS: o.duration, ciTargetPct: o.ciTarget, pin: o.pin, mirrored: o.mirror, sweep: o.sweep, tests: o.tests, name: o.name, backend: o.backend, inventory: o.inventory, install: o.install, resultsDir: o.resultsDir }, reporter);
        outcomes.push(r);
        if (!o.json) console.log(r.status === 'ok' ? `${green('✔')} ${bold(r.lab)}: ${rel(r.file!)}` : r.status === 'skipped' ? `⊘ ${bold(r.lab)}: ${r.reason}` : `${red('✘')} ${bold(r.lab)}: ${r.reason}`);
      }
      const stored = outcomes.filter((r) => r.file).flatMap((r) => loadResults(r.file!));
      const comparison = compareResults(stored, {
        skipped: outcomes.filter((r) => r.status === 'skipped').map((r) => ({ lab: r.lab, reason: r.reason! })),
        failed: outcomes.filter((r) => r.status === 'failed').map((r) => ({ lab: r.lab, reason: r.reason! })),
      });
      const report = writeReport(comparison, o.reportDir ?? join(o.resultsDir, 'report'));
      if (o.json) console.log(JSON.stringify({ labs: outcomes, report }, null, 2));
      else console.log(`\n${renderMarkdown(comparison)}\n${dim(`report: ${rel(report.html)} · ${rel(report.markdown)}`)}`);
      process.exitCode = outcomes.some((r) => r.status === 'failed') ? ctx.exit.runtime : ctx.exit.ok;
    });
}

/** `bench --rerun <file>`: the recorded lab file, backend and settings, then which figures moved beyond their intervals. */
async function rerun(ctx: CommandContext, o: Record<string, string | boolean | undefined>, labs: string[]): Promise<void> {
  if (labs.length || o.all) throw ctx.usageError('--rerun takes its lab from the results file: name no lab and no --all');
  const file = o.rerun as string;
  if (!existsSync(file)) throw ctx.usageError(`no such results file: ${file}`);
  const stored = readResult(file);
  const plan = rerunPlan(stored, file, { kernel: release() });
  const reporter = o.json ? new QuietReporter() : new TextReporter();
  for (const n of plan.notes) reporter.info(n);
  const outcome = await benchOne(plan.labFile, { ...plan.settings, backend: plan.backend, name: o.name as string | undefined, install: o.install as boolean, resultsDir: o.resultsDir as string, rerunOf: rel(file) }, reporter);
  if (outcome.status !== 'ok') {
    if (o.json) console.log(JSON.stringify({ rerunOf: rel(file), outcome }, null, 2));
    else console.log(`${outcome.status === 'skipped' ? '⊘' : red('✘')} ${bold(outcome.lab)}: ${outcome.reason}`);
    process.exitCode = outcome.status === 'failed' ? ctx.exit.runtime : ctx.exit.ok;
    return;
  }
  const rerun = readResult(outcome.file!);
  const moves = compareRuns(stored, rerun);
  const loads = { before: meanLoad(stored), after: meanLoad(rerun) };
  const ratios = moves.filter((m) => m.what === 'ratio');
  if (o.json) console.log(JSON.stringify({ rerunOf: rel(file), file: rel(outcome.file!), notes: plan.notes, moved: moves.filter((m) => m.moved), figures: moves.length, ratios: { figures: ratios.length, moved: ratios.filter((m) => m.moved).length }, loads }, null, 2));
  else console.log(`${green('✔')} ${bold(outcome.lab)}: ${rel(outcome.file!)}\n\n${renderMoves(moves, rel(file), loads)}`);
  process.exitCode = ctx.exit.ok;
}

function resultsCommand(ctx: CommandContext): Command {
  return new Command('results')
    .description('list the stored benchmark results (results/<lab>/<timestamp>.json), each checked against the schema')
    .option('--lab <name>', 'only this lab')
    .option('--results-dir <dir>', 'where results are', defaultResultsDir())
    .option('--json', 'as JSON')
    .action((o) => {
      const all = loadResults(o.resultsDir).filter((s) => !o.lab || s.result?.lab === o.lab || (!s.result && s.file.includes(`/${o.lab}/`)));
      const rows = all.map((s) => {
        if (!s.result) return { file: rel(s.file), error: s.error };
        const r = s.result;
        const tcp = rowsOf(r).find((row) => row.kind === 'cross-node')?.cells['tcp.gbps'];
        return {
          file: rel(s.file),
          lab: r.lab,
          backend: r.backend,
          startedAt: r.startedAt,
          commit: shortCommit(r),
          runs: repetitionsLine(r),
          pairs: r.pairs.map((p) => p.name),
          crossNodeTcpRatio: tcp?.ratio,
          crossNodeTcpWithinNoise: tcp?.withinNoise,
        };
      });
      if (o.json) console.log(JSON.stringify(rows, null, 2));
      else if (!rows.length) console.log(dim(`no results in ${rel(o.resultsDir)}; run \`cnilab bench <lab>\``));
      else
        for (const r of rows) {
          if ('error' in r) console.log(`${red('✘')} ${r.error}`);
          else console.log(`${r.startedAt}  ${r.lab.padEnd(18)} ${r.backend.padEnd(6)} ${r.commit.padEnd(9)} ${r.runs.padEnd(6)} cross-node TCP ${r.crossNodeTcpRatio === undefined ? '–' : `${formatRatio(r.crossNodeTcpRatio)}${r.crossNodeTcpWithinNoise ? ' (within noise)' : ''}`}  ${dim(r.file)}`);
        }
      if (all.some((s) => s.error)) process.exitCode = ctx.exit.labFile;
    });
}

function compareCommand(ctx: CommandContext): Command {
  return new Command('compare')
    .description('compare the newest result of every lab against its underlay (Markdown to stdout); with --baseline, fail on a regression')
    .argument('[paths...]', 'results files or directories (default: the results directory)')
    .option('--baseline <file|dir>', 'stored results to hold each lab against (same lab and backend, newest one that is not the run itself)')
    .option('--tolerance <percent>', 'how far below the baseline a figure may fall', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw ctx.usageError(`--tolerance must be a percentage ≥ 0, got "${v}"`);
      return n;
    }, 10)
    .option('--out <dir>', 'also write comparison.md and index.html there')
    .option('--results-dir <dir>', 'where results are', defaultResultsDir())
    .option('--json', 'print the comparison (and gate) as JSON')
    .addHelpText('after', '\nExamples:\n  cnilab compare\n  cnilab compare --out results/report\n  cnilab compare --baseline results/flannel-vxlan/2026-01-01T00-00-00Z.json --tolerance 10')
    .action((paths: string[], o) => {
      const sources = paths.length ? paths : [o.resultsDir];
      for (const p of sources) if (!existsSync(p)) throw ctx.usageError(`no such results file or directory: ${p}`);
      const stored: StoredResult[] = sources.flatMap((p) => loadResults(p));
      for (const s of stored.filter((x) => x.error)) console.error(`${red('skipping')} ${s.error}`);
      const current = latestPerLab(stored);
      if (!current.length) throw ctx.usageError(`no results in ${sources.join(', ')}; run \`cnilab bench <lab>\` first`);
      let gate;
      if (o.baseline) {
        if (!existsSync(o.baseline)) throw ctx.usageError(`no such baseline file or directory: ${o.baseline}`);
        gate = runGate(current, loadResults(o.baseline), o.tolerance);
      }
      const comparison = compareResults(current);
      if (o.json) console.log(JSON.stringify({ comparison: comparison.sections.map((s) => ({ file: s.file, rows: s.rows })), gate }, null, 2));
      else console.log(renderMarkdown(comparison, gate));
      if (o.out) {
        const files = writeReport(comparison, o.out, gate);
        console.error(dim(`wrote ${rel(files.markdown)} and ${rel(files.html)}`));
      }
      if (gate?.failures.length) {
        if (o.json) for (const line of renderGate(gate).split('\n')) console.error(line);
        process.exitCode = ctx.exit.stepsFailed;
      }
    });
}

function historyCommand(ctx: CommandContext): Command {
  return new Command('history')
    .description("each lab's figures over the stored runs (× underlay, with 95% intervals), per machine class; --gate fails on a shift the newest nights agree on")
    .option('--lab <name>', 'only this lab')
    .option('--results-dir <dir>', 'where results are', defaultResultsDir())
    .option('--gate', 'exit 1 when the newest --nights runs all put a ratio beyond the level of the runs before them')
    .option('--nights <n>', 'how many newest runs must agree on a shift', positiveInt('--nights', ctx), 3)
    .option('--tolerance <percent>', 'how far beyond the earlier level a shift must lie', nonNegative('--tolerance', ctx), 5)
    .option('--out <dir>', 'also write history.html and history.md there')
    .option('--json', 'as JSON')
    .addHelpText('after', '\nExamples:\n  cnilab history\n  cnilab history --lab flannel-vxlan\n  cnilab history --results-dir history/results --gate --out report')
    .action((o) => {
      if (!existsSync(o.resultsDir)) throw ctx.usageError(`no such results directory: ${o.resultsDir}`);
      const stored = loadResults(o.resultsDir).filter((s) => !o.lab || s.result?.lab === o.lab);
      for (const s of stored.filter((x) => x.error)) console.error(`${red('skipping')} ${s.error}`);
      const history = buildHistory(stored);
      const gate = historyGate(history, o.nights, o.tolerance);
      if (o.json) console.log(JSON.stringify({ history, gate }, null, 2));
      else console.log(history.length ? renderHistoryText(history, gate) : dim(`no results in ${rel(o.resultsDir)}`));
      if (o.out) {
        mkdirSync(o.out, { recursive: true });
        writeFileSync(join(o.out, 'history.html'), renderHistoryHtml(history, gate));
        writeFileSync(join(o.out, 'history.md'), `# cnilab benchmark history\n\n${renderHistoryText(history, gate)}\n`);
        console.error(dim(`wrote ${rel(join(o.out, 'history.html'))} and history.md`));
      }
      if (o.gate && gate.changes.length) process.exitCode = ctx.exit.stepsFailed;
    });
}

export function benchCommands(ctx: CommandContext): Command[] {
  return [benchCommand(ctx), resultsCommand(ctx), compareCommand(ctx), historyCommand(ctx)];
}
