/**
 * Reading the results history back: results, measurements and the oracle's predicted outcomes,
 * filtered by target (board), suite, kernel release range, time and run.
 *
 * @module
 */
import type { Database, SQLValue } from "./sqlite.ts";
import type { Verdict } from "../errors.ts";
import { releaseOrder } from "./extract.ts";

/** Which records a report covers; every field narrows, none widens. */
export interface HistoryFilter {
  /** Target (board id or QEMU guest name); any of these. */
  targets?: string[];
  /** Suite names; any of these. */
  suites?: string[];
  /** Oldest kernel release (`6.1`, `6.12.57`): releases before it are left out. */
  fromRelease?: string;
  /** Newest kernel release: releases after its series are left out (`6.12` keeps 6.12.x). */
  toRelease?: string;
  /** Results that started at or after this time (ISO 8601). */
  since?: string;
  /** Results that started before this time (ISO 8601). */
  until?: string;
  /** Run ids (run directory names); any of these. */
  runs?: string[];
}

/** A result as the history holds it. */
export interface HistoryRow {
  /** The run's id (its directory name). */
  runId: string;
  /** Position in the run (0-based). */
  seq: number;
  /** Test id. */
  test: string;
  /** Suite (given, or derived from the test id for older records). */
  suite: string;
  /** Target name. */
  target: string;
  /** Kernel spec (`debian:trixie`) or release. */
  kernel: string;
  /** Running kernel release, when known. */
  release: string | null;
  /** Sort key of `release` (runner/history/extract.ts). */
  releaseOrder: number | null;
  /** The verdict. */
  verdict: Verdict;
  /** Why, for anything but PASS/DONE. */
  reason: string | null;
  /** ISO 8601 start time. */
  startedAt: string;
  /** Duration in milliseconds. */
  durationMs: number;
}

/** A predicted outcome of one IOMMU unit (an `oracle/predict BOARD` result's observation). */
export interface OutcomeRow {
  /** The run's id. */
  runId: string;
  /** Target the prediction was recorded on. */
  target: string;
  /** Test id (`oracle/predict rock-3b-8g`). */
  test: string;
  /** The release the prediction is for. */
  release: string | null;
  /** Sort key of `release`. */
  releaseOrder: number | null;
  /** `outcome` (board file's device tree) or `outcome-dtb` (the package's DTB). */
  kind: string;
  /** Unit address (`fde4b000`). */
  unit: string;
  /** Outcome word (`OK`, `BUS_ERROR`, ...). */
  outcome: string;
}

function where(f: HistoryFilter, alias = "r"): { sql: string; args: SQLValue[] } {
  const parts: string[] = [];
  const args: SQLValue[] = [];
  const anyOf = (col: string, values: string[] | undefined) => {
    if (!values?.length) return;
    parts.push(`${alias}.${col} IN (${values.map(() => "?").join(", ")})`);
    args.push(...values);
  };
  anyOf("target", f.targets);
  anyOf("suite", f.suites);
  anyOf("run_id", f.runs);
  if (f.fromRelease) {
    parts.push(`${alias}.release_order >= ?`);
    args.push(releaseOrder(f.fromRelease) ?? 0);
  }
  if (f.toRelease) {
    const o = releaseOrder(f.toRelease) ?? 0;
    // `6.12` covers 6.12.x: up to the end of its series unless a patch level was given.
    const series = /^v?\d+\.\d+$/.test(f.toRelease.trim());
    parts.push(`${alias}.release_order <= ?`);
    args.push(series ? o + 999_999 : o);
  }
  if (f.since) {
    parts.push(`${alias}.started_at >= ?`);
    args.push(f.since);
  }
  if (f.until) {
    parts.push(`${alias}.started_at < ?`);
    args.push(f.until);
  }
  return { sql: parts.length ? `WHERE ${parts.join(" AND ")}` : "", args };
}

/** One `results` row (the columns {@linkcode queryResults} selects) as a {@linkcode HistoryRow}. */
function historyRowOf(x: Record<string, SQLValue>): HistoryRow {
  return {
    runId: String(x.run_id),
    seq: Number(x.seq),
    test: String(x.test),
    suite: String(x.suite ?? ""),
    target: String(x.target),
    kernel: String(x.kernel),
    release: x.release === null ? null : String(x.release),
    releaseOrder: x.release_order === null ? null : Number(x.release_order),
    verdict: String(x.verdict) as Verdict,
    reason: x.reason === null ? null : String(x.reason),
    startedAt: String(x.started_at),
    durationMs: Number(x.duration_ms),
  };
}

/** Results matching `f`, oldest release first, then by run and position. */
export function queryResults(db: Database, f: HistoryFilter = {}): HistoryRow[] {
  const w = where(f);
  const rows = db.prepare(
    `SELECT run_id, seq, test, suite, target, kernel, release, release_order, verdict, reason,
       started_at, duration_ms FROM results r ${w.sql}
     ORDER BY release_order NULLS FIRST, run_id, seq`,
  ).all(...w.args) as Record<string, SQLValue>[];
  return rows.map(historyRowOf);
}

/** Measurement samples of the results matching `f`, per test, measurement and release. */
export interface SampleRow {
  /** Target name. */
  target: string;
  /** Suite. */
  suite: string;
  /** Test id. */
  test: string;
  /** Running kernel release. */
  release: string;
  /** Sort key of `release`. */
  releaseOrder: number;
  /** What was measured (`boot to ssh`). */
  name: string;
  /** Unit (`s`, `ms`). */
  unit: string;
  /** The values, in `unit`. */
  values: number[];
}

/**
 * The measurement samples of the results matching `f` (with a release), grouped per target ×
 * suite × test × measurement × release in SQL (`group_concat`; `string_agg` on PostgreSQL).
 */
export function querySamples(db: Database, f: HistoryFilter = {}): SampleRow[] {
  const w = where(f);
  const concat = db.dialect === "postgres"
    ? "string_agg(CAST(m.value AS TEXT), ',')"
    : "group_concat(m.value, ',')";
  const rows = db.prepare(
    `SELECT r.target, r.suite, r.test, r.release, MIN(r.release_order) AS release_order, m.name,
       m.unit, ${concat} AS vals
     FROM results r JOIN measurements m ON m.run_id = r.run_id AND m.seq = r.seq
     ${w.sql ? `${w.sql} AND` : "WHERE"} r.release IS NOT NULL
     GROUP BY r.target, r.suite, r.test, m.name, m.unit, r.release`,
  ).all(...w.args);
  return rows.map((x) => ({
    target: String(x.target),
    suite: String(x.suite ?? ""),
    test: String(x.test),
    release: String(x.release),
    releaseOrder: Number(x.release_order),
    name: String(x.name),
    unit: String(x.unit),
    values: String(x.vals).split(",").map(Number),
  }));
}

/**
 * Predicted IOMMU outcomes recorded by the results matching `f`: per prediction test, kind, unit
 * and release, each outcome seen (the earliest first).
 */
export function queryOutcomes(db: Database, f: HistoryFilter = {}): OutcomeRow[] {
  const w = where(f);
  const rows = db.prepare(
    `SELECT MIN(r.run_id) AS run_id, MIN(r.target) AS target, r.test, r.release,
       MIN(r.release_order) AS release_order, o.kind, o.key, o.verdict,
       MIN(r.started_at) AS first_at
     FROM observations o JOIN results r ON r.run_id = o.run_id AND r.seq = o.seq
     ${w.sql ? `${w.sql} AND` : "WHERE"} o.kind IN ('outcome', 'outcome-dtb')
       AND o.verdict IS NOT NULL AND r.release IS NOT NULL
     GROUP BY r.test, r.release, o.kind, o.key, o.verdict
     ORDER BY release_order, first_at`,
  ).all(...w.args);
  return rows.map((x) => ({
    runId: String(x.run_id),
    target: String(x.target),
    test: String(x.test),
    release: x.release === null ? null : String(x.release),
    releaseOrder: x.release_order === null ? null : Number(x.release_order),
    kind: String(x.kind),
    unit: String(x.key),
    outcome: String(x.verdict),
  }));
}

/** The details JSON of one result, parsed (undefined when it has none). */
export function resultDetails(
  db: Database,
  runId: string,
  seq: number,
): Record<string, unknown> | undefined {
  const row = db.prepare("SELECT details FROM results WHERE run_id = ? AND seq = ?").get(
    runId,
    seq,
  ) as { details: string | null } | undefined;
  return row?.details ? JSON.parse(row.details) : undefined;
}

/** A run and where its files are. */
export interface RunRow {
  /** Run id. */
  id: string;
  /** Run directory, when known. */
  dir: string | null;
  /** What ran (`main`). */
  name: string;
  /** Start time (ISO 8601). */
  startedAt: string;
}

/** Every run in the history, oldest first. */
export function listRuns(db: Database): RunRow[] {
  return (db.prepare("SELECT id, dir, name, started_at FROM runs ORDER BY started_at, id")
    .all() as Record<string, SQLValue>[]).map((x) => ({
      id: String(x.id),
      dir: x.dir === null ? null : String(x.dir),
      name: String(x.name),
      startedAt: String(x.started_at),
    }));
}

/** One test on one release, aggregated over every run in SQL (no row per result). */
export interface CellRow {
  /** Target. */
  target: string;
  /** Suite. */
  suite: string;
  /** Test id. */
  test: string;
  /** Kernel release. */
  release: string;
  /** Sort key of the release. */
  releaseOrder: number;
  /** Verdict → number of results. */
  counts: Record<string, number>;
  /** Results recorded (over every run; a retry counts again). */
  results: number;
  /** The oracle's verdict: DISAGREE if any run disagreed, else the first other one. */
  oracle: string | null;
}

const VERDICT_SUMS = ["PASS", "FAIL", "ERROR", "MISS", "SKIP", "DONE"]
  .map((v) => `SUM(CASE WHEN r.verdict = '${v}' THEN 1 ELSE 0 END) AS n_${v.toLowerCase()}`)
  .join(", ");

/**
 * Per target × suite × test × release, verdict counts over the runs and the oracle's verdict
 * (a PASS and a FAIL on one release, in one run as a passing retry or in two runs, make it
 * flaky: runner/report/regressions.ts). Results without a release are left out. Plain SQL
 * (GROUP BY, CASE), as on PostgreSQL.
 */
export function queryCells(db: Database, f: HistoryFilter = {}): CellRow[] {
  const w = where(f);
  const cond = w.sql ? `${w.sql} AND r.release IS NOT NULL` : "WHERE r.release IS NOT NULL";
  const rows = db.prepare(
    `SELECT r.target, r.suite, r.test, r.release, MIN(r.release_order) AS release_order,
       ${VERDICT_SUMS}, COUNT(*) AS n,
       MAX(CASE WHEN r.oracle = 'DISAGREE' THEN 1 ELSE 0 END) AS disagree,
       MIN(r.oracle) AS oracle
     FROM results r ${cond}
     GROUP BY r.target, r.suite, r.test, r.release`,
  ).all(...w.args);
  return rows.map((x) => {
    const counts: Record<string, number> = {};
    for (const v of ["PASS", "FAIL", "ERROR", "MISS", "SKIP", "DONE"]) {
      const n = Number(x[`n_${v.toLowerCase()}`]);
      if (n) counts[v] = n;
    }
    return {
      target: String(x.target),
      suite: String(x.suite ?? ""),
      test: String(x.test),
      release: String(x.release),
      releaseOrder: Number(x.release_order),
      counts,
      results: Number(x.n),
      oracle: Number(x.disagree) > 0 ? "DISAGREE" : x.oracle === null ? null : String(x.oracle),
    };
  });
}

/** The first result of a test on a release that did not pass (FAIL first), with its run's directory. */
export function queryFirstBad(
  db: Database,
  cell: { target: string; suite: string; test: string; release: string },
  f: HistoryFilter = {},
): (HistoryRow & { runDir: string | null }) | undefined {
  const w = where(f);
  const x = db.prepare(
    `SELECT r.run_id, r.seq, r.test, r.suite, r.target, r.kernel, r.release, r.release_order,
       r.verdict, r.reason, r.started_at, r.duration_ms, u.dir
     FROM results r JOIN runs u ON u.id = r.run_id
     ${w.sql ? `${w.sql} AND` : "WHERE"} r.target = ? AND r.suite = ? AND r.test = ?
       AND r.release = ? AND r.verdict NOT IN ('PASS', 'DONE')
     ORDER BY CASE WHEN r.verdict = 'FAIL' THEN 0 ELSE 1 END, r.started_at, r.run_id, r.seq
     LIMIT 1`,
  ).get(...w.args, cell.target, cell.suite, cell.test, cell.release);
  if (!x) return undefined;
  return {
    ...historyRowOf(x),
    runDir: x.dir === null ? null : String(x.dir),
  };
}

/** Verdict counts and the number of runs of the results matching `f`. */
export function queryTotals(
  db: Database,
  f: HistoryFilter = {},
): { results: number; runs: number; counts: Record<string, number> } {
  const w = where(f);
  const rows = db.prepare(
    `SELECT verdict, COUNT(*) AS n FROM results r ${w.sql} GROUP BY verdict`,
  ).all(...w.args);
  const counts: Record<string, number> = {};
  let results = 0;
  for (const x of rows) {
    counts[String(x.verdict)] = Number(x.n);
    results += Number(x.n);
  }
  const runs = db.prepare(`SELECT COUNT(DISTINCT r.run_id) AS n FROM results r ${w.sql}`).get(
    ...w.args,
  );
  return { results, runs: Number(runs?.n ?? 0), counts };
}
