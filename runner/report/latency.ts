/**
 * Latency per kernel release, judged statistically: the median with a bootstrap confidence
 * interval (percentile method, seeded so a report is reproducible), a Mann-Whitney rank test
 * against the previous release (U from simple-statistics' rank sum; the exact distribution for
 * small samples without ties, the normal approximation with tie and continuity correction
 * otherwise) and an effect floor: a change is called only when the test is significant AND the
 * medians differ by more than the floor, so noise and tiny shifts are never a regression.
 *
 * @module
 */
import { errorFunction, median, quantileSorted, wilcoxonRankSum } from "simple-statistics";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

/** Median and its bootstrap interval. */
export interface MedianInterval {
  /** Number of samples. */
  n: number;
  /** Sample median. */
  median: number;
  /** Lower end of the interval (the 2.5 % bootstrap quantile for 95 %). */
  low: number;
  /** Upper end of the interval. */
  high: number;
}

/** k-th smallest of `a` (0-based), reordering `a` (Hoare's selection, expected linear time). */
function select(a: Float64Array, k: number, lo = 0, hi = a.length - 1): number {
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

/** Median of `a` in expected linear time (reorders `a`). */
export function medianInPlace(a: Float64Array): number {
  const n = a.length;
  if (n % 2) return select(a, (n - 1) / 2);
  const lower = select(a, n / 2 - 1);
  // After selecting n/2 - 1, everything from n/2 on is >= it: the upper middle is their minimum.
  let upper = Infinity;
  for (let i = n / 2; i < n; i++) if (a[i] < upper) upper = a[i];
  return (lower + upper) / 2;
}

/**
 * Bootstrap interval of the median: `resamples` resamples with replacement (default 1000, for
 * samples over 100 values 100 000 / n but at least 400), the `level` percentile interval of
 * their medians. Deterministic for a given `seed`.
 *
 * @throws {RangeError} for no samples.
 */
export function bootstrapMedian(
  samples: readonly number[],
  opts: { resamples?: number; level?: number; seed?: number } = {},
): MedianInterval {
  if (samples.length === 0) throw new RangeError("bootstrapMedian: no samples");
  const n = samples.length;
  const m = median([...samples]);
  if (n === 1) return { n, median: m, low: m, high: m };
  // 1000 resamples, fewer (never under 400) for large samples: the draws are n × resamples.
  const resamples = opts.resamples ?? Math.max(400, Math.min(1000, Math.floor(100_000 / n)));
  const level = opts.level ?? 0.95;
  const rng = xoroshiro128plus(opts.seed ?? 42);
  const medians = new Float64Array(resamples);
  const buf = new Float64Array(n);
  for (let b = 0; b < resamples; b++) {
    // next() is uniform over 32 bits: scaled to an index (bias below n / 2^32).
    for (let i = 0; i < n; i++) buf[i] = samples[Math.floor(((rng.next() >>> 0) / 4294967296) * n)];
    medians[b] = medianInPlace(buf);
  }
  medians.sort();
  const sorted = Array.from(medians);
  return {
    n,
    median: m,
    low: quantileSorted(sorted, (1 - level) / 2),
    high: quantileSorted(sorted, 1 - (1 - level) / 2),
  };
}

/** A two-sided Mann-Whitney U test. */
export interface RankTest {
  /** U of the first sample. */
  u: number;
  /** Two-sided p-value. */
  p: number;
  /** `exact` (small samples, no ties) or `normal` (approximation with tie correction). */
  method: "exact" | "normal";
}

const stdNormalCdf = (z: number) => 0.5 * (1 + errorFunction(z / Math.SQRT2));

/** Number of ways to reach each rank sum of `n1` out of `n1 + n2` distinct ranks, by U. */
function exactUDistribution(n1: number, n2: number): Float64Array {
  // f[i][j][u]: arrangements of i and j items with U = u; rolling over i + j.
  const max = n1 * n2;
  let prev: Float64Array[] = Array.from({ length: n2 + 1 }, () => new Float64Array(max + 1));
  for (let j = 0; j <= n2; j++) prev[j][0] = 1; // i = 0
  for (let i = 1; i <= n1; i++) {
    const cur: Float64Array[] = Array.from({ length: n2 + 1 }, () => new Float64Array(max + 1));
    cur[0][0] = 1;
    for (let j = 1; j <= n2; j++) {
      for (let u = 0; u <= i * j; u++) {
        // The largest item is from sample 1 (it beats all j of sample 2) or from sample 2.
        cur[j][u] = (u >= j ? prev[j][u - j] : 0) + cur[j - 1][u];
      }
    }
    prev = cur;
  }
  return prev[n2];
}

/**
 * Two-sided Mann-Whitney U test of `a` against `b`.
 *
 * @throws {RangeError} when either sample is empty.
 */
export function mannWhitney(a: readonly number[], b: readonly number[]): RankTest {
  const n1 = a.length, n2 = b.length;
  if (!n1 || !n2) throw new RangeError("mannWhitney: both samples need values");
  const w = wilcoxonRankSum([...a], [...b]); // rank sum of `a` in the pooled sample
  const u = w - (n1 * (n1 + 1)) / 2;
  const pooled = [...a, ...b].sort((x, y) => x - y);
  let tieTerm = 0;
  for (let i = 0; i < pooled.length;) {
    let j = i;
    while (j < pooled.length && pooled[j] === pooled[i]) j++;
    const t = j - i;
    tieTerm += t * t * t - t;
    i = j;
  }
  const mean = (n1 * n2) / 2;
  if (tieTerm === 0 && n1 + n2 <= 40) {
    const dist = exactUDistribution(n1, n2);
    const total = dist.reduce((s, x) => s + x, 0);
    const lo = Math.min(u, n1 * n2 - u);
    let tail = 0;
    for (let k = 0; k <= Math.floor(lo); k++) tail += dist[k];
    return { u, p: Math.min(1, (2 * tail) / total), method: "exact" };
  }
  const n = n1 + n2;
  const variance = (n1 * n2 / 12) * ((n + 1) - tieTerm / (n * (n - 1)));
  if (variance <= 0) return { u, p: 1, method: "normal" };
  const z = (Math.abs(u - mean) - 0.5) / Math.sqrt(variance);
  return { u, p: Math.min(1, 2 * (1 - stdNormalCdf(Math.max(0, z)))), method: "normal" };
}

/** How a release's latency compares with the previous release's. */
export type LatencyJudgement = "slower" | "faster" | "same" | "too few samples" | "baseline";

/** One release's latency of one measurement. */
export interface ReleaseLatency {
  /** Kernel release. */
  release: string;
  /** The samples (in `unit`). */
  samples: number[];
  /** Median and interval. */
  interval: MedianInterval;
  /** Rank test against the previous release, when both have samples. */
  test?: RankTest;
  /** Relative change of the median from the previous release (0.1 = 10 % slower). */
  change?: number;
  /** The judgement. */
  judgement: LatencyJudgement;
}

/** When a difference counts. */
export interface LatencyCriteria {
  /** Significance level of the rank test (default 0.05). */
  alpha?: number;
  /** Smallest relative change of the median that counts (default 0.10, i.e. 10 %). */
  effectFloor?: number;
  /** Fewest samples on each side for a judgement (default 3). */
  minSamples?: number;
}

/**
 * Judge a series of releases (oldest first), each against the one before it that has samples.
 * `slower`/`faster` need p < alpha AND |change of median| > effectFloor.
 */
export function judgeReleases(
  series: readonly { release: string; samples: number[] }[],
  criteria: LatencyCriteria = {},
): ReleaseLatency[] {
  const alpha = criteria.alpha ?? 0.05;
  const floor = criteria.effectFloor ?? 0.10;
  const minSamples = criteria.minSamples ?? 3;
  const out: ReleaseLatency[] = [];
  for (const s of series) {
    if (!s.samples.length) continue;
    const interval = bootstrapMedian(s.samples);
    const prev = out[out.length - 1];
    if (!prev) {
      out.push({ release: s.release, samples: s.samples, interval, judgement: "baseline" });
      continue;
    }
    const change = prev.interval.median === 0
      ? 0
      : (interval.median - prev.interval.median) / Math.abs(prev.interval.median);
    if (s.samples.length < minSamples || prev.samples.length < minSamples) {
      out.push({ ...s, interval, change, judgement: "too few samples" });
      continue;
    }
    const test = mannWhitney(s.samples, prev.samples);
    const judgement: LatencyJudgement = test.p < alpha && Math.abs(change) > floor
      ? (change > 0 ? "slower" : "faster")
      : "same";
    out.push({ release: s.release, samples: s.samples, interval, test, change, judgement });
  }
  return out;
}
