// A pod's bandwidth annotations, as a container runtime reads them before CNI
// ADD (containerd and CRI-O do this; the kubelet only passes the annotations):
// kubernetes.io/ingress-bandwidth and kubernetes.io/egress-bandwidth hold
// Kubernetes quantities in bits per second ("100M", "1Gi"); the runtime hands
// them to the bandwidth plugin as runtimeConfig.bandwidth, with a burst of
// 2^32-1 bits as containerd and CRI-O set it (the first 512 MiB pass at line
// speed before the rate holds).
export const INGRESS_ANNOTATION = 'kubernetes.io/ingress-bandwidth';
export const EGRESS_ANNOTATION = 'kubernetes.io/egress-bandwidth';
export const RUNTIME_BURST = 2 ** 32 - 1;

const SUFFIX: Record<string, number> = {
  '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50,
};

/** A Kubernetes quantity ("100M", "1.5Gi", "250k") in whole units, or an error message. */
export function parseQuantity(text: string): number | string {
  const m = /^(\d+(?:\.\d+)?)(k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$/.exec(text.trim());
  if (!m) return `"${text}" is not a quantity such as 100M, 1G or 512Ki`;
  return Math.ceil(Number(m[1]) * SUFFIX[m[2] ?? '']);
}

/** The kubelet's bounds for these annotations: at least 1 kbit/s, at most 1 Pbit/s. */
export function bandwidthProblem(value: string): string | undefined {
  const q = parseQuantity(value);
  if (typeof q === 'string') return q;
  if (q < 1e3) return `${value} is unreasonably small (less than 1 kbit/s)`;
  if (q > 1e15) return `${value} is unreasonably large (more than 1 Pbit/s)`;
  return undefined;
}

/** runtimeConfig.bandwidth for a pod's annotations, or undefined when it sets neither. */
export function bandwidthFromAnnotations(annotations: Record<string, string> = {}): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const [dir, key] of [['ingress', INGRESS_ANNOTATION], ['egress', EGRESS_ANNOTATION]] as const) {
    const value = annotations[key];
    if (value === undefined) continue;
    const problem = bandwidthProblem(value);
    if (problem) throw new Error(`annotation ${key}: ${problem}`);
    out[`${dir}Rate`] = parseQuantity(value) as number;
    out[`${dir}Burst`] = RUNTIME_BURST;
  }
  return Object.keys(out).length ? out : undefined;
}
