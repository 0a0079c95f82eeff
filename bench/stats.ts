/**
 * Summary statistics of a benchmark's samples (simple-statistics), rounded for the record.
 *
 * @module
 */
import { max, mean, min, quantileSorted } from "simple-statistics";

/** n, min, median, p90, max and mean of the samples. */
export interface Stats {
  n: number;
  min: number;
  median: number;
  p90: number;
  max: number;
  mean: number;
}

/** Summarise samples; values are rounded to `digits` decimals (default 3). */
export function stats(xs: readonly number[], digits = 3): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const f = 10 ** digits;
  const r = (x: number) => Math.round(x * f) / f;
  return {
    n: s.length,
    min: r(min(s)),
    median: r(quantileSorted(s, 0.5)),
    p90: r(quantileSorted(s, 0.9)),
    max: r(max(s)),
    mean: r(mean(s)),
  };
}
