/**
 * A QMP (QEMU Machine Protocol) client on a unix socket: capabilities negotiation, commands
 * with owned timeouts, and events.
 *
 * @module
 */

import { InfraError, TimeoutError } from "../errors.ts";

/** A QMP event (`RESET`, `SHUTDOWN`, `STOP`, ...). */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** A connected QMP session. */
export class QmpClient {
  #conn: Deno.UnixConn;
  #pending = new Map<string, Pending>();
  #nextId = 1;
  #listeners: ((e: QmpEvent) => void)[] = [];
  readonly events: QmpEvent[] = [];
  #closed = false;
  #greeting: Promise<unknown>;
  #greet!: (v: unknown) => void;

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
    this.#greeting = new Promise((r) => (this.#greet = r));
    this.#readLoop();
  }

  /** Connect to `path`, retrying until QEMU has created it, and negotiate capabilities. */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    let lastErr: unknown;
    while (Date.now() < deadline) {
      try {
        const conn = await Deno.connect({ transport: "unix", path });
        const qmp = new QmpClient(conn);
        await withTimeout(qmp.#greeting, deadline - Date.now(), "QMP greeting");
        await qmp.execute("qmp_capabilities");
        return qmp;
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new TimeoutError(
      `QMP connect ${path}`,
      timeoutMs,
      `QEMU did not open its QMP socket (${
        lastErr instanceof Error ? lastErr.message : lastErr
      }); ` +
        "see qemu.log in the run directory",
    );
  }

  async #readLoop(): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of this.#conn.readable) {
        buf += dec.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) this.#onMessage(JSON.parse(line) as Record<string, unknown>);
        }
      }
    } catch { /* connection dropped */ }
    this.#closed = true;
    for (const p of this.#pending.values()) {
      p.reject(new InfraError("QMP connection closed (QEMU exited?)", "see qemu.log"));
    }
    this.#pending.clear();
  }

  #onMessage(msg: Record<string, unknown>): void {
    if ("QMP" in msg) return this.#greet(msg);
    if (typeof msg.event === "string") {
      const e = msg as unknown as QmpEvent;
      this.events.push(e);
      for (const l of this.#listeners) l(e);
      return;
    }
    const id = String(msg.id ?? "");
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    if ("error" in msg) {
      const e = msg.error as { class?: string; desc?: string };
      p.reject(new InfraError(`QMP error ${e.class}: ${e.desc}`, "see qemu.log"));
    } else p.resolve(msg.return);
  }

  /** Subscribe to events; returns an unsubscribe function. */
  onEvent(fn: (e: QmpEvent) => void): () => void {
    this.#listeners.push(fn);
    return () => (this.#listeners = this.#listeners.filter((l) => l !== fn));
  }

  /** Wait for an event named `name` (after now). */
  waitEvent(name: string, timeoutMs: number, owner: string): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const off = this.onEvent((e) => {
        if (e.event === name) {
          off();
          clearTimeout(t);
          resolve(e);
        }
      });
      const t = setTimeout(() => {
        off();
        reject(new TimeoutError(owner, timeoutMs, `QEMU sent no ${name} event`));
      }, timeoutMs);
    });
  }

  /** Run a QMP command; rejects with TimeoutError after `timeoutMs`. */
  async execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    timeoutMs = 10_000,
  ): Promise<T> {
    if (this.#closed) throw new InfraError("QMP connection closed", "power the target on again");
    const id = String(this.#nextId++);
    const p = new Promise<unknown>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    const msg = JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id });
    const w = this.#conn.writable.getWriter();
    try {
      await w.write(new TextEncoder().encode(msg + "\n"));
    } finally {
      w.releaseLock();
    }
    return await withTimeout(p, timeoutMs, `QMP ${command}`) as T;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, owner: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(
      () => reject(new TimeoutError(owner, ms, "QEMU is not answering on QMP; see qemu.log")),
      Math.max(ms, 1),
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}
