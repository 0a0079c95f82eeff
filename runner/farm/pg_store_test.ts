import assert from "node:assert/strict";
// @ts-types="@types/pg"
import pg from "pg";
import { PgServer } from "../pg/server.ts";
import { InfraError } from "../errors.ts";
import { LeaseHeldError } from "./lease.ts";
import { PgFarmStore } from "./pg_store.ts";

const RUNNER = new URL("./pg_runner_testutil.ts", import.meta.url).pathname;

/** A runner process acting as lab host `host` (see pg_runner_testutil.ts); its events. */
function runner(host: string, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", RUNNER, ...args],
    env: { RKHIL_HOST: host },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const events: Record<string, string>[] = [];
  const waiters: { pred: (e: Record<string, string>) => boolean; resolve: () => void }[] = [];
  const lines = (async () => {
    let buf = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const e = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        events.push(e);
        for (const w of waiters.filter((w) => w.pred(e))) w.resolve();
      }
    }
  })();
  const stderr = new Response(child.stderr).text();
  return {
    child,
    events,
    /** Resolves at the first event `pred` accepts (one already seen included). */
    when(pred: (e: Record<string, string>) => boolean): Promise<void> {
      if (events.some(pred)) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
    async status() {
      const s = await child.status;
      await lines;
      return { code: s.code, stderr: await stderr };
    },
  };
}

/** Two lab hosts' runners on one queue; a SIGKILLed one's lease taken back after expiry. */
async function twoHosts(server: PgServer): Promise<void> {
  const url = await server.createDatabase("farm");
  const store = await PgFarmStore.open(url, "rock-lab");
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    // Two runners, lab-a and lab-b, work one run's queue: 3 targets × 6 jobs, 150 ms each,
    // each job under its own taking of the target's lease (the most contention there can be).
    const a = runner("lab-a", [url, "rock-lab", "run-1", "t1,t2,t3", "150", "10"]);
    const b = runner("lab-b", [url, "rock-lab", "run-1", "t1,t2,t3", "150", "10"]);
    await Promise.all([a.when((e) => !!e.ready), b.when((e) => !!e.ready)]);
    const jobs = ["t1", "t2", "t3"].flatMap((t) =>
      [1, 2, 3, 4, 5, 6].map((k) => ({ key: `${t} k${k}`, target: t, kernel: `k${k}` }))
    );
    await store.enqueue("run-1", jobs);
    await store.enqueue("run-1", jobs); // again (a resume): nothing doubles
    const [sa, sb] = await Promise.all([a.status(), b.status()]);
    assert.equal(sa.code, 0, sa.stderr);
    assert.equal(sb.code, 0, sb.stderr);
    // Every job ran exactly once, by one of the two.
    const states = await store.jobs("run-1");
    assert.equal(states.length, 18);
    assert.ok(states.every((j) => j.state === "done"), JSON.stringify(states));
    const work = (await db.query(
      "SELECT target, job, host, started, ended FROM work_log ORDER BY target, started",
    )).rows;
    assert.deepEqual(work.map((w) => w.job).sort(), jobs.map((j) => j.key).sort());
    // No target held twice: on each target, each job starts after the one before ended.
    for (let i = 1; i < work.length; i++) {
      if (work[i].target !== work[i - 1].target) continue;
      assert.ok(
        work[i].started >= work[i - 1].ended,
        `${work[i].target}: ${work[i].host}'s job started before ${work[i - 1].host}'s ended`,
      );
    }
    const hosts = new Set(work.map((w) => w.host));
    assert.deepEqual([...hosts].sort(), ["lab-a", "lab-b"], "both runners took jobs");
    assert.deepEqual(await store.list(), [], "every lease given back");

    // lab-c takes t9's lease (3 s) and a job, then is SIGKILLed mid-job. lab-d, another host,
    // cannot check lab-c's pid: it gets the lease only after it expired, and runs the job.
    await store.enqueue("run-2", [{ key: "t9 k1", target: "t9", kernel: "k1" }]);
    const c = runner("lab-c", [url, "rock-lab", "run-2", "t9", "100", "3", "hang"]);
    await c.when((e) => !!e.took);
    const held = (await store.list())[0].lease;
    assert.match(held.owner, /@lab-c$/);
    c.child.kill("SIGKILL");
    await c.status();
    await assert.rejects(
      () => store.take("t9", { ttlS: 3 }),
      (e: unknown) => e instanceof LeaseHeldError && /t9 is leased by .*@lab-c/.test(e.message),
    );
    const d = runner("lab-d", [url, "rock-lab", "run-2", "t9", "100", "3"]);
    const sd = await d.status();
    assert.equal(sd.code, 0, sd.stderr);
    const rec = d.events.find((e) => e.recovered);
    assert.ok(rec, JSON.stringify(d.events));
    assert.match(rec.from, /@lab-c \(pid \d+\): expired at /);
    const took = (await db.query("SELECT started FROM work_log WHERE job = 't9 k1'")).rows;
    assert.equal(took.length, 1, "the killed runner's job ran once, by lab-d");
    assert.ok(took[0].started >= new Date(held.expires), "not before the lease expired");
    assert.deepEqual((await store.jobs("run-2")).map((j) => j.state), ["done"]);
  } finally {
    await db.end();
    await store.close();
  }
}

/**
 * A holder whose lease expired and was taken back by another lab host: its next() and end() do
 * nothing (the job it ran went back to the queue, the new holder runs it), its renewal fails.
 */
async function expiredHolder(server: PgServer): Promise<void> {
  const url = await server.createDatabase("expired");
  const a = await PgFarmStore.open(url, "f");
  const b = await PgFarmStore.open(url, "f");
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await a.enqueue("r", ["j1", "j2", "j3"].map((key) => ({ key, target: "t" })));
    // Another run's job of the target, taken with no lease (recorded MISS by a live runner).
    await a.enqueue("r-other", [{ key: "o1", target: "t" }]);
    assert.equal((await a.next("r-other", "t", "lab-c/r-other"))?.key, "o1");
    const { lease: la } = await a.take("t", { ttlS: 60, run: "r" });
    assert.equal((await a.next("r", "t", "lab-a/r", la))?.key, "j1");
    // No lease: nothing while a live lease of the run holds the target.
    assert.equal(await b.next("r", "t", "lab-b/r"), undefined);
    // lab-a stalls past its expiry; lab-b takes the lease back.
    await db.query("UPDATE farm_leases SET expires_at = now() - interval '1 second'");
    assert.equal(await a.next("r", "t", "lab-a/r", la), undefined, "an expired lease takes none");
    const { lease: lb, recovered } = await b.take("t", { ttlS: 60, run: "r" });
    assert.match(recovered!, /expired at /);
    assert.equal(await a.renew(la, 60), undefined, "the old holder's renewal fails");
    assert.equal(await a.next("r", "t", "lab-a/r", la), undefined, "the old holder takes none");
    assert.equal(await a.end("r", "j1", "done", "lab-a/r"), false, "nor ends its old job");
    // j1 went back to the queue (taken under the old lease); the MISS job of no lease did not.
    assert.deepEqual(
      (await a.jobs("r")).map((j) => [j.key, j.state, j.runner]),
      [["j1", "queued", null], ["j2", "queued", null], ["j3", "queued", null]],
    );
    assert.deepEqual((await a.jobs("r-other")).map((j) => j.state), ["running"]);
    assert.equal((await b.next("r", "t", "lab-b/r", lb))?.key, "j1");
    assert.equal(await a.end("r", "j1", "done", "lab-a/r"), false, "lab-b's now");
    assert.equal(await b.end("r", "j1", "done", "lab-b/r"), true);
    assert.equal(await b.end("r", "j1", "done again", "lab-b/r"), false, "ended once");
    assert.deepEqual((await a.jobs("r")).map((j) => j.state), ["done", "queued", "queued"]);
    // A renewal of a live lease works, and keeps its token.
    assert.equal((await b.renew(lb, 60))?.token, lb.token);
  } finally {
    await db.end();
    await a.close();
    await b.close();
  }
}

/** A queue call whose database fails: retried, then one line naming the database and the call. */
async function queueDown(server: PgServer): Promise<void> {
  const url = await server.createDatabase("down");
  const store = await PgFarmStore.open(url, "f");
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await db.query("ALTER TABLE farm_jobs RENAME TO farm_jobs_gone");
    const t0 = performance.now();
    await assert.rejects(() => store.jobs("r"), (e: unknown) => {
      assert.ok(e instanceof InfraError, String(e));
      assert.match(
        e.message,
        /^the farm's database postgres:\/\/postgres@127\.0\.0\.1:\d+\/down: reading run r's jobs: relation "farm_jobs" does not exist \(3 tries\)$/,
      );
      return true;
    });
    assert.ok(performance.now() - t0 >= 1400, "retried with backoff");
    await assert.rejects(() => store.end("r", "k", "done", "h/r"), /ending job k: .*\(3 tries\)/);
  } finally {
    await db.end();
    await store.close();
  }
}

/** One lease row's life; then the server stops (last: it leaves the cluster down). */
async function leaseRow(server: PgServer): Promise<void> {
  const url = await server.createDatabase("leases");
  const store = await PgFarmStore.open(url, "f");
  const other = await PgFarmStore.open(url, "other-farm");
  try {
    const { lease, recovered } = await store.take("q1", { ttlS: 60, run: "runs/x" });
    assert.equal(recovered, undefined);
    assert.equal(lease.pid, Deno.pid);
    assert.equal(lease.run, "runs/x");
    await assert.rejects(() => store.take("q1", { ttlS: 60 }), LeaseHeldError);
    // One database, several farms: another farm's q1 is another target.
    await other.take("q1", { ttlS: 60 });
    const renewed = await store.renew(lease, 120);
    assert.ok(renewed && Date.parse(renewed.expires) > Date.parse(lease.expires));
    assert.equal(await store.stale(renewed!), undefined);
    await assert.rejects(() => store.free("q1"), LeaseHeldError);
    const freed = await store.free("q1", true);
    assert.equal(freed?.token, lease.token);
    assert.equal(await store.renew(lease, 60), undefined, "a lease freed by force is lost");
    assert.equal(await store.free("q1"), undefined);
    // A holder on this host that is gone (a dead pid) is stale at once.
    const { lease: mine } = await store.take("q2", { ttlS: 600 });
    const dead = { ...mine, pid: 2 ** 22 + 12345 };
    assert.match((await store.stale(dead))!, /is gone/);
  } finally {
    await store.close();
    await other.close();
  }
  // A database that is down: an infrastructure error naming it.
  await server.stop();
  await assert.rejects(
    () => PgFarmStore.open(url, "f"),
    /the farm's database postgres:\/\/postgres@127\.0\.0\.1:\d+\/leases: /,
  );
}

Deno.test("leases and the job queue in PostgreSQL (one throwaway cluster)", async (t) => {
  await using server = await PgServer.start();
  await t.step(
    "two lab hosts' runners share a farm, a killed runner's lease is taken back after expiry",
    () => twoHosts(server),
  );
  await t.step(
    "an expired holder takes and ends no job once another lab host took the lease back",
    () => expiredHolder(server),
  );
  await t.step(
    "a queue call whose database fails is retried, then one InfraError",
    () => queueDown(server),
  );
  await t.step(
    "a lease row: taken, renewed, refused to others, freed only when stale or by force",
    () => leaseRow(server),
  );
});
