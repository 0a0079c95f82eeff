/**
 * The results history on PostgreSQL (`--db postgres://user@host/db`): the same
 * {@linkcode Database} the embedded `node:sqlite` history gives, so the schema, writer and
 * queries are one code on both stores.
 *
 * The history's code is synchronous (as `node:sqlite` is); the `pg` client is asynchronous. The
 * client therefore lives in a worker thread (runner/history/_pg_worker.ts) and each call blocks
 * the caller on a shared flag (`Atomics.wait`) until the worker has the answer, as a
 * `node:sqlite` call blocks on its file. Every call has a time limit (`timeoutMs`, default
 * 20 s, well under a farm lease's renewal period: the blocked thread also renews leases): past
 * it the call throws an {@linkcode InfraError} instead of hanging the run. A connection that
 * drops (the server restarted, the backend was terminated) fails the next call at once with an
 * InfraError; the call after it connects again. A worker that died fails every call at once.
 *
 * SQL is written once with `?` placeholders; {@linkcode toPositional} numbers them `$1..$n`
 * for PostgreSQL. BIGINT and NUMERIC come back as numbers (as SQLite's integers do).
 *
 * @module
 */
import { MessageChannel, receiveMessageOnPort, Worker } from "node:worker_threads";
import { InfraError, UserInputError } from "../errors.ts";
import type { Database, SQLValue, Statement } from "./sqlite.ts";

/** True for a `postgres://` or `postgresql://` URL (what selects the PostgreSQL store). */
export function isPostgresUrl(s: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(s);
}

/**
 * `url` with its password and any `password=` parameter replaced by `***` (for messages:
 * secrets never reach a log). A URL that does not parse has everything between `://` and its
 * last `@` replaced.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    for (const k of new Set(u.searchParams.keys())) {
      if (/password/i.test(k)) u.searchParams.set(k, "***");
    }
    return u.href;
  } catch {
    return url.replace(/^([^/]*:\/\/).*@/s, "$1***@").replace(
      /([?&;\s][^=&#\s]*password=)[^&#\s]*/gi,
      "$1***",
    );
  }
}

/**
 * Check a PostgreSQL URL's shape before any work (a user's `--db`).
 *
 * @throws {UserInputError} for a URL that does not parse or names no host.
 */
export function checkPostgresUrl(url: string, what = "--db"): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserInputError(
      `${what}: not a PostgreSQL URL: ${redactUrl(url).slice(0, 120)}`,
      "write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
    );
  }
  if (!u.hostname && !u.searchParams.get("host")) {
    throw new UserInputError(
      `${what}: the PostgreSQL URL names no host: ${redactUrl(url).slice(0, 120)}`,
      "write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
    );
  }
  if (u.pathname.length <= 1) {
    throw new UserInputError(
      `${what}: the PostgreSQL URL names no database: ${redactUrl(url).slice(0, 120)}`,
      "add the database: postgres://USER@HOST[:PORT]/DATABASE",
    );
  }
}

/**
 * `sql` with each `?` placeholder numbered `$1`, `$2`, ... in order. A `?` inside a
 * single-quoted literal, a double-quoted identifier or a `--` / `/* *\/` comment is left alone.
 */
export function toPositional(sql: string): string {
  let out = "";
  let n = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === c) {
          if (sql[j + 1] === c) j += 2; // '' or "" escapes the quote
          else break;
        } else j++;
      }
      out += sql.slice(i, j + 1);
      i = j + 1;
    } else if (c === "-" && sql[i + 1] === "-") {
      const j = sql.indexOf("\n", i);
      const end = j === -1 ? sql.length : j;
      out += sql.slice(i, end);
      i = end;
    } else if (c === "/" && sql[i + 1] === "*") {
      const j = sql.indexOf("*/", i + 2);
      const end = j === -1 ? sql.length : j + 2;
      out += sql.slice(i, end);
      i = end;
    } else if (c === "?") {
      out += `$${++n}`;
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** A PostgreSQL error as the worker reports it. */
export class PostgresError extends Error {
  /** The SQLSTATE code (`23505` unique violation, ...), when the server gave one. */
  readonly code?: string;
  /**
   * An error the server or the connection reported.
   *
   * @param message what it said
   * @param code its SQLSTATE
   */
  constructor(message: string, code?: string) {
    super(message);
    this.name = "PostgresError";
    this.code = code;
  }
}

/** Options of {@linkcode openPostgres}. */
export interface PostgresOptions {
  /** Most time one call may take, in ms (default 20 000), connecting included. */
  timeoutMs?: number;
}

/** A synchronous {@linkcode Database} on one PostgreSQL connection (see the module doc). */
class PgDatabase implements Database {
  readonly dialect = "postgres" as const;
  #worker: Worker;
  #port: MessageChannel["port1"];
  #flag: Int32Array;
  #closed = false;
  /** Why the worker thread ended (an error it did not catch, or its exit), once it did. */
  #dead: string | undefined;
  readonly #url: string;
  readonly #timeoutMs: number;

  constructor(url: string, timeoutMs: number) {
    this.#url = url;
    this.#timeoutMs = timeoutMs;
    const flag = new SharedArrayBuffer(4);
    this.#flag = new Int32Array(flag);
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#worker = new Worker(new URL("./_pg_worker.ts", import.meta.url), {
      workerData: { url, flag, port: port2 },
      transferList: [port2],
    });
    // The worker never keeps the process alive: close() ends it; a process that forgets to
    // close still exits.
    this.#worker.unref();
    this.#worker.on("error", (err: Error) => {
      this.#dead ??= `its worker thread failed: ${String(err?.message ?? err).split("\n")[0]}`;
    });
    this.#worker.on("exit", (code: number) => {
      this.#dead ??= `its worker thread exited (code ${code})`;
    });
  }

  #call(req: { op: "query" | "end"; text?: string; values?: SQLValue[] }) {
    if (this.#closed) throw new Error("the PostgreSQL history is closed");
    if (this.#dead) {
      throw new InfraError(
        `PostgreSQL ${redactUrl(this.#url)}: ${this.#dead}`,
        "this history connection cannot be used again: run again",
      );
    }
    Atomics.store(this.#flag, 0, 0);
    this.#port.postMessage(req);
    const woke = Atomics.wait(this.#flag, 0, 0, this.#timeoutMs);
    const msg = receiveMessageOnPort(this.#port)?.message as
      | { rows: Record<string, SQLValue>[]; rowCount: number; error?: undefined }
      | { error: { message: string; code?: string; lost?: boolean } }
      | undefined;
    if (woke === "timed-out" || !msg) {
      this.#dispose();
      throw new InfraError(
        `PostgreSQL ${redactUrl(this.#url)} did not answer within ${this.#timeoutMs} ms`,
        "check that the server is up and reachable from this host",
      );
    }
    if (msg.error) {
      const e = msg.error;
      if (e.lost) {
        throw new InfraError(
          `PostgreSQL ${redactUrl(this.#url)}: connection lost: ${
            e.message.split("\n")[0].slice(0, 200)
          }`,
          "check the server; the next call connects again",
        );
      }
      // A server's error carries a SQLSTATE (5 characters); anything else is the connection's.
      if (!/^[0-9A-Z]{5}$/.test(e.code ?? "")) {
        throw new InfraError(
          `PostgreSQL ${redactUrl(this.#url)}: cannot connect: ${e.message.slice(0, 200)}`,
          "check that the server is up and reachable from this host (--db URL)",
        );
      }
      throw new PostgresError(e.message, e.code);
    }
    return msg;
  }

  exec(sql: string): void {
    this.#call({ op: "query", text: sql });
  }

  prepare(sql: string): Statement {
    const text = toPositional(sql);
    const q = (params: SQLValue[]) =>
      this.#call({
        op: "query",
        text,
        values: params.map((p) => typeof p === "bigint" ? p.toString() : p),
      }) as { rows: Record<string, SQLValue>[]; rowCount: number };
    return {
      run: (...params) => ({ changes: q(params).rowCount, lastInsertRowid: 0 }),
      get: (...params) => q(params).rows[0],
      all: (...params) => q(params).rows,
    };
  }

  #dispose(): void {
    this.#closed = true;
    this.#port.close();
    this.#worker.terminate();
  }

  close(): void {
    if (this.#closed) return;
    try {
      this.#call({ op: "end" });
    } catch { /* the connection is gone anyway */ }
    this.#dispose();
  }
}

/**
 * Open a synchronous {@linkcode Database} on the PostgreSQL database at `url`. The connection
 * is made at the first call (a server that is down fails that call with an InfraError).
 *
 * @throws {UserInputError} for a URL that is not one ({@linkcode checkPostgresUrl}).
 */
export function openPostgres(url: string, opts: PostgresOptions = {}): Database {
  checkPostgresUrl(url);
  return new PgDatabase(url, opts.timeoutMs ?? 20_000);
}
