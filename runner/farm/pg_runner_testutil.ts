/**
 * A lab host's runner reduced to the farm's lease and queue layer, for
 * runner/farm/pg_store_test.ts: run as its own process (`deno run -A pg_runner_testutil.ts URL
 * FARM RUN TARGETS WORK_MS TTL_S [hang]`, `RKHIL_HOST` naming the lab host). For each target it
 * takes the target's lease (retrying while another runner holds it), takes the run's next job
 * of the target from the queue (`FOR UPDATE SKIP LOCKED`), "runs" it for WORK_MS while the
 * lease is renewed, logs the work in `work_log` with the database's clock, ends the job and
 * gives the lease back; until the target's queue is empty. With `hang`, it stops after taking
 * its first job and waits to be killed (a runner that died mid-job). Prints one JSON line per
 * event (`ready`, `took`, `recovered`, `done`).
 *
 * @module
 */
// @ts-types="@types/pg"
import pg from "pg";
import assert from "node:assert/strict";
import { LeaseHeldError, LeaseKeeper } from "./lease.ts";
import { PgFarmStore } from "./pg_store.ts";

const [url, farm, run, targetList, workMs, ttlS, mode] = Deno.args;
const say = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
const host = Deno.env.get("RKHIL_HOST") ?? "?";

const store = await PgFarmStore.open(url, farm);
const log = new pg.Client({ connectionString: url });
await log.connect();
await log.query(
  `CREATE TABLE IF NOT EXISTS work_log (target TEXT, job TEXT, host TEXT, started TIMESTAMPTZ,
     ended TIMESTAMPTZ)`,
).catch(() => {}); // two runners creating it at once: one wins
say({ ready: host });
// The run's jobs are queued after both runners are up: wait for them.
while ((await store.jobs(run)).length === 0) await new Promise((r) => setTimeout(r, 50));

async function work(target: string): Promise<void> {
  for (;;) {
    let taken;
    try {
      taken = await store.take(target, { ttlS: Number(ttlS), run });
    } catch (err) {
      if (!(err instanceof LeaseHeldError)) throw err;
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    if (taken.recovered) say({ recovered: target, from: taken.recovered, host });
    const keeper = new LeaseKeeper(store, taken.lease, Number(ttlS));
    try {
      const job = await store.next(run, target, `${host}/${run}`, taken.lease);
      // Holding the lease, no other runner has a job of this target running (a dead runner's
      // went back to the queue when the lease was taken): no job is the target's queue empty.
      if (!job) return;
      say({ took: job.key, host });
      if (mode === "hang") {
        await new Promise(() => {}); // killed here, holding the lease and the job
      }
      const started = (await log.query("SELECT now() AS t")).rows[0].t;
      await new Promise((r) => setTimeout(r, Number(workMs)));
      await log.query(
        "INSERT INTO work_log VALUES ($1, $2, $3, $4, now())",
        [target, job.key, host, started],
      );
      assert(await store.end(run, job.key, "done", `${host}/${run}`), `${job.key} not ended`);
      say({ done: job.key, host });
    } finally {
      await keeper.stop();
    }
    // Let the other runners at the lease before taking it again (the test wants contention).
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 100));
  }
}

await Promise.all(targetList.split(",").map(work));
await log.end();
await store.close();
