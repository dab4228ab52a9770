// The challenge commands: challenge, check, hint, giveup. Thin: each finds the
// running lab the way every other command does, calls the engine, prints text
// or JSON. The attempt lives beside the lab's state file.
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { LabInstance, tearDownOnSignal } from '../runner/runner.js';
import { QuietReporter, TextReporter, bold, dim, green, red } from '../runner/reporter.js';
import { listLabFiles, type Challenge, type Lab } from '../lab/lab-file.js';
import { loadLab } from '../datapaths/index.js';
import { readState, type LabState } from '../lab/state.js';
import type { StepOutcome } from '../runner/steps.js';
import { backendNames } from '../topologies/registry.js';
import type { CliContext } from './workshop.js';
import { applySteps, beginAttempt, challengeContext, fill, grade, stepCommand, stepTarget } from '../challenges/engine.js';
import { attemptRecord, endAttempt, formatDuration, readAttempt, saveAttempt, type Attempt } from '../challenges/attempt.js';

const json = (data: unknown) => console.log(JSON.stringify(data, null, 2));
const example = (...lines: string[]) => `\nExample:\n${lines.map((l) => `  ${l}`).join('\n')}`;
const indent = (text: string, pad: string) => text.trim().split('\n').map((l) => pad + l).join('\n');
const secondsSince = (iso: string) => Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));

function labsWithChallenges(): string[] {
  return listLabFiles().filter((n) => loadLab(n).lab.challenges?.length);
}

/** The open (or last) attempt of a running lab, with the lab and its challenge. */
function openAttempt(ctx: CliContext, name?: string) {
  const state: LabState = ctx.pickInstance(name);
  const attempt = readAttempt(state.lab);
  if (!attempt) throw ctx.usageError(`no challenge was started in ${state.lab}; start one with \`cnilab challenge <lab> <name>\` (labs with challenges: ${labsWithChallenges().join(', ')})`);
  const { lab, backend, sf } = ctx.openInstance(state);
  const challenge = lab.challenges?.find((c) => c.name === attempt.challenge);
  if (!challenge) throw new Error(`${state.labFile} no longer has a challenge named "${attempt.challenge}"`);
  const inst = new LabInstance(lab, state.labFile!, backend, sf, new QuietReporter());
  return { attempt, challenge, inst, lab };
}

function printList(lab: Lab): void {
  console.log(bold(`challenges of ${lab.name}`));
  for (const c of lab.challenges ?? []) console.log(`  ${c.name.padEnd(22)} ${c.title} ${dim(`(${c.hints.length} hints)`)}`);
  console.log(dim(`\nstart one: cnilab challenge ${lab.name} ${lab.challenges![0].name}`));
}

function printStory(lab: Lab, c: Challenge, a: Attempt, vars: Record<string, string>): void {
  const node = lab.topology.nodes[0].name;
  console.log(`\n${bold(`Challenge · ${c.title}`)} ${dim(`(${lab.name}/${c.name})`)}\n`);
  console.log(indent(fill(c.story, vars), '  '));
  console.log(`\n${dim('Look around:')} cnilab shell ${node} · cnilab exec ${node} -- ip route · cnilab diagram · cnilab trace <from> <to>`);
  console.log(`${dim('Then:')} cnilab check (graded from the kernel) · cnilab hint (${c.hints.length} hints) · cnilab giveup (shows and applies the fix)`);
  if (a.log) console.log(dim(`The attempt is recorded in ${a.log} when it ends.`));
}

function printChecks(outcomes: StepOutcome[], verbose: boolean): void {
  for (const o of outcomes) {
    console.log(`  ${o.ok ? green('✔') : red('✘')} ${o.name}`);
    if (!o.ok && verbose && o.failure) console.log(dim(indent(o.failure, '      ')));
  }
}

function printSteps(steps: Challenge['fix'], vars: Record<string, string>): void {
  for (const s of steps) {
    console.log(`  ${dim(`on ${stepTarget(s)}:`)} ${s.name}`);
    console.log(stepCommand(s, vars).split('\n').map((l, i) => (i ? '        ' : '      $ ') + l).join('\n'));
  }
}

export function challengeCommands(ctx: CliContext): Command[] {
  const challenge = new Command('challenge')
    .description('bring a lab up, break it, and tell the story; then repair it and run `cnilab check`')
    .argument('<lab>', 'lab name (see `cnilab ls`) or path to a lab YAML file')
    .argument('[name]', 'which challenge (without it: the lab\'s challenges are listed)')
    .option('--name <instance>', 'instance name (a lab already up under it is used as it is)')
    .addOption(new Option('--backend <kind>', `where nodes live (${backendNames().join(', ')})`).default('netns'))
    .option('--no-install', 'do not install missing Debian packages')
    .option('--log <file>', 'append the attempt\'s result, one JSON line, to this file when it ends', process.env.CNILAB_CHALLENGE_LOG ?? 'cnilab-challenges.jsonl')
    .option('--no-log', 'record the attempt nowhere')
    .option('--json', 'print the challenge as JSON')
    .option('-q, --quiet', 'no progress while the lab comes up')
    .addHelpText('after', example('cnilab challenge flannel-vxlan                 # list its challenges', 'cnilab challenge flannel-vxlan missing-fdb     # up, break, story', 'cnilab shell master ... cnilab hint ... cnilab check') + '\n\nThe lab stays up: `cnilab down` when done.')
    .action(async (labName: string, name: string | undefined, o) => {
      const { lab, file } = loadLab(labName);
      const challenges = lab.challenges ?? [];
      if (!challenges.length) throw ctx.usageError(`lab ${lab.name} (${file}) has no challenges; labs with challenges: ${labsWithChallenges().join(', ') || 'none'}`);
      if (!name) {
        if (o.json) json(challenges.map((c) => ({ name: c.name, title: c.title, hints: c.hints.length })));
        else printList(lab);
        return;
      }
      const c = challenges.find((x) => x.name === name);
      if (!c) throw ctx.usageError(`lab ${lab.name} has no challenge named "${name}" (challenges: ${challenges.map((x) => x.name).join(', ')})`);

      const instance: string = o.name ?? lab.name;
      const existing = readState(instance);
      let inst: LabInstance;
      if (existing) {
        if (resolve(existing.labFile ?? '') !== resolve(file)) throw ctx.usageError(`${instance} is up with another lab (${existing.labFile}); pass --name for a new instance`);
        const previous = readAttempt(instance);
        if (previous?.outcome === 'open') throw ctx.usageError(`challenge ${previous.challenge} is still open in ${instance}: fix it and \`cnilab check\`, or \`cnilab giveup\` first`);
        const { backend, sf } = ctx.openInstance(existing);
        inst = new LabInstance(lab, file, backend, sf, new QuietReporter());
        if (!o.json && !o.quiet) console.log(dim(`${instance} is already up: breaking it as it is`));
      } else {
        inst = LabInstance.open(labName, { name: o.name, backend: o.backend }, o.json || o.quiet ? new QuietReporter() : new TextReporter());
        await tearDownOnSignal(inst, () => inst.up({ install: o.install }));
      }
      const { attempt, ctx: sctx } = await beginAttempt(inst, c, { user: process.env.SUDO_USER || process.env.USER || userInfo().username, log: o.log ? resolve(o.log) : undefined });
      if (o.json) json({ lab: lab.name, instance, challenge: c.name, title: c.title, story: fill(c.story, sctx.vars), hints: c.hints.length, log: attempt.log ?? null });
      else printStory(lab, c, attempt, sctx.vars);
    });

  const check = new Command('check')
    .description('grade the running challenge from the kernel: exit 0 when fixed, 1 when not yet (listing what still fails)')
    .option('--lab <instance>', 'which running lab (default: the only one)')
    .option('-v, --verbose', 'say what each failing check expected and saw')
    .option('--json', 'the attempt and every check\'s verdict as JSON')
    .addHelpText('after', example('cnilab check', 'cnilab check -v', 'cnilab check --json | jq .outcome'))
    .action(async (o) => {
      const { attempt, challenge: c, inst } = openAttempt(ctx, o.lab);
      const sctx = challengeContext(inst, attempt.vars);
      const outcomes = await grade(sctx, c);
      const failing = outcomes.filter((x) => !x.ok).map((x) => x.name);
      attempt.checks.push({ at: new Date().toISOString(), passed: failing.length === 0, failing });
      const justFixed = failing.length === 0 && endAttempt(attempt, 'fixed');
      saveAttempt(attempt);
      process.exitCode = failing.length ? ctx.exit.stepsFailed : ctx.exit.ok;
      if (o.json) {
        json({ ...attemptRecord(attempt), results: outcomes.map((x) => ({ name: x.name, ok: x.ok, ...(x.failure ? { failure: x.failure } : {}) })) });
        return;
      }
      console.log(`${bold(`check · ${c.title}`)} ${dim(`(check ${attempt.checks.length}, ${formatDuration(secondsSince(attempt.startedAt))} after the fault)`)}`);
      printChecks(outcomes, o.verbose);
      if (failing.length) {
        const more = attempt.hintsUsed < c.hints.length ? ` Stuck? cnilab hint (${attempt.hintsUsed} of ${c.hints.length} shown)` : ' cnilab giveup shows the fix';
        console.log(`\n${red('✘')} not fixed yet: ${failing.length} of ${outcomes.length} checks fail.${more}`);
        return;
      }
      const r = attemptRecord(attempt);
      const when = justFixed ? `fixed in ${formatDuration(r.secondsToFix!)} with ${r.hintsUsed} hint(s) and ${r.checksRun} check(s)` : `all checks pass (the attempt ended before: ${attempt.outcome})`;
      console.log(`\n${green('✔')} ${when}.`);
      console.log(`${dim('What it teaches:')}\n${indent(fill(c.teaches, sctx.vars), '  ')}`);
      if (justFixed && attempt.log) console.log(dim(`recorded in ${attempt.log}`));
    });

  const hint = new Command('hint')
    .description('reveal the next hint of the running challenge (the ones shown before too)')
    .option('--lab <instance>', 'which running lab (default: the only one)')
    .option('--json', 'the hints shown so far as JSON')
    .addHelpText('after', example('cnilab hint'))
    .action((o) => {
      const { attempt, challenge: c, inst } = openAttempt(ctx, o.lab);
      const vars = challengeContext(inst, attempt.vars).vars;
      const before = attempt.hintsUsed;
      if (attempt.outcome === 'open' && attempt.hintsUsed < c.hints.length) {
        attempt.hintsUsed++;
        saveAttempt(attempt);
      }
      const shown = c.hints.slice(0, Math.max(attempt.hintsUsed, attempt.outcome === 'open' ? 0 : c.hints.length)).map((h) => fill(h, vars));
      if (o.json) return json({ challenge: c.name, hintsUsed: attempt.hintsUsed, hintsTotal: c.hints.length, hints: shown });
      if (!c.hints.length) return console.log(dim('this challenge has no hints; cnilab giveup shows the fix'));
      shown.forEach((h, i) => {
        const line = indent(h, '    ').replace(/^ {4}/, '');
        console.log(`${i >= before ? bold(`Hint ${i + 1}/${c.hints.length}:`) : dim(`Hint ${i + 1}/${c.hints.length}:`)} ${i >= before ? line : dim(line)}`);
      });
      if (attempt.hintsUsed === before && attempt.outcome === 'open') console.log(dim('no more hints; cnilab giveup shows the fix'));
    });

  const giveup = new Command('giveup')
    .description('end the running challenge: show what was broken, the fix (and a fix that does not count), then apply the fix')
    .option('--lab <instance>', 'which running lab (default: the only one)')
    .option('--no-fix', 'show the fix without applying it')
    .option('--json', 'as JSON')
    .addHelpText('after', example('cnilab giveup', 'cnilab giveup --no-fix'))
    .action(async (o) => {
      const { attempt, challenge: c, inst } = openAttempt(ctx, o.lab);
      const sctx = challengeContext(inst, attempt.vars);
      const ended = endAttempt(attempt, 'gave-up');
      saveAttempt(attempt);
      const describe = (steps: Challenge['fix']) => steps.map((s) => ({ target: stepTarget(s), name: s.name, command: stepCommand(s, sctx.vars) }));
      let applied: StepOutcome[] = [];
      let checks: StepOutcome[] = [];
      if (o.fix) {
        applied = await applySteps(sctx, c.fix);
        if (applied.every((x) => x.ok)) checks = await grade(sctx, c);
      }
      const fixed = checks.length > 0 && checks.every((x) => x.ok);
      process.exitCode = !o.fix || fixed ? ctx.exit.ok : ctx.exit.stepsFailed;
      if (o.json) {
        json({ ...attemptRecord(attempt), fault: describe(c.break), fix: describe(c.fix), teaches: fill(c.teaches, sctx.vars), notAFix: { why: fill(c.wrongFix.why, sctx.vars), steps: describe(c.wrongFix.steps) }, applied: o.fix, fixed });
        return;
      }
      console.log(ended ? `${bold(`Gave up on ${c.title}`)} ${dim(`after ${formatDuration(secondsSince(attempt.startedAt))}`)}` : bold(`${c.title} (this attempt already ended: ${attempt.outcome})`));
      console.log(`\n${bold('What was broken:')}`);
      printSteps(c.break, sctx.vars);
      console.log(`\n${bold('The fix:')}`);
      printSteps(c.fix, sctx.vars);
      console.log(`\n${bold('Not a fix:')}\n${indent(fill(c.wrongFix.why, sctx.vars), '  ')}`);
      console.log(`\n${bold('What it teaches:')}\n${indent(fill(c.teaches, sctx.vars), '  ')}`);
      if (!o.fix) return;
      const failedStep = applied.find((x) => !x.ok);
      if (failedStep) console.log(`\n${red('✘')} applying the fix failed at "${failedStep.name}": ${failedStep.failure}`);
      else if (fixed) console.log(`\n${green('✔')} fix applied: all ${checks.length} checks pass`);
      else {
        console.log(`\n${red('✘')} fix applied, but some checks still fail (the lab was changed since the fault):`);
        printChecks(checks, true);
      }
    });

  return [challenge, check, hint, giveup];
}
