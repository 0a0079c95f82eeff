/**
 * The worker behind runner/history/postgres.ts: one `pg` client connection, one query at a time.
 * Each request arrives on the message port; the answer goes back on it, then the shared flag is
 * set and notified so the blocked caller wakes and takes it with `receiveMessageOnPort`.
 *
 * @module
 */
import { workerData } from "node:worker_threads";
import type { MessagePort } from "node:worker_threads";
// @ts-types="@types/pg"
import pg from "pg";

// Counts, sums and BIGINT columns as numbers, as node:sqlite gives them (every value the history
// keeps is far below 2^53).
pg.types.setTypeParser(20, (v: string) => Number(v)); // int8
pg.types.setTypeParser(1700, (v: string) => Number(v)); // numeric

const { url, flag: flagBuf, port } = workerData as {
  url: string;
  flag: SharedArrayBuffer;
  port: MessagePort;
};
const flag = new Int32Array(flagBuf);

/** The connection, made at the first request after start or after it was lost. */
let client: pg.Client | undefined;
let connected: Promise<unknown> | undefined;
/** Why the connection was lost while idle: the next request is answered with it at once. */
let lost: Error | undefined;

/**
 * A fresh client. A connection that drops (the server restarted, the backend was terminated)
 * emits "error": without a listener that is an uncaught error ending this thread. The client is
 * dropped; the next request gets the error (a transaction it was in is gone: the caller must
 * know), the one after it connects again.
 */
function fresh(): pg.Client {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  c.on("error", (err: Error) => {
    if (client !== c) return;
    lost = err;
    drop();
  });
  return c;
}

function drop(): void {
  const c = client;
  client = undefined;
  connected = undefined;
  c?.end().catch(() => {});
}

function answer(msg: unknown): void {
  port.postMessage(msg);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

/** A server's error carries a SQLSTATE; 08xxx (connection) and 57P0x (shut down) end it. */
function connectionGone(e: { code?: string }): boolean {
  return !/^[0-9A-Z]{5}$/.test(e.code ?? "") || /^(?:08|57P0)/.test(e.code ?? "");
}

port.on("message", async (req: { op: "query" | "end"; text?: string; values?: unknown[] }) => {
  if (req.op === "end") {
    if (connected) await client?.end().catch(() => {});
    client = undefined;
    connected = undefined;
    answer({ ok: true });
    return;
  }
  if (lost) {
    const e = lost as Error & { code?: string };
    lost = undefined;
    answer({ error: { message: e.message, code: e.code, lost: true } });
    return;
  }
  let up = false;
  try {
    if (!client) {
      client = fresh();
      connected = client.connect();
    }
    await connected;
    up = true;
    const r = req.values === undefined
      ? await client!.query(req.text!)
      : await client!.query(req.text!, req.values);
    const last = Array.isArray(r) ? r[r.length - 1] : r;
    answer({ rows: last?.rows ?? [], rowCount: last?.rowCount ?? 0 });
  } catch (err) {
    const e = err as Error & { code?: string };
    // A failed connect, or a connection lost under this request (reported here, not again):
    // the client is dropped and the next request connects afresh.
    const gone = !up || lost !== undefined || client === undefined || connectionGone(e);
    lost = undefined;
    if (gone) drop();
    answer({ error: { message: e.message, code: e.code, lost: gone && up } });
  }
});
