/**
 * The results history database: one `node:sqlite` file (default `runs/history.sqlite`) holding
 * every run, every result (each {@linkcode TestResult} field), its measurements (latency
 * samples) and the predictions/observations its `details` carry (the JSON kept as it was).
 *
 * The schema is versioned: `schema_version` holds one row, and {@linkcode MIGRATIONS} take a
 * database from any older version to {@linkcode SCHEMA_VERSION} in one transaction. A database
 * written by a newer rkhil is refused with {@linkcode HistorySchemaError} (never downgraded).
 *
 * Every column is a plain SQL type (TEXT, INTEGER, REAL; JSON kept as TEXT) and every table has
 * a primary key, so the one schema serves both stores: {@linkcode openHistory} given a
 * `postgres://` URL opens the history on PostgreSQL (runner/history/postgres.ts), where
 * {@linkcode ddlFor} writes INTEGER as BIGINT and REAL as DOUBLE PRECISION (SQLite's INTEGER is
 * 64-bit and its REAL a double). The migrations and the version are the same on both.
 *
 * @module
 */
import type { TestResult } from "../results/store.ts";
import { observationsOf, oracleVerdict, ownRelease, releaseOrder, suiteOf } from "./extract.ts";
import { type Database, openDatabase, type SQLValue } from "./sqlite.ts";
import { dirname } from "node:path";
import { UserInputError } from "../errors.ts";
import { isPostgresUrl, openPostgres, redactUrl } from "./postgres.ts";

/** The schema version this rkhil writes and reads. */
export const SCHEMA_VERSION = 2;

/**
 * Migration `i` takes a database from version `i` to `i + 1` (version 0 is an empty file).
 * Version 1 is the first history (runs, results, measurements); version 2 adds the suite and
 * the running kernel release to results (issue 8's result record) and the observations table.
 */
export const MIGRATIONS: readonly string[] = [
  // 0 → 1
  `CREATE TABLE schema_version (version INTEGER NOT NULL);
   INSERT INTO schema_version (version) VALUES (0);
   CREATE TABLE runs (
     id TEXT PRIMARY KEY,
     dir TEXT,
     name TEXT NOT NULL,
     started_at TEXT NOT NULL,
     source TEXT NOT NULL,
     recorded_at TEXT NOT NULL
   );
   CREATE TABLE results (
     run_id TEXT NOT NULL REFERENCES runs (id),
     seq INTEGER NOT NULL,
     test TEXT NOT NULL,
     target TEXT NOT NULL,
     kernel TEXT NOT NULL,
     verdict TEXT NOT NULL,
     reason TEXT,
     details TEXT,
     started_at TEXT NOT NULL,
     duration_ms REAL NOT NULL,
     PRIMARY KEY (run_id, seq)
   );
   CREATE TABLE measurements (
     run_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     idx INTEGER NOT NULL,
     name TEXT NOT NULL,
     value REAL NOT NULL,
     unit TEXT NOT NULL,
     PRIMARY KEY (run_id, seq, idx),
     FOREIGN KEY (run_id, seq) REFERENCES results (run_id, seq)
   );`,
  // 1 → 2
  `ALTER TABLE results ADD COLUMN suite TEXT;
   ALTER TABLE results ADD COLUMN release TEXT;
   ALTER TABLE results ADD COLUMN release_order INTEGER;
   ALTER TABLE results ADD COLUMN oracle TEXT;
   CREATE TABLE observations (
     run_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     kind TEXT NOT NULL,
     key TEXT NOT NULL,
     predicted TEXT,
     observed TEXT,
     verdict TEXT,
     PRIMARY KEY (run_id, seq, kind, key),
     FOREIGN KEY (run_id, seq) REFERENCES results (run_id, seq)
   );
   CREATE INDEX results_by_release ON results (release_order);
   CREATE INDEX results_by_time ON results (started_at);`,
];

/**
 * What a migration computes that SQL cannot: after migration `i` (to version `i + 1`), for the
 * rows it found. 1 → 2 derives the suite, the running release (the boot step's, per run and
 * kernel), its sort key, the oracle's verdict and the observations of every older result.
 */
const BACKFILL: Readonly<Record<number, (db: Database) => void>> = {
  1: (db) => {
    const rows = db.prepare(
      "SELECT run_id, seq, test, target, kernel, verdict, details FROM results ORDER BY run_id, seq",
    ).all();
    const release = new Map<string, string>();
    const asResult = (x: Record<string, SQLValue>): TestResult => ({
      test: String(x.test),
      target: String(x.target),
      kernel: String(x.kernel),
      verdict: String(x.verdict) as TestResult["verdict"],
      details: x.details === null ? undefined : JSON.parse(String(x.details)),
      startedAt: "",
      durationMs: 0,
    });
    for (const x of rows) {
      const own = ownRelease(asResult(x));
      if (own && !release.has(`${x.run_id}\0${x.kernel}`)) {
        release.set(`${x.run_id}\0${x.kernel}`, own);
      }
    }
    const upd = db.prepare(
      "UPDATE results SET suite = ?, release = ?, release_order = ?, oracle = ? WHERE run_id = ? AND seq = ?",
    );
    const obs = db.prepare(
      `INSERT INTO observations (run_id, seq, kind, key, predicted, observed, verdict)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    for (const x of rows) {
      const r = asResult(x);
      const rel = release.get(`${x.run_id}\0${x.kernel}`) ?? null;
      const os = observationsOf(r);
      upd.run(suiteOf(r), rel, releaseOrder(rel), oracleVerdict(os), x.run_id, x.seq);
      for (const o of os) {
        obs.run(x.run_id, x.seq, o.kind, o.key, o.predicted, o.observed, o.verdict);
      }
    }
  },
};

/**
 * A migration's SQL for `db`'s dialect: as written for SQLite; on PostgreSQL INTEGER becomes
 * BIGINT and REAL becomes DOUBLE PRECISION (the same ranges SQLite's types have).
 */
export function ddlFor(db: Database, sql: string): string {
  if (db.dialect !== "postgres") return sql;
  return sql.replace(/\bINTEGER\b/g, "BIGINT").replace(/\bREAL\b/g, "DOUBLE PRECISION");
}

/** The names of `db`'s tables (SQLite's catalogue, or PostgreSQL's current schema), sorted. */
export function tableNames(db: Database): string[] {
  const sql = db.dialect === "postgres"
    ? `SELECT table_name AS name FROM information_schema.tables
       WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
    : "SELECT name FROM sqlite_master WHERE type = 'table'";
  return db.prepare(sql).all().map((t) => String(t.name)).sort();
}

/** The database was written by a newer rkhil, or is not a history database. */
export class HistorySchemaError extends UserInputError {}

/**
 * Open (creating when missing) the history at `path` (`:memory:` for a scratch one; a
 * `postgres://` or `postgresql://` URL for the history on PostgreSQL, whose database must exist)
 * and migrate it to {@linkcode SCHEMA_VERSION}.
 *
 * @throws {HistorySchemaError} when the file holds a newer schema version than this rkhil knows,
 *   or is an SQLite database that is not an rkhil history, or not an SQLite database at all (on
 *   PostgreSQL: a database with tables that are not an rkhil history).
 * @throws {InfraError} when the PostgreSQL server cannot be reached.
 */
export function openHistory(path: string): Database {
  if (isPostgresUrl(path)) {
    const db = openPostgres(path);
    try {
      migrate(db, redactUrl(path));
    } catch (err) {
      db.close();
      throw err;
    }
    return db;
  }
  if (path !== ":memory:") Deno.mkdirSync(dirname(path), { recursive: true });
  let db: Database;
  try {
    db = openDatabase(path);
    db.exec("PRAGMA foreign_keys = ON");
    // Two runs writing at once wait for each other's transaction (up to 10 s), never fail.
    db.exec("PRAGMA busy_timeout = 10000");
  } catch (err) {
    throw new HistorySchemaError(
      `${path}: cannot open as an SQLite database: ${(err as Error).message}`,
      "give the path of an rkhil history (default runs/history.sqlite) or a new file",
    );
  }
  try {
    migrate(db, path);
  } catch (err) {
    db.close();
    throw err;
  }
  // WAL with synchronous NORMAL: a crash of rkhil loses nothing committed; the JSONL stays the
  // crash-safe record for a power cut.
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  return db;
}

/**
 * The schema version of `db` (0 for an empty database). The farm's tables (`farm_*`,
 * runner/farm/pg_store.ts) may share the database: they do not make it another kind of database.
 */
export function schemaVersion(db: Database, path = "the database"): number {
  let tables: string[];
  try {
    tables = tableNames(db);
  } catch (err) {
    if (db.dialect === "postgres") throw err;
    throw new HistorySchemaError(
      `${path} is not an SQLite database (${(err as Error).message})`,
      "give the path of an rkhil history (default runs/history.sqlite) or a new file",
    );
  }
  if (tables.filter((t) => !t.startsWith("farm_")).length === 0) return 0;
  if (!tables.includes("schema_version")) {
    throw new HistorySchemaError(
      `${path} is ${
        db.dialect === "postgres" ? "a PostgreSQL" : "an SQLite"
      } database but not an rkhil history (no schema_version table)`,
      db.dialect === "postgres"
        ? "give --db a new database or an rkhil history"
        : "give the path of an rkhil history (default runs/history.sqlite) or a new file",
    );
  }
  const row = db.prepare("SELECT version FROM schema_version").get() as
    | { version: number }
    | undefined;
  return row ? Number(row.version) : 0;
}

/** Key of the PostgreSQL advisory lock that serialises migrations (any fixed number). */
const MIGRATION_LOCK = 0x726b68696c; // "rkhil"

/**
 * Apply the migrations from the database's version up to `target` in one transaction. Runners
 * that open one history at once migrate it once: the version is read again under the
 * transaction's lock (SQLite's write lock; a PostgreSQL advisory lock).
 */
export function migrate(db: Database, path = "the database", target = SCHEMA_VERSION): void {
  const newer = (v: number) =>
    new HistorySchemaError(
      `${path} has history schema version ${v}, newer than this rkhil knows (${SCHEMA_VERSION})`,
      "use the rkhil that wrote it (or a newer one), or give another --db",
    );
  const seen = schemaVersion(db, path);
  if (seen > SCHEMA_VERSION) throw newer(seen);
  if (seen >= target) return;
  if (db.dialect === "postgres") {
    db.exec("BEGIN");
    db.exec(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
  } else db.exec("BEGIN IMMEDIATE");
  try {
    const from = schemaVersion(db, path);
    if (from > SCHEMA_VERSION) throw newer(from);
    for (let v = from; v < target; v++) {
      db.exec(ddlFor(db, MIGRATIONS[v]));
      BACKFILL[v]?.(db);
      db.prepare("UPDATE schema_version SET version = ?").run(v + 1);
    }
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
}
