// Results files of schema version 1 (before intervals, the lab file and the
// load samples were recorded): read with their own schema and converted, so
// stored history stays readable. A converted file has no labFile: it cannot be rerun.
import { z } from 'zod';
import { figureStats } from './stats.js';

const metricV1 = z.strictObject({
  unit: z.string(),
  better: z.enum(['higher', 'lower']),
  values: z.array(z.number()).min(1),
  median: z.number(),
  min: z.number(),
  max: z.number(),
});

const hopV1 = z.strictObject({ where: z.string(), ifname: z.string(), kind: z.string(), mtu: z.number().int(), offloads: z.record(z.string(), z.boolean()).optional() });
const endpointV1 = z.strictObject({ node: z.string(), pod: z.string().optional(), ip: z.string() });
const linkV1 = z.strictObject({ ifname: z.string(), kind: z.string(), mtu: z.number().int(), master: z.string().optional() });

const resultV1 = z.strictObject({
  schemaVersion: z.literal(1),
  lab: z.string(),
  mode: z.string(),
  description: z.string(),
  backend: z.string(),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  settings: z.strictObject({
    repeat: z.number().int().positive(),
    durationS: z.number().int().positive(),
    warmupS: z.number().int().min(0),
    udpRate: z.string(),
    tests: z.array(z.string()).min(1),
  }),
  host: z.strictObject({ kernel: z.string(), arch: z.string(), cpus: z.number().int().positive(), loadavg: z.strictObject({ start: z.number(), end: z.number() }) }),
  versions: z.record(z.string(), z.string()),
  git: z.strictObject({ commit: z.string(), dirty: z.boolean() }).optional(),
  topology: z.strictObject({
    underlay: z.string(),
    nodes: z.array(z.strictObject({ name: z.string(), address: z.string(), links: z.array(linkV1) })),
    pods: z.array(z.strictObject({ name: z.string(), node: z.string(), ip: z.string() })),
  }),
  pairs: z.array(
    z.strictObject({
      name: z.string(),
      kind: z.enum(['underlay', 'same-node', 'cross-node']),
      client: endpointV1,
      server: endpointV1,
      path: z.array(hopV1),
      metrics: z.record(z.string(), metricV1),
    }),
  ),
  notes: z.array(z.string()),
});

/** A version-1 document as the current schema's shape (checked by the caller), or why it is not a version-1 file. */
export function upgradeVersion1(data: unknown): { success: true; data: unknown } | { success: false; error: z.ZodError } {
  const parsed = resultV1.safeParse(data);
  if (!parsed.success) return parsed;
  const r = parsed.data;
  const { warmupS: _warmup, ...settings } = r.settings;
  return {
    success: true,
    data: {
      ...r,
      schemaVersion: 2,
      settings: { ...settings, minRepeat: settings.repeat, ciTargetPct: 0, pin: false },
      host: { kernel: r.host.kernel, arch: r.host.arch, cpus: r.host.cpus, load: { before: r.host.loadavg.start, during: [], after: r.host.loadavg.end } },
      pairs: r.pairs.map((p) => ({
        ...p,
        metrics: Object.fromEntries(Object.entries(p.metrics).map(([name, m]) => [name, { unit: m.unit, better: m.better, values: m.values, ...figureStats(m.values) }])),
      })),
    },
  };
}
