/** Percentiles and rounding shared by the bench and its child processes. */

export const round = (n: number, digits = 1) => {
  const factor = 10 ** digits;
  return Math.round(n * factor) / factor;
};

export type Summary = { n: number; p50: number; p90: number; p99: number; max: number };

/** Nearest-rank percentiles of unsorted values. */
export function summarize(values: readonly number[], digits = 1): Summary {
  if (!values.length) return { n: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!, digits);
  return { n: sorted.length, p50: at(50), p90: at(90), p99: at(99), max: round(sorted[sorted.length - 1]!, digits) };
}
