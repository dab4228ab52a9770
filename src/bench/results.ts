// Results: one JSON file per benchmark run, results/<lab>/<timestamp>.json,
// versioned and checked with zod when written and when read back.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { ROOT } from '../lab/paths.js';
import { upgradeVersion1 } from './results-v1.js';

export const RESULT_SCHEMA_VERSION = 2;

const intervalSchema = z.strictObject({ lo: z.number(), hi: z.number(), level: z.number().min(0).max(1) });

const metricSchema = z.strictObject({
  unit: z.string(),
  better: z.enum(['higher', 'lower']),
  /** One value per repetition, in order. */
  values: z.array(z.number()).min(1),
  n: z.number().int().positive(),
  median: z.number(),
  min: z.number(),
  max: z.number(),
  /** The order-statistic confidence interval of the median and the coverage it has. */
  ci: intervalSchema,
  /** Coefficient of variation over the repetitions. */
  cv: z.number(),
});

const offloadsSchema = z.record(z.string(), z.boolean());

/** One interface a pair's packets cross, in order from client to server. */
const hopSchema = z.strictObject({
  where: z.string(),
  ifname: z.string(),
  kind: z.string(),
  mtu: z.number().int(),
  offloads: offloadsSchema.optional(),
  /** The interface's transmit and receive queues. */
  queues: z.strictObject({ tx: z.number().int(), rx: z.number().int() }).optional(),
});

const endpointSchema = z.strictObject({ node: z.string(), pod: z.string().optional(), ip: z.string() });

const pairSchema = z.strictObject({
  name: z.string(),
  kind: z.enum(['underlay', 'same-node', 'cross-node']),
  /** The pair's IP family (absent in results from before dual-stack labs: IPv4). Its ratios are to the underlay of the same family. */
  family: z.union([z.literal(4), z.literal(6)]).optional(),
  client: endpointSchema,
  server: endpointSchema,
  path: z.array(hopSchema),
  metrics: z.record(z.string(), metricSchema),
});

const linkSchema = z.strictObject({ ifname: z.string(), kind: z.string(), mtu: z.number().int(), master: z.string().optional() });

/** Everything that decides what is measured: with the lab file below, enough to run the same experiment again. */
export const settingsSchema = z.strictObject({
  /** The most repetitions of a test; a test stops earlier once its intervals are narrow. */
  repeat: z.number().int().positive(),
  /** The fewest repetitions of a test (6: the first count whose min..max covers the median with 95%). */
  minRepeat: z.number().int().positive(),
  /** Seconds per throughput measurement (a target: iperf3 sends what the pair carries in that time). */
  durationS: z.number().positive(),
  /** A test stops early when every figure's interval is within ± this percentage of its median. */
  ciTargetPct: z.number().min(0),
  udpRate: z.string(),
  tests: z.array(z.string()).min(1),
  /** Client and server pinned to distinct CPUs. */
  pin: z.boolean(),
  /** The message-size sweep was run too. */
  sweep: z.boolean().optional(),
  /** Each repetition ran every pair twice, forward then backward, and kept the mean (absent: once). */
  mirrored: z.boolean().optional(),
});

export const resultSchema = z.strictObject({
  schemaVersion: z.literal(RESULT_SCHEMA_VERSION),
  lab: z.string(),
  mode: z.string(),
  description: z.string(),
  backend: z.string(),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  settings: settingsSchema,
  /** The lab file as it was measured: its path, content and SHA-256 (absent in files converted from version 1). */
  labFile: z.strictObject({ path: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), content: z.string() }).optional(),
  /** The stored result this run repeated (`cnilab bench --rerun`). */
  rerunOf: z.string().optional(),
  host: z.strictObject({
    kernel: z.string(),
    arch: z.string(),
    cpus: z.number().int().positive(),
    cpuModel: z.string().optional(),
    /** scaling_governor of each CPU, or "none" where the kernel exposes no cpufreq. */
    governor: z.string().optional(),
    /** Machines of one kind (CPU model and count, backend): history and gates compare only within one. */
    class: z.string().optional(),
    /** 1-minute load average before, during (one sample per test and repetition) and after: this machine may be shared. */
    load: z.strictObject({ before: z.number(), during: z.array(z.number()), after: z.number() }),
    /** Share of CPU time not idle over the whole run, all CPUs (from /proc/stat). */
    busyPct: z.number().optional(),
    /** NET_RX softirqs per CPU during the run: where the packets were received. */
    netRxSoftirqs: z.array(z.number()).optional(),
    /** Where the client and the server ran. */
    pinning: z.strictObject({ client: z.string(), server: z.string() }).optional(),
  }),
  versions: z.record(z.string(), z.string()),
  git: z.strictObject({ commit: z.string(), dirty: z.boolean() }).optional(),
  topology: z.strictObject({
    underlay: z.string(),
    /** Dual-stack labs: the IPv6 underlay, and each node's and pod's IPv6 address. */
    underlayV6: z.string().optional(),
    nodes: z.array(z.strictObject({ name: z.string(), address: z.string(), addressV6: z.string().optional(), links: z.array(linkSchema) })),
    pods: z.array(z.strictObject({ name: z.string(), node: z.string(), ip: z.string(), ip6: z.string().optional() })),
  }),
  pairs: z.array(pairSchema).min(1),
  /** The message-size sweep (`bench --sweep`): each size's throughput on the underlay and the cross-node pair. */
  sweep: z
    .strictObject({
      test: z.string(),
      points: z.array(z.strictObject({ pair: z.string(), size: z.number().int().positive(), metric: metricSchema })),
    })
    .optional(),
  /** How each pair was warmed up: the observed TCP rates until two agreed. */
  warmup: z.array(z.strictObject({ pair: z.string(), gbps: z.array(z.number()) })).optional(),
  notes: z.array(z.string()),
});

export type BenchResult = z.infer<typeof resultSchema>;
export type PairResult = BenchResult['pairs'][number];
export type Metric = z.infer<typeof metricSchema>;
export type Hop = z.infer<typeof hopSchema>;

export class ResultFileError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'ResultFileError';
  }
}

/** results/ at the top of the project, unless CNILAB_RESULTS_DIR says otherwise. */
export function defaultResultsDir(): string {
  return resolve(process.env.CNILAB_RESULTS_DIR ?? join(ROOT, 'results'));
}

/** Reads the current version, and version 1 by converting it (see results-v1.ts). */
export function validateResult(data: unknown, file: string): BenchResult {
  if ((data as { schemaVersion?: unknown })?.schemaVersion === 1) {
    const old = upgradeVersion1(data);
    if (!old.success) throw new ResultFileError(file, `(schema version 1) ${firstIssue(old.error)}`);
    data = old.data;
  }
  const parsed = resultSchema.safeParse(data);
  if (!parsed.success) throw new ResultFileError(file, firstIssue(parsed.error));
  return parsed.data;
}

/** The first zod issue as "field: message". */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const field = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  return `${field ? `${field}: ` : ''}${issue.message}`;
}

export function readResult(file: string): BenchResult {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ResultFileError(file, `not a JSON results file: ${(e as Error).message}`);
  }
  return validateResult(data, file);
}

/** Validate, then write atomically; returns the file's path. */
export function writeResult(result: BenchResult, dir = defaultResultsDir()): string {
  const file = join(dir, result.lab, `${result.startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`);
  validateResult(result, file);
  mkdirSync(join(dir, result.lab), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(result, null, 2) + '\n');
  renameSync(`${file}.tmp`, file);
  return file;
}

export interface StoredResult {
  file: string;
  result?: BenchResult;
  /** Why the file could not be read, naming the field. */
  error?: string;
}

/** Every results file under a directory (results/<lab>/*.json), or one file; oldest first. */
export function loadResults(path = defaultResultsDir()): StoredResult[] {
  if (!existsSync(path)) return [];
  const files = statSync(path).isFile()
    ? [path]
    : readdirSync(path, { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.json'))
        .map((f) => join(path, f));
  const out = files.map((file): StoredResult => {
    try {
      return { file, result: readResult(file) };
    } catch (e) {
      return { file, error: (e as Error).message };
    }
  });
  return out.sort((a, b) => (a.result?.startedAt ?? basename(a.file)).localeCompare(b.result?.startedAt ?? basename(b.file)));
}

export const resultKey = (r: Pick<BenchResult, 'lab' | 'backend'>) => `${r.lab}@${r.backend}`;

/** The newest result per lab and backend. */
export function latestPerLab(stored: StoredResult[]): StoredResult[] {
  const latest = new Map<string, StoredResult>();
  for (const s of stored) if (s.result) latest.set(resultKey(s.result), s); // sorted oldest first: the last one wins
  return [...latest.values()].sort((a, b) => a.result!.lab.localeCompare(b.result!.lab));
}
