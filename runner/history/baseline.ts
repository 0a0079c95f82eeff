/**
 * A target's own latency baseline from the results history: the samples of one measurement of
 * one test that earlier runs recorded on the same target, kernel and running release (the
 * workload suites judge a run's latency against it with runner/report/latency.ts).
 *
 * @module
 */
import type { Database } from "./sqlite.ts";

/** Which samples make the baseline. */
export interface BaselineQuery {
  /** The run asking: its own results are left out (its directory name). */
  runId: string;
  /** Target name (`qemu-virt-8g`, a board id). */
  target: string;
  /** Kernel under test as results name it (`debian:trixie`, or the release on a board). */
  kernel: string;
  /** Running release (`6.12.57+deb13-arm64`): a baseline is per kernel build. */
  release: string;
  /** Test id (`mobilenet_v1/cpu/latency`). */
  test: string;
  /** Measurement name (`invoke`). */
  name: string;
  /** Newest samples kept, at most (default 200). */
  limit?: number;
}

/**
 * The baseline samples (newest results first, in the unit they were recorded in), from PASS and
 * DONE results only: a failed or missed run's timings never make a baseline. Empty when the
 * history has none.
 */
export function baselineSamples(db: Database, q: BaselineQuery): number[] {
  const rows = db.prepare(
    `SELECT m.value AS value FROM results r
       JOIN measurements m ON m.run_id = r.run_id AND m.seq = r.seq
     WHERE r.run_id <> ? AND r.target = ? AND r.kernel = ? AND r.release = ? AND r.test = ?
       AND m.name = ? AND r.verdict IN ('PASS', 'DONE')
     ORDER BY r.started_at DESC, m.idx LIMIT ?`,
  ).all(q.runId, q.target, q.kernel, q.release, q.test, q.name, q.limit ?? 200);
  return rows.map((x) => Number(x.value)).filter(Number.isFinite);
}
