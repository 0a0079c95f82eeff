/**
 * Leases on farm targets: one file per target in the farm's lease directory,
 * `<dir>/<target>.lease`, holding who has the target (user@host, pid and that process's start
 * time, the run directory), since when and until when. The holder renews it while it runs; a
 * lease past its expiry, or one whose holder process on this host is gone (a runner killed by
 * SIGKILL), is stale and the next taker takes it back.
 *
 * Atomicity: every read-decide-write runs under an exclusive `flock` of `<dir>/.lock` (released
 * by the kernel when the process dies, also on SIGKILL), and a lease file is replaced by
 * `rename` of a complete temporary file, so a reader never sees half a lease. That holds for
 * every runner on one host sharing a local filesystem. Across lab hosts it does not: `flock` on
 * NFS is advisory per client and another host's pid cannot be checked, so only the expiry
 * protects a lease there (leases across lab hosts belong in a shared database, not files).
 *
 * @module
 */
import { RkhilError, UserInputError } from "../errors.ts";

/** What a lease file holds. */
export interface Lease {
  /** The target's id. */
  target: string;
  /** `user@host` of the holder. */
  owner: string;
  /** The holder's host name. */
  host: string;
  /** The holder's process id. */
  pid: number;
  /** The holder process's start time (clock ticks since boot, /proc/PID/stat field 22). */
  pidStart?: number;
  /** The run directory the target works for. */
  run?: string;
  /** A random token identifying this taking of the lease. */
  token: string;
  /** When it was taken (ISO 8601). */
  start: string;
  /** When it was last renewed (ISO 8601). */
  renewed: string;
  /** When it expires unless renewed (ISO 8601). */
  expires: string;
}

/** A target someone else holds. */
export class LeaseHeldError extends RkhilError {
  /** The lease that holds it. */
  readonly lease: Lease;
  /**
   * The error for a target `lease` holds.
   *
   * @param lease the lease that holds the target
   */
  constructor(lease: Lease) {
    super(
      `target ${lease.target} is leased by ${lease.owner} (pid ${lease.pid}) since ${lease.start}` +
        `${lease.run ? ` for ${lease.run}` : ""}, until ${lease.expires}`,
      `wait for it, or free it with \`rkhil farm release ${lease.target}\` (--force if its ` +
        "holder is alive)",
      "MISS",
    );
    this.lease = lease;
  }
}

/** Start time of process `pid` (field 22 of /proc/PID/stat), or undefined when it is gone. */
export function processStart(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const v = Number(fields[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Why `lease` may be taken back at `now`, or undefined when it holds. */
export function staleReason(lease: Lease, now: Date = new Date()): string | undefined {
  if (Date.parse(lease.expires) <= now.getTime()) return `expired at ${lease.expires}`;
  if (lease.host === Deno.hostname()) {
    const start = processStart(lease.pid);
    if (start === undefined) return `its holder (pid ${lease.pid}) is gone`;
    if (lease.pidStart !== undefined && start !== lease.pidStart) {
      return `its holder (pid ${lease.pid}) is gone (the pid is another process now)`;
    }
  }
  return undefined;
}

function isLease(v: unknown): v is Lease {
  const l = v as Lease;
  return !!l && typeof l === "object" && typeof l.target === "string" &&
    typeof l.owner === "string" && typeof l.host === "string" && Number.isInteger(l.pid) &&
    typeof l.token === "string" && typeof l.start === "string" &&
    typeof l.expires === "string" && !Number.isNaN(Date.parse(l.expires));
}

const ID = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/**
 * Where a farm's leases live: the lease directory ({@linkcode LeaseDir}, one host) or the
 * farm's PostgreSQL database (runner/farm/pg_store.ts, several lab hosts). The scheduler,
 * {@linkcode LeaseKeeper} and `rkhil farm status|release` use either through this.
 */
export interface LeaseStore {
  /**
   * Take `target` for `ttlS` seconds, taking a stale lease back (`recovered` says from whom).
   *
   * @throws {LeaseHeldError} (MISS) when a live holder has it.
   */
  take(
    target: string,
    opts: { ttlS: number; run?: string },
  ): Promise<{ lease: Lease; recovered?: string }>;
  /** Extend `lease` by `ttlS` seconds from now; undefined when it is no longer ours. */
  renew(lease: Lease, ttlS: number): Promise<Lease | undefined>;
  /** Give `lease` back (nothing when it is no longer ours). */
  release(lease: Lease): Promise<void>;
  /**
   * Remove `target`'s lease when stale (or damaged); with `force`, whoever holds it.
   *
   * @throws {LeaseHeldError} when a live holder has it and `force` is not set.
   */
  free(target: string, force?: boolean): Promise<Lease | "damaged" | undefined>;
  /** Every lease, by target. */
  list(): Promise<{ target: string; lease: Lease | "damaged" }[]>;
}

/** The lease directory of one farm (see the module documentation). */
export class LeaseDir implements LeaseStore {
  /** The lease directory (created on first use). */
  readonly dir: string;
  /**
   * The lease directory at `dir`.
   *
   * @param dir the lease directory (created on first use)
   */
  constructor(dir: string) {
    this.dir = dir;
  }

  /** Path of `target`'s lease file. */
  path(target: string): string {
    if (!ID.test(target)) {
      throw new UserInputError(
        `not a target id: ${JSON.stringify(target.slice(0, 60))}`,
        "use the id of a target of the farm (rkhil farm status lists them)",
      );
    }
    return `${this.dir}/${target}.lease`;
  }

  /** Run `fn` holding the directory's exclusive lock. */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    await Deno.mkdir(this.dir, { recursive: true });
    const f = await Deno.open(`${this.dir}/.lock`, { create: true, write: true });
    try {
      await f.lock(true);
      return await fn();
    } finally {
      f.close(); // closing releases the flock
    }
  }

  /**
   * The lease of `target`: undefined when there is none; `"damaged"` for a file that is not a
   * lease (a torn write of an older rkhil, an edit by hand).
   */
  async read(target: string): Promise<Lease | "damaged" | undefined> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path(target));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
    try {
      const v = JSON.parse(text);
      return isLease(v) ? v : "damaged";
    } catch {
      return "damaged";
    }
  }

  async #write(lease: Lease): Promise<void> {
    const tmp = `${this.path(lease.target)}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(lease) + "\n");
    await Deno.rename(tmp, this.path(lease.target));
  }

  /**
   * Take `target` for `ttlS` seconds. A stale lease (expired, or its holder on this host gone)
   * or a damaged file is taken back; `recovered` says from whom.
   *
   * @throws {LeaseHeldError} (MISS) when a live holder has it.
   */
  take(
    target: string,
    opts: { ttlS: number; run?: string },
  ): Promise<{ lease: Lease; recovered?: string }> {
    return this.locked(async () => {
      const old = await this.read(target);
      let recovered: string | undefined;
      if (old === "damaged") recovered = "a damaged lease file";
      else if (old) {
        const why = staleReason(old);
        if (!why) throw new LeaseHeldError(old);
        recovered = `${old.owner} (pid ${old.pid}): ${why}`;
      }
      const now = new Date();
      const user = Deno.env.get("USER") ?? (Deno.uid() === 0 ? "root" : String(Deno.uid()));
      const lease: Lease = {
        target,
        owner: `${user}@${Deno.hostname()}`,
        host: Deno.hostname(),
        pid: Deno.pid,
        pidStart: processStart(Deno.pid),
        ...(opts.run ? { run: opts.run } : {}),
        token: crypto.randomUUID(),
        start: now.toISOString(),
        renewed: now.toISOString(),
        expires: new Date(now.getTime() + opts.ttlS * 1000).toISOString(),
      };
      await this.#write(lease);
      return { lease, ...(recovered ? { recovered } : {}) };
    });
  }

  /**
   * Extend `lease` by `ttlS` from now. Returns the renewed lease, or undefined when it is no
   * longer ours (released by force, or taken back after it expired).
   */
  renew(lease: Lease, ttlS: number): Promise<Lease | undefined> {
    return this.locked(async () => {
      const cur = await this.read(lease.target);
      if (!cur || cur === "damaged" || cur.token !== lease.token) return undefined;
      const now = new Date();
      const next = {
        ...cur,
        renewed: now.toISOString(),
        expires: new Date(now.getTime() + ttlS * 1000).toISOString(),
      };
      await this.#write(next);
      return next;
    });
  }

  /** Give `lease` back (nothing when it is no longer ours). */
  release(lease: Lease): Promise<void> {
    return this.locked(async () => {
      const cur = await this.read(lease.target);
      if (cur && cur !== "damaged" && cur.token === lease.token) {
        await Deno.remove(this.path(lease.target));
      }
    });
  }

  /**
   * `rkhil farm release ID`: remove the lease of `target` when it is stale (or damaged); with
   * `force`, whoever holds it (the holder finds it lost at its next renewal and stops taking
   * jobs for the target).
   *
   * @returns the lease removed, or undefined when there was none.
   * @throws {LeaseHeldError} when a live holder has it and `force` is not set.
   */
  free(target: string, force = false): Promise<Lease | "damaged" | undefined> {
    return this.locked(async () => {
      const cur = await this.read(target);
      if (!cur) return undefined;
      if (cur !== "damaged" && !force && !staleReason(cur)) throw new LeaseHeldError(cur);
      await Deno.remove(this.path(target));
      return cur;
    });
  }

  /** Every lease file of the directory, by target. */
  async list(): Promise<{ target: string; lease: Lease | "damaged" }[]> {
    const out: { target: string; lease: Lease | "damaged" }[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        const m = /^(.+)\.lease$/.exec(e.name);
        if (!m || !e.isFile || !ID.test(m[1])) continue;
        const lease = await this.read(m[1]);
        if (lease) out.push({ target: m[1], lease });
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return out.sort((a, b) => a.target.localeCompare(b.target));
  }
}

/**
 * Keeps a lease: renews it every third of its time-to-live until `stop()`. When a renewal finds
 * the lease no longer ours, `lost` says why (the scheduler starts no further job on the target).
 */
export class LeaseKeeper {
  #timer: ReturnType<typeof setInterval> | undefined;
  #lease: Lease;
  /** Why the lease was lost, once it was. */
  lost?: string;

  readonly #dir: LeaseStore;
  readonly #ttlS: number;

  /**
   * Start renewing.
   *
   * @param dir the lease directory or database
   * @param lease the lease just taken
   * @param ttlS its time-to-live in seconds (renewed every third of it)
   */
  constructor(dir: LeaseStore, lease: Lease, ttlS: number) {
    this.#dir = dir;
    this.#ttlS = ttlS;
    this.#lease = lease;
    this.#timer = setInterval(() => this.#renew(), Math.max(1000, (ttlS * 1000) / 3));
  }

  /** The lease as last renewed. */
  get lease(): Lease {
    return this.#lease;
  }

  async #renew(): Promise<void> {
    if (this.lost) return;
    try {
      const next = await this.#dir.renew(this.#lease, this.#ttlS);
      if (next) this.#lease = next;
      else {
        this.lost = `lease of ${this.#lease.target} lost (released by force or taken back)`;
      }
    } catch {
      // A failed renewal (a full disk, a slow filesystem) is retried at the next tick: the
      // time-to-live leaves two more before the lease expires.
    }
  }

  /** Stop renewing and give the lease back. Never throws. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#dir.release(this.#lease).catch(() => {});
  }
}
