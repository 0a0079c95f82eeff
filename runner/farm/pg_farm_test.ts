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
import { noStackTrace, rkhil, rkhilWithEnv, withTempDir } from "../cli/testutil.ts";
import { labBoardYaml } from "../lab/board_file.ts";
import { PgServer } from "../pg/server.ts";
import { queryResults } from "../history/query.ts";
import { openHistory } from "../history/schema.ts";
import { parseResults } from "../results/store.ts";
import { PgFarmStore } from "./pg_store.ts";
import { runFarm } from "./run_farm.ts";
import { loadFarm } from "../../boards/farm_load.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const FP = "SHA256:" + "A".repeat(43);

/** Board files `ids` whose console is on `consolePort` (default: the discard port, unanswered). */
async function boards(dir: string, ids = ["rock-1", "rock-2"], consolePort = 9): Promise<void> {
  await Deno.mkdir(`${dir}/boards`);
  await Deno.writeTextFile(`${dir}/key`, "not used: the console is never reached\n");
  for (const id of ids) {
    await Deno.writeTextFile(
      `${dir}/boards/${id}.yaml`,
      labBoardYaml({
        id,
        sshPort: 9,
        fingerprint: FP,
        keyFile: `${dir}/key`,
        console: { type: "tcp", port: consolePort, protocol: "raw" },
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

Deno.test("farm runs with database: (one throwaway cluster)", async (t) => {
  await using server = await PgServer.start();
  await t.step(
    "rkhil run --farm with database: leases, queue and history in PostgreSQL; farm status and release on its rows",
    async () => {
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
          assert.match(
            jobs[1].state,
            /^out: target taken out: target rock-2 is leased by \S+@lab-b/,
          );
          // rock-1's lease given back; lab-b's stays.
          const leases = (await db.query("SELECT target, host FROM farm_leases")).rows;
          assert.deepEqual(leases, [{ target: "rock-2", host: "lab-b" }]);
        } finally {
          await db.end();
        }

        r = await rkhil("farm", "status", "--farm", farm);
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stdout,
          /farm pg-lab: leases in postgres:\/\/postgres@127\.0\.0\.1:\d+\/lab\n/,
        );
        assert.match(r.stdout, /rock-1 +free\n/);
        assert.match(
          r.stdout,
          new RegExp(
            `rock-2 +\\S+@lab-b pid ${Deno.pid} since ${lease.start} until ${lease.expires}`,
          ),
        );
        r = await rkhil("farm", "release", "rock-2", "--farm", farm);
        assert.equal(r.code, 1, "another host's live lease is not freed without --force");
        assert.match(r.stderr, /target rock-2 is leased by \S+@lab-b/);
        r = await rkhil("farm", "release", "rock-2", "--farm", farm, "--force");
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /rock-2: released \(was \S+@lab-b pid \d+ since /);
      });
    },
  );
  await t.step(
    "a database error taking a lease ends the run: the host's job slot is given back, no hang",
    async () => {
      const url = await server.createDatabase("refuses");
      await (await PgFarmStore.open(url, "pg-lab")).close();
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      await db.query(`CREATE FUNCTION refuse() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'leases refused by the test'; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER refuse BEFORE INSERT ON farm_leases FOR EACH ROW EXECUTE FUNCTION refuse()`);
      await db.end();
      await withTempDir(async (dir) => {
        await boards(dir);
        const farm = `${dir}/farm.yaml`;
        await Deno.writeTextFile(farm, `name: pg-lab\ndatabase: ${url}\n${GROUP}`);
        // One job at a time: the second target's worker waits for the first one's slot.
        const LIMIT_MS = 60_000;
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", MAIN, "run", "--farm", farm, "--suite", "boot", "--jobs", "1"]
            .concat(["--runs-dir", `${dir}/runs`]),
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        let hung = false;
        const timer = setTimeout(() => {
          hung = true;
          child.kill("SIGKILL");
        }, LIMIT_MS);
        const out = await child.output();
        clearTimeout(timer);
        const r = {
          code: out.code,
          stdout: new TextDecoder().decode(out.stdout),
          stderr: new TextDecoder().decode(out.stderr),
        };
        assert.ok(!hung, `killed after ${LIMIT_MS} ms (a job slot never given back): ${r.stderr}`);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /leases refused by the test/);
        noStackTrace(r);
      });
    },
  );
  await t.step(
    "a throw before the run's work starts leaves no database connection open",
    async () => {
      const url = await server.createDatabase("closed");
      await withTempDir(async (dir) => {
        await boards(dir);
        await Deno.writeTextFile(`${dir}/farm.yaml`, `name: pg-lab\ndatabase: ${url}\n${GROUP}`);
        const farm = await loadFarm(`${dir}/farm.yaml`);
        // A run directory whose results.jsonl cannot be opened: runFarm throws after the
        // database was opened, before its try/finally.
        await Deno.mkdir(`${dir}/run/results.jsonl`, { recursive: true });
        await assert.rejects(() =>
          runFarm({
            farm,
            kernels: [],
            suites: [],
            predictBoards: [],
            jobs: 1,
            runsRoot: `${dir}/runs`,
            resume: `${dir}/run`,
            history: false,
            log: () => {},
          })
        );
        const db = new pg.Client({ connectionString: url });
        await db.connect();
        try {
          // The pool's idle connection (else open for 10 s, and the process with it) is gone.
          let n = -1;
          for (let i = 0; i < 20 && n !== 0; i++) {
            if (i) await new Promise((r) => setTimeout(r, 100));
            n = (await db.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid()`,
            )).rows[0].n;
          }
          assert.equal(n, 0, "a connection of the farm's pool is left open");
        } finally {
          await db.end();
        }
      });
    },
  );
  await t.step(
    "a second lab host joins the run with --join RUN: one queue, each job once",
    async () => {
      await joinedRun(await server.createDatabase("joined"));
    },
  );
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

/** `rkhil ARGS` as lab host `host` (`RKHIL_HOST`), started at once. */
const rkhilOn = (host: string, ...args: string[]) => rkhilWithEnv({ RKHIL_HOST: host }, ...args);

/**
 * lab-a starts a run on rock-1..rock-6 (--jobs 1); lab-b, whose farm file has rock-3..rock-6,
 * joins it. Each board's console answers and drops the line after HOLD_MS: a job that takes
 * that long (its boot MISS), so both hosts have jobs to take.
 */
async function joinedRun(url: string): Promise<void> {
  const HOLD_MS = 1500;
  const all = ["rock-1", "rock-2", "rock-3", "rock-4", "rock-5", "rock-6"];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Promise<void>[] = [];
  const serving = (async () => {
    for await (const c of listener) {
      held.push(new Promise((r) => setTimeout(r, HOLD_MS)).then(() => c.close()));
    }
  })();
  try {
    await withTempDir(async (dir) => {
      await boards(dir, all, listener.addr.port);
      const farmFile = (name: string, group: string, ids: string[]) =>
        `name: ${name}\ndatabase: ${url}\nleases: { ttl_s: 30 }\nboards_dirs: [boards]\n` +
        `groups:\n  - name: ${group}\n    boards:\n${
          ids.map((id) => `      - id: ${id}\n`).join("")
        }`;
      await Deno.writeTextFile(`${dir}/a.yaml`, farmFile("join-lab", "lab-a", all));
      await Deno.writeTextFile(`${dir}/b.yaml`, farmFile("join-lab", "lab-b", all.slice(2)));
      await Deno.writeTextFile(`${dir}/other.yaml`, farmFile("other-lab", "lab-b", all));
      const a = rkhilOn(
        "lab-a",
        ...["run", "--farm", `${dir}/a.yaml`, "--suite", "boot", "--jobs", "1"],
        ...["--runs-dir", `${dir}/runs-a`],
      );
      // The run id lab-a wrote to the database.
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      try {
        let run: string | undefined;
        for (let i = 0; i < 1200 && !run; i++) {
          run = (await db.query("SELECT run FROM farm_runs").catch(() => ({ rows: [] }))).rows[0]
            ?.run;
          if (!run) await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(run, "lab-a never recorded its run");
        const b = await rkhilOn(
          "lab-b",
          ...["run", "--farm", `${dir}/b.yaml`, "--join", run, "--jobs", "1"],
          ...["--runs-dir", `${dir}/runs-b`],
        );
        const ra = await a;
        // Every job's boot MISSes (the console drops): exit 1 on each host that ran one.
        assert.equal(ra.code, 1, ra.stderr);
        assert.equal(b.code, 1, b.stderr);
        noStackTrace(ra);
        noStackTrace(b);
        const dirA = await runDirOf(`${dir}/runs-a`);
        const dirB = await runDirOf(`${dir}/runs-b`);
        assert.equal(basename(dirA), run);
        const resA = parseResults(await Deno.readTextFile(`${dirA}/results.jsonl`)).results;
        const resB = parseResults(await Deno.readTextFile(`${dirB}/results.jsonl`)).results;
        // Every job ran exactly once, on one of the hosts; both hosts ran jobs; lab-b only its own.
        assert.deepEqual([...resA, ...resB].map((x) => x.target).sort(), all);
        assert.ok(
          resA.length >= 1 && resB.length >= 1,
          `lab-a ${resA.length}, lab-b ${resB.length}`,
        );
        for (const x of resB) assert.ok(all.slice(2).includes(x.target), x.target);
        assert.ok([...resA, ...resB].every((x) => x.test === "boot" && x.verdict === "MISS"));
        // The queue: each job ended, taken by the host whose results hold it; no lease left.
        const jobs = (await db.query(
          "SELECT key, state, runner FROM farm_jobs WHERE run = $1 ORDER BY key",
          [run],
        )).rows;
        assert.equal(jobs.length, 6);
        for (const j of jobs) {
          assert.match(j.state, /^taken out: health check failed: boot MISS/);
          const onA = resA.some((x) => x.target === j.key);
          assert.equal(j.runner, onA ? `lab-a/${basename(dirA)}` : `lab-b/${basename(dirB)}`);
        }
        assert.equal((await db.query("SELECT * FROM farm_leases")).rows.length, 0);
        // Each host's history run holds its steps, once.
        const h = openHistory(url);
        try {
          for (const [d, res] of [[dirA, resA], [dirB, resB]] as const) {
            assert.deepEqual(
              queryResults(h, { runs: [basename(d)] }).map((x) => [x.target, x.verdict]),
              res.map((x) => [x.target, x.verdict]),
            );
          }
        } finally {
          h.close();
        }
        // Each host says whether the run is done and how to report on all of it.
        const whole =
          `rkhil report --history --db postgres://postgres@127\\.0\\.0\\.1:\\d+/joined ` +
          `--run ${run} --run ${basename(dirB)}\\n`;
        for (const r of [ra, b]) {
          assert.match(
            r.stdout,
            new RegExp(
              `run ${run}: (its queue is empty|not done: \\d+ jobs queued or running on other ` +
                `lab hosts); \\S+/report\\.md holds this host's steps, the whole run's: ${whole}`,
            ),
          );
        }
        assert.match(ra.stdout + b.stdout, /its queue is empty/);
        assert.match(b.stdout + b.stderr, new RegExp(`joined run ${run}: 6 jobs`));

        const s = await rkhilOn("lab-b", "farm", "status", "--farm", `${dir}/b.yaml`);
        assert.equal(s.code, 0, s.stderr);
        assert.match(
          s.stdout,
          new RegExp(
            `run ${run} \\(hosts: lab-a, lab-b\\): done, 0 queued, 0 running, 6 ended — ` +
              `lab-a/${run}: ${resA.length} ended; lab-b/${
                basename(dirB)
              }: ${resB.length} ended\\n`,
          ),
        );

        // What contradicts the run, or cannot join it, is one line and exit 2 before any work.
        const refused: [string[], RegExp][] = [
          [["--suite", "iommu"], /--suite iommu contradicts run \S+, which runs --suite boot/],
          [["--join", "no-such-run"], /has no farm run no-such-run/],
        ];
        for (const [extra, why] of refused) {
          const args = ["run", "--farm", `${dir}/b.yaml`, "--join", run, "--runs-dir", `${dir}/x`];
          const r = await rkhilOn("lab-b", ...args, ...extra);
          assert.equal(r.code, 2, r.stderr);
          assert.match(r.stderr, why);
          noStackTrace(r);
        }
        let r = await rkhilOn(
          "lab-b",
          ...["run", "--farm", `${dir}/other.yaml`, "--join", run, "--runs-dir", `${dir}/x`],
        );
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /is a run of farm join-lab, not of other-lab/);
        r = await rkhilOn("lab-b", "run", "--join", run);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /--join needs --farm FILE/);
        // A run whose recorded parameters cannot be read is refused before any work, too.
        await db.query(
          "INSERT INTO farm_runs VALUES ('damaged-run', 'join-lab', '{\"kernels\": 1', 'lab-a', now())",
        );
        r = await rkhilOn(
          "lab-b",
          ...["run", "--farm", `${dir}/b.yaml`, "--join", "damaged-run", "--runs-dir", `${dir}/x`],
        );
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /run damaged-run's parameters \(farm_runs\.spec\) are damaged/);
        noStackTrace(r);
        await assert.rejects(Deno.stat(`${dir}/x`), Deno.errors.NotFound);
      } finally {
        await db.end();
      }
    });
  } finally {
    listener.close();
    await serving.catch(() => {});
    await Promise.all(held);
  }
}
