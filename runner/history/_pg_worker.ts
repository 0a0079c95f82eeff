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
const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
let connected: Promise<unknown> | undefined;

function answer(msg: unknown): void {
  port.postMessage(msg);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

port.on("message", async (req: { op: "query" | "end"; text?: string; values?: unknown[] }) => {
  try {
    if (req.op === "end") {
      if (connected) await client.end().catch(() => {});
      answer({ ok: true });
      return;
    }
    connected ??= client.connect();
    await connected;
    const r = req.values === undefined
      ? await client.query(req.text!)
      : await client.query(req.text!, req.values);
    const last = Array.isArray(r) ? r[r.length - 1] : r;
    answer({ rows: last?.rows ?? [], rowCount: last?.rowCount ?? 0 });
  } catch (err) {
    const e = err as Error & { code?: string };
    answer({ error: { message: e.message, code: e.code } });
  }
});
