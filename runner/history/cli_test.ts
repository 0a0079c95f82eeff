import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { noStackTrace, rkhil, withTempDir } from "../cli/testutil.ts";
import { PgServer } from "../pg/server.ts";
import { labBoardYaml } from "../lab/board_file.ts";

const RUNS = fileURLToPath(new URL("./testdata/runs", import.meta.url));
const MAIN = `${RUNS}/2026-11-30T02-49-14Z-main-50fb`;
const CRASH = `${RUNS}/2026-11-30T01-00-55Z-main-f34d`;

Deno.test("rkhil history import twice, history predict, and report --history in every format", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/h/history.sqlite`;
    let r = await rkhil("history", "import", MAIN, CRASH, "--db", db);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /2026-11-30T02-49-14Z-main-50fb: 39 added, 0 already present/);
    r = await rkhil("history", "import", MAIN, "--db", db);
    assert.match(r.stdout, /39 already present/);
    r = await rkhil(
      "history",
      "predict",
      "--board",
      "rock-3b-8g",
      "--from",
      "6.1",
      "--to",
      "7.3",
      "--db",
      db,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /rock-3b-8g: 23 releases recorded \(6\.1 … 7\.3\)/);
    r = await rkhil("history", "predict", "--board", "rock-3b-8g", "--db", db);
    assert.match(r.stdout, /0 releases recorded .*already in the history/);

    r = await rkhil("report", "--history", "--db", db);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /REGRESSION fde4b000: OK → BUS_ERROR \(last OK 6\.5, first BUS_ERROR 6\.6\)/,
    );
    assert.match(r.stdout, /commit 2a7e6400f72b/);
    r = await rkhil(
      "report",
      "--history",
      "--db",
      db,
      "--format",
      "markdown",
      "--target",
      "qemu-virt-8g",
      "--from",
      "6.12",
      "--to",
      "6.12",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^# rkhil history report/);
    assert.match(r.stdout, /\| oracle\/driver \| FLAKY \|/);
    assert.doesNotMatch(r.stdout, /6\.1\.0-57-arm64/);
    r = await rkhil(
      "report",
      "--history",
      "--db",
      db,
      "--format",
      "html",
      "--out",
      `${dir}/r.html`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      await Deno.readTextFile(`${dir}/r.html`),
      /^<!DOCTYPE html>[\s\S]*Chart\.js v4\.6\.1/,
    );
    r = await rkhil("report", "--history", "--db", db, "--format", "kcidb", "--suite", "boot");
    const doc = JSON.parse(r.stdout);
    assert.deepEqual(doc.tests.map((t: { path: string }) => t.path), [
      "boot",
      "boot",
      "boot",
      "boot",
    ]);
    r = await rkhil("report", "--history", "--db", db, "--format", "junit");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /runs match and JUnit is one document per run/);
    r = await rkhil(
      "report",
      "--history",
      "--db",
      db,
      "--format",
      "junit",
      "--out",
      `${dir}/junit`,
    );
    assert.equal(r.code, 0, r.stderr);
    const files = [...Deno.readDirSync(`${dir}/junit`)].map((e) => e.name).sort();
    assert.ok(files.includes("2026-11-30T01-00-55Z-main-f34d.junit.xml"), files.join(" "));
    // One run directory straight to JUnit, and report.md as before.
    r = await rkhil("report", CRASH, "--format", "junit");
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /<testsuites name="rkhil 2026-11-30T01-00-55Z-main-f34d" tests="13" failures="1"/,
    );
    const copy = `${dir}/2026-11-30T02-49-14Z-main-50fb`;
    await Deno.mkdir(copy);
    await Deno.copyFile(`${MAIN}/results.jsonl`, `${copy}/results.jsonl`);
    r = await rkhil("report", copy);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /36 PASS, 3 DONE, 0 FAIL/);
    assert.ok((await Deno.stat(`${copy}/report.md`)).isFile);
  });
});

Deno.test("bad input is exit 2 with one line before anything is read or written", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/history.sqlite`;
    const cases: [string[], RegExp][] = [
      [["report"], /nothing to report on/],
      [["report", "--suite", "boot"], /filters need --history/],
      [["report", MAIN, "--history"], /either RUN_DIR or --history/],
      [["report", "--history", "--db", db], /no history there.*\n.*rkhil history import/],
      [["report", "--history", "--from", "six"], /"six" is not a kernel release/],
      [
        ["report", "--history", "--from", "6.12", "--to", "6.1"],
        /--from 6\.12 comes after --to 6\.1/,
      ],
      [["report", "--history", "--since", "yesterday"], /"yesterday" is not a date/],
      [
        ["report", "--history", "--since", "2026-12-01", "--until", "2026-11-01"],
        /is not before --until/,
      ],
      [
        ["report", "--history", "--format", "pdf"],
        /Allowed choices are text, markdown, html, junit, kcidb/,
      ],
      [["report", "--history", "--target", "a\u0007b"], /is not a name/],
      [["history", "import", `${dir}/none`], /no such directory/],
      [["history", "import", dir, "--db", db], /results\.jsonl does not exist/],
      [["history", "predict", "--board", "no-such-board", "--db", db], /no-such-board/],
      [
        ["history", "predict", "--board", "rock-3b-8g", "--from", "7.3", "--to", "6.1", "--db", db],
        /comes after/,
      ],
      [
        ["history", "import", MAIN, "--db", "postgres://rkhil:hunter2@db.lab"],
        /names no database: postgres:\/\/rkhil:\*\*\*@db\.lab/,
      ],
      [["report", "--history", "--db", "postgresql://"], /names no host/],
    ];
    for (const [args, re] of cases) {
      const r = await rkhil(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(" "));
      noStackTrace(r, args.join(" "));
    }
    assert.equal(
      await Deno.stat(db).then(() => true, () => false),
      false,
      "no database was created",
    );
    // A database from a newer rkhil: one clear line.
    const { openHistory, SCHEMA_VERSION } = await import("./schema.ts");
    const h = openHistory(db);
    h.prepare("UPDATE schema_version SET version = ?").run(SCHEMA_VERSION + 5);
    h.close();
    const r = await rkhil("report", "--history", "--db", db);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      new RegExp(`schema version ${SCHEMA_VERSION + 5}, newer than this rkhil`),
    );
  });
});

Deno.test("rkhil history import and report --history with --db postgres://", async () => {
  await using pg = await PgServer.start();
  const url = await pg.createDatabase("cli");
  let r = await rkhil("history", "import", MAIN, CRASH, "--db", url);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /2026-11-30T02-49-14Z-main-50fb: 39 added, 0 already present/);
  r = await rkhil("history", "import", MAIN, "--db", url);
  assert.match(r.stdout, /0 added, 39 already present/);
  r = await rkhil("report", "--history", "--db", url, "--format", "markdown", "--from", "6.12");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^# rkhil history report/);
  assert.match(r.stdout, /6\.12\.118\+deb13-arm64/);
  assert.doesNotMatch(r.stdout, /6\.1\.0-57-arm64/);
  // rkhil run --db postgres:// writes the run's history there as it goes (no QEMU: a board
  // whose console nothing listens on is one boot MISS).
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/boards`);
    await Deno.writeTextFile(`${dir}/key`, "never used\n");
    await Deno.writeTextFile(
      `${dir}/boards/rock-1.yaml`,
      labBoardYaml({
        id: "rock-1",
        sshPort: 9,
        fingerprint: "SHA256:" + "A".repeat(43),
        keyFile: `${dir}/key`,
        console: { type: "tcp", port: 9, protocol: "raw" },
        power: { type: "command", on: "true", off: "true" },
      }),
    );
    const run = await rkhil(
      "run",
      "--board",
      "rock-1",
      "--boards-dir",
      `${dir}/boards`,
      "--suite",
      "boot",
      "--runs-dir",
      `${dir}/runs`,
      "--db",
      url,
    );
    assert.equal(run.code, 1, run.stderr);
    const runId = [...Deno.readDirSync(`${dir}/runs`)].find((e) => e.isDirectory)!.name;
    const { openHistory } = await import("./schema.ts");
    const { queryResults } = await import("./query.ts");
    const h = openHistory(url);
    try {
      const rows = queryResults(h, { runs: [runId] });
      assert.deepEqual(rows.map((x) => [x.target, x.test, x.verdict]), [[
        "rock-1",
        "boot",
        "MISS",
      ]]);
    } finally {
      h.close();
    }
  });
  // A server that is down: one line naming it, exit 1 (infrastructure), no stack trace.
  await pg.stop();
  r = await rkhil("history", "import", MAIN, "--db", url);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /cannot connect/);
  noStackTrace(r, "history import on a stopped server");
});
