/**
 * A throwaway PostgreSQL cluster for tests and benchmarks: Debian's own `postgresql` binaries
 * (`/usr/lib/postgresql/<major>/bin/initdb` and `postgres`, package `postgresql`, installed
 * through runner/debian/host_tools.ts when missing) run a fresh cluster in a temporary
 * directory, on a free port of 127.0.0.1 (its unix socket in the same directory), trust
 * authentication for the `postgres` role. PostgreSQL refuses to run as root, so as root the
 * programs run as the `postgres` user the package creates (`setpriv`, which execs: the spawned
 * process is the postmaster itself). {@linkcode PgServer.stop} shuts it down (fast shutdown,
 * SIGKILL after 10 s) and removes the directory: no process or file is left.
 *
 * ```ts
 * await using pg = await PgServer.start();
 * const url = await pg.createDatabase("history"); // postgres://postgres@127.0.0.1:PORT/history
 * ```
 *
 * @module
 */
import { InfraError } from "../errors.ts";
import { ensureHostTool, hostCommand } from "../debian/host_tools.ts";
import { run } from "../debian/proc.ts";
// @ts-types="@types/pg"
import pg from "pg";

/** Debian 12's PostgreSQL major version: the path the install path installs when none is. */
const DEBIAN_MAJOR = 15;

/** `/usr/lib/postgresql/<major>/bin` of the newest installed PostgreSQL, or undefined. */
function installedBinDir(): string | undefined {
  let best: number | undefined;
  try {
    for (const e of Deno.readDirSync("/usr/lib/postgresql")) {
      const v = Number(e.name);
      if (!Number.isInteger(v)) continue;
      try {
        Deno.statSync(`/usr/lib/postgresql/${v}/bin/initdb`);
        Deno.statSync(`/usr/lib/postgresql/${v}/bin/postgres`);
      } catch {
        continue;
      }
      if (best === undefined || v > best) best = v;
    }
  } catch { /* no PostgreSQL installed */ }
  return best === undefined ? undefined : `/usr/lib/postgresql/${best}/bin`;
}

/**
 * The PostgreSQL server binaries' directory, installing the `postgresql` package (declared for
 * `initdb` and `postgres` in runner/debian/host_tools.ts) when none is installed.
 *
 * @throws {InfraError} when the package cannot be installed.
 */
export async function postgresBinDir(): Promise<string> {
  const have = installedBinDir();
  if (have) {
    // Declared programs: checked through the one install path like every other.
    await ensureHostTool(`${have}/initdb`);
    await ensureHostTool(`${have}/postgres`);
    return have;
  }
  try {
    await ensureHostTool(`/usr/lib/postgresql/${DEBIAN_MAJOR}/bin/initdb`);
  } catch (err) {
    // Another Debian release installs another major version: look again before failing.
    if (!installedBinDir()) throw err;
  }
  const dir = installedBinDir();
  if (!dir) {
    throw new InfraError(
      "the postgresql package is installed but /usr/lib/postgresql/*/bin/initdb is missing",
      "reinstall it: apt-get install --reinstall postgresql",
    );
  }
  return dir;
}

/** A free TCP port on 127.0.0.1 (the kernel's choice; released before it is returned). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The postgres user's uid and gid, when this process is root (else undefined: run as is). */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (Deno.uid() !== 0) return undefined;
  const line = Deno.readTextFileSync("/etc/passwd").split("\n").find((l) =>
    l.startsWith("postgres:")
  );
  const f = line?.split(":");
  if (!f || !Number.isInteger(Number(f[2]))) {
    throw new InfraError(
      "PostgreSQL refuses to run as root and there is no postgres user",
      "install the postgresql package (it creates the postgres user)",
    );
  }
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** Options of {@linkcode PgServer.start}. */
export interface PgServerOptions {
  /** Give up waiting for the server to accept connections after this long (default 60 s). */
  startTimeoutMs?: number;
  /**
   * The 127.0.0.1 port to try first (default: one the kernel says is free). Taken by another
   * process, the next attempts use free ports (three attempts in all).
   */
  firstPort?: number;
}

/** A running throwaway cluster (see the module documentation). */
export class PgServer implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #log: string[];
  #stopped = false;
  /** The cluster's directory (data, socket, log); removed by {@linkcode stop}. */
  readonly dir: string;
  /** The TCP port on 127.0.0.1. */
  readonly port: number;

  private constructor(child: Deno.ChildProcess, dir: string, port: number, log: string[]) {
    this.#child = child;
    this.dir = dir;
    this.port = port;
    this.#log = log;
  }

  /** The URL of database `db` (default `postgres`) as the `postgres` superuser. */
  url(db = "postgres"): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  /** The postmaster's process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /**
   * Initialise a cluster in a new temporary directory and start it.
   *
   * @throws {InfraError} when initdb fails or the server does not accept connections in time
   *   (the message carries the server's last log lines); nothing is left behind.
   */
  static async start(opts: PgServerOptions = {}): Promise<PgServer> {
    const bin = await postgresBinDir();
    const user = postgresUser();
    const as = (prog: string, args: string[]): [string, string[]] =>
      user
        ? ["setpriv", [
          "--reuid",
          String(user.uid),
          "--regid",
          String(user.gid),
          "--init-groups",
          "--",
          prog,
          ...args,
        ]]
        : [prog, args];
    const dir = await Deno.makeTempDir({ prefix: "rkhil-pg-" });
    let server: PgServer | undefined;
    try {
      if (user) await Deno.chown(dir, user.uid, user.gid);
      const [cmd, args] = as(`${bin}/initdb`, [
        "-D",
        `${dir}/data`,
        "-U",
        "postgres",
        "--auth=trust",
        "--no-locale",
        "--encoding=UTF8",
        "--no-sync",
      ]);
      await run(cmd, args, { cwd: dir, timeoutMs: 120_000, owner: "PgServer.start initdb" });
      // The port is free when chosen; another process may bind it before postgres does: then
      // postgres exits saying so and the next attempt takes another port.
      for (let attempt = 1;; attempt++) {
        const port = attempt === 1 && opts.firstPort ? opts.firstPort : freePort();
        const [pcmd, pargs] = as(`${bin}/postgres`, [
          "-D",
          `${dir}/data`,
          "-p",
          String(port),
          "-h",
          "127.0.0.1",
          "-k",
          dir,
          // A throwaway cluster: durability is not wanted, speed is.
          "-c",
          "fsync=off",
          "-c",
          "synchronous_commit=off",
          "-c",
          "full_page_writes=off",
        ]);
        const child = (await hostCommand(pcmd, {
          args: pargs,
          cwd: dir,
          stdin: "null",
          stdout: "null",
          stderr: "piped",
        })).spawn();
        const log: string[] = [];
        (async () => {
          const dec = new TextDecoder();
          for await (const chunk of child.stderr) {
            log.push(...dec.decode(chunk).split("\n").filter(Boolean));
            if (log.length > 200) log.splice(0, log.length - 200);
          }
        })().catch(() => {});
        server = new PgServer(child, dir, port, log);
        try {
          await server.#ready(opts.startTimeoutMs ?? 60_000);
          return server;
        } catch (err) {
          await server.#kill();
          server = undefined;
          if (attempt >= 3 || !/could not bind|already in use/i.test(log.join("\n"))) throw err;
        }
      }
    } catch (err) {
      if (server) await server.stop();
      else await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw err;
    }
  }

  async #ready(timeoutMs: number): Promise<void> {
    const exited = this.#child.status.then((s) => s);
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      const done = await Promise.race([exited, new Promise((r) => setTimeout(r, 100, null))]);
      if (done) {
        throw new InfraError(
          `PostgreSQL exited at start (status ${(done as Deno.CommandStatus).code}):\n${
            this.#log.slice(-8).join("\n")
          }`,
          "read the lines above; the cluster was in " + this.dir,
        );
      }
      const c = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 2000 });
      try {
        await c.connect();
        await c.query("SELECT 1");
        return;
      } catch (err) {
        last = (err as Error).message;
      } finally {
        await c.end().catch(() => {});
      }
    }
    throw new InfraError(
      `PostgreSQL did not accept connections on 127.0.0.1:${this.port} within ${timeoutMs} ms ` +
        `(${last}):\n${this.#log.slice(-8).join("\n")}`,
      "the host may be overloaded; try again",
    );
  }

  /**
   * Create database `name` (lower-case letters, digits and `_`) and return its URL.
   *
   * @throws {Error} for a name that is not one, or when the server refuses.
   */
  async createDatabase(name: string): Promise<string> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a database name: ${name}`);
    const c = new pg.Client({ connectionString: this.url() });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${name}`);
    } finally {
      await c.end();
    }
    return this.url(name);
  }

  /** The server's last log lines (its stderr). */
  get log(): readonly string[] {
    return this.#log;
  }

  /**
   * Shut the server down (SIGINT: fast shutdown; SIGKILL after 10 s) and remove its directory.
   * Idempotent; never throws.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#kill();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** End the server process (fast shutdown; SIGKILL after 10 s); the directory stays. */
  async #kill(): Promise<void> {
    try {
      this.#child.kill("SIGINT");
    } catch { /* already gone */ }
    const t = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 10_000);
    await this.#child.status.catch(() => {});
    clearTimeout(t);
    await this.#child.stderr.cancel().catch(() => {});
  }

  /** {@linkcode stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
