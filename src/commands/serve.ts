// `cnilab serve`: the workshop in a browser, a lab per participant. Thin: checks
// the options, starts the server in src/web, prints the links, and on Ctrl-C
// tears every participant's lab down.
import { Command, Option } from 'commander';
import { bold, dim, green } from '../runner/reporter.js';
import { loadLab } from '../datapaths/index.js';
import { listLabs } from '../lab/state.js';
import { backendNames } from '../topologies/registry.js';
import { SEAT_LAB } from '../web/classroom.js';
import { serve } from '../web/server.js';
import type { CliContext } from './workshop.js';

const whole = (name: string, lo: number, hi: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`${name} must be a whole number from ${lo} to ${hi}, not "${v}"`);
  return n;
};

export function serveCommand(ctx: Pick<CliContext, 'usageError'>): Command {
  return new Command('serve')
    .description('serve the workshop in a browser: a lab per participant, each with a secret link (live diagram, terminal, trace, exercises, challenges); an instructor page')
    .option('--port <n>', 'TCP port', '8080')
    .option('--listen <address>', 'address to listen on (0.0.0.0 for the room\'s network)', '127.0.0.1')
    .option('--participants <n>', 'participant links to make at start (more from the instructor page)', '1')
    .option('--lab-per-visitor', 'hand out no links at start: each visitor of the join link gets a seat and a lab')
    .option('--max-labs <n>', 'most labs at once (with --lab-per-visitor)', '30')
    .option('--lab <lab>', 'the lab every participant gets', 'flannel-vxlan')
    .addOption(new Option('--backend <kind>', `where nodes live (${backendNames().join(', ')})`).default('netns'))
    .option('--up', 'bring every participant\'s lab up at start (otherwise: on the first visit, or from the instructor page)')
    .option('--no-verify', 'do not run the lab\'s own steps once a lab is up (the instructor page\'s "lab steps passed")')
    .option('--no-install', 'do not install missing Debian packages')
    .option('--host-shells', 'allow participants on other machines a terminal on the netns backend, where it is a root shell on this machine')
    .option('--interval <seconds>', 'how often a watched lab\'s kernel is read for its diagram', '3')
    .addHelpText(
      'after',
      `\nExample:\n  cnilab serve --participants 20                 # 20 links, labs come up on first visit\n  cnilab serve --lab-per-visitor --listen 0.0.0.0 --max-labs 30\n  cnilab serve --lab flannel-host-gw --participants 2 --up\n\nEvery link carries a secret token; nothing is served without one. Ctrl-C tears every participant's lab down (so does \`cnilab clean\`).`,
    )
    .action(async (o) => {
      let port: number, participants: number, maxSeats: number, interval: number;
      try {
        port = whole('--port', 0, 65535)(o.port);
        participants = whole('--participants', 0, 200)(o.participants);
        maxSeats = whole('--max-labs', 1, 200)(o.maxLabs);
        interval = whole('--interval', 1, 3600)(o.interval);
      } catch (e) {
        throw ctx.usageError((e as Error).message);
      }
      if (o.labPerVisitor && o.participants !== '1') throw ctx.usageError('--participants and --lab-per-visitor exclude each other');
      // On netns nodes a terminal shares this machine's filesystem and root: fine for the instructor's own
      // browser, not for a room, unless the instructor says so. Docker nodes keep a participant in a container.
      const loopback = /^(127\.|::1$|localhost$)/.test(o.listen);
      if (o.backend === 'netns' && !loopback && !o.hostShells) {
        throw ctx.usageError(`--listen ${o.listen} hands out terminals on the netns backend, which are root shells on this machine: serve --backend docker for a room, or add --host-shells if you trust everyone with a link`);
      }
      const { lab } = loadLab(o.lab);
      const stale = listLabs().filter((l) => SEAT_LAB.test(l));
      if (stale.length) throw ctx.usageError(`participant labs are still up from an earlier server (${stale.join(', ')}); \`cnilab down <name>\` each, or \`cnilab clean\``);
      const served = await serve(
        {
          port,
          listen: o.listen,
          participants: o.labPerVisitor ? 0 : participants,
          perVisitor: !!o.labPerVisitor,
          maxSeats: o.labPerVisitor ? maxSeats : Math.max(maxSeats, participants),
          labName: o.lab,
          backend: o.backend,
          install: o.install,
          verify: o.verify,
          intervalMs: interval * 1000,
          upAtOnce: 2,
          readsAtOnce: 1,
        },
        lab.exercises?.length ?? 0,
      );
      console.log(`${green('✔')} ${bold(`serving ${lab.name}`)} on ${served.base} ${dim(`(${o.backend} backend; Ctrl-C stops the server and tears every lab down)`)}`);
      console.log(`  instructor: ${served.instructorUrl}`);
      if (served.joinUrl) console.log(`  visitors:   ${served.joinUrl}  ${dim(`(each gets a lab of their own, up to ${maxSeats})`)}`);
      for (const s of served.classroom.seats) console.log(`  participant ${String(s.id).padStart(2)}: ${served.participantUrl(s)}`);
      if (o.up) for (const s of served.classroom.seats) void served.classroom.up(s).catch(() => undefined);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          console.log(dim('stopping: tearing every participant lab down'));
          served.close().then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
