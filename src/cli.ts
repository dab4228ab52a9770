// cnilab's command line: thin commands over src/runner. One place maps errors to exit codes.
import { PROXY_MODES } from './services/model.js';
import { cnilabVersion } from './lab/paths.js';
import { Command, Option } from 'commander';
import { LabInstance, runLab, tearDownOnSignal, type RunReport } from './runner/runner.js';
import { QuietReporter, TextReporter, bold, dim, green, red } from './runner/reporter.js';
import { listLabFiles, LabFileError } from './lab/lab-file.js';
import { ResultFileError } from './bench/results.js';
import { loadLab } from './datapaths/index.js';
import { listLabs, readState, type LabState } from './lab/state.js';
import { cleanAll, cleanLab } from './runner/clean.js';
import { backendNames } from './topologies/registry.js';
import { PreflightError } from './runner/preflight.js';
import { workshopCommands } from './commands/workshop.js';
import { benchCommands } from './commands/bench.js';
import { NoSuchTargetError, targetByName } from './runner/targets.js';
import { challengeCommands } from './commands/challenges.js';
import { endAttempt, readAttempt } from './challenges/attempt.js';
import { serveCommand } from './commands/serve.js';

/** Exit codes a CI job can read. */
const EXIT = { ok: 0, stepsFailed: 1, usage: 2, labFile: 3, preflight: 4, runtime: 5 } as const;

function print(json: boolean, data: unknown, text: () => void): void {
  if (json) console.log(JSON.stringify(data, null, 2));
  else text();
}

/** The instance a command means: the one named, or the only one that is up. */
function pickInstance(name?: string): LabState {
  if (name) {
    const s = readState(name);
    if (!s) throw new UsageError(`no lab named "${name}" is up (up: ${listLabs().join(', ') || 'none'})`);
    return s;
  }
  const up = listLabs();
  if (up.length === 1) return readState(up[0])!;
  throw new UsageError(up.length === 0 ? 'no lab is up; start one with `cnilab up <lab>`' : `several labs are up (${up.join(', ')}); say which with --lab`);
}

class UsageError extends Error {}

function openInstance(state: LabState) {
  const inst = LabInstance.attach(state, new QuietReporter());
  return { lab: inst.lab, backend: inst.backend, sf: inst.state };
}

function printRun(r: RunReport): void {
  const passed = r.steps.filter((s) => s.ok).length;
  const total = r.phases.reduce((a, p) => a + p.ms, 0);
  console.log('');
  if (r.skipped) console.log(`⊘ ${bold(r.lab)}: ${r.skipped}`);
  else if (r.error) console.log(`${red('✘')} ${bold(r.lab)}: ${r.error}`);
  else console.log(`${r.ok ? green('✔') : red('✘')} ${bold(r.lab)}: ${passed}/${r.steps.length} steps passed in ${(total / 1000).toFixed(2)}s on ${r.backend}`);
}

const program = new Command()
  .name('cnilab')
  .description('Reproducible CNI experiments: multi-node labs in network namespaces, checked against the kernel.')
  .version(cnilabVersion(), '-V, --version', "print cnilab's version")
  .showHelpAfterError('(run with --help for usage)')
  // An unknown option or a bad choice is a usage error (exit 2, as README says), not commander's 1.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage));

const backendOption = () => new Option('--backend <kind>', `where nodes live (${backendNames().join(', ')})`).default('netns');
const inventoryOption = () => new Option('--inventory <file>', 'the hosts backend: which machine each node is (an ssh config and, per node, its Host and underlay interface)');
const proxyModeOption = () => new Option('--proxy-mode <mode>', "kube-proxy's mode for a lab with services, instead of its network.proxyMode (steps written for another mode are skipped, saying so)").choices([...PROXY_MODES]);
const installOption = () => new Option('--install', 'install missing Debian packages (the default on this machine; on the hosts backend only with this)');

program
  .command('run')
  .description('bring a lab up, deploy its pods, run and check every lesson step, tear it down')
  .argument('<lab>', 'lab name (see `cnilab ls`) or path to a lab YAML file')
  .option('--name <instance>', 'instance name, to run two copies of one lab at once')
  .addOption(backendOption())
  .addOption(inventoryOption())
  .addOption(proxyModeOption())
  .addOption(installOption())
  .option('--no-install', 'do not install missing Debian packages; fail and name them instead')
  .option('-v, --verbose', 'show each step\'s output')
  .option('-q, --quiet', 'print only the verdict line')
  .option('--json', 'print one JSON report instead of progress')
  .addHelpText('after', '\nExample:\n  cnilab run flannel-vxlan\n  cnilab run flannel-vxlan --json > report.json\n  cnilab run flannel-vxlan --backend hosts --inventory hosts.yaml\n  cnilab run calico-bgp-services --proxy-mode iptables')
  .action(async (labName: string, o) => {
    const reporter = o.json || o.quiet ? new QuietReporter() : new TextReporter(undefined, o.verbose);
    const report = await runLab(labName, { name: o.name, backend: o.backend, install: o.install, inventory: o.inventory, proxyMode: o.proxyMode }, reporter);
    print(o.json, report, () => printRun(report));
    process.exitCode = report.skipped ? EXIT.ok : report.error ? EXIT.runtime : report.ok ? EXIT.ok : EXIT.stepsFailed;
  });

program
  .command('up')
  .description('bring a lab up with its pods and leave it running (then: exec, get pods, down)')
  .argument('<lab>', 'lab name or path to a lab YAML file')
  .option('--name <instance>', 'instance name')
  .addOption(backendOption())
  .addOption(inventoryOption())
  .addOption(proxyModeOption())
  .addOption(installOption())
  .option('--no-install', 'do not install missing Debian packages')
  .option('--json', 'print the pods as JSON when up')
  .option('-q, --quiet', 'print nothing but errors')
  .addHelpText('after', '\nExample:\n  cnilab up flannel-vxlan && cnilab exec nginx-0 -- ip addr')
  .action(async (labName: string, o) => {
    const reporter = o.json || o.quiet ? new QuietReporter() : new TextReporter();
    const inst = LabInstance.open(labName, { name: o.name, backend: o.backend, install: o.install, inventory: o.inventory, proxyMode: o.proxyMode }, reporter);
    await tearDownOnSignal(inst, () => inst.up({ install: o.install }));
    if (o.quiet && !o.json) return;
    print(o.json, { lab: inst.state.state.lab, pods: inst.pods.list() }, () =>
      console.log(`\n${green('✔')} ${inst.state.state.lab} is up. Try: cnilab get pods · cnilab shell ${inst.pods.list()[0]?.name ?? 'master'} · cnilab diagram · cnilab trace · cnilab down`),
    );
  });

program
  .command('down')
  .description('tear down a running lab (the only one, or the one named)')
  .argument('[instance]', 'instance name')
  .option('-q, --quiet', 'print nothing but errors')
  .addHelpText('after', '\nExample:\n  cnilab down\n  cnilab down flannel-vxlan')
  .action(async (name: string | undefined, o) => {
    const s = pickInstance(name);
    // An attempt still open when its lab goes is logged as abandoned: the instructor's record stays complete.
    const attempt = readAttempt(s.lab);
    if (attempt) endAttempt(attempt, 'abandoned');
    const left = await cleanLab(s.lab);
    if (left) throw new Error(`${s.lab} is down here, but not everywhere: ${left}`);
    if (!o.quiet) console.log(`${green('✔')} ${s.lab} is down`);
  });

program
  .command('exec')
  .description('run a command on a node or in a pod of a running lab')
  .option('--lab <instance>', 'which running lab (default: the only one)')
  .argument('<target>', 'node name (master, worker) or pod name (nginx-0)')
  .argument('<command...>', 'the command, after --')
  .addHelpText('after', '\nExample:\n  cnilab exec master -- ip route\n  cnilab exec nginx-0 -- ping -c 1 10.10.1.2')
  .action(async (target: string, command: string[], o) => {
    const s = pickInstance(o.lab);
    const { lab, backend } = openInstance(s);
    const r = await targetByName(backend, s, lab.topology.nodes.map((n) => n.name), target).run(command, { allowFailure: true });
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    process.exitCode = r.exitCode;
  });

program
  .command('get')
  .description('list what runs in a lab, like kubectl get')
  .argument('<kind>', 'pods')
  .option('--lab <instance>', 'which running lab (default: the only one)')
  .option('-o, --output <format>', 'wide | json', 'wide')
  .option('--json', 'same as -o json')
  .addHelpText('after', '\nExample:\n  cnilab get pods\n  cnilab get pods -o json')
  .action(async (kind: string, o) => {
    if (!['pods', 'pod', 'po'].includes(kind)) throw new UsageError(`cannot get "${kind}"; try: cnilab get pods`);
    const s = pickInstance(o.lab);
    const json = o.json || o.output === 'json';
    print(json, s.pods, () => {
      const rows = [['NAME', 'READY', 'STATUS', 'IP', 'NODE'], ...s.pods.map((p) => [p.name, p.status === 'Running' ? '1/1' : '0/1', p.status, p.ip ?? '<none>', p.node])];
      const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
      for (const r of rows) console.log(r.map((v, c) => v.padEnd(widths[c] + 3)).join('').trimEnd());
    });
  });

program
  .command('ls')
  .description('list the labs cnilab ships and the ones that are up')
  .option('--json', 'as JSON')
  .addHelpText('after', '\nExample:\n  cnilab ls\n  cnilab ls --json')
  .action((o) => {
    const available = listLabFiles().map((name) => {
      const { lab } = loadLab(name);
      return { name, mode: lab.mode, description: lab.description };
    });
    const up = listLabs().map((l) => {
      const s = readState(l);
      return { instance: l, backend: s?.backend, status: s?.status, pods: s?.pods.length ?? 0, since: s?.createdAt };
    });
    print(o.json, { available, up }, () => {
      console.log(bold('labs'));
      for (const a of available) console.log(`  ${a.name.padEnd(18)} ${a.mode.padEnd(9)} ${dim(a.description)}`);
      console.log(bold('up'));
      if (!up.length) console.log(dim('  none'));
      for (const u of up) console.log(`  ${u.instance.padEnd(18)} ${u.backend} ${u.status}, ${u.pods} pods, since ${u.since}`);
    });
  });

program
  .command('clean')
  .description('remove everything any lab made (namespaces, processes, mounts, files), even after a crash')
  .option('--json', 'as JSON')
  .addHelpText('after', '\nExample:\n  cnilab clean')
  .action(async (o) => {
    const r = await cleanAll();
    print(o.json, r, () => {
      console.log(`${green('✔')} cleaned ${r.labs.length} lab(s)${r.labs.length ? `: ${r.labs.join(', ')}` : ''}`);
      if (r.orphans.length) console.log(`  also removed what no state recorded: ${r.orphans.join(', ')}`);
      for (const w of r.warnings) console.log(`  ${red('!')} ${w}`);
    });
  });

for (const c of workshopCommands({ pickInstance, openInstance, usageError: (m) => new UsageError(m), exit: EXIT })) program.addCommand(c);
for (const c of challengeCommands({ pickInstance, openInstance, usageError: (m) => new UsageError(m), exit: EXIT })) program.addCommand(c);
program.addCommand(serveCommand({ usageError: (m) => new UsageError(m) }));
for (const c of benchCommands({ usageError: (m) => new UsageError(m), exit: EXIT })) program.addCommand(c);

/** Every error ends with what to do next, unless its message already names a command to run. */
function nextStep(code: number, message: string): string {
  if (/`[^`]+`|run it as root|drop --no-install|install them/.test(message)) return '';
  if (code === EXIT.usage) return '\n  next: see `cnilab --help`, or `cnilab <command> --help` for examples';
  if (code === EXIT.labFile && /no lab named/.test(message)) return '\n  next: `cnilab ls` lists the labs that ship; or give the path to a lab YAML file';
  if (code === EXIT.labFile) return '\n  next: fix the file at that line and field; labs/flannel-vxlan.yaml is a complete example';
  if (code === EXIT.runtime) return '\n  next: `cnilab status` shows what is still alive, `cnilab clean` removes anything a lab left; CNILAB_DEBUG=1 prints the stack';
  return '';
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const err = e as Error;
  const code = err instanceof LabFileError || err instanceof ResultFileError ? EXIT.labFile : err instanceof PreflightError ? EXIT.preflight : err instanceof UsageError || err instanceof NoSuchTargetError ? EXIT.usage : EXIT.runtime;
  console.error(`${red('error:')} ${err.message}${nextStep(code, err.message)}`);
  if (code === EXIT.runtime && process.env.CNILAB_DEBUG) console.error(err.stack);
  process.exitCode = code;
}
