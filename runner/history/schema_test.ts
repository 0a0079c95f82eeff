import assert from "node:assert/strict";
import { type Database, openDatabase } from "./sqlite.ts";
import { isPostgresUrl, openPostgres } from "./postgres.ts";
import {
  ddlFor,
  HistorySchemaError,
  migrate,
  MIGRATIONS,
  openHistory,
  SCHEMA_VERSION,
  schemaVersion,
  tableNames,
} from "./schema.ts";
import { historyTest } from "./stores_testutil.ts";

/** The store's database without the history's migration (what an older rkhil left). */
function openRaw(loc: string): Database {
  return isPostgresUrl(loc) ? openPostgres(loc) : openDatabase(loc);
}

historyTest(
  "a new history is created at the current schema version with every table",
  async (store) => {
    const loc = store.name === "sqlite" ? `${store.dir}/sub/history.sqlite` : await store.fresh();
    const db = openHistory(loc);
    assert.equal(schemaVersion(db), SCHEMA_VERSION);
    assert.deepEqual(tableNames(db), [
      "measurements",
      "observations",
      "results",
      "runs",
      "schema_version",
    ]);
    // Doubles stay doubles and integers 64-bit on both stores.
    const t = "2026-11-30T00:00:00Z";
    db.prepare("INSERT INTO runs VALUES (?, NULL, 'main', ?, 'import', ?)").run("r", t, t);
    db.prepare(
      `INSERT INTO results (run_id, seq, test, target, kernel, verdict, started_at, duration_ms,
       release_order) VALUES ('r', 0, 'boot', 'q', 'k', 'PASS', ?, ?, ?)`,
    ).run(t, 1234.567891234, 7_003_004_000);
    assert.deepEqual({ ...db.prepare("SELECT duration_ms, release_order FROM results").get() }, {
      duration_ms: 1234.567891234,
      release_order: 7_003_004_000,
    });
    db.close();
  },
);

Deno.test("the schema's one definition: PostgreSQL gets BIGINT and DOUBLE PRECISION", () => {
  const pg = { dialect: "postgres" } as Database;
  const sqlite = {} as Database;
  assert.equal(ddlFor(sqlite, MIGRATIONS[0]), MIGRATIONS[0]);
  const p = ddlFor(pg, MIGRATIONS[0] + MIGRATIONS[1]);
  assert.match(p, /seq BIGINT NOT NULL/);
  assert.match(p, /duration_ms DOUBLE PRECISION NOT NULL/);
  assert.match(p, /release_order BIGINT;/);
  assert.doesNotMatch(p, /\b(INTEGER|REAL)\b/);
});

historyTest(
  "a version-1 history with results migrates to the current version, keeping its rows",
  async (store) => {
    {
      const path = await store.fresh();
      const old = openRaw(path);
      migrate(old, path, 1);
      assert.equal(schemaVersion(old), 1);
      old.exec(
        `INSERT INTO runs VALUES ('r1', NULL, 'main', '2026-11-30T00:00:00Z', 'import', 'x');
       INSERT INTO results VALUES ('r1', 0, 'boot', 'qemu-virt-8g', 'debian:trixie', 'PASS',
         NULL, '{"release":"6.12.118+deb13-arm64"}', '2026-11-30T00:00:00Z', 1000);
       INSERT INTO results VALUES ('r1', 1, 'validate/v2-6.6', 'qemu-virt 8G', 'debian:trixie',
         'FAIL', 'disagree', '{"scenario":"v2-6.6","predicted":"BUS_ERROR/dt","observed":"ok",
         "verdict":"DISAGREE"}', '2026-11-30T00:00:09Z', 500);`,
      );
      old.close();
      const db = openHistory(path);
      assert.equal(schemaVersion(db), SCHEMA_VERSION);
      const row = db.prepare("SELECT test, suite, release, verdict FROM results").get() as Record<
        string,
        unknown
      >;
      assert.equal(row.test, "boot");
      assert.equal(row.verdict, "PASS");
      // Migration 1 → 2 derives what version 1 did not hold.
      assert.equal(row.suite, "boot");
      assert.equal(row.release, "6.12.118+deb13-arm64");
      const v = db.prepare("SELECT suite, release, oracle FROM results WHERE seq = 1").get()!;
      assert.deepEqual({ ...v }, {
        suite: "validate",
        release: "6.12.118+deb13-arm64",
        oracle: "DISAGREE",
      });
      const o = db.prepare("SELECT kind, key, predicted, observed FROM observations").all();
      assert.deepEqual(o.map((x) => ({ ...x })), [{
        kind: "scenario",
        key: "v2-6.6",
        predicted: '"BUS_ERROR/dt"',
        observed: '"ok"',
      }]);
      db.close();
    }
  },
);

historyTest(
  "a history from a newer rkhil is refused with a clear error, and left unchanged",
  async (store) => {
    {
      const path = await store.fresh();
      const db = openHistory(path);
      db.prepare("UPDATE schema_version SET version = ?").run(SCHEMA_VERSION + 1);
      db.close();
      assert.throws(() => openHistory(path), (e: unknown) => {
        assert.ok(e instanceof HistorySchemaError);
        assert.match(e.message, new RegExp(`version ${SCHEMA_VERSION + 1}, newer than this rkhil`));
        return true;
      });
      const again = openRaw(path);
      assert.equal(schemaVersion(again), SCHEMA_VERSION + 1);
      again.close();
    }
  },
);

historyTest("a database with other tables is refused: it is not a history", async (store) => {
  const path = await store.fresh();
  const other = openRaw(path);
  other.exec("CREATE TABLE t (x INTEGER)");
  other.close();
  assert.throws(() => openHistory(path), /not an rkhil history/);
});

historyTest("two runners opening a new history at once migrate it once", async (store) => {
  const path = await store.fresh();
  const a = openRaw(path);
  const b = openRaw(path);
  migrate(a, path);
  migrate(b, path); // finds the version a wrote: nothing to do, nothing fails
  assert.equal(schemaVersion(b), SCHEMA_VERSION);
  assert.equal(Number(b.prepare("SELECT count(*) AS n FROM schema_version").get()!.n), 1);
  a.close();
  b.close();
});

Deno.test("a file that is not SQLite at all is refused", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/text.sqlite`, "this is not a database, just text ".repeat(40));
    assert.throws(() => openHistory(`${dir}/text.sqlite`), HistorySchemaError);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

historyTest(
  "a failing migration rolls back whole: the database stays at its version",
  async (store) => {
    const db = openRaw(await store.fresh());
    migrate(db, "mem", 1);
    db.exec("CREATE TABLE observations (x INTEGER)"); // collides with migration 1 → 2
    assert.throws(() => migrate(db), /observations/);
    assert.equal(schemaVersion(db), 1);
    const cols = (db.dialect === "postgres"
      ? db.prepare(
        "SELECT column_name AS name FROM information_schema.columns WHERE table_name = 'results'",
      ).all()
      : db.prepare("PRAGMA table_info(results)").all()).map((c) => String(c.name));
    assert.ok(cols.includes("verdict"));
    assert.ok(!cols.includes("suite"));
    assert.equal(MIGRATIONS.length, SCHEMA_VERSION);
    db.close();
  },
);
