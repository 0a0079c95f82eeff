import assert from "node:assert/strict";
import { openDatabase } from "./sqlite.ts";
import {
  HistorySchemaError,
  migrate,
  MIGRATIONS,
  openHistory,
  SCHEMA_VERSION,
  schemaVersion,
} from "./schema.ts";

Deno.test("a new history is created at the current schema version with every table", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const db = openHistory(`${dir}/sub/history.sqlite`);
    assert.equal(schemaVersion(db), SCHEMA_VERSION);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
      name: string;
    }[]).map((t) => t.name).sort();
    assert.deepEqual(tables, ["measurements", "observations", "results", "runs", "schema_version"]);
    db.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a version-1 history with results migrates to the current version, keeping its rows", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/h.sqlite`;
    const old = openDatabase(path);
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
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a history from a newer rkhil is refused with a clear error, and left unchanged", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/h.sqlite`;
    const db = openHistory(path);
    db.prepare("UPDATE schema_version SET version = ?").run(SCHEMA_VERSION + 1);
    db.close();
    assert.throws(() => openHistory(path), (e: unknown) => {
      assert.ok(e instanceof HistorySchemaError);
      assert.match(e.message, new RegExp(`version ${SCHEMA_VERSION + 1}, newer than this rkhil`));
      return true;
    });
    const again = openDatabase(path);
    assert.equal(schemaVersion(again), SCHEMA_VERSION + 1);
    again.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a file that is not a history is refused: other SQLite, not SQLite at all", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const other = openDatabase(`${dir}/other.sqlite`);
    other.exec("CREATE TABLE t (x INTEGER)");
    other.close();
    assert.throws(() => openHistory(`${dir}/other.sqlite`), /not an rkhil history/);
    Deno.writeTextFileSync(`${dir}/text.sqlite`, "this is not a database, just text ".repeat(40));
    assert.throws(() => openHistory(`${dir}/text.sqlite`), HistorySchemaError);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a failing migration rolls back whole: the database stays at its version", () => {
  const db = openDatabase(":memory:");
  migrate(db, "mem", 1);
  db.exec("CREATE TABLE observations (x INTEGER)"); // collides with migration 1 → 2
  assert.throws(() => migrate(db), /observations/);
  assert.equal(schemaVersion(db), 1);
  const cols = (db.prepare("PRAGMA table_info(results)").all() as { name: string }[]).map((c) =>
    c.name
  );
  assert.ok(!cols.includes("suite"));
  assert.equal(MIGRATIONS.length, SCHEMA_VERSION);
  db.close();
});
