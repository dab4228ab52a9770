// The optional `bench:` block of a lab file: what `cnilab bench` measures.
import { z } from 'zod';

export const BENCH_TESTS = ['tcp', 'tcp4', 'udp', 'ping', 'rr'] as const;
export type BenchTest = (typeof BENCH_TESTS)[number];

const podName = z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'a pod name such as nginx-0');

/** The optional `bench:` block of a lab file. */
export const benchSchema = z.strictObject({
  /** Pod pairs to measure, client → server; the underlay reference is always added. */
  pairs: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and "-"').refine((n) => n !== 'underlay', '"underlay" is the reference pair, measured always'),
        client: podName,
        server: podName,
      }),
    )
    .min(1)
    .optional(),
  tests: z.array(z.enum(BENCH_TESTS)).min(1).optional(),
  /** iperf3 -b for the UDP test: the fixed offered load, e.g. 300M. */
  udpRate: z.string().regex(/^\d+(\.\d+)?[KMG]?$/, 'a rate such as 300M or 1G').optional(),
  /** IP families to measure, each held against its own underlay; default: both where pods and nodes have both. */
  families: z
    .array(z.union([z.literal(4), z.literal(6)]))
    .min(1)
    .refine((f) => new Set(f).size === f.length, 'each family once')
    .optional(),
});

export type BenchBlock = z.infer<typeof benchSchema>;
