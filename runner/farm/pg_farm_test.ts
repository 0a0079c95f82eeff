/**
 * A farm with `database:` run as a user runs it (no QEMU: a board whose console nothing listens
 * on fails its health check at once, another is held by a second lab host): leases, the job
 * queue and the results history land in PostgreSQL, `rkhil farm status|release` read and free
 * the rows; without `database:` the farm run's history goes to history.sqlite beside it.
 */
import assert from "node:assert/strict";
import { basename } from "node:path";
// @ts-types="@types/pg"
import pg from "pg";
import { noStackTrace, rkhil, withTempDir } from "../cli/testutil.ts";
import { labBoardYaml } from "../lab/board_file.ts";
import { PgServer } from "../pg/server.ts";
import { queryResults } from "../history/query.ts";
import { openHistory } from "../history/schema.ts";
import { parseResults } from "../results/store.ts";
import { PgFarmStore } from "./pg_store.ts";

const FP = "SHA256:" + "A".repeat(43);

async function boards(dir: string): Promise<void> {
  await Deno.mkdir(`${dir}/boards`);
  await Deno.writeTextFile(`${dir}/key`, "not used: the console is never reached\n");
  for (const id of ["rock-1", "rock-2"]) {
    await Deno.writeTextFile(
      `${dir}/boards/${id}.yaml`,
      labBoardYaml({
        id,
        sshPort: 9,
        fingerprint: FP,
        keyFile: `${dir}/key`,
        console: { type: "tcp", port: 9, protocol: "raw" }, // nothing listens on the discard port
        power: { type: "command", on: "true", off: "true" },
      }),
    );
  }
}

const GROUP = "boards_dirs: [boards]\ngroups:\n  - name: lab-a\n    boards:\n" +
  "      - id: rock-1\n      - id: rock-2\n";

async function runDirOf(root: string): Promise<string> {
  for await (const e of Deno.readDir(root)) if (e.isDirectory) return `${root}/${e.name}`;
  throw new Error(`no run directory in ${root}`);
}

Deno.test("rkhil run --farm with database: leases, queue and history in PostgreSQL; farm status and release on its rows", async () => {
  await using server = await PgServer.start();
  const url = await server.createDatabase("lab");
  await withTempDir(async (dir) => {
    await boards(dir);
    const farm = `${dir}/farm.yaml`;
    await Deno.writeTextFile(
      farm,
      `name: pg-lab\ndatabase: ${url}\nleases: { ttl_s: 30 }\n${GROUP}`,
    );
    // lab-b, another lab host, holds rock-2.
    Deno.env.set("RKHIL_HOST", "lab-b");
    const other = await PgFarmStore.open(url, "pg-lab");
    const { lease } = await other.take("rock-2", { ttlS: 600, run: "runs/lab-b-run" });
    Deno.env.delete("RKHIL_HOST");
    await other.close();

    let r = await rkhil("run", "--farm", farm, "--suite", "boot", "--runs-dir", `${dir}/runs`);
    assert.equal(r.code, 1, r.stderr);
    noStackTrace(r);
    const runDir = await runDirOf(`${dir}/runs`);
    const runId = basename(runDir);
    const { results } = parseResults(await Deno.readTextFile(`${runDir}/results.jsonl`));
    const of = (id: string) => results.find((x) => x.target === id)!;
    assert.equal(of("rock-1").verdict, "MISS");
    assert.match(of("rock-2").reason!, /target rock-2 is leased by \S+@lab-b \(pid \d+\)/);

    // The farm run's history is in the farm's database, every result of results.jsonl.
    const h = openHistory(url);
    try {
      const rows = queryResults(h, { runs: [runId] });
      assert.deepEqual(
        rows.map((x) => [x.target, x.test, x.verdict, x.reason]),
        results.map((x) => [x.target, x.test, x.verdict, x.reason ?? null]),
      );
    } finally {
      h.close();
    }
    // The queue: each job ended, with why.
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const jobs = (await db.query(
        "SELECT key, state FROM farm_jobs WHERE run = $1 ORDER BY pos",
        [runId],
      )).rows;
      assert.equal(jobs.length, 2);
      assert.match(jobs[0].state, /^taken out: health check failed: boot MISS: /);
      assert.match(jobs[1].state, /^out: target taken out: target rock-2 is leased by \S+@lab-b/);
      // rock-1's lease given back; lab-b's stays.
      const leases = (await db.query("SELECT target, host FROM farm_leases")).rows;
      assert.deepEqual(leases, [{ target: "rock-2", host: "lab-b" }]);
    } finally {
      await db.end();
    }

    r = await rkhil("farm", "status", "--farm", farm);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /farm pg-lab: leases in postgres:\/\/postgres@127\.0\.0\.1:\d+\/lab\n/);
    assert.match(r.stdout, /rock-1 +free\n/);
    assert.match(
      r.stdout,
      new RegExp(`rock-2 +\\S+@lab-b pid ${Deno.pid} since ${lease.start} until ${lease.expires}`),
    );
    r = await rkhil("farm", "release", "rock-2", "--farm", farm);
    assert.equal(r.code, 1, "another host's live lease is not freed without --force");
    assert.match(r.stderr, /target rock-2 is leased by \S+@lab-b/);
    r = await rkhil("farm", "release", "rock-2", "--farm", farm, "--force");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /rock-2: released \(was \S+@lab-b pid \d+ since /);
  });
});

Deno.test("a farm run without database: writes its history to history.sqlite beside the run", async () => {
  await withTempDir(async (dir) => {
    await boards(dir);
    const farm = `${dir}/farm.yaml`;
    await Deno.writeTextFile(farm, `name: file-lab\nleases: { dir: leases }\n${GROUP}`);
    const r = await rkhil("run", "--farm", farm, "--suite", "boot", "--runs-dir", `${dir}/runs`);
    assert.equal(r.code, 1, r.stderr);
    const runDir = await runDirOf(`${dir}/runs`);
    const { results } = parseResults(await Deno.readTextFile(`${runDir}/results.jsonl`));
    assert.equal(results.length, 2);
    const h = openHistory(`${dir}/runs/history.sqlite`);
    try {
      assert.deepEqual(
        queryResults(h).map((x) => [x.runId, x.target, x.verdict]),
        results.map((x) => [basename(runDir), x.target, x.verdict]),
      );
    } finally {
      h.close();
    }
  });
});
