// Order statistics of a sample set, rounded for reading (µs resolution for ms figures).
export interface Stats {
  runs: number;
  median: number;
  max: number;
  min?: number;
  p50?: number;
  p99?: number;
  mean?: number;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

/** Nearest-rank quantile of a sorted array (q in (0, 1]). */
function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

/** median (mid-point average for an even count), max, min, mean; p50/p99 when `percentiles`. */
export function stats(samples: readonly number[], percentiles = false): Stats {
  if (samples.length === 0) throw new Error('no samples');
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
  const out: Stats = {
    runs: s.length,
    median: round(median),
    max: round(s[s.length - 1] ?? NaN),
    min: round(s[0] ?? NaN),
    mean: round(s.reduce((a, b) => a + b, 0) / s.length),
  };
  if (percentiles) {
    out.p50 = round(quantile(s, 0.5));
    out.p99 = round(quantile(s, 0.99));
  }
  return out;
}

/** a ÷ b, rounded to two decimals. */
export function ratio(a: number, b: number): number {
  return Math.round((a / b) * 100) / 100;
}
