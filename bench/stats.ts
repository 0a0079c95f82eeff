/**
 * Summary statistics of a benchmark's samples (simple-statistics), rounded for the record.
 *
 * @module
 */
import { max, mean, median, min, quantileSorted } from "simple-statistics";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

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

/** A ratio of medians with its bootstrap interval. */
export interface RatioInterval {
  /** median(a) / median(b), rounded to 2 decimals. */
  ratio: number;
  /** Lower bound of the interval (2 decimals). */
  low: number;
  /** Upper bound of the interval (2 decimals). */
  high: number;
  /** Confidence level of the interval (0.95). */
  level: number;
  /** Bootstrap resamples drawn. */
  resamples: number;
}

/**
 * median(a) / median(b) and its percentile bootstrap interval, resampling paired rounds
 * (`a[i]` and `b[i]` were measured in the same round) with replacement; deterministic for a
 * given `seed`.
 *
 * @throws {RangeError} when the samples are empty or of different lengths.
 */
export function bootstrapRatio(
  a: readonly number[],
  b: readonly number[],
  opts: { resamples?: number; level?: number; seed?: number } = {},
): RatioInterval {
  if (a.length === 0 || a.length !== b.length) {
    throw new RangeError(`bootstrapRatio: need paired samples, got ${a.length} and ${b.length}`);
  }
  const resamples = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  const rng = xoroshiro128plus(opts.seed ?? 42);
  const n = a.length;
  const ra = new Array<number>(n);
  const rb = new Array<number>(n);
  const ratios: number[] = [];
  for (let k = 0; k < resamples; k++) {
    for (let i = 0; i < n; i++) {
      const j = Math.floor(((rng.next() >>> 0) / 4294967296) * n);
      ra[i] = a[j];
      rb[i] = b[j];
    }
    ratios.push(median(ra) / median(rb));
  }
  ratios.sort((x, y) => x - y);
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    ratio: r2(median([...a]) / median([...b])),
    low: r2(quantileSorted(ratios, (1 - level) / 2)),
    high: r2(quantileSorted(ratios, 1 - (1 - level) / 2)),
    level,
    resamples,
  };
}
