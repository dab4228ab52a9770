// The measurements: iperf3 (TCP 1 and 4 streams, UDP at a fixed rate), ping
// RTT and sockperf TCP ping-pong (request/response). Client and server can be
// pinned to distinct CPUs (iperf3 -A, taskset), so the two do not take turns
// on one CPU while the other sits idle.
import { execa } from 'execa';
import type { Backend } from '../topologies/backend.js';
import { BenchCommandError, endpointLabel, runOn } from './endpoint.js';
import { parseIperf3, parsePing, parseSockperfLog, ToolOutputError, type Iperf3Result, type PingResult, type SockperfWindow } from './parse.js';
import type { Endpoint } from './plan.js';
import { sleep } from '../util/wait.js';

export const IPERF3_PORT = 5201;
export const SOCKPERF_PORT = 11111;
/** sockperf's -t: whole seconds, and no longer than the 2 s it sleeps before measuring (see requestResponse). */
export const SOCKPERF_RUN_S = 2;

/** CPUs for the client and the server of a pair; undefined: not pinned (one CPU, or asked not to). */
export interface Pinning {
  client: number;
  server: number;
}

const taskset = (cpu: number | undefined, argv: string[]) => (cpu === undefined ? argv : ['taskset', '--cpu-list', String(cpu), ...argv]);

/** How a server is started on the far end of a pair. */
export function serverArgv(tool: 'iperf3' | 'sockperf', pin?: Pinning): { argv: string[]; port: number } {
  // iperf3's server takes its CPU from each client's -A; sockperf's is pinned here.
  if (tool === 'iperf3') return { argv: ['iperf3', '--server', '--port', String(IPERF3_PORT)], port: IPERF3_PORT };
  return { argv: taskset(pin?.server, ['sockperf', 'server', '--tcp', '--ip', '0.0.0.0', '--port', String(SOCKPERF_PORT)]), port: SOCKPERF_PORT };
}

export interface Iperf3Options {
  /** Send this many bytes (iperf3 -n): a run sized from the rate observed so far. */
  bytes?: number;
  /** Or run this many whole seconds. */
  durationS?: number;
  streams?: number;
  /** Bytes per write (iperf3 --length), and Nagle off (--no-delay): one message per write. */
  length?: number;
  noDelay?: boolean;
  /** UDP at this offered rate (iperf3 -b), instead of TCP. */
  udpRate?: string;
  /** The UDP socket buffer in bytes (iperf3 --window; default UDP_WINDOW): at most what the nodes' net.core.rmem_max and wmem_max allow, or iperf3 refuses to run. */
  window?: number;
  pin?: Pinning;
  /** Seconds after which a hung client is killed. */
  timeoutS?: number;
}

/**
 * A 4 MiB UDP socket buffer: with the default, a receiver that waits for a CPU drops datagrams
 * in its own socket and the "loss" measures the scheduler rather than the datapath.
 */
export const UDP_WINDOW = 4 * 2 ** 20;

/** The largest socket buffer both nodes grant (net.core.rmem_max and wmem_max), up to UDP_WINDOW. */
export async function udpWindow(backend: Backend, nodes: string[]): Promise<{ bytes: number; limitedBy?: string }> {
  let bytes = UDP_WINDOW;
  let limitedBy: string | undefined;
  for (const node of new Set(nodes)) {
    for (const key of ['rmem_max', 'wmem_max']) {
      const r = await backend.node(node).run(['cat', `/proc/sys/net/core/${key}`], { allowFailure: true });
      const v = Number(r.stdout.trim());
      if (Number.isFinite(v) && v > 0 && v < bytes) {
        bytes = v;
        limitedBy = `net.core.${key} on ${node}`;
      }
    }
  }
  return { bytes, limitedBy };
}

export async function iperf3(backend: Backend, client: Endpoint, server: Endpoint, o: Iperf3Options): Promise<Iperf3Result> {
  const argv = ['iperf3', '--client', server.ip, '--port', String(IPERF3_PORT), '--json', '--interval', '0', '--connect-timeout', '3000'];
  const endAt = argv.length;
  argv.push(...(o.bytes ? ['--bytes', String(Math.round(o.bytes))] : ['--time', String(o.durationS ?? 1)]));
  if (o.streams && o.streams > 1) argv.push('--parallel', String(o.streams));
  if (o.pin) argv.push('--affinity', `${o.pin.client},${o.pin.server}`);
  if (o.length) argv.push('--length', String(o.length));
  if (o.noDelay) argv.push('--no-delay');
  if (o.udpRate) argv.push('--udp', '--bitrate', o.udpRate, '--window', String(o.window ?? UDP_WINDOW));
  const timeoutMs = (o.timeoutS ?? 30) * 1000;
  // One server runs one test at a time: right after a test it may still say "busy"; a client
  // that hung (a lost control message on a loaded machine) is killed and tried once more.
  for (let attempt = 1; ; attempt++) {
    let r;
    try {
      r = await runOn(backend, client, argv, { timeoutMs, allowFailure: true });
    } catch (e) {
      if (e instanceof BenchCommandError && /did not finish/.test(e.message) && attempt < 2) {
        // A run sized in bytes from an earlier rate can meet a path that got far slower (a token
        // bucket whose burst the warm-up used up): the retry runs for a fixed time instead.
        if (o.bytes) argv.splice(endAt, 2, '--time', String(Math.max(1, Math.ceil(o.durationS ?? 1))));
        continue;
      }
      throw e;
    }
    try {
      return parseIperf3(r.stdout);
    } catch (e) {
      if (e instanceof ToolOutputError && /busy/.test(e.message) && attempt < 20) {
        await sleep(50 * attempt);
        continue;
      }
      throw e;
    }
  }
}

/** `count` echo requests `intervalS` apart. */
export async function ping(backend: Backend, client: Endpoint, server: Endpoint, o: { count: number; intervalS: number; pin?: Pinning }): Promise<PingResult> {
  const argv = taskset(o.pin?.client, ['ping', '-n', '-c', String(o.count), '-i', String(o.intervalS), '-W', '1', server.ip]);
  const r = await runOn(backend, client, argv, { timeoutMs: 30_000, allowFailure: true });
  return parsePing(r.stdout);
}

export interface RrPair {
  name: string;
  client: Endpoint;
  server: Endpoint;
}

/**
 * TCP request/response on each pair in turn: one sockperf ping-pong per pair,
 * its per-message log cut into `windows` time windows (one figure each). sockperf
 * 3.7 sleeps 2 s after connecting before it measures; the next pair's client is
 * started as soon as this one starts measuring, so its 2 s pass while this one
 * measures: with a 2 s run the two never overlap (sockperf counts the first
 * 0.4 s as its own warm-up and measures about 1 s of it).
 */
export async function requestResponse(backend: Backend, pairs: RrPair[], o: { windows: number; pin?: Pinning }): Promise<Map<string, SockperfWindow[]>> {
  const out = new Map<string, SockperfWindow[]>();
  const runS = SOCKPERF_RUN_S;
  const start = (p: RrPair) => {
    const sockperf = taskset(o.pin?.client, ['stdbuf', '-oL', 'sockperf', 'ping-pong', '--tcp', '--ip', p.server.ip, '--port', String(SOCKPERF_PORT), '--time', String(runS), '--full-rtt', '--no-rdtsc', '--full-log', '/dev/stdout']);
    // sockperf opens its log by name, and /dev/stdout cannot be opened when it is the socket
    // node gives a child: through `| cat` it is a pipe. Every word is a number, an address or a flag.
    const argv = ['bash', '-c', `set -o pipefail; ${sockperf.join(' ')} | cat`];
    const [cmd, ...args] = backend.commandFor(p.client.node, p.client.pod, argv);
    const child = execa(cmd, args, { reject: false, timeout: (runS + 20) * 1000 });
    const measuring = new Promise<void>((resolve) => {
      let seen = '';
      const onData = (d: Buffer) => {
        seen += d.toString();
        if (/Starting test/.test(seen)) resolve();
        else seen = seen.slice(-64);
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      void child.then(() => resolve());
    });
    const done: Promise<void> = child.then((res) => {
      if (res.timedOut || res.exitCode !== 0) throw new BenchCommandError(endpointLabel(p.client), argv, res.timedOut ? 'did not finish in time' : `failed (exit ${res.exitCode}): ${(res.stderr || String(res.stdout)).trim().slice(0, 500)}`);
      out.set(p.name, parseSockperfLog(String(res.stdout), o.windows));
    });
    // Awaited below; until then a failure must not count as unhandled.
    done.catch(() => undefined);
    return { measuring, done };
  };
  const runs: Promise<void>[] = [];
  try {
    let prev: ReturnType<typeof start> | undefined;
    for (const p of pairs) {
      if (prev) await prev.measuring;
      prev = start(p);
      runs.push(prev.done);
    }
  } finally {
    await Promise.allSettled(runs);
  }
  await Promise.all(runs);
  return out;
}
