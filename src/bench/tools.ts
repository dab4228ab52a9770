// The measurements: iperf3 (TCP 1 and 4 streams, UDP at a fixed rate), ping
// RTT and sockperf TCP ping-pong (request/response), each run once on a pair.
import type { Backend } from '../topologies/backend.js';
import { runOn } from './endpoint.js';
import { parseIperf3, parsePing, parseSockperf, ToolOutputError, type Iperf3Result, type PingResult, type SockperfResult } from './parse.js';
import type { Endpoint } from './plan.js';
import { sleep } from '../util/wait.js';

export const IPERF3_PORT = 5201;
export const SOCKPERF_PORT = 11111;

/** How a server is started on the far end of a pair. */
export const SERVERS = {
  iperf3: { argv: ['iperf3', '--server', '--port', String(IPERF3_PORT)], port: IPERF3_PORT },
  sockperf: { argv: ['sockperf', 'server', '--tcp', '--ip', '0.0.0.0', '--port', String(SOCKPERF_PORT)], port: SOCKPERF_PORT },
};

export interface Iperf3Options {
  durationS: number;
  streams?: number;
  /** UDP at this offered rate (iperf3 -b), instead of TCP. */
  udpRate?: string;
}

export async function iperf3(backend: Backend, client: Endpoint, server: Endpoint, o: Iperf3Options): Promise<Iperf3Result> {
  const argv = ['iperf3', '--client', server.ip, '--port', String(IPERF3_PORT), '--time', String(o.durationS), '--json', '--connect-timeout', '3000'];
  if (o.streams && o.streams > 1) argv.push('--parallel', String(o.streams));
  // A 4 MB socket buffer: with the default, a receiver that waits for a CPU drops datagrams
  // in its own socket and the "loss" measures the scheduler rather than the datapath.
  if (o.udpRate) argv.push('--udp', '--bitrate', o.udpRate, '--window', '4M');
  // One server runs one test at a time; right after a test it may still say "busy".
  for (let attempt = 1; ; attempt++) {
    const r = await runOn(backend, client, argv, { timeoutMs: (o.durationS + 15) * 1000, allowFailure: true });
    try {
      return parseIperf3(r.stdout);
    } catch (e) {
      if (e instanceof ToolOutputError && /busy/.test(e.message) && attempt < 10) {
        await sleep(300);
        continue;
      }
      throw e;
    }
  }
}

/** 100 echo requests 10 ms apart: about a second. */
export async function ping(backend: Backend, client: Endpoint, server: Endpoint, count = 100): Promise<PingResult> {
  const r = await runOn(backend, client, ['ping', '-n', '-c', String(count), '-i', '0.01', '-W', '1', server.ip], { timeoutMs: 30_000, allowFailure: true });
  return parsePing(r.stdout);
}

/** TCP request/response: sockperf ping-pong, round-trip percentiles (it warms up by itself). */
export async function requestResponse(backend: Backend, client: Endpoint, server: Endpoint, durationS: number): Promise<SockperfResult> {
  const argv = ['sockperf', 'ping-pong', '--tcp', '--ip', server.ip, '--port', String(SOCKPERF_PORT), '--time', String(durationS), '--full-rtt'];
  const r = await runOn(backend, client, argv, { timeoutMs: (durationS + 15) * 1000 });
  return parseSockperf(r.stdout);
}
