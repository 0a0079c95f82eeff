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

/** A measurement with the result it belongs to. */
export interface MeasurementRow {
  /** The run's id. */
  runId: string;
  /** Target name. */
  target: string;
  /** Suite. */
  suite: string;
  /** Test id. */
  test: string;
  /** Running kernel release. */
  release: string | null;
  /** Sort key of `release`. */
  releaseOrder: number | null;
  /** What was measured (`boot to ssh`). */
  name: string;
  /** Value, in `unit`. */
  value: number;
  /** Unit (`s`, `ms`). */
  unit: string;
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

/** Results matching `f`, oldest release first, then by run and position. */
export function queryResults(db: Database, f: HistoryFilter = {}): HistoryRow[] {
  const w = where(f);
  const rows = db.prepare(
    `SELECT run_id, seq, test, suite, target, kernel, release, release_order, verdict, reason,
       started_at, duration_ms FROM results r ${w.sql}
     ORDER BY release_order, run_id, seq`,
  ).all(...w.args) as Record<string, SQLValue>[];
  return rows.map((x) => ({
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
  }));
}

/** Measurements of the results matching `f`. */
export function queryMeasurements(db: Database, f: HistoryFilter = {}): MeasurementRow[] {
  const w = where(f);
  const rows = db.prepare(
    `SELECT r.run_id, r.target, r.suite, r.test, r.release, r.release_order, m.name, m.value,
       m.unit FROM measurements m JOIN results r ON r.run_id = m.run_id AND r.seq = m.seq
     ${w.sql} ORDER BY r.release_order, r.run_id, r.seq, m.idx`,
  ).all(...w.args) as Record<string, SQLValue>[];
  return rows.map((x) => ({
    runId: String(x.run_id),
    target: String(x.target),
    suite: String(x.suite ?? ""),
    test: String(x.test),
    release: x.release === null ? null : String(x.release),
    releaseOrder: x.release_order === null ? null : Number(x.release_order),
    name: String(x.name),
    value: Number(x.value),
    unit: String(x.unit),
  }));
}

/** Predicted IOMMU outcomes recorded by the results matching `f`. */
export function queryOutcomes(db: Database, f: HistoryFilter = {}): OutcomeRow[] {
  const w = where(f);
  const rows = db.prepare(
    `SELECT r.run_id, r.target, r.test, r.release, r.release_order, o.kind, o.key, o.verdict
     FROM observations o JOIN results r ON r.run_id = o.run_id AND r.seq = o.seq
     ${w.sql ? `${w.sql} AND` : "WHERE"} o.kind IN ('outcome', 'outcome-dtb')
       AND o.verdict IS NOT NULL
     ORDER BY r.release_order, r.run_id, r.seq`,
  ).all(...w.args) as Record<string, SQLValue>[];
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

/** The oracle's verdicts (`AGREE`, `DISAGREE`, ...) per result, keyed `runId\0seq`. */
export function queryOracleVerdicts(db: Database, f: HistoryFilter = {}): Map<string, string> {
  const w = where(f);
  const rows = db.prepare(
    `SELECT o.run_id, o.seq, o.verdict FROM observations o
     JOIN results r ON r.run_id = o.run_id AND r.seq = o.seq
     ${w.sql ? `${w.sql} AND` : "WHERE"} o.kind IN ('scenario', 'oracle')
       AND o.verdict IS NOT NULL`,
  ).all(...w.args) as Record<string, SQLValue>[];
  return new Map(rows.map((x) => [`${x.run_id}\0${x.seq}`, String(x.verdict)]));
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
