// `npm run load:serve -- --labs 30`: a served workshop under a room's load. N
// participant labs brought up at once (through the server's queue), each
// participant's event stream open (its diagram pushed), and in each lab a
// ping from nginx-0 on master to nginx-1 on the worker typed into a terminal
// over the WebSocket, as a page would. Prints the time to bring all up, the
// machine's memory taken per lab, CPU (the whole machine, shared with
// others; and the server with the commands it ran) while coming up and
// while idle with every stream open, and the time to tear all down.
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { requireBuilt } from '../src/lab/paths.js';
import { serve } from '../src/web/server.js';
import { sleep } from '../src/util/wait.js';
import { readState } from '../src/lab/state.js';
import { numberOption, parseOptions } from './args.js';

const values = parseOptions(
  {
    script: 'load:serve',
    about: "A served workshop under a room's load: N participant labs up at once, each with its event stream and a ping in a terminal; time, memory and CPU.",
    example: '--labs 30',
  },
  {
    labs: { type: 'string', default: '30', value: 'n', help: 'participant labs' },
    'up-at-once': { type: 'string', default: '2', value: 'n', help: 'labs the server brings up at a time' },
    lab: { type: 'string', default: 'flannel-vxlan', value: 'name', help: 'the lab each participant gets' },
    idle: { type: 'string', default: '30', value: 'seconds', help: 'time measured idle with every stream open' },
    json: { type: 'boolean', default: false, help: 'print the results as JSON' },
  },
);
const N = numberOption('labs', values.labs, { min: 1 });
const upAtOnce = numberOption('up-at-once', values['up-at-once'], { min: 1 });
const idleS = numberOption('idle', values.idle, { whole: false });
requireBuilt();

/** Busy and total jiffies of the whole machine. */
function cpuTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}
/** This process's CPU ticks with its finished children (the ip, nsenter and tcpdump it ran). */
function selfTicks(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  return f[11] + f[12] + f[13] + f[14]; // utime stime cutime cstime
}
/** Proportional memory (PSS) of every process the labs recorded, in MB: the labs' own share, whatever else the machine does. */
function labsPssMB(labs: string[]): number {
  let kb = 0;
  for (const lab of labs) {
    for (const p of readState(lab)?.processes ?? []) {
      try {
        kb += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${p.pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
      } catch {
        // gone
      }
    }
  }
  return kb / 1024;
}
const memAvailableMB = () => Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) / 1024;

/** Machine CPU (in cores busy) and this process's CPU (cores) over what `fn` does. */
async function measure<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; machineCores: number; serverCores: number }> {
  const c0 = cpuTicks();
  const p0 = selfTicks();
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const c1 = cpuTicks();
  const p = selfTicks() - p0;
  const cores = (c1.total - c0.total) / (seconds * 100); // USER_HZ = 100
  return { value, seconds, machineCores: ((c1.busy - c0.busy) / (c1.total - c0.total)) * cores, serverCores: p / 100 / seconds };
}

const memBefore = memAvailableMB();
const served = await serve(
  { port: 0, listen: '127.0.0.1', participants: N, perVisitor: false, maxSeats: N, labName: values.lab, backend: 'netns', install: true, verify: false, intervalMs: 3000, upAtOnce, readsAtOnce: 1 },
  0,
);
const seats = served.classroom.seats;
const wsBase = served.base.replace('http', 'ws');
let ok = false;
try {
  const up = await measure(() => Promise.all(seats.map((s) => served.classroom.up(s))));
  const memUp = memAvailableMB();
  const pss = labsPssMB(seats.map((s) => s.lab));

  // Every participant's event stream, until its first diagram has come.
  const streams: WebSocket[] = [];
  const firstDiagram = await measure(() =>
    Promise.all(
      seats.map(
        (s) =>
          new Promise<number>((resolve, reject) => {
            const t0 = performance.now();
            const w = new WebSocket(`${wsBase}/p/${s.token}/ws/labs/${s.lab}/events`);
            streams.push(w);
            w.on('message', (d) => JSON.parse(String(d)).type === 'diagram' && resolve(performance.now() - t0));
            w.on('error', reject);
          }),
      ),
    ),
  );

  // A ping across nodes in every lab, typed into a terminal on nginx-0.
  const pings = await measure(() =>
    Promise.all(
      seats.map(
        (s) =>
          new Promise<string | true>((resolve) => {
            const ip = s.inst!.state.state.pods.find((p) => p.name === 'nginx-1')!.ip!;
            const w = new WebSocket(`${wsBase}/p/${s.token}/ws/labs/${s.lab}/terminal?target=nginx-0&cols=120&rows=30`);
            let out = '';
            const done = (v: string | true) => {
              w.close();
              resolve(v);
            };
            const timer = setTimeout(() => done(`${s.lab}: no answer in 60 s; the terminal showed: ${JSON.stringify(out.slice(-300))}`), 60_000);
            w.on('open', () => w.send(JSON.stringify({ type: 'input', data: `ping -c 1 -W 5 ${ip} >/dev/null; echo "ping-rc=$?"\r` })));
            w.on('message', (d) => {
              out += String(d);
              const m = /ping-rc=(\d+)\r?\n/.exec(out);
              if (m) {
                clearTimeout(timer);
                done(m[1] === '0' || `${s.lab}: ping exited ${m[1]}`);
              }
            });
            w.on('error', (e) => done(`${s.lab}: ${e.message}`));
          }),
      ),
    ),
  );
  const answered = pings.value.filter((v) => v === true).length;
  for (const v of pings.value) if (v !== true) console.error(v);

  // Idle with every stream open: the diagram polls go on.
  const idle = await measure(() => sleep(idleS * 1000));
  const rssMB = process.memoryUsage().rss / 1024 / 1024;
  for (const w of streams) w.close();

  const down = await measure(() => served.close());
  const r = {
    labs: N,
    lab: values.lab,
    upAtOnce,
    bringUp: { seconds: +up.seconds.toFixed(1), perLab: +(up.seconds / N).toFixed(2), machineCores: +up.machineCores.toFixed(2), serverCores: +up.serverCores.toFixed(2) },
    memory: { machineMB: Math.round(memBefore - memUp), perLabMB: Math.round((memBefore - memUp) / N), labProcessesPssMB: Math.round(pss), perLabPssMB: Math.round(pss / N), serverRssMB: Math.round(rssMB) },
    firstDiagram: { seconds: +firstDiagram.seconds.toFixed(1), slowestMs: Math.round(Math.max(...firstDiagram.value)) },
    pings: { answered, of: N, seconds: +pings.seconds.toFixed(1) },
    idleWithStreams: { seconds: idle.seconds, machineCores: +idle.machineCores.toFixed(2), serverCores: +idle.serverCores.toFixed(2) },
    tearDown: { seconds: +down.seconds.toFixed(1) },
  };
  ok = answered === N;
  if (values.json) console.log(JSON.stringify(r, null, 2));
  else {
    console.log(`${N} ${values.lab} labs, ${r.upAtOnce} brought up at a time`);
    console.log(`  bring-up:   ${r.bringUp.seconds} s (${r.bringUp.perLab} s per lab); machine ${r.bringUp.machineCores} cores busy, server ${r.bringUp.serverCores}`);
    console.log(`  memory:     ${r.memory.machineMB} MB less available on the machine (${r.memory.perLabMB} MB per lab; others share it); the labs' processes ${r.memory.labProcessesPssMB} MB PSS (${r.memory.perLabPssMB} MB per lab); server RSS ${r.memory.serverRssMB} MB`);
    console.log(`  streams:    ${N} open, every first diagram within ${r.firstDiagram.seconds} s (slowest ${r.firstDiagram.slowestMs} ms)`);
    console.log(`  pings:      ${answered}/${N} answered across nodes, typed into ${N} terminals, in ${r.pings.seconds} s`);
    console.log(`  idle:       ${values.idle} s with every stream open: machine ${r.idleWithStreams.machineCores} cores busy, server ${r.idleWithStreams.serverCores}`);
    console.log(`  tear-down:  ${r.tearDown.seconds} s`);
  }
} finally {
  if (!ok) await served.close().catch(() => undefined);
}
process.exit(ok ? 0 : 1);
