/**
 * A QMP (QEMU Machine Protocol) client on a unix socket: capabilities negotiation, commands
 * with owned timeouts, and events.
 *
 * @module
 */

import { InfraError, TimeoutError } from "../errors.ts";
import { background, CloseGate } from "../close_gate.ts";

/** A QMP event (`RESET`, `SHUTDOWN`, `STOP`, ...). */
export interface QmpEvent {
  /** Event name. */
  event: string;
  /** The event's `data` object, when it has one. */
  data?: Record<string, unknown>;
  /** When QEMU emitted it (host clock). */
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * A connected QMP session. Closing follows the close rule (`runner/close_gate.ts`): after
 * `close()` (or the connection's end) replies and events still in flight are dropped and
 * counted (`droppedAfterClose`), pending commands and `waitEvent`s reject with an
 * InfraError at once, and a listener that throws is caught and counted (`handlerErrors`).
 */
export class QmpClient {
  #conn: Deno.UnixConn;
  #pending = new Map<string, Pending>();
  #nextId = 1;
  #listeners: ((e: QmpEvent) => void)[] = [];
  #eventWaiters = new Set<(err: Error) => void>();
  /** Every event received, in order. */
  readonly events: QmpEvent[] = [];
  #gate = new CloseGate();
  #greeting: Promise<unknown>;
  #greet!: (v: unknown) => void;
  #loop: Promise<void>;
  /** Lines from QEMU that were not JSON (ignored). */
  badLines = 0;

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
    this.#greeting = new Promise((r) => (this.#greet = r));
    this.#loop = background(this.#readLoop(), this.#gate);
  }

  /** Replies and events that arrived after close and were dropped. */
  get droppedAfterClose(): number {
    return this.#gate.droppedAfterClose;
  }

  /** Event listener calls that threw (caught; the session goes on). */
  get handlerErrors(): number {
    return this.#gate.handlerErrors;
  }

  /**
   * Connect to `path`, retrying until QEMU has created it, and negotiate capabilities.
   *
   * @param timeoutMs bound for the whole connect (ms).
   * @param signal ends the retries early (e.g. when the QEMU process exited): the error then
   *   says why the signal was aborted.
   * @throws {TimeoutError} when no QMP session was made in time.
   * @throws {InfraError} when the signal was aborted first.
   */
  static async connect(
    path: string,
    timeoutMs = 10_000,
    signal?: AbortSignal,
  ): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    let lastErr: unknown;
    while (Date.now() < deadline && !signal?.aborted) {
      try {
        const conn = await Deno.connect({ transport: "unix", path });
        const qmp = new QmpClient(conn);
        try {
          await withTimeout(qmp.#greeting, deadline - Date.now(), "QMP greeting");
          await qmp.execute("qmp_capabilities");
        } catch (err) {
          await qmp.close();
          throw err;
        }
        return qmp;
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const last = lastErr instanceof Error ? lastErr.message : String(lastErr);
    if (signal?.aborted) {
      throw new InfraError(
        `QMP connect ${path}: ${signal.reason} before QEMU opened its QMP socket (${last})`,
        "see qemu.log in the run directory",
      );
    }
    throw new TimeoutError(
      `QMP connect ${path}`,
      timeoutMs,
      `QEMU did not open its QMP socket (${last}); see qemu.log in the run directory`,
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
          if (!line) continue;
          // Read before close, parsed after: dropped and counted.
          if (!this.#gate.admit()) continue;
          let msg: Record<string, unknown>;
          try {
            msg = JSON.parse(line);
          } catch {
            this.badLines++;
            continue;
          }
          if (typeof msg === "object" && msg !== null && !Array.isArray(msg)) this.#onMessage(msg);
          else this.badLines++;
        }
      }
    } catch { /* connection dropped */ }
    this.#shut(new InfraError("QMP connection closed (QEMU exited?)", "see qemu.log"));
  }

  /** Shuts the gate and rejects what waits (commands, events). Runs once. */
  #shut(err: InfraError): void {
    this.#gate.close();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(err);
    const waiters = [...this.#eventWaiters];
    this.#eventWaiters.clear();
    for (const w of waiters) w(err);
  }

  #onMessage(msg: Record<string, unknown>): void {
    if ("QMP" in msg) return this.#greet(msg);
    if (typeof msg.event === "string") {
      const e = msg as unknown as QmpEvent;
      this.events.push(e);
      for (const l of [...this.#listeners]) this.#gate.call(l, e);
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

  /**
   * Wait for an event named `name` (after now). Rejects with a TimeoutError after
   * `timeoutMs`, or with an InfraError as soon as the session is closed or lost.
   */
  waitEvent(name: string, timeoutMs: number, owner: string): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      if (this.#gate.closed) {
        return reject(new InfraError(`${owner}: QMP connection closed`, "see qemu.log"));
      }
      const done = () => {
        off();
        clearTimeout(t);
        this.#eventWaiters.delete(onShut);
      };
      const onShut = (err: Error) => {
        done();
        reject(new InfraError(`${owner}: ${err.message}`, "see qemu.log", { cause: err }));
      };
      const off = this.onEvent((e) => {
        if (e.event === name) {
          done();
          resolve(e);
        }
      });
      const t = this.#gate.timer(() => {
        done();
        reject(new TimeoutError(owner, timeoutMs, `QEMU sent no ${name} event`));
      }, timeoutMs);
      this.#eventWaiters.add(onShut);
    });
  }

  /** Run a QMP command; rejects with TimeoutError after `timeoutMs`. */
  async execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    timeoutMs = 10_000,
  ): Promise<T> {
    if (this.#gate.closed) {
      throw new InfraError("QMP connection closed", "power the target on again");
    }
    const id = String(this.#nextId++);
    const p = new Promise<unknown>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    // Settled by the reply, a timeout or the close; awaited below only when the write worked.
    p.catch(() => {});
    const msg = JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id });
    try {
      const w = this.#conn.writable.getWriter();
      try {
        await w.write(new TextEncoder().encode(msg + "\n"));
      } finally {
        w.releaseLock();
      }
    } catch (err) {
      this.#pending.delete(id);
      throw new InfraError(
        `QMP ${command}: cannot send (${(err as Error).message})`,
        "QEMU closed its QMP socket; see qemu.log",
        { cause: err },
      );
    }
    return await withTimeout(p, timeoutMs, `QMP ${command}`) as T;
  }

  /** True once `close()` was called (or the connection ended). */
  get closed(): boolean {
    return this.#gate.closed;
  }

  /**
   * Closes the session: shuts the gate (replies and events still arriving are dropped and
   * counted), rejects pending commands and event waits, closes the socket and waits for the
   * reader to end. Idempotent; never rejects.
   */
  async close(): Promise<void> {
    if (!this.#gate.closed) {
      this.#shut(new InfraError("QMP connection closed by rkhil", "power the target on again"));
      try {
        this.#conn.close();
      } catch { /* closed */ }
    }
    await this.#loop;
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
