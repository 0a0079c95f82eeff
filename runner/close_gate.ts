/**
 * The close rule of every source of data, events and timers in the runner (serial and TCP
 * consoles, the capture log, the framed shell, SSH channels, QMP, console watchers):
 *
 * 1. Closing detaches the sources before it closes the sinks: the gate shuts first, so
 *    nothing that arrives later reaches a file, a listener or a waiter that is being closed.
 * 2. Data, events and timer firings that arrive after close are dropped and counted
 *    ({@link CloseGate.droppedAfterClose}), never thrown.
 * 3. No event handler can raise an unhandled rejection: a handler that throws, or returns a
 *    promise that rejects, is caught and counted ({@link CloseGate.handlerErrors}), and the
 *    first such error is kept for diagnostics ({@link CloseGate.firstHandlerError}).
 *
 * ```ts
 * const gate = new CloseGate();
 * stream.on("data", gate.guard((b: Uint8Array) => log.write(b)));
 * // close: shut the gate, then detach the source, then close the sinks
 * gate.close();
 * await source.close();
 * log.close();
 * ```
 *
 * @module
 */

/** Counters and guards for one closable object; see the module documentation. */
export class CloseGate {
  #closed = false;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  /** Deliveries (data chunks, events, timer firings) dropped because they came after close. */
  droppedAfterClose = 0;
  /** Handler calls that threw or whose returned promise rejected (caught, never rethrown). */
  handlerErrors = 0;
  /** The first error a guarded handler raised, for diagnostics. */
  firstHandlerError: unknown = undefined;

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Shuts the gate: later deliveries are dropped and counted, pending gate timers are
   * cleared. Returns true the first time (so the caller runs its close sequence once).
   */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    return true;
  }

  /** True while open; after close it counts one dropped delivery and returns false. */
  admit(): boolean {
    if (!this.#closed) return true;
    this.droppedAfterClose++;
    return false;
  }

  /** Records a handler error (counted; the first is kept). */
  caught(err: unknown): void {
    this.handlerErrors++;
    if (this.handlerErrors === 1) this.firstHandlerError = err;
  }

  /**
   * Calls `fn(...args)` now: exceptions and a rejected returned promise are caught and
   * counted. Use it for listeners that must keep running after one of them fails.
   */
  call<A extends unknown[]>(fn: (...args: A) => unknown, ...args: A): void {
    try {
      const r = fn(...args);
      if (r instanceof Promise) r.catch((err) => this.caught(err));
    } catch (err) {
      this.caught(err);
    }
  }

  /**
   * Wraps an event handler: calls after close are dropped and counted, a throw or a rejected
   * promise is caught and counted (see {@link call}).
   */
  guard<A extends unknown[]>(fn: (...args: A) => unknown): (...args: A) => void {
    return (...args: A) => {
      if (!this.admit()) return;
      this.call(fn, ...args);
    };
  }

  /**
   * Like `setTimeout`, but the callback is guarded: cleared on close, dropped and counted if
   * it fires after close, and its errors are caught. Returns the timer for `clearTimeout`.
   */
  timer(fn: () => unknown, ms: number): ReturnType<typeof setTimeout> {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.admit()) return;
      this.call(fn);
    }, ms);
    this.#timers.add(t);
    return t;
  }

  /** Counters as a plain object (for logs and tests). */
  stats(): { droppedAfterClose: number; handlerErrors: number } {
    return { droppedAfterClose: this.droppedAfterClose, handlerErrors: this.handlerErrors };
  }
}

/**
 * Attaches a rejection handler to `p` that counts the error on `gate` (or ignores it when no
 * gate is given), for promises started in the background (pumps, read loops) whose failure
 * is reported another way. Returns `p` unchanged for awaiting.
 */
export function background<T>(p: Promise<T>, gate?: CloseGate): Promise<T> {
  p.catch((err) => gate?.caught(err));
  return p;
}
