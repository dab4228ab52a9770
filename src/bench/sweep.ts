// The message-size sweep: TCP with one write per message and Nagle off
// (iperf3 --no-delay --length), from 64 B to 64 KB, on the underlay and the
// cross-node pair in turn. Small messages make every packet pay the
// encapsulation's headers; the report draws the cost those bytes alone predict
// beside the measured ratio.
import type { Backend } from '../topologies/backend.js';
import type { PlannedPair } from './plan.js';
import { figureStats } from './stats.js';
import { METRICS } from './metrics.js';
import { iperf3, type Pinning } from './tools.js';
import type { BenchResult } from './results.js';

export const SWEEP_SIZES = [64, 256, 1024, 4096, 16384, 65536];
/** Repetitions per size: the sweep shows a shape, not a gated figure (3 values: min..max covers the median with 75%). */
export const SWEEP_REPEAT = 3;
/** Messages the first run of a size sends, before its rate is known. */
const FIRST_RUN_MESSAGES = 20_000;

export async function sweepMessageSizes(backend: Backend, pairs: PlannedPair[], o: { durationS: number; pin?: Pinning; log?: (m: string) => void }): Promise<NonNullable<BenchResult['sweep']>> {
  const points: NonNullable<BenchResult['sweep']>['points'] = [];
  for (const size of SWEEP_SIZES) {
    const values = new Map<string, number[]>(pairs.map((p) => [p.name, []]));
    for (let rep = 1; rep <= SWEEP_REPEAT; rep++) {
      const order = pairs.map((_, i) => pairs[(i + rep - 1) % pairs.length]);
      for (const pair of order) {
        const seen = values.get(pair.name)!;
        const bytes = seen.length ? Math.max(size * 100, (seen.at(-1)! * 1e9 * o.durationS) / 8) : size * FIRST_RUN_MESSAGES;
        const r = await iperf3(backend, pair.client, pair.server, { bytes, length: size, noDelay: true, pin: o.pin, timeoutS: 60 });
        seen.push(r.gbps);
      }
    }
    for (const pair of pairs) points.push({ pair: pair.name, size, metric: { unit: METRICS['tcp.gbps'].unit, better: 'higher', values: values.get(pair.name)!, ...figureStats(values.get(pair.name)!) } });
    o.log?.(`sweep ${size} B: ${pairs.map((p) => `${p.name} ${figureStats(values.get(p.name)!).median.toFixed(2)} Gb/s`).join(' · ')}`);
  }
  return { test: 'TCP, Nagle off, one write per message (iperf3 --no-delay --length)', points };
}
