// Results: one JSON file per benchmark run, results/<lab>/<timestamp>.json,
// versioned and checked with zod when written and when read back.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { ROOT } from '../lab/paths.js';

export const RESULT_SCHEMA_VERSION = 1;

const metricSchema = z.strictObject({
  unit: z.string(),
  better: z.enum(['higher', 'lower']),
  /** One value per repetition, in order. */
  values: z.array(z.number()).min(1),
  median: z.number(),
  min: z.number(),
  max: z.number(),
});

const offloadsSchema = z.record(z.string(), z.boolean());

/** One interface a pair's packets cross, in order from client to server. */
const hopSchema = z.strictObject({
  where: z.string(),
  ifname: z.string(),
  kind: z.string(),
  mtu: z.number().int(),
  offloads: offloadsSchema.optional(),
});

const endpointSchema = z.strictObject({ node: z.string(), pod: z.string().optional(), ip: z.string() });

const pairSchema = z.strictObject({
  name: z.string(),
  kind: z.enum(['underlay', 'same-node', 'cross-node']),
  client: endpointSchema,
  server: endpointSchema,
  path: z.array(hopSchema),
  metrics: z.record(z.string(), metricSchema),
});

const linkSchema = z.strictObject({ ifname: z.string(), kind: z.string(), mtu: z.number().int(), master: z.string().optional() });

export const resultSchema = z.strictObject({
  schemaVersion: z.literal(RESULT_SCHEMA_VERSION),
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
  host: z.strictObject({
    kernel: z.string(),
    arch: z.string(),
    cpus: z.number().int().positive(),
    /** 1-minute load average before and after: this machine may be shared. */
    loadavg: z.strictObject({ start: z.number(), end: z.number() }),
  }),
  versions: z.record(z.string(), z.string()),
  git: z.strictObject({ commit: z.string(), dirty: z.boolean() }).optional(),
  topology: z.strictObject({
    underlay: z.string(),
    nodes: z.array(z.strictObject({ name: z.string(), address: z.string(), links: z.array(linkSchema) })),
    pods: z.array(z.strictObject({ name: z.string(), node: z.string(), ip: z.string() })),
  }),
  pairs: z.array(pairSchema).min(1),
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

export function validateResult(data: unknown, file: string): BenchResult {
  const parsed = resultSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
    throw new ResultFileError(file, `${field ? `${field}: ` : ''}${issue.message}`);
  }
  return parsed.data;
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
