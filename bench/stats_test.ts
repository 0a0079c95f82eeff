import assert from "node:assert/strict";
import { bootstrapRatio, stats } from "./stats.ts";

Deno.test("stats: median and p90 of known samples", () => {
  const s = stats([5, 1, 4, 2, 3]);
  assert.equal(s.n, 5);
  assert.equal(s.median, 3);
  assert.equal(s.min, 1);
  assert.equal(s.max, 5);
});

Deno.test("bootstrapRatio: ratio of medians, interval around it, deterministic", () => {
  // labgrid three times slower than rkhil with noise: the ratio is 3 and the interval holds it.
  const rk = Array.from({ length: 200 }, (_, i) => 10 + (i % 7) * 0.5);
  const lab = rk.map((x, i) => 3 * x + ((i * 13) % 5) - 2);
  const r = bootstrapRatio(lab, rk);
  assert.ok(Math.abs(r.ratio - 3) < 0.15, `ratio ${r.ratio}`);
  assert.ok(r.low <= r.ratio && r.ratio <= r.high, JSON.stringify(r));
  assert.ok(r.high - r.low < 0.5, JSON.stringify(r));
  assert.deepEqual(bootstrapRatio(lab, rk), r);
  // Identical samples: exactly 1 with no spread.
  assert.deepEqual(
    [bootstrapRatio(rk, rk).low, bootstrapRatio(rk, rk).ratio, bootstrapRatio(rk, rk).high],
    [1, 1, 1],
  );
});

Deno.test("bootstrapRatio: unpaired or empty samples are a RangeError", () => {
  assert.throws(() => bootstrapRatio([], []), RangeError);
  assert.throws(() => bootstrapRatio([1, 2], [1]), RangeError);
});
