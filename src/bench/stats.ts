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

/** The q-quantile (0..1) of values, linearly interpolated between neighbours (for percentiles of many samples). */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) throw new Error('quantile of no samples');
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Median and range of a few repetitions: what a results file keeps per metric. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/**
 * Two measurements differ only when their spreads (min..max over the
 * repetitions) do not overlap; otherwise the difference is within noise.
 */
export function overlaps(a: Spread, b: Spread): boolean {
  return a.min <= b.max && b.min <= a.max;
}

/** A confidence interval of a median: its bounds and the coverage it really has. */
export interface Interval {
  lo: number;
  hi: number;
  /** The interval's coverage (0..1): the order-statistic interval of n samples cannot always reach 95%. */
  level: number;
}

/** P(X ≤ k) for X ~ Binomial(n, ½). */
function binomHalfCdf(n: number, k: number): number {
  let term = 0.5 ** n;
  let sum = 0;
  for (let i = 0; i <= k; i++) {
    sum += term;
    term = (term * (n - i)) / (i + 1);
  }
  return sum;
}

/**
 * The distribution-free confidence interval of the median: [x(k), x(n+1-k)]
 * of the sorted samples, with the largest k whose coverage is still at least
 * `level`. Below 6 samples no pair of order statistics reaches 95%; then it is
 * min..max and `level` says what that covers (5 samples: 93.8%).
 */
export function medianInterval(samples: number[], level = 0.95): Interval {
  if (samples.length === 0) throw new Error('interval of no samples');
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  let k = 1;
  while (k + 1 <= n / 2 && 1 - 2 * binomHalfCdf(n, k) >= level) k++;
  return { lo: s[k - 1], hi: s[n - k], level: n === 1 ? 0 : 1 - 2 * binomHalfCdf(n, k - 1) };
}

/** Coefficient of variation: sample standard deviation over the mean (0 for fewer than two samples). */
export function cv(samples: number[]): number {
  if (samples.length < 2) return 0;
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  const sd = Math.sqrt(samples.reduce((a, b) => a + (b - mean) ** 2, 0) / (samples.length - 1));
  return mean === 0 ? 0 : sd / Math.abs(mean);
}

/** The half-width of an interval relative to its median: how narrow a figure already is. */
export const relativeHalfWidth = (i: Interval, median: number) => (median === 0 ? (i.hi === i.lo ? 0 : Infinity) : (i.hi - i.lo) / 2 / Math.abs(median));

/** What a results file keeps per figure: the values, median, range, 95% interval of the median, n and CV. */
export interface FigureStats extends Spread {
  n: number;
  ci: Interval;
  cv: number;
}

export function figureStats(values: number[]): FigureStats {
  return { ...spread(values), n: values.length, ci: medianInterval(values), cv: cv(values) };
}
