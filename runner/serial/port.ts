/**
 * Consoles: a serial port (serialport's `SerialPortStream` on the Deno binding), a raw TCP
 * console (ser2net "raw" or "telnet-less" ports, QEMU `-serial tcp:`), or a pseudo terminal
 * master held by this process, all behind one small {@link ConsoleStream} interface.
 *
 * Every console can capture each received byte from the first one on, with timestamps:
 * `<logPath>` holds the raw bytes exactly as received (readable with `cat`/`less -R`), and
 * `<logPath>.idx.jsonl` one JSON line per received chunk, `{"t": epoch ms, "off": byte
 * offset, "len": bytes}`, plus events (`{"t", "tx": bytes}` per write without content, so
 * passwords never reach the log, and `{"t", "event": "closed", "reason"}`). Writes go to
 * the OS before the listeners run, so a crash of the runner leaves a complete log.
 *
 * Transmit pacing (`txChunkSize`, `txDelayMs`) splits writes and waits between chunks, for
 * UARTs without flow control whose receiver (U-Boot, a busy kernel, agetty) drops
 * characters at 1 500 000 baud (research/hil-anchors.md §5.6: LAVA uses 10 ms per
 * character for Rockchip U-Boot input).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { SerialPortStream } from "@serialport/stream";
import { InfraError, TimeoutError } from "../errors.ts";
import { CloseGate } from "../close_gate.ts";
import { DenoSerialBinding, HANGUP, type TtyFd } from "./deno_binding.ts";
import type { ByteDuplex } from "../protocol/byte_duplex.ts";

/** A console: a byte duplex plus events for watchers and a capture log. */
export interface ConsoleStream extends ByteDuplex {
  /** Human-readable name: the device path or `host:port`. */
  readonly name: string;
  /** True once closed (by us or by the other side). */
  readonly closed: boolean;
  /** Why the console ended, when the other side or the device ended it. */
  readonly closeReason: InfraError | undefined;
  /** Calls `cb` for every received chunk (`atMs` is epoch ms). Returns an unsubscribe. */
  onData(cb: (chunk: Uint8Array, atMs: number) => void): () => void;
  /** Calls `cb` once when the console ends; `err` is set when it was not our `close()`. */
  onClose(cb: (err: InfraError | undefined) => void): () => void;
  /** Bytes received so far. */
  readonly bytesReceived: number;
  /** Bytes dropped from the `read()` queue because nobody read them (listeners saw them). */
  readonly bytesDropped: number;
  /**
   * Chunks and transport events that arrived after `close()` began and were dropped (never
   * written to the capture log, never given to listeners).
   */
  readonly droppedAfterClose: number;
}

/** Options common to every console. */
export interface ConsoleOptions {
  /** Capture every received byte here (plus `<logPath>.idx.jsonl` with timestamps). */
  logPath?: string;
  /** Split writes into chunks of this many bytes (1 = per character). Default: no split. */
  txChunkSize?: number;
  /** Wait this long after each chunk. Default 0. */
  txDelayMs?: number;
  /** Bound of the `read()` queue; the oldest bytes are dropped beyond it. Default 16 MiB. */
  maxQueuedBytes?: number;
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The timestamped raw capture described in the module documentation. Files are created with
 * mode 0600 (a console can carry secrets typed at a login prompt). After `close()`, calls
 * are dropped and counted in `droppedAfterClose`; a failed write throws (the console counts
 * it and keeps delivering to its listeners).
 */
export class CaptureLog {
  #data: Deno.FsFile;
  #idx: Deno.FsFile;
  #off = 0;
  #enc = new TextEncoder();
  #closed = false;
  /** Writes (received chunks or events) that came after `close()` and were dropped. */
  droppedAfterClose = 0;

  constructor(readonly path: string) {
    const o = { write: true, create: true, truncate: true, mode: 0o600 } as const;
    this.#data = Deno.openSync(path, o);
    try {
      this.#idx = Deno.openSync(`${path}.idx.jsonl`, o);
    } catch (err) {
      this.#data.close();
      throw err;
    }
  }

  #writeAll(f: Deno.FsFile, b: Uint8Array): void {
    let o = 0;
    while (o < b.length) o += f.writeSync(b.subarray(o));
  }

  /** Appends received bytes and their index line. */
  received(chunk: Uint8Array, t: number): void {
    if (this.#closed) {
      this.droppedAfterClose++;
      return;
    }
    this.#writeAll(this.#data, chunk);
    this.#writeAll(
      this.#idx,
      this.#enc.encode(JSON.stringify({ t, off: this.#off, len: chunk.length }) + "\n"),
    );
    this.#off += chunk.length;
  }

  /** Appends an event line (no payload bytes). */
  event(fields: Record<string, string | number>): void {
    if (this.#closed) {
      this.droppedAfterClose++;
      return;
    }
    this.#writeAll(this.#idx, this.#enc.encode(JSON.stringify({ t: now(), ...fields }) + "\n"));
  }

  /** Closes both files. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const f of [this.#data, this.#idx]) {
      try {
        f.close();
      } catch { /* already closed */ }
    }
  }
}

/**
 * Shared machinery: queue, listeners, capture, pacing, close bookkeeping. Closing follows the
 * close rule of `runner/close_gate.ts`: `close()` shuts the gate (later chunks are dropped and
 * counted in `droppedAfterClose`), then closes the transport and waits for its pump, and only
 * then closes the capture log and calls the close listeners.
 */
export abstract class BaseConsole implements ConsoleStream {
  #queue: Uint8Array[] = [];
  #queued = 0;
  #waiter: (() => void) | undefined;
  #dataCbs = new Set<(chunk: Uint8Array, atMs: number) => void>();
  #closeCbs = new Set<(err: InfraError | undefined) => void>();
  #log: CaptureLog | undefined;
  #txChain: Promise<void> = Promise.resolve();
  #gate = new CloseGate();
  #closing = false;
  #ended = false;
  #reason: InfraError | undefined;
  bytesReceived = 0;
  bytesDropped = 0;

  /** A console named `name` (in messages), capturing to `opts.logPath` when given. */
  protected constructor(readonly name: string, protected readonly opts: ConsoleOptions) {
    if (opts.logPath) this.#log = new CaptureLog(opts.logPath);
  }

  get closed(): boolean {
    return this.#gate.closed;
  }

  get closeReason(): InfraError | undefined {
    return this.#reason;
  }

  /** Chunks (and late transport events) that arrived after close and were dropped. */
  get droppedAfterClose(): number {
    return this.#gate.droppedAfterClose + (this.#log?.droppedAfterClose ?? 0);
  }

  /** Listener and capture-log errors caught (a watcher's bug never stops the console). */
  get handlerErrors(): number {
    return this.#gate.handlerErrors;
  }

  /**
   * Subclasses call this for every received chunk (they must not reuse `chunk`). After close
   * the chunk is dropped and counted; it never throws.
   */
  protected deliver(chunk: Uint8Array): void {
    if (!this.#gate.admit()) return;
    const t = now();
    this.bytesReceived += chunk.length;
    if (this.#log) this.#gate.call((c: Uint8Array) => this.#log!.received(c, t), chunk);
    for (const cb of this.#dataCbs) this.#gate.call(cb, chunk, t);
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    const max = this.opts.maxQueuedBytes ?? 16 << 20;
    while (this.#queued > max && this.#queue.length > 1) {
      const old = this.#queue.shift()!;
      this.#queued -= old.length;
      this.bytesDropped += old.length;
    }
    this.#waiter?.();
  }

  /**
   * Subclasses call this once the transport ended; `err` when it was not our close(). Runs
   * once: later calls are counted as dropped. Never throws.
   */
  protected ended(err: InfraError | undefined): void {
    if (this.#ended) {
      this.#gate.droppedAfterClose++;
      return;
    }
    this.#ended = true;
    this.#gate.close();
    if (err && !this.#closing) this.#reason = err;
    else err = undefined;
    const why = err ? err.message : "closed by rkhil";
    if (this.#log) this.#gate.call(() => this.#log!.event({ event: "closed", reason: why }));
    this.#log?.close();
    this.#waiter?.();
    for (const cb of this.#closeCbs) this.#gate.call(cb, err);
  }

  onData(cb: (chunk: Uint8Array, atMs: number) => void): () => void {
    this.#dataCbs.add(cb);
    return () => this.#dataCbs.delete(cb);
  }

  onClose(cb: (err: InfraError | undefined) => void): () => void {
    this.#closeCbs.add(cb);
    return () => this.#closeCbs.delete(cb);
  }

  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const c = this.#queue.shift();
      if (c) {
        this.#queued -= c.length;
        return c;
      }
      if (this.#gate.closed) {
        if (this.#reason) throw this.#reason;
        return null;
      }
      await new Promise<void>((r) => (this.#waiter = r));
      this.#waiter = undefined;
    }
  }

  /** Writes `data` with pacing; concurrent writes are serialised in call order. */
  write(data: Uint8Array): Promise<void> {
    const copy = data.slice();
    const job = this.#txChain.then(async () => {
      if (this.#gate.closed) {
        throw this.#reason ??
          new InfraError(`console ${this.name} is closed`, "reopen the console");
      }
      if (this.#log) this.#gate.call(() => this.#log!.event({ tx: copy.length }));
      const size = this.opts.txChunkSize && this.opts.txChunkSize > 0
        ? this.opts.txChunkSize
        : copy.length;
      const delay = this.opts.txDelayMs ?? 0;
      for (let off = 0; off < copy.length; off += size) {
        await this.rawWrite(copy.subarray(off, off + size));
        if (delay > 0) await sleep(delay);
      }
    });
    this.#txChain = job.catch(() => {});
    return job;
  }

  /**
   * Closes the console: shuts the gate (later data is dropped and counted), closes the
   * transport and waits for its reader, then closes the capture log and calls the close
   * listeners. Idempotent; never rejects.
   */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#gate.close();
    }
    try {
      await this.rawClose();
    } catch (err) {
      this.#gate.caught(err);
    }
    if (!this.#ended) this.ended(undefined);
  }

  /** Write all of `data` to the transport; an InfraError when it refuses. */
  protected abstract rawWrite(data: Uint8Array): Promise<void>;
  /** Close the transport and wait for its reader to end. */
  protected abstract rawClose(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Serial port
// ---------------------------------------------------------------------------------------------

/** Options of {@link openSerialConsole}. */
export interface SerialConsoleOptions extends ConsoleOptions {
  /** Device path, e.g. /dev/ttyUSB0 or /dev/serial/by-id/... or a pty's /dev/pts/N. */
  path: string;
  /** Default 1 500 000 (Rockchip debug UART). */
  baudRate?: number;
  /** Hardware flow control. Default false. */
  rtscts?: boolean;
  /** Advisory exclusive lock. Default true. */
  lock?: boolean;
  /** Bound for opening the device. Default 5000 ms. */
  openTimeoutMs?: number;
}

function openHint(err: unknown, path: string): string {
  const code = (err as { code?: string }).code;
  if (code === "ENOENT") {
    return `check that the adapter is plugged in and ${path} exists (ls -l /dev/serial/by-id)`;
  }
  if (code === "EACCES" || code === "EPERM") {
    return `give this user access to ${path} (add it to the 'dialout' group, then log in again)`;
  }
  if (code === "EAGAIN" || code === "EBUSY") {
    return `another process holds ${path}: find it with 'fuser ${path}' and stop it`;
  }
  return `check ${path} and the board's serial wiring`;
}

/** A serial console on serialport's `SerialPortStream` with the Deno binding. */
export class SerialConsole extends BaseConsole {
  #port: SerialPortStream;

  private constructor(port: SerialPortStream, opts: SerialConsoleOptions) {
    super(opts.path, opts);
    this.#port = port;
    // Attached before the stream flows: the first received byte is captured.
    port.on("data", (b: Buffer) => {
      this.deliver(new Uint8Array(b.buffer, b.byteOffset, b.length).slice());
    });
    port.on("close", (err: (Error & { disconnected?: boolean }) | null) => {
      this.ended(
        err
          ? new InfraError(
            `serial console ${opts.path} disconnected: ${err.message}`,
            "check the USB serial adapter and cable; for a QEMU pty, check that QEMU is running",
            { cause: err },
          )
          : undefined,
      );
    });
    port.on("error", (err: Error) => {
      this.ended(
        new InfraError(`serial console ${opts.path}: ${err.message}`, openHint(err, opts.path), {
          cause: err,
        }),
      );
    });
  }

  /** The serialport stream (for parsers or modem-line control). */
  get port(): SerialPortStream {
    return this.#port;
  }

  /** Opens the device; failures are {@link InfraError}s with a hint. */
  static open(opts: SerialConsoleOptions): Promise<SerialConsole> {
    const timeoutMs = opts.openTimeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      let settled = false;
      const port = new SerialPortStream({
        binding: DenoSerialBinding,
        path: opts.path,
        baudRate: opts.baudRate ?? 1_500_000,
        rtscts: opts.rtscts ?? false,
        lock: opts.lock ?? true,
        autoOpen: false,
      });
      const self = new SerialConsole(port, opts);
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        if (port.isOpen) port.close();
        reject(
          new TimeoutError(`serial open ${opts.path}`, timeoutMs, openHint({}, opts.path)),
        );
      }, timeoutMs);
      port.open((err) => {
        clearTimeout(timer);
        if (settled) {
          if (!err) port.close();
          return;
        }
        settled = true;
        if (err) {
          reject(
            new InfraError(
              `cannot open serial console ${opts.path}: ${err.message}`,
              openHint(err, opts.path),
              { cause: err },
            ),
          );
        } else resolve(self);
      });
    });
  }

  /** Write all of `data` to the device; an InfraError when the device refuses. */
  protected rawWrite(data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#port.write(Buffer.from(data), (err) => {
        if (err) {
          reject(
            new InfraError(
              `write to ${this.name} failed: ${err.message}`,
              "check the serial adapter",
              { cause: err },
            ),
          );
        } else resolve();
      });
    });
  }

  /** Close the device and wait for its reader to end. */
  protected rawClose(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#port.isOpen) return resolve();
      this.#port.close(() => resolve());
    });
  }
}

/** Opens a serial console (see {@link SerialConsole}). */
export function openSerialConsole(opts: SerialConsoleOptions): Promise<SerialConsole> {
  return SerialConsole.open(opts);
}

// ---------------------------------------------------------------------------------------------
// TCP (ser2net raw mode, QEMU -serial tcp:)
// ---------------------------------------------------------------------------------------------

/** Options of {@link openTcpConsole}. */
export interface TcpConsoleOptions extends ConsoleOptions {
  /** Host name or address of the console server. */
  host: string;
  /** TCP port of the console server. */
  port: number;
  /** Bound for the TCP connect. Default 5000 ms. */
  connectTimeoutMs?: number;
}

/** Connect to a console server within `connectTimeoutMs` (default 5000 ms); `hint` says what to check. */
async function connectConsoleServer(
  opts: TcpConsoleOptions,
  kind: string,
  hint: string,
): Promise<Deno.TcpConn> {
  const ms = opts.connectTimeoutMs ?? 5000;
  const label = `${opts.host}:${opts.port}`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connecting = Deno.connect({ hostname: opts.host, port: opts.port, transport: "tcp" });
  try {
    const conn = await Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new TimeoutError(`${kind} console connect ${label}`, ms, hint)),
          ms,
        );
      }),
    ]);
    conn.setNoDelay(true);
    return conn;
  } catch (err) {
    connecting.then((c) => c.close(), () => {});
    if (err instanceof InfraError) throw err;
    throw new InfraError(
      `cannot connect to console ${label}: ${(err as Error).message}`,
      hint,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A raw TCP console. Bytes pass unchanged in both directions: use ser2net's `raw` mode (a
 * `telnet` port would interleave RFC 2217 negotiation bytes; {@linkcode TelnetConsole} in
 * `telnet.ts` extends this class for that).
 */
export class TcpConsole extends BaseConsole {
  #conn: Deno.TcpConn;
  #pump: Promise<void>;
  #closing = false;
  #out: Promise<void> = Promise.resolve();
  /** `tcp` or `telnet`: the word the errors use. */
  protected readonly kind: string;

  /** Wrap a connected socket (use {@linkcode TcpConsole.open}); starts the reader. */
  protected constructor(conn: Deno.TcpConn, opts: TcpConsoleOptions, kind = "tcp", name?: string) {
    super(name ?? `${opts.host}:${opts.port}`, opts);
    this.kind = kind;
    this.#conn = conn;
    this.#pump = this.#run();
  }

  /**
   * Connect to `host:port` within `connectTimeoutMs`.
   *
   * @throws {TimeoutError} when the connect takes longer.
   * @throws {InfraError} when the connection is refused or fails.
   */
  static async open(opts: TcpConsoleOptions): Promise<TcpConsole> {
    const hint =
      `check that the console server (ser2net) on ${opts.host}:${opts.port} is up and reachable`;
    return new TcpConsole(await connectConsoleServer(opts, "tcp", hint), opts);
  }

  /** Connect as {@linkcode TcpConsole.open} does, for a subclass's own `open`. */
  protected static connect(
    opts: TcpConsoleOptions,
    kind: string,
    hint: string,
  ): Promise<Deno.TcpConn> {
    return connectConsoleServer(opts, kind, hint);
  }

  /** What one chunk read from the server becomes: the raw console delivers it unchanged. */
  protected receive(chunk: Uint8Array): void {
    this.deliver(chunk.slice());
  }

  /** Write bytes to the server in order with everything else this console sends. */
  protected send(bytes: Uint8Array): Promise<void> {
    const job = this.#out.then(async () => {
      let off = 0;
      while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
    });
    this.#out = job.catch(() => {});
    return job;
  }

  async #run(): Promise<void> {
    const buf = new Uint8Array(65536);
    for (;;) {
      let n: number | null;
      try {
        n = await this.#conn.read(buf);
      } catch (err) {
        if (this.#closing) return this.ended(undefined);
        return this.ended(
          new InfraError(
            `${this.kind} console ${this.name} lost: ${(err as Error).message}`,
            "check the console server and the network to it",
            { cause: err },
          ),
        );
      }
      if (n === null) {
        if (this.#closing) return this.ended(undefined);
        return this.ended(
          new InfraError(
            `${this.kind} console ${this.name} closed by the server`,
            "check the console server (is another client connected? ser2net allows one)",
          ),
        );
      }
      this.receive(buf.subarray(0, n));
    }
  }

  /** What is written for `data`: the raw console writes it unchanged. */
  protected encode(data: Uint8Array): Uint8Array {
    return data;
  }

  /** Write all of `data` (as {@linkcode encode} makes it); an InfraError when the server refuses. */
  protected async rawWrite(data: Uint8Array): Promise<void> {
    try {
      await this.send(this.encode(data));
    } catch (err) {
      throw new InfraError(
        `write to ${this.kind} console ${this.name} failed: ${(err as Error).message}`,
        "check the console server",
        { cause: err },
      );
    }
  }

  /** Close the connection and wait for its reader to end. */
  protected async rawClose(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      try {
        this.#conn.close();
      } catch { /* already closed */ }
    }
    await this.#pump;
  }
}

/** Opens a raw TCP console (see {@link TcpConsole}). */
export function openTcpConsole(opts: TcpConsoleOptions): Promise<TcpConsole> {
  return TcpConsole.open(opts);
}

// ---------------------------------------------------------------------------------------------
// A pseudo terminal master (or any TtyFd) held by this process
// ---------------------------------------------------------------------------------------------

/** A console over a {@link TtyFd}, e.g. the master of a pty whose slave runs a shell. */
export class TtyConsole extends BaseConsole {
  #tty: TtyFd;
  #pump: Promise<void>;

  /** A console on `tty`, named by its path; reading starts at once. */
  constructor(tty: TtyFd, opts: ConsoleOptions = {}) {
    super(tty.path, opts);
    this.#tty = tty;
    this.#pump = this.#run();
  }

  async #run(): Promise<void> {
    const buf = new Uint8Array(65536);
    for (;;) {
      let n: number | typeof HANGUP;
      try {
        n = await this.#tty.read(buf);
      } catch (err) {
        if ((err as { canceled?: boolean }).canceled) return this.ended(undefined);
        return this.ended(
          new InfraError(`console ${this.name}: ${(err as Error).message}`, "check the device", {
            cause: err,
          }),
        );
      }
      if (n === HANGUP) {
        return this.ended(
          new InfraError(
            `console ${this.name}: the other end hung up`,
            "the process on the other side of the terminal exited; check it",
          ),
        );
      }
      this.deliver(buf.slice(0, n));
    }
  }

  /** Write all of `data` to the device; an InfraError when the device refuses. */
  protected async rawWrite(data: Uint8Array): Promise<void> {
    try {
      await this.#tty.write(data);
    } catch (err) {
      throw new InfraError(
        `write to ${this.name} failed: ${(err as Error).message}`,
        "check the device",
        { cause: err },
      );
    }
  }

  /** Close the device and wait for its reader to end. */
  protected async rawClose(): Promise<void> {
    await this.#tty.close();
    await this.#pump;
  }
}
