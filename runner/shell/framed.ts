/**
 * A marker-framed shell over any byte duplex: a serial console now, an SSH shell channel
 * later. It logs in when prompted, normalises the shell, and runs commands framed by random
 * markers with the exit status inside the frame (research/hil-anchors.md §3.A and §5).
 *
 * How a command is sent (one tty line, or more when the command has newlines):
 *
 * ```sh
 * printf '%s>\n' 'ABCEF''GHJKL'; (CMD
 * ) </dev/null 2>&1; printf '\n%s<%d\n' 'ABCEF''GHJKL' "$?"
 * ```
 *
 * - The marker is random per command (injectable RNG), 12 letters from an alphabet without
 *   R, I and D (labgrid's choice: no marker can spell ERROR, FAIL or INFO), and it is sent
 *   split by quotes: the echo of the line can never contain it contiguously, only the
 *   shell's output can. Whatever precedes `MARKER>` (echo, prompts, old output) is dropped.
 * - The command runs in a subshell with stdin from /dev/null (a command reading stdin
 *   cannot eat the next command) and stderr merged into stdout. State changes (`cd`,
 *   variables) do not persist between commands.
 * - The exit status is inside the closing frame, so output and status arrive atomically.
 * - Kernel console messages (`[   12.345678] rk_iommu ...: Page fault ...`) may interleave
 *   anywhere, even inside a marker: the serial core writes them around the tty's output
 *   buffer. They are cut out of the stream before framing, handed to `onKernelLine`, and
 *   reported in the result. They are recognised by their timestamp prefix and CRLF ending:
 *   the kernel console turns `\n` into `\r\n` itself, while the shell's output, with
 *   `stty -opost`, keeps bare `\n` — so `dmesg` output stays in stdout. Kernels booted with
 *   `printk.time=0` print no timestamps; their messages stay in stdout.
 * - On timeout the shell gets Ctrl-C and is re-synchronised with a fresh marker; the run
 *   fails with a `TimeoutError` (verdict MISS) and the shell is usable again. If the shell
 *   does not come back, an `InfraError` says so and the shell is marked lost. Ctrl-C needs
 *   a controlling terminal: run the target's console shell through getty, `setsid -c` or
 *   busybox `cttyhack` (a bare `/dev/console` shell has no job control).
 *
 * Readiness: with no login configured, a line that prints a fresh marker is sent at once and
 * again with backoff until one comes back (a deterministic handshake: boot output, prompts
 * and echo around it do not matter); with a user or password, login prompts are answered and
 * a quiet console is nudged with a newline first (a getty reprints its prompt).
 *
 * Normalisation (after login): `stty -echo -opost cols 4096` (no echo also turns busybox
 * ash's line editing off, which falls back to plain line reads when echo is off), readline
 * editing and history off (`set +o emacs +o vi +o history +H`, `unset HISTFILE`),
 * bracketed paste off (`printf '\033[?2004l'` and `bind`), `PS1='rkhil$ '`, `PS2=''`, and
 * optionally `dmesg -n N`. Every step is its own line so a shell that lacks one (dash has
 * no `history`) still gets the others. Framing does not depend on any of them: with echo or
 * post-processing still on, output is read the same way (CRLF is then folded to LF).
 *
 * Limits: a tty in canonical mode takes at most 4095 bytes per line, so a command line
 * longer than {@link MAX_LINE_BYTES} is refused (upload a script instead), and control
 * characters other than tab and newline are refused (the line discipline would act on them).
 *
 * @module
 */

import { InfraError, TimeoutError, UserInputError } from "../errors.ts";
import { CloseGate } from "../close_gate.ts";
import { CONSOLE_PREFIX_SOURCE } from "../../oracle/kline.ts";
import type { ByteDuplex } from "../protocol/byte_duplex.ts";

/** Letters of markers: A-Z without R, I, D. */
export const MARKER_ALPHABET = "ABCEFGHJKLMNOPQSTUVWXYZ";
/** Longest tty line this shell sends (canonical mode holds 4095 bytes). */
export const MAX_LINE_BYTES = 3800;

/** Options of {@link FramedShell.start}. */
export interface FramedShellOptions {
  /** Name used in errors (`rock-3b-01 serial`). Default "shell". */
  name?: string;
  /** Random source in [0, 1) for markers. Default: crypto.getRandomValues. */
  rng?: () => number;
  /** Called for each kernel console line cut out of the stream (without CRLF). */
  onKernelLine?: (line: string, atMs: number) => void;
  /** Login name, sent when a login prompt shows. */
  user?: string;
  /** Password, sent when a password prompt shows. Never logged or put in an error. */
  password?: string;
  /** Login prompt. Default: a line ending in `login:`. */
  loginPrompt?: RegExp;
  /** Password prompt. Default: a line ending in `Password:`. */
  passwordPrompt?: RegExp;
  /**
   * With a `user` or `password` configured: silence that counts as "boot output is over", then
   * a newline is sent (a getty shows its login prompt again). Default 800. Without either,
   * readiness is a marker handshake that never waits for silence.
   */
  quietMs?: number;
  /** Bound for reaching a shell (login included). Default 60 000. */
  loginTimeoutMs?: number;
  /** Bound of one synchronisation round trip. Default 3000. */
  syncTimeoutMs?: number;
  /** Default bound of `run()`. Default 30 000. */
  defaultTimeoutMs?: number;
  /** Set the console log level with `dmesg -n` (1 = emergencies only). Default: unchanged. */
  consoleLogLevel?: number;
  /** Skip login and normalisation (the duplex is already a normalised shell). */
  skipSetup?: boolean;
}

/** Options of {@link FramedShell.run}. */
export interface RunOptions {
  /** Bound of this command. Default: the shell's `defaultTimeoutMs`. */
  timeoutMs?: number;
  /**
   * Run the command in a subshell (default true), so `cd`, variables and `exit` stay inside
   * it. `false` runs it in a `{ }` group of the shell itself: no fork, about 4 ms less per
   * command on a TCG guest, but what the command changes persists.
   */
  isolate?: boolean;
}

/** What a command produced. */
export interface RunResult {
  /** stdout and stderr, merged, decoded as UTF-8 (invalid sequences replaced). */
  stdout: string;
  /** The same bytes, exactly. */
  stdoutBytes: Uint8Array;
  /** The command's exit status (128 + signal number when it died of a signal). */
  exitStatus: number;
  /** From sending the command to the closing frame. */
  durationMs: number;
  /** Kernel console lines that arrived while the command ran. */
  kernelLines: string[];
}

const te = new TextEncoder();
const td = new TextDecoder();

/** Bytes to a binary string (one char per byte; not windows-1252). */
function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode(...b.subarray(i, i + 8192));
  }
  return s;
}

function bytesOf(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// A complete kernel console line: printk prefix of the one grammar (oracle/kline.ts: `<N>`,
// `[ssss.uuuuuu]`, caller id), text, CRLF. It may start mid-line.
const KERNEL_LINE = new RegExp(`${CONSOLE_PREFIX_SOURCE}[^\\r\\n]*\\r\\n`, "g");
// A prefix of one (to hold back at the end of a chunk until it completes or fails).
const KERNEL_PARTIAL = new RegExp(
  "^<\\d{0,3}>?$|^(?:<\\d{1,3}>)?\\[ *(?:\\d+(?:\\.(?:\\d+(?:\\]" +
    "(?:\\[ *(?:[TC](?:\\d+(?::?C?\\d*)?)?)?\\]?)?(?: [^\\r\\n]*\\r?)?)?)?)?)?$",
);
const KERNEL_MAX = 2048;

/**
 * Cuts kernel console lines out of a byte stream (as binary strings), across chunk
 * boundaries. Exported for tests and for console watchers.
 */
export class KernelLineSplitter {
  #pending = "";

  constructor(private readonly onLine: (line: string) => void) {}

  /** Feeds a chunk; returns the bytes that are not kernel lines (possibly held back). */
  push(chunk: string): string {
    const s = this.#pending + chunk;
    let out = "";
    let last = 0;
    KERNEL_LINE.lastIndex = 0;
    for (let m = KERNEL_LINE.exec(s); m; m = KERNEL_LINE.exec(s)) {
      out += s.slice(last, m.index);
      this.onLine(m[0].slice(0, -2));
      last = m.index + m[0].length;
    }
    const tail = s.slice(last);
    const hold = this.#holdFrom(tail);
    this.#pending = tail.slice(hold);
    return out + tail.slice(0, hold);
  }

  /** Releases what is held back (end of stream). */
  flush(): string {
    const p = this.#pending;
    this.#pending = "";
    return p;
  }

  #holdFrom(tail: string): number {
    const lineStart = tail.lastIndexOf("\n") + 1;
    const from = Math.max(lineStart, tail.length - KERNEL_MAX);
    for (let i = from; i < tail.length; i++) {
      const c = tail[i];
      if ((c === "[" || c === "<") && KERNEL_PARTIAL.test(tail.slice(i))) return i;
    }
    return tail.length;
  }
}

function defaultRng(): number {
  const a = new Uint32Array(1);
  crypto.getRandomValues(a);
  return a[0] / 2 ** 32;
}

/** A random marker of `length` letters from {@link MARKER_ALPHABET}. */
export function makeMarker(rng: () => number, length = 12): string {
  let m = "";
  for (let i = 0; i < length; i++) {
    m += MARKER_ALPHABET[Math.floor(rng() * MARKER_ALPHABET.length) % MARKER_ALPHABET.length];
  }
  return m;
}

/** The marker as the shell sees it: two single-quoted halves, split at a random point. */
export function splitQuoted(marker: string, rng: () => number): string {
  const cut = 1 + Math.floor(rng() * (marker.length - 1)) % (marker.length - 1);
  return `'${marker.slice(0, cut)}''${marker.slice(cut)}'`;
}

/** The line(s) sent for `cmd` framed by `marker` (exported for tests of echo safety). */
export function frameCommand(
  cmd: string,
  marker: string,
  rng: () => number,
  isolate = true,
): string {
  const body = isolate ? `(${cmd}\n)` : `{ ${cmd}\n}`;
  return `printf '%s>\\n' ${splitQuoted(marker, rng)}; ${body} </dev/null 2>&1; ` +
    `printf '\\n%s<%d\\n' ${splitQuoted(marker, rng)} "$?"\n`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A marker-framed shell; see the module documentation. */
export class FramedShell {
  /** Name in messages (default `shell`). */
  readonly name: string;
  #dev: ByteDuplex;
  #rng: () => number;
  #opts: FramedShellOptions;
  #splitter: KernelLineSplitter;
  /** Clean (kernel lines removed) received text since `#base` was last reset. */
  #buf = "";
  #lastRxAt = performance.now();
  #wake: (() => void) | undefined;
  #lost: InfraError | undefined;
  #ended = false;
  #kernelSink: string[] | undefined;
  #busy = false;
  #crlf = false;
  #lastRawOut = "";
  #pump: Promise<void>;
  #gate = new CloseGate();

  private constructor(dev: ByteDuplex, opts: FramedShellOptions) {
    this.#dev = dev;
    this.#opts = opts;
    this.name = opts.name ?? "shell";
    this.#rng = opts.rng ?? defaultRng;
    this.#splitter = new KernelLineSplitter((line) => {
      const t = performance.timeOrigin + performance.now();
      this.#kernelSink?.push(line);
      // A watcher's bug must not break the shell: caught and counted.
      if (opts.onKernelLine) this.#gate.call(opts.onKernelLine, line, t);
    });
    this.#pump = this.#run();
  }

  /**
   * Reaches a shell on `dev` (logging in when prompted), normalises it, and returns it.
   * Throws `TimeoutError` when no shell answers within `loginTimeoutMs`.
   */
  static async start(dev: ByteDuplex, opts: FramedShellOptions = {}): Promise<FramedShell> {
    const sh = new FramedShell(dev, opts);
    try {
      if (!opts.skipSetup) {
        await sh.#login();
        await sh.#normalise();
      }
      await sh.#probeOutputMode();
    } catch (err) {
      sh.#ended = true;
      throw err;
    }
    return sh;
  }

  async #run(): Promise<void> {
    try {
      for (;;) {
        const chunk = await this.#dev.read();
        if (chunk === null) break;
        // After close() the duplex may still hand over what it had: dropped and counted.
        if (!this.#gate.admit()) continue;
        this.#lastRxAt = performance.now();
        this.#buf += this.#splitter.push(latin1(chunk));
        this.#wake?.();
      }
      this.#buf += this.#splitter.flush();
      this.#lost ??= new InfraError(
        `${this.name}: the console closed`,
        "the target rebooted, hung up, or the transport closed; check the console log",
      );
    } catch (err) {
      this.#lost = err instanceof InfraError ? err : new InfraError(
        `${this.name}: console lost: ${(err as Error).message}`,
        "check the console transport",
        { cause: err },
      );
    }
    this.#wake?.();
  }

  /** Chunks the duplex delivered after {@link close} (dropped, never parsed or handed on). */
  get droppedAfterClose(): number {
    return this.#gate.droppedAfterClose;
  }

  /** True while the shell is usable (not lost, not closed). */
  get usable(): boolean {
    return !this.#lost && !this.#ended;
  }

  /** Waits until `pred` holds on the buffer, or the deadline; returns whether it held. */
  async #until(pred: () => boolean, deadline: number): Promise<boolean> {
    for (;;) {
      if (pred()) return true;
      if (this.#lost) throw this.#lost;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, Math.min(left, 50));
      });
      clearTimeout(timer);
      this.#wake = undefined;
    }
  }

  async #send(text: string): Promise<void> {
    if (this.#lost) throw this.#lost;
    await this.#dev.write(te.encode(text));
  }

  /**
   * Proves the shell is idle: prints a fresh marker and waits for it. Drops everything
   * received before. Returns false when it did not come back in time.
   */
  async sync(timeoutMs = this.#opts.syncTimeoutMs ?? 3000): Promise<boolean> {
    const m = makeMarker(this.#rng);
    this.#buf = "";
    await this.#send(`printf '%s\\n' ${splitQuoted(m, this.#rng)}\n`);
    const ok = await this.#until(
      () => this.#buf.includes(`${m}\n`) || this.#buf.includes(`${m}\r\n`),
      performance.now() + timeoutMs,
    );
    if (ok) this.#buf = this.#buf.slice(this.#buf.indexOf(m) + m.length);
    return ok;
  }

  /** The last line received, without escape sequences (prompts are judged on it). */
  #lastLine(): string {
    // deno-lint-ignore no-control-regex
    return this.#buf.slice(-300).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").split(/\r|\n/).pop() ??
      "";
  }

  #noUser(): UserInputError {
    return new UserInputError(
      `${this.name}: the target asks for a login but no user is configured`,
      "set the board's console user (and password) in its board file",
    );
  }

  #noPassword(): UserInputError {
    return new UserInputError(
      `${this.name}: the target asks for a password but none is configured`,
      "set the board's console password in its board file or secrets store",
    );
  }

  /**
   * A login or password prompt while no user and no password are configured: one error for
   * either. A `login:` printed before the console was opened is missed, the first probe line is
   * read as a user name and `Password:` follows; the password is not what is missing.
   */
  #noLogin(prompt: string): UserInputError {
    const p = prompt.trim();
    const shown = p.length > 80 ? `...${p.slice(-77)}` : p;
    return new UserInputError(
      `${this.name}: the console asks for a login (${JSON.stringify(shown)}) but no ` +
        "user (and password) is configured",
      "add console.login: { user: ..., password_env: NAME_OF_A_VARIABLE } to the board file",
    );
  }

  async #login(): Promise<void> {
    const o = this.#opts;
    const total = o.loginTimeoutMs ?? 60_000;
    const deadline = performance.now() + total;
    if (o.user === undefined && o.password === undefined) return await this.#handshake(deadline);
    const quietMs = o.quietMs ?? 800;
    const loginRe = o.loginPrompt ?? /login: *$/i;
    const passRe = o.passwordPrompt ?? /password: *$/i;
    const lastLine = () => this.#lastLine();
    let nudged = false;
    let sentUser = false;
    while (performance.now() < deadline) {
      let what: "login" | "password" | "quiet" | undefined;
      await this.#until(() => {
        const l = lastLine();
        if (passRe.test(l)) what = "password";
        else if (loginRe.test(l)) what = "login";
        else if (performance.now() - this.#lastRxAt >= quietMs) what = "quiet";
        return what !== undefined;
      }, deadline);
      if (what === "login") {
        if (o.user === undefined) throw this.#noUser();
        this.#buf = "";
        sentUser = true;
        await this.#send(`${o.user}\n`);
        await sleep(50);
      } else if (what === "password") {
        if (o.password === undefined) throw this.#noPassword();
        this.#buf = "";
        await this.#send(`${o.password}\n`);
        await sleep(50);
      } else if (what === "quiet") {
        if (!nudged) {
          nudged = true;
          this.#buf = "";
          await this.#send("\n");
          await sleep(Math.min(200, quietMs));
          continue;
        }
        const left = deadline - performance.now();
        if (left <= 0) break;
        if (await this.sync(Math.min(this.#opts.syncTimeoutMs ?? 3000, left))) return;
        // The sync line may have been read as a user name or swallowed; go round again.
        nudged = false;
      }
    }
    throw new TimeoutError(
      `${this.name}: reaching a shell`,
      total,
      sentUser
        ? "login did not reach a shell: check the console user and password"
        : "no shell or login prompt answered on the console: check that the target booted, " +
          "the baud rate, and that a getty or shell runs on this console",
    );
  }

  /**
   * Readiness without a login (no user or password configured): a probe line that prints a
   * fresh marker is sent at once and again after 150, 300, 600 ms ... (at most 2 s apart)
   * until the output of any of them comes back; no wait for the console to go quiet. A probe
   * sent before a shell reads the line is either queued by the tty (the shell runs it later:
   * its marker is dropped with everything before the next frame) or discarded (the next probe
   * answers). A login or password prompt meanwhile is one UserInputError: no login is configured
   * (a `Password:` too: the probe may have been read as a user name at a `login:` sent earlier).
   */
  async #handshake(deadline: number): Promise<void> {
    const o = this.#opts;
    const loginRe = o.loginPrompt ?? /login: *$/i;
    const passRe = o.passwordPrompt ?? /password: *$/i;
    const markers: string[] = [];
    let waitMs = 150;
    while (performance.now() < deadline) {
      const m = makeMarker(this.#rng);
      markers.push(m);
      await this.#send(`printf '%s\\n' ${splitQuoted(m, this.#rng)}\n`);
      let end = -1;
      let prompt: string | undefined;
      await this.#until(() => {
        for (const k of markers) {
          const i = this.#buf.indexOf(k);
          if (i < 0) continue;
          const j = i + k.length;
          if (this.#buf.startsWith("\n", j)) end = j + 1;
          else if (this.#buf.startsWith("\r\n", j)) end = j + 2;
          if (end >= 0) return true;
        }
        const l = this.#lastLine();
        if (passRe.test(l) || loginRe.test(l)) prompt = l;
        return prompt !== undefined;
      }, Math.min(deadline, performance.now() + waitMs));
      if (end >= 0) {
        this.#buf = this.#buf.slice(end);
        return;
      }
      if (prompt !== undefined) throw this.#noLogin(prompt);
      // Boot output before a shell answers: keep what a marker or prompt can still be in.
      if (this.#buf.length > 65_536) this.#buf = this.#buf.slice(-4096);
      waitMs = Math.min(waitMs * 2, 2_000);
    }
    throw new TimeoutError(
      `${this.name}: reaching a shell`,
      o.loginTimeoutMs ?? 60_000,
      "no shell answered on the console: check that the target booted, the baud rate, and " +
        "that a getty or shell runs on this console",
    );
  }

  async #normalise(): Promise<void> {
    const steps = [
      "stty -echo -opost cols 4096 2>/dev/null",
      "unset HISTFILE PROMPT_COMMAND 2>/dev/null",
      "set +o history 2>/dev/null",
      "set +H 2>/dev/null",
      "set +o emacs 2>/dev/null",
      "set +o vi 2>/dev/null",
      "bind 'set enable-bracketed-paste off' 2>/dev/null",
      "printf '\\033[?2004l'",
      "PS1='rkhil$ '",
      "PS2=''",
    ];
    if (this.#opts.consoleLogLevel !== undefined) {
      steps.push(`dmesg -n ${Math.trunc(this.#opts.consoleLogLevel)} 2>/dev/null`);
    }
    for (const s of steps) await this.#send(`${s}\n`);
    if (!(await this.sync())) {
      throw new InfraError(
        `${this.name}: the shell stopped answering while being set up`,
        "check the console log; the shell may not be POSIX (sh, ash, dash, bash work)",
      );
    }
  }

  /** Learns whether output post-processing (ONLCR) is still on; then CRLF is folded. */
  async #probeOutputMode(): Promise<void> {
    this.#crlf = true; // accept either line end while probing
    await this.run("printf 'a\\n'", { timeoutMs: this.#opts.syncTimeoutMs ?? 3000 });
    this.#crlf = this.#lastRawOut.startsWith("a\r");
  }

  /**
   * Runs `cmd` in a subshell (stdin /dev/null, stderr merged) and returns its output and
   * exit status. Throws `TimeoutError` after `timeoutMs` (the shell is interrupted and
   * re-synchronised), `InfraError` when the console is lost, `UserInputError` for a command
   * a serial line cannot carry.
   */
  async run(cmd: string, options: RunOptions = {}): Promise<RunResult> {
    if (this.#lost) throw this.#lost;
    if (this.#ended) {
      throw new InfraError(`${this.name}: shell is closed`, "start a new shell session");
    }
    if (this.#busy) {
      throw new UserInputError(
        `${this.name}: run() called while another command runs`,
        "await each run() before the next; the shell runs one command at a time",
      );
    }
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x08\x0b-\x1f\x7f]/.test(cmd)) {
      throw new UserInputError(
        `${this.name}: command contains control characters`,
        "a tty line discipline acts on them; send binary data through a file instead",
      );
    }
    const timeoutMs = options.timeoutMs ?? this.#opts.defaultTimeoutMs ?? 30_000;
    let marker = makeMarker(this.#rng);
    while (cmd.includes(marker)) marker = makeMarker(this.#rng);
    const line = frameCommand(cmd, marker, this.#rng, options.isolate ?? true);
    const longest = Math.max(...line.split("\n").map((l) => te.encode(l).length));
    if (longest > MAX_LINE_BYTES) {
      throw new UserInputError(
        `${this.name}: command line of ${longest} bytes is longer than a tty line can carry ` +
          `(${MAX_LINE_BYTES})`,
        "upload the script to the target and run it, or split the command",
      );
    }
    this.#busy = true;
    const kernelLines: string[] = [];
    this.#kernelSink = kernelLines;
    const t0 = performance.now();
    try {
      this.#buf = "";
      await this.#send(line);
      const start = `${marker}>`;
      const nl = this.#crlf ? "\\r?\\n" : "\\n";
      const endRe = new RegExp(`${nl}${marker}<(\\d+)\\r?\\n`);
      let body = -1;
      let scan = 0;
      let match: RegExpExecArray | null = null;
      const done = await this.#until(() => {
        if (body < 0) {
          const i = this.#buf.indexOf(start);
          if (i < 0) return false;
          let j = i + start.length;
          if (this.#buf[j] === "\r") j++;
          if (this.#buf.length <= j) return false;
          if (this.#buf[j] === "\n") j++;
          this.#buf = this.#buf.slice(j);
          body = 0;
        }
        endRe.lastIndex = 0;
        const from = Math.max(0, scan - marker.length - 8);
        const m = endRe.exec(this.#buf.slice(from));
        if (!m) {
          scan = this.#buf.length;
          return false;
        }
        match = m;
        match.index += from;
        return true;
      }, t0 + timeoutMs);
      if (!done || !match) {
        await this.#recover(cmd, timeoutMs);
        throw new TimeoutError(
          `${this.name}: run ${JSON.stringify(cmd.length > 60 ? cmd.slice(0, 57) + "..." : cmd)}`,
          timeoutMs,
          "the command was interrupted with Ctrl-C and the shell resynchronised; raise " +
            "timeoutMs if it needs longer, or check whether it hangs on the target",
        );
      }
      const m = match as RegExpExecArray;
      let out = this.#buf.slice(0, m.index);
      this.#buf = this.#buf.slice(m.index + m[0].length);
      this.#lastRawOut = out;
      if (this.#crlf) out = out.replace(/\r\n/g, "\n");
      const stdoutBytes = bytesOf(out);
      return {
        stdout: td.decode(stdoutBytes),
        stdoutBytes,
        exitStatus: Number(m[1]),
        durationMs: performance.now() - t0,
        kernelLines,
      };
    } finally {
      this.#kernelSink = undefined;
      this.#busy = false;
    }
  }

  /** Ctrl-C and resync after a timeout; marks the shell lost when it does not come back. */
  async #recover(cmd: string, timeoutMs: number): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      await this.#send("\x03");
      await sleep(100 * (attempt + 1));
      // A command left in an open quote (PS2) is cancelled by Ctrl-C too; the newline
      // finishes any half line.
      await this.#send("\n");
      if (await this.sync()) return;
    }
    this.#lost = new InfraError(
      `${this.name}: shell did not come back after Ctrl-C (command ${
        JSON.stringify(cmd.slice(0, 60))
      } timed out after ${timeoutMs} ms)`,
      "the target may be hung or the shell has no controlling terminal (use getty, " +
        "setsid -c or cttyhack); power-cycle the target",
    );
  }

  /**
   * Stops reading (later output and kernel lines are dropped and counted), closes the
   * duplex and waits for the reader to end. Idempotent; never rejects.
   */
  async close(): Promise<void> {
    this.#ended = true;
    this.#gate.close();
    try {
      await this.#dev.close();
    } catch (err) {
      this.#gate.caught(err);
    }
    await this.#pump;
  }
}
