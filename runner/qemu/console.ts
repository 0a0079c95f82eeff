/**
 * The serial console of a QEMU target, through the same code path as a USB UART: QEMU's
 * pseudo-terminal is opened with `serialport` on rkhil's Deno binding ({@linkcode
 * openSerialConsole}, 1 500 000 baud, which a pty ignores), and its `CaptureLog` writes every
 * received byte with a timestamp index from the first byte (`console.raw` and
 * `console.raw.idx.jsonl`).
 *
 * On top of that stream (listening with `onData`, never reading, so any number of readers can
 * share the console):
 * - {@linkcode ConsoleRecorder}: a human-readable `console.log` (each line prefixed with
 *   seconds since the recorder started, host notes such as power events as `### rkhil:`
 *   lines), a bounded in-memory transcript to wait on with owned timeouts, and console lines
 *   for watchers ({@linkcode ConsoleRecorder.onLine}).
 * - {@linkcode consoleTap}: a {@linkcode ByteDuplex} view of the console for one user (the
 *   marker-framed shell, an interactive session). Closing a tap detaches it; the console
 *   stays open.
 *
 * Commands on the console go through `runner/shell/framed.ts` (`FramedShell`) on a tap.
 *
 * @module
 */

import { InfraError, TimeoutError } from "../errors.ts";
import { CloseGate } from "../close_gate.ts";
import { type ConsoleStream, openSerialConsole } from "../serial/port.ts";
import type { ByteDuplex } from "../protocol/byte_duplex.ts";

/** Baud rate set on the console (the ROCK 3B's debug UART; harmless on a pty). */
export const CONSOLE_BAUD = 1_500_000;

/**
 * Open QEMU's console pty as a serial console capturing into `logPath` (the default
 * `openConsole` of {@linkcode QemuMachine.launch}).
 */
export function openQemuConsole(ptyPath: string, logPath: string): Promise<ConsoleStream> {
  // QEMU already put the pty into raw mode; the binding applies raw termios again.
  return openSerialConsole({ path: ptyPath, baudRate: CONSOLE_BAUD, logPath, lock: true });
}

/** One console line, as handed to watchers. */
export interface RecordedLine {
  /** Text without the line end (decoded as UTF-8). */
  text: string;
  /** Epoch ms of the chunk that completed the line. */
  atMs: number;
  /** True when the line ended in CRLF (kernel console lines and `opost` tty output do). */
  crlf: boolean;
}

interface Waiter {
  re: RegExp;
  from: number;
  resolve: (m: RegExpExecArray) => void;
  reject: (e: Error) => void;
}

/** Transcript characters kept in memory (older text is dropped; the files keep everything). */
const TRANSCRIPT_KEEP = 4 << 20;

/**
 * Records a console (see the module documentation). Offsets (`mark()`, `from`, match
 * indexes) are absolute positions in the transcript since the recorder started.
 */
export class ConsoleRecorder {
  #text = "";
  #base = 0;
  #waiters: Waiter[] = [];
  #log: Deno.FsFile;
  #atLineStart = true;
  #ended = false;
  #line = "";
  #lineCbs = new Set<(line: RecordedLine) => void>();
  #off: (() => void)[] = [];
  #gate = new CloseGate();
  /** When the recorder was made (epoch ms, sub-millisecond); `elapsed` counts from it. */
  readonly t0: number = performance.timeOrigin + performance.now();
  readonly #enc = new TextEncoder();
  readonly #dec = new TextDecoder();

  private constructor(readonly stream: ConsoleStream, log: Deno.FsFile) {
    this.#log = log;
    this.#off.push(stream.onData(this.#gate.guard((chunk: Uint8Array, atMs: number) => {
      this.#received(chunk, atMs);
    })));
    this.#off.push(stream.onClose(this.#gate.guard((err: InfraError | undefined) => {
      this.note(`console closed${err ? `: ${err.message}` : ""}`);
      this.#ended = true;
      this.#wake();
    })));
  }

  /** Chunks, console events and notes that came after {@link close} and were dropped. */
  get droppedAfterClose(): number {
    return this.#gate.droppedAfterClose;
  }

  /** Start recording `stream` into `dir/console.log` (appending). */
  static async start(stream: ConsoleStream, dir: string): Promise<ConsoleRecorder> {
    await Deno.mkdir(dir, { recursive: true });
    const log = await Deno.open(`${dir}/console.log`, { append: true, create: true });
    return new ConsoleRecorder(stream, log);
  }

  /** Seconds since the recorder started (or from `t0` to `atMs`). */
  elapsed(atMs = performance.timeOrigin + performance.now()): number {
    return (atMs - this.t0) / 1000;
  }

  #stamp(atMs?: number): string {
    return `[+${this.elapsed(atMs).toFixed(6).padStart(11)}] `;
  }

  #writeLog(text: string): void {
    try {
      const b = this.#enc.encode(text);
      let o = 0;
      while (o < b.length) o += this.#log.writeSync(b.subarray(o));
    } catch { /* closed */ }
  }

  /** Write a host-side note into the timestamped log (power events, for instance). */
  note(text: string): void {
    if (!this.#gate.admit()) return;
    const prefix = this.#atLineStart ? "" : "\n";
    this.#writeLog(`${prefix}${this.#stamp()}### rkhil: ${text}\n`);
    this.#atLineStart = true;
  }

  #received(chunk: Uint8Array, atMs: number): void {
    const text = this.#dec.decode(chunk, { stream: true });
    let stamped = "";
    for (const piece of text.split(/(?<=\n)/)) {
      if (piece === "") continue;
      if (this.#atLineStart) stamped += this.#stamp(atMs);
      stamped += piece;
      this.#atLineStart = piece.endsWith("\n");
    }
    this.#writeLog(stamped);
    this.#text += text;
    if (this.#text.length > 2 * TRANSCRIPT_KEEP) {
      const cut = this.#text.length - TRANSCRIPT_KEEP;
      this.#text = this.#text.slice(cut);
      this.#base += cut;
    }
    if (this.#lineCbs.size) this.#lines(text, atMs);
    this.#wake();
  }

  #lines(text: string, atMs: number): void {
    this.#line += text;
    let nl = this.#line.indexOf("\n");
    while (nl >= 0) {
      let line = this.#line.slice(0, nl);
      const crlf = line.endsWith("\r");
      if (crlf) line = line.slice(0, -1);
      this.#line = this.#line.slice(nl + 1);
      // A watcher's bug must not stop the console: caught and counted.
      for (const cb of this.#lineCbs) this.#gate.call(cb, { text: line, atMs, crlf });
      nl = this.#line.indexOf("\n");
    }
    if (this.#line.length > 16384) this.#line = this.#line.slice(-16384);
  }

  /** Call `cb` for every complete console line from now on. Returns an unsubscribe. */
  onLine(cb: (line: RecordedLine) => void): () => void {
    this.#lineCbs.add(cb);
    return () => this.#lineCbs.delete(cb);
  }

  #wake(): void {
    for (const w of [...this.#waiters]) {
      w.re.lastIndex = Math.max(0, w.from - this.#base);
      const m = w.re.exec(this.#text);
      if (m) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        m.index += this.#base;
        w.resolve(m);
      }
    }
  }

  /** The transcript kept in memory (the last few MiB, decoded). */
  get text(): string {
    return this.#text;
  }

  /** Current transcript position: pass as `from` to wait only for output after now. */
  mark(): number {
    return this.#base + this.#text.length;
  }

  /** The transcript from absolute position `from` (as far as it is still in memory). */
  since(from: number): string {
    return this.#text.slice(Math.max(0, from - this.#base));
  }

  /** True once the console ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Wait until `pattern` appears in the transcript at or after `from`. Rejects with a
   * TimeoutError owned by `owner` after `timeoutMs`, or with an InfraError at once when the
   * recorder is (or gets) closed or `signal` is (or gets) aborted (the wait is then gone). The
   * match's `index` is absolute.
   */
  waitFor(
    pattern: RegExp | string,
    opts: {
      timeoutMs: number;
      owner: string;
      from?: number;
      hint?: string;
      signal?: AbortSignal;
    },
  ): Promise<RegExpExecArray> {
    const src = typeof pattern === "string"
      ? pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
      : pattern.source;
    const flags = typeof pattern === "string" ? "g" : pattern.flags.replace("g", "") + "g";
    const re = new RegExp(src, flags);
    return new Promise((resolve, reject) => {
      if (this.#gate.closed) {
        reject(new InfraError(`${opts.owner}: the console recorder is closed`, "record again"));
        return;
      }
      const stopped = () =>
        new InfraError(
          `${opts.owner}: stopped waiting for ${re}`,
          "nothing to do: rkhil stopped it",
        );
      if (opts.signal?.aborted) {
        reject(stopped());
        return;
      }
      const drop = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
      };
      const onAbort = () => {
        drop();
        waiter.reject(stopped());
      };
      const timer = this.#gate.timer(() => {
        drop();
        opts.signal?.removeEventListener("abort", onAbort);
        const last = this.#text.slice(-300).replace(/\r/g, "");
        reject(
          new TimeoutError(
            opts.owner,
            opts.timeoutMs,
            `${opts.hint ?? "see the console log in the run directory"}; waited for ${re}; ` +
              `last console output:\n${last}`,
          ),
        );
      }, opts.timeoutMs);
      const waiter: Waiter = {
        re,
        from: opts.from ?? 0,
        resolve: (m) => {
          clearTimeout(timer);
          opts.signal?.removeEventListener("abort", onAbort);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          opts.signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#wake();
    });
  }

  /** Type text on the console (bounded: a stuck transport is an InfraError). */
  async write(text: string, timeoutMs = 10_000): Promise<void> {
    if (this.#ended || this.stream.closed) {
      throw new InfraError("console is closed", "power the target on again");
    }
    let t: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.stream.write(this.#enc.encode(text)),
      new Promise<never>((_, reject) => {
        t = setTimeout(() =>
          reject(
            new TimeoutError("console write", timeoutMs, "the console transport is stuck"),
          ), timeoutMs);
      }),
    ]).finally(() => clearTimeout(t));
  }

  /**
   * Stop recording (the stream itself is closed by its owner): shuts the gate, detaches from
   * the stream, rejects pending `waitFor`s (InfraError), then closes the log. Idempotent.
   */
  close(): void {
    if (!this.#gate.close()) return;
    for (const off of this.#off) off();
    this.#off = [];
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) {
      w.reject(new InfraError("console recorder closed while waiting", "record again"));
    }
    try {
      this.#log.close();
    } catch { /* closed */ }
  }
}

/**
 * A {@linkcode ByteDuplex} view of `stream` for one user: every byte received after the call
 * is queued for `read()`; `write()` goes to the console; `close()` detaches (the console
 * stays open). `read()` ends with the console's close reason (an InfraError) when the
 * console is lost, or null when it was closed by rkhil.
 */
export function consoleTap(stream: ConsoleStream): ByteDuplex {
  const queue: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  let detached = false;
  let ended = stream.closed;
  const offData = stream.onData((chunk) => {
    queue.push(chunk);
    wake?.();
  });
  const offClose = stream.onClose(() => {
    ended = true;
    wake?.();
  });
  const detach = () => {
    detached = true;
    offData();
    offClose();
    wake?.();
  };
  return {
    async read() {
      for (;;) {
        const c = queue.shift();
        if (c) return c;
        if (detached) return null;
        if (ended || stream.closed) {
          if (stream.closeReason) throw stream.closeReason;
          return null;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    },
    async write(data) {
      if (detached) {
        throw new InfraError(`console ${stream.name}: tap is closed`, "open a new tap");
      }
      await stream.write(data);
    },
    close() {
      detach();
      return Promise.resolve();
    },
  };
}
