import assert from "node:assert/strict";
import { InfraError, UserInputError } from "../errors.ts";
import {
  checkPostgresUrl,
  isPostgresUrl,
  openPostgres,
  redactUrl,
  toPositional,
} from "./postgres.ts";
import { openHistory } from "./schema.ts";
import { PgServer } from "../pg/server.ts";
// @ts-types="@types/pg"
import pg from "pg";
import { openRunHistory } from "../suite/run_job.ts";

Deno.test("placeholders are numbered in order, never inside literals, identifiers or comments", () => {
  assert.equal(
    toPositional("INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT DO NOTHING"),
    "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT DO NOTHING",
  );
  assert.equal(
    toPositional(`SELECT '?', 'it''s ?', "we?ird" FROM t WHERE a = ? -- b = ?\n AND c = ?`),
    `SELECT '?', 'it''s ?', "we?ird" FROM t WHERE a = $1 -- b = ?\n AND c = $2`,
  );
  assert.equal(toPositional("/* ? */ SELECT ?"), "/* ? */ SELECT $1");
  // Hostile: an unterminated literal or comment swallows the rest, never throws.
  assert.equal(toPositional("SELECT 'abc ?"), "SELECT 'abc ?");
  assert.equal(toPositional("SELECT ? /* ?"), "SELECT $1 /* ?");
  assert.equal(toPositional(""), "");
  assert.equal(toPositional("?".repeat(3)), "$1$2$3");
});

Deno.test("PostgreSQL URLs: recognised, checked before any work, passwords never shown", () => {
  assert.ok(isPostgresUrl("postgres://u@h/db"));
  assert.ok(isPostgresUrl("postgresql://u@h:5433/db"));
  assert.ok(!isPostgresUrl("runs/history.sqlite"));
  assert.ok(!isPostgresUrl("postgres:/nope"));
  assert.equal(
    redactUrl("postgres://rkhil:s3cret@db.lab/history"),
    "postgres://rkhil:***@db.lab/history",
  );
  assert.equal(redactUrl("postgres://rkhil@db.lab/history"), "postgres://rkhil@db.lab/history");
  // A password as a parameter, one with an "@" in it, one that makes the URL unparseable.
  assert.equal(
    redactUrl("postgres://rkhil@db.lab/history?password=secret&sslmode=require"),
    "postgres://rkhil@db.lab/history?password=***&sslmode=require",
  );
  assert.equal(redactUrl("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
  assert.equal(redactUrl("postgres://u:pw@[::1/x"), "postgres://***@[::1/x");
  assert.equal(
    redactUrl("postgres://u:p@s@[::1/x?password=z"),
    "postgres://***@[::1/x?password=***",
  );
  assert.equal(
    redactUrl("postgres://[::1/x?a=1&sslpassword=z"),
    "postgres://[::1/x?a=1&sslpassword=***",
  );
  for (
    const leaky of [
      "postgres://u:secret@h/db",
      "postgres://u@h/db?password=secret",
      "postgres://u:se@cret@h/db",
      "postgres://u:se/cret@h/db",
      "postgres://u:secret@[::1/db",
      "postgres://u:x@[::1/db?PassWord=secret",
    ]
  ) {
    assert.doesNotMatch(redactUrl(leaky), /secret|cret/, leaky);
  }
  checkPostgresUrl("postgres://rkhil@db.lab:5432/history");
  for (
    const bad of [
      "postgres://",
      "postgres://db.lab",
      "postgres://db.lab/",
      "postgres://u:pw@[::1/x",
      "postgres://u:p@w@[::1/x",
      "postgres://db.lab?password=pw",
    ]
  ) {
    assert.throws(() => checkPostgresUrl(bad), (e: unknown) => {
      assert.ok(e instanceof UserInputError, bad);
      assert.doesNotMatch(e.message, /pw|p@w/);
      return true;
    });
  }
});

Deno.test("a server that is not there is an infrastructure error naming it, quickly", () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const url = `postgres://rkhil:hunter2@127.0.0.1:${port}/history`;
  const t0 = performance.now();
  assert.throws(() => openHistory(url), (e: unknown) => {
    assert.ok(e instanceof InfraError, String(e));
    assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}/history: cannot connect`));
    assert.doesNotMatch(e.message, /hunter2/);
    return true;
  });
  assert.ok(performance.now() - t0 < 15_000);
  // A closed database refuses further calls.
  const db = openPostgres(url);
  db.close();
  assert.throws(() => db.exec("SELECT 1"), /closed/);
});

Deno.test("a run whose PostgreSQL history is down goes on without it, saying so in one line without the password", () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const lines: string[] = [];
  const h = openRunHistory(
    `postgres://rkhil:hunter2@127.0.0.1:${port}/history`,
    "/runs/2026-11-30T06-00-00Z-main-abcd",
    (line) => lines.push(line),
  );
  assert.equal(h, undefined);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^rkhil run: no results history this run \(postgres:\/\/rkhil:\*\*\*@/);
  assert.match(lines[0], /cannot connect/);
  assert.doesNotMatch(lines[0], /hunter2/);
});

Deno.test("a dropped history connection fails the next call at once, the one after reconnects", async () => {
  await using server = await PgServer.start();
  const url = server.url().replace("postgres@", "postgres:hunter2@");
  const db = openPostgres(url, { timeoutMs: 60_000 });
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  try {
    const pid = db.prepare("SELECT pg_backend_pid() AS pid").get()!.pid;
    await admin.query("SELECT pg_terminate_backend($1)", [pid]);
    // The worker hears of it (its client's "error", which once ended the thread).
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    assert.throws(() => db.exec("SELECT 1"), (e: unknown) => {
      assert.ok(e instanceof InfraError, String(e));
      assert.match(e.message, /^PostgreSQL postgres:\/\/postgres:\*\*\*@.*: connection lost: /);
      assert.doesNotMatch(e.message, /hunter2|\n/);
      return true;
    });
    assert.ok(performance.now() - t0 < 5_000, "no wait for the time limit");
    const again = db.prepare("SELECT pg_backend_pid() AS pid").get()!.pid;
    assert.notEqual(again, pid, "a new connection");
    // Terminated under a query: that call fails at once, the next reconnects.
    assert.throws(
      () => db.exec("SELECT pg_terminate_backend(pg_backend_pid())"),
      (e: unknown) => e instanceof InfraError && /connection lost/.test(e.message),
    );
    assert.equal(db.prepare("SELECT 2 AS two").get()!.two, 2);
  } finally {
    db.close();
    await admin.end();
  }
});
