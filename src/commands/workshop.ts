// The workshop commands: shell, status, diagram, trace, lesson. Thin: each
// finds the running lab, calls into src/workshop, prints text or JSON.
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { LabInstance, tearDownOnSignal, withLab } from '../runner/runner.js';
import { QuietReporter, TextReporter, bold, dim, green, red } from '../runner/reporter.js';
import { listLabFiles, type Lab } from '../lab/lab-file.js';
import { loadLab } from '../datapaths/index.js';
import { listLabs, readState, type LabState, type StateFile } from '../lab/state.js';
import type { Backend } from '../topologies/backend.js';
import { backendNames } from '../topologies/registry.js';
import { inspectLab } from '../workshop/inspect.js';
import { renderText } from '../workshop/render-text.js';
import { renderSvg } from '../workshop/render-svg.js';
import { formatTrace, type TextStyle } from '../workshop/render-trace.js';
import { traceLabFamilies, TraceTargetError, type TraceReport } from '../workshop/trace-run.js';
import { backendProbe, formatStatus, labStatus } from '../workshop/status.js';
import { openShell } from '../workshop/shell.js';
import { terminalKeys, walkExercises, type LessonIO } from '../workshop/lesson.js';
import { forFamily, type NetModel } from '../workshop/model.js';
import { targetByName } from '../runner/targets.js';

export interface CliContext {
  pickInstance(name?: string): LabState;
  openInstance(state: LabState): { lab: Lab; backend: Backend; sf: StateFile };
  usageError(msg: string): Error;
  exit: { ok: number; stepsFailed: number; usage: number; labFile: number; preflight: number; runtime: number };
}

const style: TextStyle = { bold, dim, green, red };
const json = (data: unknown) => console.log(JSON.stringify(data, null, 2));
const example = (...lines: string[]) => `\nExample:\n${lines.map((l) => `  ${l}`).join('\n')}`;

/** A running lab and how to reach it. */
function running(ctx: CliContext, name?: string) {
  const state = ctx.pickInstance(name);
  const { lab, backend, sf } = ctx.openInstance(state);
  return { state, lab, backend, sf, nodes: lab.topology.nodes.map((n) => n.name) };
}


export function workshopCommands(ctx: CliContext): Command[] {
  const shell = new Command('shell')
    .description('open an interactive shell on a node or in a pod of a running lab')
    .argument('<target>', 'node name (master, worker) or pod name (nginx-0)')
    .option('--lab <instance>', 'which running lab (default: the only one)')
    .addHelpText('after', example('cnilab shell master        # then: ip route, bridge fdb show, ip neigh', 'cnilab shell nginx-0       # then: ip addr, ping 10.10.1.2'))
    .action(async (target: string, o) => {
      const { state, backend, nodes } = running(ctx, o.lab);
      const t = targetByName(backend, state, nodes, target);
      console.error(dim(`cnilab: shell on ${t.label} of ${state.lab}; \`exit\` or Ctrl-D to leave`));
      process.exitCode = await openShell(backend, state.lab, t.node, t.pod);
    });

  const status = new Command('status')
    .description('show a running lab\'s nodes, pods and processes, each checked alive by its PID')
    .argument('[instance]', 'instance name (default: the only one up)')
    .option('--json', 'as JSON')
    .addHelpText('after', example('cnilab status', 'cnilab status flannel-vxlan --json | jq .healthy') + '\n\nExit code 0 when everything recorded is alive, 1 when something is gone.')
    .action(async (name: string | undefined, o) => {
      const { state, lab, backend } = running(ctx, name);
      const r = await labStatus(state, lab, backendProbe(backend));
      if (o.json) json(r);
      else console.log(formatStatus(r, style).join('\n'));
      process.exitCode = r.healthy ? ctx.exit.ok : ctx.exit.stepsFailed;
    });

  const diagram = new Command('diagram')
    .description('draw the network a lab built from what the kernel reports, in the terminal or as SVG')
    .argument('[lab]', 'a running instance; or a lab name, which is brought up for the drawing and taken down again (default: the only lab up)')
    .option('-o, --output <file>', 'write the diagram to a file: .svg for the picture, .json for the model, anything else for text')
    .addOption(new Option('--format <format>', 'what to print').choices(['text', 'svg', 'json']))
    .option('--json', 'print the model as JSON (same as --format json)')
    .option('-q, --quiet', 'print nothing but errors (with -o)')
    .addOption(new Option('--family <family>', 'which IP family to draw on a dual-stack lab').choices(['4', '6', 'both']).default('both'))
    .addOption(new Option('--backend <kind>', `where nodes live, for a lab brought up for the drawing (${backendNames().join(', ')})`).default('netns'))
    .addHelpText('after', example('cnilab diagram                       # the running lab, in the terminal', 'cnilab diagram -o flannel.svg        # as SVG, to open in a browser', 'cnilab diagram flannel-host-gw       # up, draw, down', 'cnilab diagram --family 6             # a dual-stack lab, IPv6 only'))
    .action(async (name: string | undefined, o) => {
      const format: string = o.json ? 'json' : (o.format ?? (o.output ? (o.output.endsWith('.svg') ? 'svg' : o.output.endsWith('.json') ? 'json' : 'text') : 'text'));
      const read = await modelFor(ctx, name, { quiet: o.quiet, backend: o.backend });
      const model = o.family === 'both' ? read : forFamily(read, Number(o.family) as 4 | 6);
      const body = format === 'svg' ? renderSvg(model) : format === 'json' ? JSON.stringify(model, null, 2) + '\n' : renderText(model, o.output ? undefined : style).join('\n') + '\n';
      if (o.output) {
        writeFileSync(o.output, body);
        if (!o.quiet) console.log(`${green('✔')} wrote ${o.output} (${format}: ${model.namespaces.filter((n) => n.kind === 'node').length} nodes, ${model.namespaces.filter((n) => n.kind === 'pod').length} pods)`);
      } else process.stdout.write(body);
    });

  const trace = new Command('trace')
    .description('follow a packet between two pods hop by hop, from the kernel\'s own answers')
    .argument('<from>', 'pod or node it starts from')
    .argument('<to>', 'pod or node (or an address in the lab), or a service: its ClusterIP or name (the translation is shown, then the path to the pod that answered)')
    .option('--lab <instance>', 'which running lab (default: the only one)')
    .option('--capture', 'also run tcpdump on every interface of the path while pings go through, and count what each one saw')
    .option('--count <n>', 'pings to send with --capture', (v) => Number(v), 3)
    .option('-4', 'IPv4 only')
    .option('-6', 'IPv6 only (the pods\' IPv6 addresses, over the IPv6 underlay where there is one)')
    .option('--json', 'as JSON (between dual-stack pods: the IPv4 trace with the IPv6 one under "ipv6")')
    .addHelpText(
      'after',
      example('cnilab trace nginx-0 nginx-1', 'cnilab trace nginx-0 nginx-1 --capture', 'cnilab trace -6 nginx-0 nginx-1 --capture', 'cnilab trace nginx-0 fd00:10:0:1::2', 'cnilab trace master nginx-1 --json', 'cnilab trace client-0 web             # a Service: which rule or map picked which pod') +
        '\n\nBetween pods with addresses of both families, both are traced unless -4 or -6 says otherwise.\nExit code 0 when the packet is delivered (and, with --capture, seen at every hop), 1 otherwise.',
    )
    .action(async (from: string, to: string, o) => {
      if (!Number.isInteger(o.count) || o.count < 1 || o.count > 100) throw ctx.usageError(`--count must be a whole number from 1 to 100, not "${o.count}"`);
      if (o['4'] && o['6']) throw ctx.usageError('-4 and -6 together: leave both out to trace both families');
      const { state, backend, nodes } = running(ctx, o.lab);
      let rs: TraceReport[];
      try {
        rs = await traceLabFamilies(backend, state, nodes, from, to, { capture: o.capture, count: o.count, family: o['6'] ? 6 : o['4'] ? 4 : undefined });
      } catch (e) {
        if (e instanceof TraceTargetError) throw ctx.usageError(`${e.message}; see \`cnilab get pods\``);
        throw e;
      }
      if (o.json) json(rs.length === 2 ? { ...rs[0], ipv6: rs[1] } : rs[0]);
      else console.log(rs.map((r) => formatTrace(r, style).join('\n')).join('\n\n'));
      const ok = rs.every((r) => r.delivered && (!r.capture || r.capture.allSeen));
      process.exitCode = ok ? ctx.exit.ok : ctx.exit.stepsFailed;
    });

  const lesson = new Command('lesson')
    .description('bring a lab up and walk through its exercises, one at a time; down at the end')
    .argument('<lab>', 'lab name (see `cnilab ls`) or path to a lab YAML file')
    .option('--name <instance>', 'instance name')
    .addOption(new Option('--backend <kind>', `where nodes live (${backendNames().join(', ')})`).default('netns'))
    .option('--no-install', 'do not install missing Debian packages')
    .option('--keep', 'leave the lab up at the end (then: cnilab down)')
    .addHelpText('after', example('cnilab lesson flannel-vxlan', 'cnilab lesson flannel-host-gw --keep'))
    .action(async (labName: string, o) => {
      const { lab, file } = loadLab(labName);
      if (!lab.exercises?.length) {
        const withExercises = listLabFiles().filter((n) => loadLab(n).lab.exercises?.length);
        throw ctx.usageError(`lab ${lab.name} (${file}) has no exercises; labs with exercises: ${withExercises.join(', ') || 'none'}`);
      }
      const instance = o.name ?? lab.name;
      const existing = readState(instance);
      let inst: LabInstance;
      if (existing) {
        const { backend, sf } = ctx.openInstance(existing);
        inst = new LabInstance(lab, file, backend, sf, new QuietReporter());
        console.log(dim(`${instance} is already up: using it, and leaving it up at the end`));
      } else {
        inst = LabInstance.open(labName, { name: o.name, backend: o.backend }, new TextReporter());
        await tearDownOnSignal(inst, () => inst.up({ install: o.install }));
      }
      inst.fillVars();
      const ours = !existing;
      let inShell = false;
      const onSignal = () => {
        if (inShell) return; // Ctrl-C in the learner's shell is the shell's
        if (ours) inst.down().finally(() => process.exit(130));
        else process.exit(130);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const keys = terminalKeys();
      const tty = process.stdout.isTTY;
      const io: LessonIO = {
        write: (t) => process.stdout.write(t),
        clear: () => tty && process.stdout.write('\x1b[2J\x1b[H'),
        key: () => keys.key(),
        shell: async (node, pod) => {
          inShell = true;
          try {
            await openShell(inst.backend, inst.state.state.lab, node, pod);
          } finally {
            inShell = false;
          }
        },
      };
      try {
        const r = await walkExercises({ lab, backend: inst.backend, state: inst.state.state, nodes: lab.topology.nodes.map((n) => n.name), vars: inst.vars }, io, style);
        console.log(`\n${r.quit ? dim(`stopped after ${r.completed} of ${r.total} exercises`) : green(`✔ all ${r.total} exercises of ${lab.name} done`)}`);
      } finally {
        keys.close();
        if (ours && !o.keep) {
          console.log(dim(`tearing ${instance} down`));
          await inst.down();
        } else if (ours) console.log(`${instance} is still up: cnilab shell master · cnilab diagram · cnilab down ${instance}`);
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  return [shell, status, diagram, trace, lesson];
}

/** The model of a running lab; a lab that is not up is brought up for the drawing and taken down again. */
async function modelFor(ctx: CliContext, name: string | undefined, o: { quiet?: boolean; backend: string }): Promise<NetModel> {
  const up = listLabs();
  if (!name || up.includes(name)) {
    const { state, backend, nodes } = running(ctx, name);
    return inspectLab(backend, state, nodes);
  }
  if (!listLabFiles().includes(name) && !name.endsWith('.yaml')) {
    throw ctx.usageError(`"${name}" is neither a running lab (up: ${up.join(', ') || 'none'}) nor a lab cnilab ships (${listLabFiles().join(', ')})`);
  }
  const log = (l: string) => console.error(l);
  const inst = LabInstance.open(name, { backend: o.backend }, o.quiet ? new QuietReporter() : new TextReporter(log));
  if (!o.quiet) log(dim(`${name} is not up: bringing it up for the drawing, then down again`));
  return withLab(inst, {}, () => inspectLab(inst.backend, inst.state.state, inst.lab.topology.nodes.map((n) => n.name)));
}
