/**
 * The farm's leases and job queue in PostgreSQL, for a farm that spans lab hosts (the farm
 * file's `database: postgres://...`; without it the lease files of runner/farm/lease.ts stay the
 * default). The same database holds the results history (runner/history/).
 *
 * - **Leases**: a row per target (`farm_leases`: owner `user@host`, pid and its start time, run,
 *   token, start, renewal, expiry). Every decision runs in one transaction holding an advisory
 *   lock of the farm (what the lease directory's `flock` is on one host), and expiry is judged
 *   by the database's clock (`now()`), so the hosts' clocks do not matter. A lease past its
 *   expiry is taken back by anyone; one whose holder is on this host and gone (a SIGKILLed
 *   runner) at once; another host's holder only after expiry (its pid cannot be checked here).
 * - **Queue**: a row per job (`farm_jobs`: run, key, target, kernel, position, state, runner).
 *   A runner takes the next queued job of a target with `SELECT ... FOR UPDATE SKIP LOCKED`,
 *   so two runners working one queue never take one job, and only while it holds the target's
 *   lease (unexpired); it ends only a job it still runs. A job taken under a lease whose holder
 *   was killed, interrupted or lost the lease goes back to the queue when its target is next
 *   taken. Database errors of the queue's calls are retried (3 tries) before an InfraError.
 *
 * @module
 */
// @ts-types="@types/pg"
import pg from "pg";
import { InfraError } from "../errors.ts";
import { redactUrl } from "../history/postgres.ts";
import { type Lease, LeaseHeldError, type LeaseStore, processStart } from "./lease.ts";

/** The tables, created when missing (under the schema lock). */
const FARM_DDL = `
CREATE TABLE IF NOT EXISTS farm_leases (
  farm TEXT NOT NULL,
  target TEXT NOT NULL,
  owner TEXT NOT NULL,
  host TEXT NOT NULL,
  pid BIGINT NOT NULL,
  pid_start BIGINT,
  run TEXT,
  token TEXT NOT NULL,
  start_at TIMESTAMPTZ NOT NULL,
  renewed_at TIMESTAMPTZ NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (farm, target)
);
CREATE TABLE IF NOT EXISTS farm_jobs (
  farm TEXT NOT NULL,
  run TEXT NOT NULL,
  key TEXT NOT NULL,
  target TEXT NOT NULL,
  kernel TEXT,
  pos INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'queued',
  runner TEXT,
  taken_at TIMESTAMPTZ,
  ended_at TIMESTAMPTZ,
  PRIMARY KEY (run, key)
);
-- The token of the lease a job was taken under (none: a target out, its jobs recorded MISS).
ALTER TABLE farm_jobs ADD COLUMN IF NOT EXISTS lease TEXT;
CREATE INDEX IF NOT EXISTS farm_jobs_queued ON farm_jobs (run, target, state, pos);
CREATE TABLE IF NOT EXISTS farm_runs (
  run TEXT PRIMARY KEY,
  farm TEXT NOT NULL,
  spec TEXT NOT NULL,
  host TEXT NOT NULL,
  started_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS farm_run_hosts (
  run TEXT NOT NULL,
  host_run TEXT NOT NULL,
  host TEXT NOT NULL,
  joined_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (run, host_run)
);`;

/** Advisory lock keys: the schema, and one per farm (its name hashed by the server). */
const SCHEMA_LOCK = 0x726b66; // "rkf"

/** The host name this runner gives in leases: `RKHIL_HOST` when set, else the host's name. */
export function leaseHost(): string {
  return Deno.env.get("RKHIL_HOST") || Deno.hostname();
}

function userName(): string {
  return Deno.env.get("USER") ?? (Deno.uid() === 0 ? "root" : String(Deno.uid()));
}

interface LeaseRow {
  target: string;
  owner: string;
  host: string;
  pid: string | number;
  pid_start: string | number | null;
  run: string | null;
  token: string;
  start_at: Date;
  renewed_at: Date;
  expires_at: Date;
  expired?: boolean;
}

function leaseOf(r: LeaseRow): Lease {
  return {
    target: r.target,
    owner: r.owner,
    host: r.host,
    pid: Number(r.pid),
    ...(r.pid_start === null ? {} : { pidStart: Number(r.pid_start) }),
    ...(r.run === null ? {} : { run: r.run }),
    token: r.token,
    start: r.start_at.toISOString(),
    renewed: r.renewed_at.toISOString(),
    expires: r.expires_at.toISOString(),
  };
}

/** Why a lease row may be taken back now (the database judged `expired`), or undefined. */
function staleRow(r: LeaseRow): string | undefined {
  if (r.expired) return `expired at ${r.expires_at.toISOString()}`;
  if (r.host === leaseHost()) {
    const start = processStart(Number(r.pid));
    if (start === undefined) return `its holder (pid ${r.pid}) is gone`;
    if (r.pid_start !== null && start !== Number(r.pid_start)) {
      return `its holder (pid ${r.pid}) is gone (the pid is another process now)`;
    }
  }
  return undefined;
}

/** One queued or taken job as the queue holds it. */
export interface QueuedJob {
  /** The job's key (`qemu-1 debian:trixie`, `rock-3b-1`). */
  key: string;
  /** Its target's id. */
  target: string;
  /** Kernel spec (embedded targets). */
  kernel?: string;
}

/** What a farm run was asked to do, as the database holds it for the lab hosts that join it. */
export interface SharedRunSpec {
  /** Kernel specs of the embedded targets. */
  kernels: string[];
  /** Suite names, in order. */
  suites: string[];
  /** Boards of the iommu suite's predictions. */
  predictBoards: string[];
}

/** A farm run in the database, as the starting host recorded it. */
export interface SharedRun {
  /** The run id (the starting host's run directory name). */
  run: string;
  /** The farm file's `name`. */
  farm: string;
  /** What the run was asked to do. */
  spec: SharedRunSpec;
  /** The starting lab host (`user@host`). */
  host: string;
  /** When it started (ISO 8601). */
  startedAt: string;
}

/** The queue of one run as `rkhil farm status` shows it. */
export interface RunQueueState {
  /** The run id (the starting host's run directory name). */
  run: string;
  /** Jobs waiting in the queue. */
  queued: number;
  /** Jobs a runner has taken and not ended. */
  running: number;
  /** Jobs that ended (any other state). */
  ended: number;
  /** Per runner (`host/run-dir-name`): jobs it has taken (running or ended). */
  byRunner: { runner: string; running: number; ended: number }[];
  /** The lab hosts working the run: host and its run directory name. */
  hosts: { host: string; hostRun: string }[];
}

/**
 * The leases and the job queue of one farm in PostgreSQL (see the module documentation).
 * Implements {@linkcode LeaseStore}, so the scheduler and `rkhil farm status|release` use it as
 * they use the lease directory.
 */
export class PgFarmStore implements LeaseStore {
  #pool: pg.Pool;
  /** The farm's name (rows are per farm: one database serves several farms). */
  readonly farm: string;
  /** The database URL, its password hidden (for messages). */
  readonly where: string;

  private constructor(pool: pg.Pool, farm: string, url: string) {
    this.#pool = pool;
    this.farm = farm;
    this.where = redactUrl(url);
  }

  /**
   * Connect to `url` and create the farm tables when missing.
   *
   * @throws {InfraError} when the server cannot be reached or refuses.
   */
  static async open(url: string, farm: string): Promise<PgFarmStore> {
    const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: 10_000, max: 4 });
    // An idle connection that dies (a server restart) must not crash the runner.
    pool.on("error", () => {});
    const store = new PgFarmStore(pool, farm, url);
    try {
      await store.#tx(async (c) => {
        await c.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`);
        await c.query(FARM_DDL);
      });
    } catch (err) {
      await pool.end().catch(() => {});
      throw new InfraError(
        `the farm's database ${store.where}: ${(err as Error).message.split("\n")[0]}`,
        "check the farm file's database URL and that the server is reachable from this host",
      );
    }
    return store;
  }

  /** Run `fn` in one transaction holding the farm's lock (lease decisions). */
  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>, farmLock = false): Promise<T> {
    const c = await this.#pool.connect();
    try {
      await c.query("BEGIN");
      if (farmLock) {
        await c.query("SELECT pg_advisory_xact_lock(hashtext('rkhil-farm'), hashtext($1))", [
          this.farm,
        ]);
      }
      const out = await fn(c);
      await c.query("COMMIT");
      return out;
    } catch (err) {
      await c.query("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  async #row(c: pg.PoolClient, target: string): Promise<LeaseRow | undefined> {
    const r = await c.query<LeaseRow>(
      `SELECT *, expires_at <= now() AS expired FROM farm_leases WHERE farm = $1 AND target = $2
       FOR UPDATE`,
      [this.farm, target],
    );
    return r.rows[0];
  }

  /**
   * Take `target` for `ttlS` seconds; a stale lease is taken back (`recovered` says from whom)
   * and the jobs its holder had taken go back to the queue.
   *
   * @throws {LeaseHeldError} (MISS) when a live holder has it.
   */
  take(
    target: string,
    opts: { ttlS: number; run?: string },
  ): Promise<{ lease: Lease; recovered?: string }> {
    return this.#tx(async (c) => {
      const old = await this.#row(c, target);
      let recovered: string | undefined;
      if (old) {
        const why = staleRow(old);
        if (!why) throw new LeaseHeldError(leaseOf(old));
        recovered = `${old.owner} (pid ${old.pid}): ${why}`;
      }
      // Only a target's holder runs its jobs: one taken under an earlier lease of the target and
      // left running lost its runner (killed, interrupted and its lease given back, or its lease
      // taken back) and goes back to the queue. A job taken with no lease (a target out, its
      // job being recorded MISS by a live runner) is that runner's.
      await c.query(
        `UPDATE farm_jobs SET state = 'queued', runner = NULL, lease = NULL, taken_at = NULL
         WHERE farm = $1 AND target = $2 AND state = 'running' AND lease IS NOT NULL`,
        [this.farm, target],
      );
      const host = leaseHost();
      const r = await c.query<LeaseRow>(
        `INSERT INTO farm_leases (farm, target, owner, host, pid, pid_start, run, token, start_at,
           renewed_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), now(), now() + $9 * interval '1 second')
         ON CONFLICT (farm, target) DO UPDATE SET owner = EXCLUDED.owner, host = EXCLUDED.host,
           pid = EXCLUDED.pid, pid_start = EXCLUDED.pid_start, run = EXCLUDED.run,
           token = EXCLUDED.token, start_at = EXCLUDED.start_at,
           renewed_at = EXCLUDED.renewed_at, expires_at = EXCLUDED.expires_at
         RETURNING *`,
        [
          this.farm,
          target,
          `${userName()}@${host}`,
          host,
          Deno.pid,
          processStart(Deno.pid) ?? null,
          opts.run ?? null,
          crypto.randomUUID(),
          opts.ttlS,
        ],
      );
      return { lease: leaseOf(r.rows[0]), ...(recovered ? { recovered } : {}) };
    }, true);
  }

  /**
   * Extend `lease` by `ttlS` from now; undefined when it is no longer ours: taken back or freed,
   * or expired (anyone may take it back then; a take under way holds the row, and the renewal
   * waits for it and then finds another token).
   */
  async renew(lease: Lease, ttlS: number): Promise<Lease | undefined> {
    const r = await this.#pool.query<LeaseRow>(
      `UPDATE farm_leases SET renewed_at = now(), expires_at = now() + $4 * interval '1 second'
       WHERE farm = $1 AND target = $2 AND token = $3 AND expires_at > now() RETURNING *`,
      [this.farm, lease.target, lease.token, ttlS],
    );
    return r.rows[0] ? leaseOf(r.rows[0]) : undefined;
  }

  /** Give `lease` back (nothing when it is no longer ours). */
  async release(lease: Lease): Promise<void> {
    await this.#pool.query(
      "DELETE FROM farm_leases WHERE farm = $1 AND target = $2 AND token = $3",
      [this.farm, lease.target, lease.token],
    );
  }

  /**
   * `rkhil farm release ID`: remove `target`'s lease when it is stale; with `force`, whoever
   * holds it.
   *
   * @throws {LeaseHeldError} when a live holder has it and `force` is not set.
   */
  free(target: string, force = false): Promise<Lease | undefined> {
    return this.#tx(async (c) => {
      const cur = await this.#row(c, target);
      if (!cur) return undefined;
      if (!force && !staleRow(cur)) throw new LeaseHeldError(leaseOf(cur));
      await c.query("DELETE FROM farm_leases WHERE farm = $1 AND target = $2", [
        this.farm,
        target,
      ]);
      return leaseOf(cur);
    }, true);
  }

  /** Every lease of the farm, by target. */
  async list(): Promise<{ target: string; lease: Lease }[]> {
    const r = await this.#pool.query<LeaseRow>(
      "SELECT * FROM farm_leases WHERE farm = $1 ORDER BY target",
      [this.farm],
    );
    return r.rows.map((x) => ({ target: x.target, lease: leaseOf(x) }));
  }

  /** Why `lease` may be taken back now by the database's clock, or undefined when it holds. */
  async stale(lease: Lease): Promise<string | undefined> {
    const r = await this.#pool.query<{ expired: boolean }>(
      "SELECT $1::timestamptz <= now() AS expired",
      [lease.expires],
    );
    return staleRow({
      ...lease,
      pid_start: lease.pidStart ?? null,
      run: lease.run ?? null,
      start_at: new Date(lease.start),
      renewed_at: new Date(lease.renewed),
      expires_at: new Date(lease.expires),
      expired: r.rows[0].expired,
    });
  }

  /**
   * Queue the jobs of run `run` (in order). Jobs the queue already has (a resumed run) are left
   * as they are.
   */
  async enqueue(run: string, jobs: readonly QueuedJob[]): Promise<void> {
    await this.#tx(async (c) => {
      for (const [i, j] of jobs.entries()) {
        await c.query(
          `INSERT INTO farm_jobs (farm, run, key, target, kernel, pos) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (run, key) DO NOTHING`,
          [this.farm, run, j.key, j.target, j.kernel ?? null, i],
        );
      }
    });
  }

  /**
   * Take the next queued job of `run` on `target` (`FOR UPDATE SKIP LOCKED`: a job another
   * runner is taking is passed over, never taken twice). `runner` names the taker in the job's
   * `runner` (`host/run-dir-name`). With `lease`, a job is taken only while that lease holds the
   * target (its token, unexpired; the row is locked so that no take can replace it meanwhile).
   * Without one (the target is out: its jobs are recorded MISS), only while no lease of `run`
   * holds the target (a runner of the run works it). Undefined when no job is left or the
   * condition does not hold.
   *
   * @throws {InfraError} when the database fails 3 tries.
   */
  next(
    run: string,
    target: string,
    runner: string,
    lease?: Lease,
  ): Promise<QueuedJob | undefined> {
    return this.#retry(`taking the next job of ${target}`, () =>
      this.#tx(async (c) => {
        const held = lease
          ? await c.query(
            `SELECT 1 FROM farm_leases WHERE farm = $1 AND target = $2 AND token = $3
             AND expires_at > now() FOR SHARE`,
            [this.farm, target, lease.token],
          )
          : await c.query(
            `SELECT 1 FROM farm_leases WHERE farm = $1 AND target = $2 AND run = $3
             AND expires_at > now()`,
            [this.farm, target, run],
          );
        if ((held.rowCount === 1) !== !!lease) return undefined;
        const r = await c.query<{ key: string; target: string; kernel: string | null }>(
          `UPDATE farm_jobs SET state = 'running', runner = $3, lease = $4, taken_at = now()
           WHERE (run, key) = (
             SELECT run, key FROM farm_jobs WHERE run = $1 AND target = $2 AND state = 'queued'
             ORDER BY pos FOR UPDATE SKIP LOCKED LIMIT 1)
           RETURNING key, target, kernel`,
          [run, target, runner, lease?.token ?? null],
        );
        const x = r.rows[0];
        return x
          ? { key: x.key, target: x.target, ...(x.kernel ? { kernel: x.kernel } : {}) }
          : undefined;
      }));
  }

  /**
   * Mark job `key` of `run` ended with `state` (`done`, `taken out: ...`, `out: ...`,
   * `failed: ...`), when `runner` still runs it (nothing when it went back to the queue: its
   * lease was taken back). True when it did.
   *
   * @throws {InfraError} when the database fails 3 tries.
   */
  end(run: string, key: string, state: string, runner: string): Promise<boolean> {
    return this.#retry(`ending job ${key}`, async () => {
      const r = await this.#pool.query(
        `UPDATE farm_jobs SET state = $3, ended_at = now()
         WHERE run = $1 AND key = $2 AND runner = $4 AND state = 'running'`,
        [run, key, state.slice(0, 500), runner],
      );
      return r.rowCount === 1;
    });
  }

  /**
   * The jobs of `run` with their states, in queue order.
   *
   * @throws {InfraError} when the database fails 3 tries.
   */
  jobs(
    run: string,
  ): Promise<{ key: string; target: string; state: string; runner: string | null }[]> {
    return this.#retry(`reading run ${run}'s jobs`, async () =>
      (await this.#pool.query(
        "SELECT key, target, state, runner FROM farm_jobs WHERE run = $1 ORDER BY pos",
        [run],
      )).rows);
  }

  /**
   * `fn` tried up to 3 times (0.5 s, then 1 s between tries: a server restarting, a dropped
   * connection); then an InfraError saying in one line what failed.
   */
  async #retry<T>(what: string, fn: () => Promise<T>, waitsMs = [500, 1000]): Promise<T> {
    for (let i = 0;; i++) {
      try {
        return await fn();
      } catch (err) {
        if (i >= waitsMs.length) {
          throw new InfraError(
            `the farm's database ${this.where}: ${what}: ${
              String((err as Error)?.message ?? err).split("\n")[0].slice(0, 200)
            } (${i + 1} tries)`,
            "check that the server is up and reachable from this host",
          );
        }
        await new Promise((r) => setTimeout(r, waitsMs[i]));
      }
    }
  }

  /**
   * Record run `run` (its starting host's run directory name) and what it runs, so that other
   * lab hosts can join it. Nothing when the run is recorded already (a resumed run).
   */
  async startRun(run: string, spec: SharedRunSpec): Promise<void> {
    await this.#tx(async (c) => {
      await c.query(
        `INSERT INTO farm_runs (run, farm, spec, host, started_at) VALUES ($1, $2, $3, $4, now())
         ON CONFLICT (run) DO NOTHING`,
        [run, this.farm, JSON.stringify(spec), leaseHost()],
      );
      await c.query(
        `INSERT INTO farm_run_hosts (run, host_run, host, joined_at) VALUES ($1, $1, $2, now())
         ON CONFLICT DO NOTHING`,
        [run, leaseHost()],
      );
    });
  }

  /**
   * The run `run` as recorded by {@linkcode startRun} (any farm: the caller checks it is this
   * one), or undefined when the database has no such run.
   *
   * @throws {InfraError} when the run's recorded parameters are damaged.
   */
  async sharedRun(run: string): Promise<SharedRun | undefined> {
    const r = await this.#pool.query<
      { run: string; farm: string; spec: string; host: string; started_at: Date }
    >("SELECT * FROM farm_runs WHERE run = $1", [run]);
    const x = r.rows[0];
    if (!x) return undefined;
    let spec: SharedRunSpec | undefined;
    try {
      spec = JSON.parse(x.spec);
    } catch { /* damaged: refused below */ }
    const strings = (v: unknown) => Array.isArray(v) && v.every((e) => typeof e === "string");
    if (!spec || !strings(spec.kernels) || !strings(spec.suites) || !strings(spec.predictBoards)) {
      throw new InfraError(
        `the farm's database ${this.where}: run ${run}'s parameters (farm_runs.spec) are damaged`,
        "start the run again on one lab host (its kernels and suites cannot be read)",
      );
    }
    return {
      run: x.run,
      farm: x.farm,
      spec,
      host: x.host,
      startedAt: x.started_at.toISOString(),
    };
  }

  /** Record that this lab host works run `run` from its run directory named `hostRun`. */
  async joinRun(run: string, hostRun: string): Promise<void> {
    await this.#pool.query(
      `INSERT INTO farm_run_hosts (run, host_run, host, joined_at) VALUES ($1, $2, $3, now())
       ON CONFLICT DO NOTHING`,
      [run, hostRun, leaseHost()],
    );
  }

  /** The run directory names of the lab hosts that worked run `run`, the starting host's first. */
  async hostRuns(run: string): Promise<string[]> {
    return (await this.#hosts(run)).map((x) => x.hostRun);
  }

  /** The lab hosts working run `run` and their run directory names, the starting host's first. */
  async #hosts(run: string): Promise<{ host: string; hostRun: string }[]> {
    const r = await this.#pool.query<{ host: string; host_run: string }>(
      "SELECT host, host_run FROM farm_run_hosts WHERE run = $1 ORDER BY joined_at, host_run",
      [run],
    );
    return r.rows.map((x) => ({ host: x.host, hostRun: x.host_run }));
  }

  /**
   * The queue of each run of this farm that has a job queued or running, and of the `recent`
   * runs started last; oldest first.
   */
  async queueState(recent = 3): Promise<RunQueueState[]> {
    const runs = (await this.#pool.query<{ run: string }>(
      `SELECT run FROM farm_jobs WHERE farm = $1 GROUP BY run
       HAVING count(*) FILTER (WHERE state IN ('queued', 'running')) > 0
          OR run IN (SELECT run FROM farm_runs WHERE farm = $1 ORDER BY started_at DESC LIMIT $2)
       ORDER BY min(taken_at) NULLS LAST, run`,
      [this.farm, recent],
    )).rows.map((x) => x.run);
    const out: RunQueueState[] = [];
    for (const run of runs) {
      const rows = (await this.#pool.query<{ state: string; runner: string | null; n: string }>(
        `SELECT state, runner, count(*) AS n FROM farm_jobs WHERE run = $1 GROUP BY state, runner`,
        [run],
      )).rows;
      const q: RunQueueState = {
        run,
        queued: 0,
        running: 0,
        ended: 0,
        byRunner: [],
        hosts: await this.#hosts(run),
      };
      for (const x of rows) {
        const n = Number(x.n);
        const kind = x.state === "queued" ? "queued" : x.state === "running" ? "running" : "ended";
        q[kind] += n;
        if (x.runner === null || kind === "queued") continue;
        let b = q.byRunner.find((y) => y.runner === x.runner);
        if (!b) q.byRunner.push(b = { runner: x.runner, running: 0, ended: 0 });
        if (kind === "running") b.running += n;
        else b.ended += n;
      }
      q.byRunner.sort((a, b) => a.runner.localeCompare(b.runner));
      out.push(q);
    }
    return out;
  }

  /** Close the connections. Idempotent; never throws. */
  async close(): Promise<void> {
    await this.#pool.end().catch(() => {});
  }

  /** {@linkcode close} (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
