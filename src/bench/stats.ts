// Summary statistics for repeated measurements.

export interface Summary {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

/** The value below which `p` percent of the samples fall (nearest rank on the sorted samples). */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) throw new Error('percentile of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** The median; for an even count, the mean of the two middle samples. */
export function median(samples: number[]): number {
  if (samples.length === 0) throw new Error('median of no samples');
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function summarize(samples: number[]): Summary {
  return {
    n: samples.length,
    median: median(samples),
    p90: percentile(samples, 90),
    min: Math.min(...samples),
    max: Math.max(...samples),
  };
}
