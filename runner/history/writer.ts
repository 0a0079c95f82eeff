/**
 * Writing the results history: {@linkcode HistoryWriter} records a run's results as the run goes
 * (the runner calls `record` after each result it appended to `results.jsonl`, which stays the
 * crash-safe record), and {@linkcode importRunDir} brings in a run directory afterwards
 * (`rkhil history import RUN_DIR...`). Both key a result by its run (the run directory's name)
 * and its position in the run, so importing a run twice, or importing a run that was also
 * written live, never duplicates a row.
 *
 * @module
 */
import type { Database, Statement } from "./sqlite.ts";
import { basename, resolve } from "node:path";
import { UserInputError } from "../errors.ts";
import { parseResults, type TestResult } from "../results/store.ts";
import { observationsOf, oracleVerdict, ownRelease, releaseOrder, suiteOf } from "./extract.ts";
import { openHistory } from "./schema.ts";

/** A run as the history knows it. */
export interface RunInfo {
  /** The run's id: its directory's name (`2026-11-30T02-49-14Z-main-50fb`). */
  id: string;
  /** The run directory (absolute), when there is one. */
  dir?: string;
  /** What ran (`main`, `validate`, ...): the directory name's word after the time stamp. */
  name: string;
  /** When the run started (ISO 8601). */
  startedAt: string;
  /** `live` (written as the run went) or `import` (from its results.jsonl afterwards). */
  source: "live" | "import";
}

/** `2026-11-30T02-49-14Z-main-50fb` → its start time and name; undefined for another shape. */
export function parseRunDirName(name: string): { startedAt: string; name: string } | undefined {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})Z-(.+?)(?:-[0-9a-f]{4})?$/.exec(name);
  if (!m) return undefined;
  return { startedAt: `${m[1]}T${m[2]}:${m[3]}:${m[4]}Z`, name: m[5] };
}

/** Prepared statements shared by the writer and the importer. */
class Statements {
  readonly run: Statement;
  readonly result: Statement;
  readonly measurement: Statement;
  readonly observation: Statement;
  readonly knownRelease: Statement;
  readonly count: Statement;

  constructor(readonly db: Database) {
    this.run = db.prepare(
      `INSERT INTO runs (id, dir, name, started_at, source, recorded_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    );
    this.result = db.prepare(
      `INSERT INTO results (run_id, seq, test, suite, target, kernel, release, release_order,
         oracle, verdict, reason, details, started_at, duration_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, seq) DO NOTHING`,
    );
    this.measurement = db.prepare(
      `INSERT INTO measurements (run_id, seq, idx, name, value, unit) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    );
    this.observation = db.prepare(
      `INSERT INTO observations (run_id, seq, kind, key, predicted, observed, verdict)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.knownRelease = db.prepare(
      `SELECT release FROM results WHERE run_id = ? AND kernel = ? AND release IS NOT NULL
       ORDER BY seq LIMIT 1`,
    );
    this.count = db.prepare("SELECT count(*) AS n FROM results WHERE run_id = ?");
  }

  addRun(run: RunInfo): void {
    this.run.run(
      run.id,
      run.dir ?? null,
      run.name,
      run.startedAt,
      run.source,
      new Date().toISOString(),
    );
  }

  /** Insert one result at `seq`; false when the run already had it. */
  addResult(runId: string, seq: number, r: TestResult, release: string | null): boolean {
    const observations = observationsOf(r);
    const changed = this.result.run(
      runId,
      seq,
      r.test,
      suiteOf(r),
      r.target,
      r.kernel,
      release,
      releaseOrder(release),
      oracleVerdict(observations),
      r.verdict,
      r.reason ?? null,
      r.details === undefined ? null : JSON.stringify(r.details),
      r.startedAt,
      Number.isFinite(r.durationMs) ? r.durationMs : 0,
    ).changes;
    if (Number(changed) === 0) return false;
    (r.measurements ?? []).forEach((m, i) => {
      if (!Number.isFinite(m.value)) return;
      this.measurement.run(runId, seq, i, m.name, m.value, m.unit ?? "");
    });
    for (const o of observations) {
      this.observation.run(runId, seq, o.kind, o.key, o.predicted, o.observed, o.verdict);
    }
    return true;
  }

  /** The running release already known for this run and kernel (one kernel spec resolves to
   * one release within a run, whatever target name a step records). */
  releaseFor(runId: string, r: TestResult): string | null {
    const row = this.knownRelease.get(runId, r.kernel) as
      | { release: string }
      | undefined;
    return row?.release ?? null;
  }
}

/**
 * Records one run's results into the history as the run goes. The JSONL is the crash-safe
 * record; the history is for comparing runs. The running kernel release of a result is its own
 * `release`, else the release the boot step of the same kernel reported earlier in the run.
 *
 * @example
 * ```ts
 * const w = HistoryWriter.open("runs/history.sqlite", "runs/2026-11-30T02-49-14Z-main-50fb");
 * w.record(result); // after RunStore.record(result)
 * w.close();
 * ```
 */
export class HistoryWriter {
  private seq: number;
  private readonly releases = new Map<string, string>();

  private constructor(
    private readonly db: Database,
    private readonly stmts: Statements,
    /** The run this writer records. */
    readonly run: RunInfo,
    private readonly ownsDb: boolean,
  ) {
    this.seq = Number((stmts.count.get(run.id) as { n: number }).n);
  }

  /**
   * Open the history at `dbPath` (created and migrated as needed) for the run in `runDir`.
   * Reopening a run continues after its last recorded result.
   *
   * @throws {HistorySchemaError} when the database is newer than this rkhil or not a history.
   */
  static open(dbPath: string, runDir: string): HistoryWriter {
    const db = openHistory(dbPath);
    try {
      return HistoryWriter.on(db, runDir, "live", true);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** A writer on an open database (it stays open after `close`). */
  static on(
    db: Database,
    runDir: string,
    source: RunInfo["source"] = "live",
    ownsDb = false,
  ): HistoryWriter {
    const dir = resolve(runDir);
    const id = basename(dir);
    const parsed = parseRunDirName(id);
    const run: RunInfo = {
      id,
      dir,
      name: parsed?.name ?? id,
      startedAt: parsed?.startedAt ?? new Date().toISOString(),
      source,
    };
    const stmts = new Statements(db);
    stmts.addRun(run);
    return new HistoryWriter(db, stmts, run, ownsDb);
  }

  /** How many results the run has in the history. */
  get recorded(): number {
    return this.seq;
  }

  /** Record the run's next result (its measurements and observations with it). */
  record(r: TestResult): void {
    this.recordAll([r]);
  }

  /** Record several results in one transaction (all or none). */
  recordAll(results: readonly TestResult[]): void {
    this.db.exec("BEGIN");
    try {
      for (let i = 0; i < results.length; i++) {
        const r = results[i];
        const key = r.kernel;
        const own = ownRelease(r);
        if (own) this.releases.set(key, own);
        let release = own ?? this.releases.get(key) ?? null;
        if (!release) {
          release = this.stmts.releaseFor(this.run.id, r);
          if (release) this.releases.set(key, release);
        }
        this.stmts.addResult(this.run.id, this.seq + i, r, release);
      }
      this.db.exec("COMMIT");
    } catch (err) {
      this.db.exec("ROLLBACK");
      throw err;
    }
    this.seq += results.length;
  }

  /** Close the database when this writer opened it. Idempotent. */
  close(): void {
    if (!this.ownsDb) return;
    try {
      this.db.close();
    } catch { /* already closed */ }
  }
}

/** What importing one run directory did. */
export interface ImportReport {
  /** The run's id (its directory name). */
  run: string;
  /** Results added now. */
  added: number;
  /** Results the history already had (an earlier import or the live writer). */
  present: number;
  /** Lines of results.jsonl that did not parse (a torn write). */
  damagedLines: number;
}

/**
 * Import `runDir/results.jsonl` into `db` (one transaction). A result the history already has
 * (same run, same position) is left as it is, so importing twice adds nothing.
 *
 * @throws {UserInputError} when `runDir` has no readable results.jsonl, or one without a
 *   single rkhil result.
 */
export function importRunDir(db: Database, runDir: string): ImportReport {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${runDir}/results.jsonl`);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? "does not exist" : (err as Error).message;
    throw new UserInputError(
      `${runDir}/results.jsonl: ${why.slice(0, 200)}`,
      "give run directories (rkhil run prints them: runs/<time>-main-<id>)",
    );
  }
  const { results, damagedLines } = parseResults(text);
  if (results.length === 0 && damagedLines > 0) {
    throw new UserInputError(
      `${runDir}/results.jsonl holds no rkhil result (${damagedLines} other line${
        damagedLines === 1 ? "" : "s"
      })`,
      "give run directories (rkhil run prints them: runs/<time>-main-<id>)",
    );
  }
  const w = HistoryWriter.on(db, runDir, "import");
  const stmts = new Statements(db);
  const releases = new Map<string, string>();
  for (const r of results) {
    const own = ownRelease(r);
    if (own && !releases.has(r.kernel)) {
      releases.set(r.kernel, own);
    }
  }
  let added = 0;
  db.exec("BEGIN");
  try {
    results.forEach((r, seq) => {
      const release = ownRelease(r) ?? releases.get(r.kernel) ??
        stmts.releaseFor(w.run.id, r);
      if (stmts.addResult(w.run.id, seq, r, release)) added++;
    });
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
  return { run: w.run.id, added, present: results.length - added, damagedLines };
}
