/**
 * The serial console of a target: a small byte-port interface (so the pseudo-terminal reader
 * here can be swapped for the serialport-based binding in runner/serial/), a recorder that
 * writes every byte to the run directory with host timestamps from the first byte, waits with
 * owned timeouts, and marker-framed commands typed on the console.
 *
 * @module
 */

import { InfraError, TimeoutError } from "../errors.ts";

/** Minimal byte port: what the recorder needs from a console transport. */
export interface ConsolePort {
  /** Read into `buf`; resolve to the byte count, or null at end of stream. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Write all of `data`. */
  write(data: Uint8Array): Promise<void>;
  close(): void;
}

/** Open a pseudo-terminal (QEMU `-chardev pty`) as a ConsolePort with Deno.open. */
export async function openPtyPort(path: string): Promise<ConsolePort> {
  // QEMU puts its pty into raw mode (cfmakeraw) when it creates it, so no termios work here.
  // Two handles: Deno serialises operations on one file resource, so a read blocked waiting
  // for guest output would hold back every write (a deadlock when the guest waits for input).
  const reader = await Deno.open(path, { read: true });
  const writer = await Deno.open(path, { write: true });
  let closed = false;
  return {
    async read(buf) {
      if (closed) return null;
      try {
        return await reader.read(buf);
      } catch (err) {
        // EIO when QEMU closes the master side: end of stream.
        if (closed || err instanceof Deno.errors.BadResource) return null;
        if (err instanceof Error && /EIO|Input\/output/i.test(err.message)) return null;
        throw err;
      }
    },
    async write(data) {
      let off = 0;
      while (off < data.length) off += await writer.write(data.subarray(off));
    },
    close() {
      if (closed) return;
      closed = true;
      for (const f of [reader, writer]) {
        try {
          f.close();
        } catch { /* already closed */ }
      }
    },
  };
}

interface Waiter {
  re: RegExp;
  from: number;
  resolve: (m: RegExpExecArray) => void;
}

/** Result of a console command. */
export interface ConsoleCommandResult {
  output: string;
  status: number;
}

/**
 * Records a console: `console.raw` (exact bytes), `console.log` (lines prefixed with seconds
 * since the recorder started, `[+   1.234567] `), and an in-memory transcript to wait on.
 */
export class ConsoleRecorder {
  #text = "";
  #waiters: Waiter[] = [];
  #raw: Deno.FsFile;
  #log: Deno.FsFile;
  #atLineStart = true;
  #done: Promise<void>;
  #ended = false;
  readonly t0 = performance.now();
  readonly #enc = new TextEncoder();
  readonly #dec = new TextDecoder();

  private constructor(readonly port: ConsolePort, raw: Deno.FsFile, log: Deno.FsFile) {
    this.#raw = raw;
    this.#log = log;
    this.#done = this.#pump();
  }

  /** Start recording `port` into `dir/console.raw` and `dir/console.log` (appending). */
  static async start(port: ConsolePort, dir: string): Promise<ConsoleRecorder> {
    await Deno.mkdir(dir, { recursive: true });
    const raw = await Deno.open(`${dir}/console.raw`, { append: true, create: true });
    const log = await Deno.open(`${dir}/console.log`, { append: true, create: true });
    return new ConsoleRecorder(port, raw, log);
  }

  /** Seconds since the recorder started. */
  elapsed(): number {
    return (performance.now() - this.t0) / 1000;
  }

  #stamp(): string {
    return `[+${this.elapsed().toFixed(6).padStart(11)}] `;
  }

  /** Write a host-side note into the timestamped log (power events, for instance). */
  note(text: string): void {
    const prefix = this.#atLineStart ? "" : "\n";
    this.#log.writeSync(this.#enc.encode(`${prefix}${this.#stamp()}### rkhil: ${text}\n`));
    this.#atLineStart = true;
  }

  async #pump(): Promise<void> {
    const buf = new Uint8Array(65536);
    try {
      while (true) {
        const n = await this.port.read(buf);
        if (n === null) break;
        if (n === 0) continue;
        const chunk = buf.slice(0, n);
        this.#raw.writeSync(chunk);
        const text = this.#dec.decode(chunk, { stream: true });
        let stamped = "";
        for (const ch of text.split(/(?<=\n)/)) {
          if (this.#atLineStart) stamped += this.#stamp();
          stamped += ch;
          this.#atLineStart = ch.endsWith("\n");
        }
        this.#log.writeSync(this.#enc.encode(stamped));
        this.#text += text;
        this.#wake();
      }
    } catch (err) {
      this.note(`console read error: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.#ended = true;
      this.#wake();
    }
  }

  #wake(): void {
    for (const w of [...this.#waiters]) {
      w.re.lastIndex = w.from;
      const m = w.re.exec(this.#text);
      if (m) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  }

  /** The transcript so far (decoded). */
  get text(): string {
    return this.#text;
  }

  /** Current transcript length: pass as `from` to wait only for output after now. */
  mark(): number {
    return this.#text.length;
  }

  /** True once the port reached end of stream. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Wait until `pattern` appears in the transcript at or after `from`. Rejects with a
   * TimeoutError owned by `owner` after `timeoutMs`.
   */
  waitFor(
    pattern: RegExp | string,
    opts: { timeoutMs: number; owner: string; from?: number; hint?: string },
  ): Promise<RegExpExecArray> {
    const src = typeof pattern === "string"
      ? pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
      : pattern.source;
    const flags = typeof pattern === "string" ? "g" : pattern.flags.replace("g", "") + "g";
    const re = new RegExp(src, flags);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
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
          resolve(m);
        },
      };
      this.#waiters.push(waiter);
      this.#wake();
    });
  }

  /** Type text on the console. */
  async write(text: string, timeoutMs = 10_000): Promise<void> {
    if (this.#ended) throw new InfraError("console is closed", "power the target on again");
    let t: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.port.write(this.#enc.encode(text)),
      new Promise<never>((_, reject) => {
        t = setTimeout(() =>
          reject(
            new TimeoutError("console write", timeoutMs, "the console transport is stuck"),
          ), timeoutMs);
      }),
    ]).finally(() => clearTimeout(t));
  }

  /**
   * Run a shell command on the console, framed by markers that the terminal's echo of the
   * typed line can never match (the marker is split by quotes in what is typed). Returns the
   * output (CRs removed) and the exit status.
   */
  async run(cmd: string, opts: { timeoutMs?: number; owner?: string } = {}): Promise<
    ConsoleCommandResult
  > {
    const id = crypto.randomUUID().slice(0, 8);
    const from = this.mark();
    await this.write(
      `printf '%s\\n' "@@R""S:${id}"; ${cmd}; printf '%s:%s\\n' "@@R""E:${id}" "$?"\n`,
    );
    const m = await this.waitFor(new RegExp(`@@RS:${id}\\r?\\n([\\s\\S]*?)@@RE:${id}:(\\d+)`), {
      timeoutMs: opts.timeoutMs ?? 30_000,
      owner: opts.owner ?? `console command \`${cmd.slice(0, 40)}\``,
      from,
    });
    return { output: m[1].replace(/\r/g, ""), status: Number(m[2]) };
  }

  /** Stop recording (closes the port and the log files). */
  async close(): Promise<void> {
    this.port.close();
    // The pump ends when the port reports end of stream; do not wait on a blocked read forever.
    await Promise.race([this.#done, new Promise((r) => setTimeout(r, 200))]);
    try {
      this.#raw.close();
      this.#log.close();
    } catch { /* closed */ }
  }
}
