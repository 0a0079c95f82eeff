/**
 * SSH to targets on `ssh2`: one connection per boot, many channels over it.
 *
 * - `connect()` makes one attempt with a bounded timeout; `waitForSsh()` retries refused /
 *   reset / cut-short attempts while a target boots, within a bounded wait.
 * - The host key is pinned by its `SHA256:` fingerprint; an unknown or changed key is
 *   refused with both fingerprints and what to do ({@link HostKeyError}).
 * - SSH keepalives detect a target that hangs or loses power; a lost connection fails every
 *   pending operation at once with a classified InfraError (verdict MISS), never a hang.
 * - Jump hosts: the inner connection runs over a `direct-tcpip` channel of the jump host.
 *
 * @module
 */
import ssh2 from "ssh2";
import type { Client, ClientChannel, ConnectConfig, SFTPWrapper } from "ssh2";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import { InfraError, RkhilError, TimeoutError, UserInputError } from "../errors.ts";
import { CloseGate } from "../close_gate.ts";
import { type Classified, classifyConnectError, HostKeyError, reasonOf } from "./classify.ts";
import { fingerprintOfKeyBlob, parseFingerprint } from "./fingerprint.ts";
import type { ByteDuplex } from "../protocol/byte_duplex.ts";
import {
  describeKill,
  execTagLine,
  KILL_GRACE_MS,
  killTreeScript,
  newExecTag,
  parseKillReport,
} from "./kill_tree.ts";

/** Where to connect and how to authenticate. */
export interface SshEndpoint {
  /** Host name or address. */
  host: string;
  /** Default 22. */
  port?: number;
  /** User to log in as. */
  user: string;
  /**
   * Pinned host key as `SHA256:<base64>` (what `ssh-keygen -lf` prints). Without it every
   * connection is refused, and the error shows the fingerprint the server presented.
   */
  hostKeyFingerprint?: string;
  /** OpenSSH private key text (ed25519 recommended). A secret: never logged or printed. */
  privateKey: string | Uint8Array;
}

/** Options of {@link connect} and {@link waitForSsh}. */
export interface ConnectOptions extends SshEndpoint {
  /** Lab host the target is reached through (it must allow TCP forwarding). */
  jump?: SshEndpoint;
  /** Bound of one attempt: TCP connect, handshake and authentication. Default 15 000 ms. */
  connectTimeoutMs?: number;
  /** SSH keepalive interval. Default 5 000 ms; 0 disables keepalives. */
  keepaliveIntervalMs?: number;
  /** Unanswered keepalives before the connection counts as lost. Default 3. */
  keepaliveCountMax?: number;
  /** Progress lines (connects, retries, losses). Never receives secrets. */
  log?: (line: string) => void;
  /**
   * Exec channels running at once on this connection; more wait in order. Default 1:
   * dropbear 2022.83 sometimes closes a new exec channel ("Unable to exec") when another
   * channel's process exits while it starts; in a stress run (200 execs, 8 at a time) 1-4
   * failed, and some of those commands had run anyway. Serial execs never failed. Use the
   * persistent shell channel for throughput.
   */
  maxConcurrentExecs?: number;
}

/** Bounded wait of {@link waitForSsh} and {@link SshSession.reconnect}. */
export interface WaitOptions {
  /** Total bound for all attempts. Default 120 000 ms. */
  totalMs?: number;
  /** First pause between attempts; doubles up to `maxRetryDelayMs`. Default 250 ms. */
  retryDelayMs?: number;
  /** Default 2 000 ms. */
  maxRetryDelayMs?: number;
}

/** Options of {@link SshSession.exec}. */
export interface ExecOptions {
  /** Bound for the whole command. Default 60 000 ms. */
  timeoutMs?: number;
  /** Bytes written to the command's stdin, which is then closed. */
  stdin?: Uint8Array | string;
  /** Output cap (stdout + stderr); beyond it the command is stopped. Default 256 MiB. */
  maxOutputBytes?: number;
  /**
   * Kill the remote command when it times out or floods (default true). SSH "signal"
   * requests are ignored by dropbear 2022.83 and OpenSSH 9.2 (measured), and closing the
   * channel leaves a pty-less command running, so rkhil prefixes the command with one line
   * that exports `RKHIL_EXEC_ID=<random tag>` (inherited by every process the command starts)
   * and reports the shell's PID on stderr (stripped from the result). On timeout a second
   * channel stops the shell and every process of the command it finds (runner/ssh/kill_tree.ts:
   * SIGTERM, SIGKILL after 1 s). A process that both leaves the command's process tree (double
   * fork) and drops the environment (`env -i`, `sudo`) is not found when the shell leads no
   * process group (dropbear) and keeps running. The TimeoutError's hint says what the kill
   * reported. Set false for targets whose login shell is not POSIX.
   */
  killOnTimeout?: boolean;
}

/** What a command did. */
export interface ExecResult {
  /** stdout decoded as UTF-8. */
  readonly stdout: string;
  /** stderr decoded as UTF-8. */
  readonly stderr: string;
  /** stdout as bytes. */
  readonly stdoutBytes: Uint8Array;
  /** stderr as bytes. */
  readonly stderrBytes: Uint8Array;
  /** Exit status, or null when the command died of a signal. */
  readonly exitStatus: number | null;
  /** Signal name without "SIG" (e.g. "KILL") when the command died of one. */
  readonly signal: string | null;
  /** Wall time of the command in milliseconds. */
  readonly durationMs: number;
}

/** Options of {@link SshSession.shellChannel}. */
export interface ShellChannelOptions {
  /** Ask for a pseudo-terminal (echo, CRLF, job control). Default false: raw pipes. */
  pty?: boolean | { rows?: number; cols?: number; term?: string };
  /** Deliver the channel's stderr in the same byte stream as stdout. Default true. */
  mergeStderr?: boolean;
  /** Bound for opening the channel. Default 15 000 ms. */
  openTimeoutMs?: number;
}

/** Options of {@link SshSession.upload}. */
export interface UploadOptions {
  /** Bound for transfer and verification. Default 300 000 ms. */
  timeoutMs?: number;
  /** File mode to set, e.g. 0o755. Default: the target's umask decides. */
  mode?: number;
  /** "auto" (default): SFTP when the server has it, else streamed over exec. */
  method?: "auto" | "sftp" | "stream";
}

/** What an upload did. */
export interface UploadResult {
  /** How the bytes went: over SFTP, or streamed into a remote command. */
  readonly method: "sftp" | "stream";
  /** Bytes uploaded. */
  readonly bytes: number;
  /** Hex SHA-256, checked in the target after the transfer. */
  readonly sha256: string;
  /** Wall time of the upload and check, in milliseconds. */
  readonly durationMs: number;
}

const DEFAULTS = {
  port: 22,
  connectTimeoutMs: 15_000,
  keepaliveIntervalMs: 5_000,
  keepaliveCountMax: 3,
  totalMs: 120_000,
  retryDelayMs: 250,
  maxRetryDelayMs: 2_000,
  execTimeoutMs: 60_000,
  maxOutputBytes: 256 * 1024 * 1024,
  uploadTimeoutMs: 300_000,
};

/** "user@host:port" for messages. */
export function endpointLabel(ep: SshEndpoint): string {
  return `${ep.user}@${ep.host}:${ep.port ?? DEFAULTS.port}`;
}

function targetLabel(opts: ConnectOptions): string {
  const t = endpointLabel(opts);
  return opts.jump ? `${t} (via ${endpointLabel(opts.jump)})` : t;
}

/** Quote a string for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function short(cmd: string): string {
  const one = cmd.replace(/\s+/g, " ").trim();
  return one.length > 80 ? `${one.slice(0, 77)}...` : one;
}

/** Public fingerprint of the client key, for "key refused" messages. Never the key. */
function clientKeyFingerprint(privateKey: string | Uint8Array): string {
  const parsed = ssh2.utils.parseKey(
    typeof privateKey === "string" ? privateKey : Buffer.from(privateKey),
  );
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error || key === undefined) {
    throw new UserInputError(
      "the SSH private key cannot be parsed",
      "give an unencrypted OpenSSH private key (ssh-keygen -t ed25519 -N '' -f FILE); " +
        "rkhil generates one with ensureClientKey()",
    );
  }
  return fingerprintOfKeyBlob(key.getPublicSSH());
}

interface Opened {
  client: Client;
  jump: Client | null;
  hostKeyFingerprint: string;
}

/**
 * One connection attempt to `ep` (over `sock` when given), bounded by `ms`. Resolves with a
 * ready client or rejects with a Classified failure.
 */
function openOne(
  ep: SshEndpoint,
  label: string,
  ms: number,
  opts: ConnectOptions,
  owner: string,
  sock?: ClientChannel,
): Promise<{ client: Client; presented: string }> {
  const pinned = ep.hostKeyFingerprint === undefined
    ? null
    : parseFingerprint(ep.hostKeyFingerprint, `hostKeyFingerprint of ${label}`);
  const clientFp = clientKeyFingerprint(ep.privateKey);
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let presented = "";
    let hostKeyRefusal: HostKeyError | null = null;
    let settled = false;
    const fail = (c: Classified) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.destroy();
      reject(c);
    };
    const timer = setTimeout(() => {
      fail({
        error: new TimeoutError(
          owner,
          ms,
          `no SSH session with ${label} within ${ms} ms; the target may be booting, hung or ` +
            "unreachable: check its console log (connectTimeoutMs sets this bound)",
        ),
        retryable: true,
      });
    }, ms);
    client.on("ready", () => {
      if (settled) {
        client.end();
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve({ client, presented });
    });
    client.on("error", (err: Error) => {
      if (hostKeyRefusal) fail({ error: hostKeyRefusal, retryable: false });
      else fail(classifyConnectError(err, label, clientFp));
    });
    client.on("close", () => {
      if (hostKeyRefusal) fail({ error: hostKeyRefusal, retryable: false });
      else {
        fail(classifyConnectError(
          new Error("Connection lost before handshake"),
          label,
          clientFp,
        ));
      }
    });
    const config: ConnectConfig = {
      username: ep.user,
      privateKey: typeof ep.privateKey === "string" ? ep.privateKey : Buffer.from(ep.privateKey),
      hostVerifier: (key: Buffer): boolean => {
        presented = fingerprintOfKeyBlob(key);
        if (pinned !== null && presented === pinned) return true;
        hostKeyRefusal = new HostKeyError(label, pinned, presented);
        return false;
      },
      readyTimeout: ms,
      keepaliveInterval: opts.keepaliveIntervalMs ?? DEFAULTS.keepaliveIntervalMs,
      keepaliveCountMax: opts.keepaliveCountMax ?? DEFAULTS.keepaliveCountMax,
      authHandler: ["publickey"],
    };
    if (sock) config.sock = sock;
    else {
      config.host = ep.host;
      config.port = ep.port ?? DEFAULTS.port;
    }
    try {
      client.connect(config);
      // Nagle + delayed ACK costs ~40 ms per small packet exchange (measured on loopback:
      // 44 ms shell round trips, 92 ms exec channels); SSH traffic here is interactive.
      client.setNoDelay(true);
    } catch (err) {
      fail(classifyConnectError(err, label, clientFp));
    }
  });
}

function forwardOut(jump: Client, host: string, port: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    jump.forwardOut("127.0.0.1", 0, host, port, (err, stream) => {
      if (err) reject(err);
      else resolve(stream);
    });
  });
}

/** One full attempt (jump host first when configured), bounded by `ms` in total. */
async function openAttempt(opts: ConnectOptions, ms: number): Promise<Opened> {
  const owner = `ssh connect ${targetLabel(opts)}`;
  const deadline = performance.now() + ms;
  const left = () => Math.max(1, Math.round(deadline - performance.now()));
  if (!opts.jump) {
    const { client, presented } = await openOne(opts, endpointLabel(opts), ms, opts, owner);
    return { client, jump: null, hostKeyFingerprint: presented };
  }
  const jumpLabel = `jump host ${endpointLabel(opts.jump)}`;
  const { client: jump } = await openOne(opts.jump, jumpLabel, ms, opts, owner);
  try {
    let stream: ClientChannel;
    try {
      stream = await withTimeout(
        forwardOut(jump, opts.host, opts.port ?? DEFAULTS.port),
        left(),
        owner,
        `the jump host did not open a channel to ${endpointLabel(opts)}`,
      );
    } catch (err) {
      if (err instanceof TimeoutError) throw { error: err, retryable: true } as Classified;
      throw {
        error: new InfraError(
          `${jumpLabel} cannot reach ${endpointLabel(opts)}: ${reasonOf(err)}`,
          "the target may still be booting; if this persists, check that the jump host " +
            "allows TCP forwarding (sshd: AllowTcpForwarding yes) and can reach the target",
          { cause: err },
        ),
        retryable: true,
      } as Classified;
    }
    const { client, presented } = await openOne(
      opts,
      endpointLabel(opts),
      left(),
      opts,
      owner,
      stream,
    );
    return { client, jump, hostKeyFingerprint: presented };
  } catch (err) {
    jump.end();
    jump.destroy();
    throw err;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, owner: string, hint: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError(owner, ms, hint)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

function isClassified(x: unknown): x is Classified {
  return typeof x === "object" && x !== null && "error" in x && "retryable" in x &&
    (x as Classified).error instanceof RkhilError;
}

function toClassified(err: unknown, opts: ConnectOptions): Classified {
  if (isClassified(err)) return err;
  if (err instanceof UserInputError) return { error: err, retryable: false };
  if (err instanceof RkhilError) return { error: err, retryable: true };
  return classifyConnectError(err, targetLabel(opts), "(unknown client key)");
}

async function connectWithRetry(opts: ConnectOptions, wait: WaitOptions): Promise<Opened> {
  const totalMs = wait.totalMs ?? DEFAULTS.totalMs;
  const maxDelay = wait.maxRetryDelayMs ?? DEFAULTS.maxRetryDelayMs;
  let delay = wait.retryDelayMs ?? DEFAULTS.retryDelayMs;
  const t0 = performance.now();
  const deadline = t0 + totalMs;
  let attempts = 0;
  let last: Classified | null = null;
  while (true) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    attempts++;
    try {
      return await openAttempt(
        opts,
        Math.max(1, Math.round(Math.min(opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs, left))),
      );
    } catch (err) {
      last = toClassified(err, opts);
      if (!last.retryable) throw last.error;
      opts.log?.(
        `ssh ${targetLabel(opts)}: attempt ${attempts} failed (${last.error.message}); ` +
          `retrying for up to ${Math.max(0, Math.round(deadline - performance.now()))} ms`,
      );
    }
    const pause = Math.min(delay, deadline - performance.now());
    if (pause <= 0) break;
    await new Promise((r) => setTimeout(r, pause));
    delay = Math.min(delay * 2, maxDelay);
  }
  throw new TimeoutError(
    `waitForSsh ${targetLabel(opts)}`,
    totalMs,
    `no SSH session after ${attempts} attempt(s); last error: ${last?.error.message ?? "none"}. ${
      last?.error.hint ?? ""
    }`.trim(),
    { cause: last?.error },
  );
}

/**
 * Connect once (no retry), bounded by `connectTimeoutMs`. Failures are classified: a
 * HostKeyError or a refused client key is a UserInputError, anything else an InfraError
 * (TimeoutError when the bound ran out).
 */
export async function connect(opts: ConnectOptions): Promise<SshSession> {
  const t0 = performance.now();
  let opened: Opened;
  try {
    opened = await openAttempt(opts, opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs);
  } catch (err) {
    throw toClassified(err, opts).error;
  }
  return new SshSession(opts, opened, performance.now() - t0);
}

/**
 * Connect, retrying while the target boots ("connection refused", "reset", handshake cut
 * short, per-attempt timeout) until `wait.totalMs` runs out; then a TimeoutError (MISS)
 * that carries the last failure. Host key and authentication failures are not retried.
 */
export async function waitForSsh(
  opts: ConnectOptions,
  wait: WaitOptions = {},
): Promise<SshSession> {
  const t0 = performance.now();
  const opened = await connectWithRetry(opts, wait);
  return new SshSession(opts, opened, performance.now() - t0);
}

type LossHandler = (err: InfraError) => void;

const PID_MARK = "\x1erkhil-pid=";
/** The PID from a `PID_MARK<digits>\n` line, or null. */
function parsePidLine(line: string): number | null {
  if (!line.startsWith(PID_MARK) || !line.endsWith("\n")) return null;
  const digits = line.slice(PID_MARK.length, -1);
  return /^\d+$/.test(digits) ? Number(digits) : null;
}

/** One SSH connection to a target (for one boot), carrying many channels. */
export class SshSession {
  readonly #opts: ConnectOptions;
  #client: Client;
  #jump: Client | null;
  #closing = false;
  #lost: InfraError | null = null;
  #lastError: unknown = null;
  #pending = new Set<LossHandler>();
  #sftp: Promise<SFTPWrapper | null> | null = null;
  #connectedAt = performance.now();
  #execRunning = 0;
  #execWaiters: (() => void)[] = [];
  /** Event handler errors caught (a throwing `log` callback, a failed channel stop). */
  #handlers = new CloseGate();
  /**
   * Connection events (close, error) that arrived after `close()` or a reconnect replaced
   * the connection: dropped (never reported as a loss), counted.
   */
  droppedAfterClose = 0;
  /** "user@host:port" (and the jump host) for messages. */
  readonly target: string;
  /** Fingerprint the server presented (equal to the pinned one). */
  hostKeyFingerprint: string;
  /** How long the last (re)connect took, in ms. */
  connectMs: number;

  /** Use {@link connect} or {@link waitForSsh}. */
  constructor(opts: ConnectOptions, opened: Opened, connectMs: number) {
    this.#opts = opts;
    this.target = targetLabel(opts);
    this.#client = opened.client;
    this.#jump = opened.jump;
    this.hostKeyFingerprint = opened.hostKeyFingerprint;
    this.connectMs = connectMs;
    this.#watch();
    this.#log(`ssh ${this.target}: connected in ${Math.round(connectMs)} ms`);
  }

  /** Calls the `log` option; a throwing callback is caught and counted, never rethrown. */
  #log(line: string): void {
    const log = this.#opts.log;
    if (log) this.#handlers.call(log, line);
  }

  /** Event handler errors caught so far (never rethrown from an event). */
  get handlerErrors(): number {
    return this.#handlers.handlerErrors;
  }

  /** True while the connection is up. */
  get connected(): boolean {
    return this.#lost === null && !this.#closing;
  }

  #watch(): void {
    const client = this.#client;
    const jump = this.#jump;
    const onError = (err: unknown) => {
      if (client !== this.#client || this.#closing) {
        this.droppedAfterClose++;
        return;
      }
      this.#lastError = err;
    };
    client.on("error", onError);
    jump?.on("error", onError);
    const onClose = () => {
      if (client !== this.#client || this.#closing) {
        this.droppedAfterClose++;
        return;
      }
      if (this.#lost) return;
      const upMs = Math.round(performance.now() - this.#connectedAt);
      const why = this.#lastError ? reasonOf(this.#lastError) : "connection closed by the peer";
      this.#lost = new InfraError(
        `SSH connection to ${this.target} lost after ${upMs} ms: ${why}`,
        "the target rebooted, crashed, hung or lost power or network: check its console " +
          "log; call reconnect() once it is back",
        { cause: this.#lastError ?? undefined },
      );
      this.#log(`ssh ${this.target}: ${this.#lost.message}`);
      const handlers = [...this.#pending];
      this.#pending.clear();
      for (const h of handlers) this.#handlers.call(h, this.#lost);
      jump?.end();
    };
    client.on("close", onClose);
    jump?.on("close", () => {
      if (client === this.#client) client.destroy();
      else this.droppedAfterClose++;
    });
  }

  #require(what: string): Client {
    if (this.#closing) {
      throw new InfraError(
        `${what} on ${this.target}: the SSH session was closed`,
        "this is a bug in the caller: it used a session after close()",
      );
    }
    if (this.#lost) {
      throw new InfraError(
        `${what} on ${this.target}: ${this.#lost.message}`,
        this.#lost.hint,
        { cause: this.#lost },
      );
    }
    return this.#client;
  }

  #lossError(what: string, lost: InfraError, t0: number): InfraError {
    return new InfraError(
      `${what} on ${this.target} failed after ${Math.round(performance.now() - t0)} ms: ` +
        lost.message,
      lost.hint,
      { cause: lost },
    );
  }

  /**
   * Run `cmd` in a new exec channel. Resolves with output and exit status (a non-zero
   * status is not an error). A timeout kills the command in the target (see
   * `killOnTimeout`), closes the channel and throws TimeoutError; a lost connection throws
   * InfraError at once.
   */
  async exec(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.#require(`exec '${short(cmd)}'`);
    const limit = Math.max(1, this.#opts.maxConcurrentExecs ?? 1);
    while (this.#execRunning >= limit) {
      await new Promise<void>((r) => this.#execWaiters.push(r));
    }
    this.#execRunning++;
    try {
      return await this.#execNow(cmd, opts);
    } finally {
      this.#execRunning--;
      this.#execWaiters.shift()?.();
    }
  }

  #execNow(cmd: string, opts: ExecOptions): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? DEFAULTS.execTimeoutMs;
    const maxOut = opts.maxOutputBytes ?? DEFAULTS.maxOutputBytes;
    const what = `exec '${short(cmd)}'`;
    const client = this.#require(what);
    const killable = opts.killOnTimeout ?? true;
    const t0 = performance.now();
    return new Promise<ExecResult>((resolve, reject) => {
      let channel: ClientChannel | null = null;
      // PID report: the first stderr line when killable (see ExecOptions.killOnTimeout).
      let remotePid: number | null = null;
      let pidHead: Buffer | null = killable ? Buffer.alloc(0) : null;
      // The tag every process of the command inherits, for finding them all on timeout.
      const tag = newExecTag();
      let settled = false;
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outLen = 0;
      let errLen = 0;
      let exitStatus: number | null = null;
      let signal: string | null = null;
      let stopping = false;
      let channelClosed: Promise<void> = Promise.resolve();
      // Stops the command; resolves with what happened to it, in words (for the error's hint).
      const stop = async (): Promise<string> => {
        stopping = true;
        const ch = channel;
        if (!ch) return "its channel had not opened yet";
        const closeNow = () => {
          try {
            ch.close();
          } catch { /* channel already gone */ }
        };
        if (remotePid === null || !this.connected) {
          try {
            ch.signal("KILL"); // honoured by some servers; harmless elsewhere
          } catch { /* channel already gone */ }
          closeNow();
          return `it was not killed in the target (${
            !killable
              ? "killOnTimeout: false"
              : !this.connected
              ? "the connection is gone"
              : "it reported no PID"
          }) and may still run; its channel was closed`;
        }
        // Kill first and let the server close the channel when the process is gone: closing
        // it ourselves before the process dies makes dropbear 2022.83 fail the next exec
        // request now and then ("Unable to exec", seen 3 in 40 runs here).
        // The shell and every process of the command it finds (runner/ssh/kill_tree.ts): TERM,
        // KILL after the grace period.
        const killed = await this.#execNow(killTreeScript(remotePid, tag, KILL_GRACE_MS), {
          timeoutMs: KILL_GRACE_MS + 10_000,
          killOnTimeout: false,
        }).catch(() => null /* best effort: the loss or timeout is reported by the caller */);
        const report = killed ? parseKillReport(killed.stdout) : null;
        const done = describeKill(report);
        if (!report || report.left > 0) this.#log(`ssh ${this.target}: ${what}: ${done}`);
        let t: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([channelClosed, new Promise((r) => t = setTimeout(r, 2_000))]);
        clearTimeout(t);
        closeNow();
        return `${done}; its channel was closed`;
      };
      const finish = (e: Error | null, r?: ExecResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#pending.delete(onLost);
        if (e) reject(e);
        else resolve(r as ExecResult);
      };
      const onLost: LossHandler = (lost) => finish(this.#lossError(what, lost, t0));
      this.#pending.add(onLost);
      const timer = setTimeout(() => {
        stop().catch((e) => {
          this.#handlers.caught(e);
          return "stopping it in the target failed: processes of it may be left running";
        }).then((stopped) =>
          finish(
            new TimeoutError(
              `${this.target} ${what}`,
              timeoutMs,
              `the command did not finish in time; ${stopped}. Raise timeoutMs if it is ` +
                "legitimately slow, or check the target's console for a hang",
            ),
          )
        );
      }, timeoutMs);
      const onData = (bufs: Buffer[], isErr: boolean) => (d: Buffer) => {
        if (isErr && pidHead !== null) {
          pidHead = Buffer.concat([pidHead, d]);
          const nl = pidHead.indexOf(10);
          if (nl < 0 && pidHead.length < PID_MARK.length + 24) return;
          const pid = nl >= 0 ? parsePidLine(pidHead.subarray(0, nl + 1).toString("latin1")) : null;
          if (pid !== null) remotePid = pid;
          d = pid !== null ? pidHead.subarray(nl + 1) : pidHead;
          pidHead = null;
          if (d.length === 0) return;
        }
        if (stopping) return;
        if (isErr) errLen += d.length;
        else outLen += d.length;
        bufs.push(d);
        if (outLen + errLen > maxOut && !settled) {
          const err = new RkhilError(
            `${this.target} ${what}: output exceeded ${maxOut} bytes; command stopped`,
            "redirect bulk output to a file on the target, or raise maxOutputBytes",
          );
          clearTimeout(timer);
          stop().catch((e) => this.#handlers.caught(e)).then(() => finish(err));
        }
      };
      try {
        const sent = killable
          ? `${execTagLine(tag)} printf '\\036rkhil-pid=%s\\n' "$$" >&2\n${cmd}`
          : cmd;
        client.exec(sent, (e, ch) => {
          if (e) {
            finish(
              this.#lost ? this.#lossError(what, this.#lost, t0) : new InfraError(
                `${this.target} ${what}: the server refused a channel: ${reasonOf(e)}`,
                "the server may limit channels per connection (dropbear: 100) or be " +
                  "shutting down; with dropbear, 'Unable to exec' also comes from a race " +
                  "between concurrent channels (keep maxConcurrentExecs at 1); the command " +
                  "may or may not have run",
                { cause: e },
              ),
            );
            return;
          }
          if (settled) {
            ch.close();
            return;
          }
          channel = ch;
          channelClosed = new Promise((r) => ch.once("close", () => r()));
          ch.on("data", onData(out, false));
          ch.stderr.on("data", onData(err, true));
          ch.on("exit", (code: number | null, sig?: string) => {
            exitStatus = typeof code === "number" ? code : null;
            signal = typeof sig === "string" ? sig.replace(/^SIG/, "") : null;
          });
          ch.on("close", () => {
            if (settled || stopping) return;
            if (pidHead !== null && pidHead.length > 0) {
              err.push(pidHead); // short stderr without a PID line: keep it as it was
              errLen += pidHead.length;
              pidHead = null;
            }
            // The connection's close handler runs first when the connection died.
            if (exitStatus === null && signal === null) {
              finish(
                new InfraError(
                  `${this.target} ${what}: the channel closed without an exit status`,
                  "the SSH server or the session process on the target died; check the " +
                    "target's console and the server's log",
                ),
              );
              return;
            }
            const stdoutBytes = new Uint8Array(Buffer.concat(out, outLen));
            const stderrBytes = new Uint8Array(Buffer.concat(err, errLen));
            const dec = new TextDecoder();
            finish(null, {
              stdout: dec.decode(stdoutBytes),
              stderr: dec.decode(stderrBytes),
              stdoutBytes,
              stderrBytes,
              exitStatus,
              signal,
              durationMs: performance.now() - t0,
            });
          });
          if (opts.stdin !== undefined) {
            writeAll(ch, typeof opts.stdin === "string" ? Buffer.from(opts.stdin) : opts.stdin)
              .then(() => ch.end())
              .catch(() => {/* the close / loss handlers report */});
          } else {
            ch.end();
          }
        });
      } catch (e) {
        finish(toClassified(e, this.#opts).error);
      }
    });
  }

  /**
   * Open a shell channel (no pty by default) and return it as a plain byte duplex. Reads
   * throw a classified InfraError when the connection is lost (after buffered data).
   */
  shellChannel(opts: ShellChannelOptions = {}): Promise<ByteDuplex> {
    const client = this.#require("shell channel");
    const ms = opts.openTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    const pty = opts.pty === undefined || opts.pty === false
      ? false as const
      : opts.pty === true
      ? { term: "dumb", rows: 24, cols: 4096 }
      : { term: opts.pty.term ?? "dumb", rows: opts.pty.rows ?? 24, cols: opts.pty.cols ?? 4096 };
    const t0 = performance.now();
    const opened = new Promise<ClientChannel>((resolve, reject) => {
      const onLost: LossHandler = (lost) => reject(this.#lossError("shell channel", lost, t0));
      this.#pending.add(onLost);
      client.shell(pty, (e, ch) => {
        this.#pending.delete(onLost);
        if (e) {
          reject(
            new InfraError(
              `${this.target}: the server refused a shell channel: ${reasonOf(e)}`,
              "check that the user has a login shell on the target",
              { cause: e },
            ),
          );
        } else resolve(ch);
      });
    });
    return withTimeout(
      opened,
      ms,
      `${this.target} shell channel`,
      "the server did not open a shell channel in time; check the target",
    ).then((ch) => new ChannelDuplex(ch, opts.mergeStderr ?? true, this.#pending, this.target));
  }

  #getSftp(): Promise<SFTPWrapper | null> {
    if (!this.#sftp) {
      const client = this.#require("sftp");
      this.#sftp = new Promise<SFTPWrapper | null>((resolve) => {
        client.sftp((e, sftp) => resolve(e ? null : sftp));
      });
    }
    return this.#sftp;
  }

  /**
   * Copy a local file (path) or bytes to `remotePath`, then check size and SHA-256 in the
   * target (`wc -c`, `sha256sum`) before moving the file into place. SFTP when the server
   * offers it (OpenSSH), else streamed through `cat` over an exec channel (dropbear).
   */
  async upload(
    src: string | Uint8Array,
    remotePath: string,
    opts: UploadOptions = {},
  ): Promise<UploadResult> {
    const t0 = performance.now();
    const timeoutMs = opts.timeoutMs ?? DEFAULTS.uploadTimeoutMs;
    const what = `upload to ${remotePath}`;
    let bytes: Uint8Array;
    if (typeof src === "string") {
      try {
        bytes = await Deno.readFile(src);
      } catch (err) {
        throw new UserInputError(
          `cannot read ${src} for upload to ${this.target}`,
          "check that the local file exists and is readable",
          { cause: err },
        );
      }
    } else bytes = src;
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const tmp = `${remotePath}.rkhil-${randomBytes(4).toString("hex")}.part`;
    const verify = [
      `t=${shellQuote(tmp)}; f=${shellQuote(remotePath)}`,
      `n=$(wc -c < "$t") && s=$(sha256sum < "$t") || { rm -f "$t"; exit 96; }`,
      `s=\${s%% *}; n=$((n + 0))`,
      `if [ "$n" = ${bytes.length} ] && [ "$s" = ${sha256} ]; then`,
      opts.mode !== undefined ? `  chmod ${opts.mode.toString(8)} "$t" &&` : "",
      `  mv -f "$t" "$f" && exit 0; rm -f "$t"; exit 95`,
      `else rm -f "$t"; echo "rkhil-upload-mismatch $n $s"; exit 97; fi`,
    ].filter((l) => l !== "").join("\n");

    let method: "sftp" | "stream" = "stream";
    if (opts.method !== "stream") {
      const sftp = await this.#getSftp();
      if (sftp) method = "sftp";
      else if (opts.method === "sftp") {
        throw new InfraError(
          `${this.target} has no SFTP subsystem`,
          "use method 'auto' or 'stream' (dropbear has no SFTP unless sftp-server is installed)",
        );
      }
    }
    let res: ExecResult;
    if (method === "sftp") {
      const sftp = (await this.#getSftp()) as SFTPWrapper;
      await this.#sftpWrite(sftp, tmp, bytes, timeoutMs, what, t0);
      res = await this.exec(verify, {
        timeoutMs: Math.max(1000, timeoutMs - (performance.now() - t0)),
      });
    } else {
      res = await this.exec(`cat > ${shellQuote(tmp)} || exit 98\n${verify}`, {
        stdin: bytes,
        timeoutMs,
      });
    }
    if (res.exitStatus !== 0) {
      const detail = (res.stdout + res.stderr).trim().slice(0, 300);
      const missingTool = /sha256sum|wc/.test(res.stderr) && /not found/.test(res.stderr);
      throw new InfraError(
        `${what} on ${this.target} (${method}) failed its check (exit ${res.exitStatus}): ` +
          `${detail || "no output"}; expected ${bytes.length} bytes, sha256 ${sha256}`,
        missingTool
          ? "the target lacks sha256sum or wc (coreutils / busybox): add them to the image"
          : "retry; if it repeats, check free space (df) and the storage of the target",
      );
    }
    return { method, bytes: bytes.length, sha256, durationMs: performance.now() - t0 };
  }

  #sftpWrite(
    sftp: SFTPWrapper,
    path: string,
    data: Uint8Array,
    timeoutMs: number,
    what: string,
    t0: number,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (e: Error | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#pending.delete(onLost);
        if (e) reject(e);
        else resolve();
      };
      const onLost: LossHandler = (lost) => finish(this.#lossError(what, lost, t0));
      this.#pending.add(onLost);
      const timer = setTimeout(
        () =>
          finish(
            new TimeoutError(
              `${this.target} ${what} (sftp)`,
              timeoutMs,
              "the transfer did not finish in time; raise timeoutMs for large files",
            ),
          ),
        timeoutMs,
      );
      sftp.writeFile(path, Buffer.from(data.buffer, data.byteOffset, data.byteLength), (e) => {
        if (e) {
          finish(
            new InfraError(
              `${what} on ${this.target} (sftp) failed: ${reasonOf(e)}`,
              "check that the directory exists and is writable, and free space on the target",
              { cause: e },
            ),
          );
        } else finish(null);
      });
    });
  }

  /**
   * Drop the current connection (if any) and connect again within a bounded wait, e.g.
   * after the target rebooted. Channels of the old connection are gone.
   */
  async reconnect(wait: WaitOptions = {}): Promise<void> {
    const t0 = performance.now();
    this.#closeClients();
    const opened = await connectWithRetry(this.#opts, wait);
    this.#client = opened.client;
    this.#jump = opened.jump;
    this.hostKeyFingerprint = opened.hostKeyFingerprint;
    this.#lost = null;
    this.#lastError = null;
    this.#sftp = null;
    this.#closing = false;
    this.#connectedAt = performance.now();
    this.connectMs = performance.now() - t0;
    this.#watch();
    this.#log(`ssh ${this.target}: reconnected in ${Math.round(this.connectMs)} ms`);
  }

  #closeClients(): void {
    const client = this.#client;
    const jump = this.#jump;
    this.#closing = true;
    const err = new InfraError(
      `SSH session to ${this.target} closed by the runner`,
      "this is a bug in the caller: it closed the session while an operation was running",
    );
    const handlers = [...this.#pending];
    this.#pending.clear();
    for (const h of handlers) this.#handlers.call(h, err);
    client.end();
    jump?.end();
    // end() is polite; destroy() guarantees the sockets go even if the peer is frozen.
    setTimeout(() => {
      client.destroy();
      jump?.destroy();
    }, 0);
  }

  /** Close the connection (and the jump connection). Idempotent. */
  async close(): Promise<void> {
    if (this.#closing) return;
    if (this.#lost) {
      this.#closeClients();
      return;
    }
    const client = this.#client;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = new Promise<void>((r) => {
      client.once("close", () => r());
      timer = setTimeout(r, 1000);
    });
    this.#closeClients();
    await closed;
    clearTimeout(timer);
  }
}

function writeAll(ch: ClientChannel, data: Uint8Array): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const CHUNK = 64 * 1024;
    let off = 0;
    const onClose = () => reject(new Error("channel closed"));
    ch.once("close", onClose);
    const pump = () => {
      while (off < data.length) {
        const piece = Buffer.from(
          data.buffer,
          data.byteOffset + off,
          Math.min(CHUNK, data.length - off),
        );
        off += piece.length;
        if (!ch.write(piece)) {
          ch.once("drain", pump);
          return;
        }
      }
      ch.off("close", onClose);
      resolve();
    };
    pump();
  });
}

/**
 * An ssh2 channel as a {@link ByteDuplex}, with backpressure on reads. `close()` follows the
 * close rule: data the channel still emits afterwards is dropped and counted
 * (`droppedAfterClose`), a pending `read()` ends with null.
 */
class ChannelDuplex implements ByteDuplex {
  static readonly HIGH_WATER = 4 * 1024 * 1024;
  #ch: ClientChannel;
  #gate = new CloseGate();
  #queue: Uint8Array[] = [];
  #queued = 0;
  #paused = false;
  #ended = false;
  #error: Error | null = null;
  #waiter: { resolve: (v: Uint8Array | null) => void; reject: (e: Error) => void } | null = null;
  #closed: Promise<void>;
  #pending: Set<LossHandler>;
  #onLost: LossHandler;
  #label: string;

  constructor(ch: ClientChannel, mergeStderr: boolean, pending: Set<LossHandler>, label: string) {
    this.#ch = ch;
    this.#pending = pending;
    this.#label = label;
    const push = this.#gate.guard((d: Buffer) => {
      this.#push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    });
    ch.on("data", push);
    if (mergeStderr) ch.stderr.on("data", push);
    else ch.stderr.resume();
    this.#onLost = (lost) => {
      this.#fail(
        new InfraError(`shell channel on ${label}: ${lost.message}`, lost.hint, { cause: lost }),
      );
    };
    pending.add(this.#onLost);
    this.#closed = new Promise<void>((resolve) => {
      ch.once("close", () => {
        pending.delete(this.#onLost);
        this.#ended = true;
        this.#wake();
        resolve();
      });
    });
  }

  /** Chunks the channel emitted after {@link close} (dropped). */
  get droppedAfterClose(): number {
    return this.#gate.droppedAfterClose;
  }

  #push(chunk: Uint8Array): void {
    if (this.#waiter && this.#queue.length === 0) {
      const w = this.#waiter;
      this.#waiter = null;
      w.resolve(chunk);
      return;
    }
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    if (!this.#paused && this.#queued > ChannelDuplex.HIGH_WATER) {
      this.#paused = true;
      this.#ch.pause();
    }
  }

  #fail(err: Error): void {
    if (this.#error || this.#ended) return;
    this.#error = err;
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiter;
    if (!w) return;
    this.#waiter = null;
    if (this.#queue.length > 0) w.resolve(this.#shift());
    else if (this.#error) w.reject(this.#error);
    else if (this.#ended) w.resolve(null);
    else this.#waiter = w;
  }

  #shift(): Uint8Array {
    const c = this.#queue.shift() as Uint8Array;
    this.#queued -= c.length;
    if (this.#paused && this.#queued < ChannelDuplex.HIGH_WATER / 2) {
      this.#paused = false;
      this.#ch.resume();
    }
    return c;
  }

  read(): Promise<Uint8Array | null> {
    if (this.#queue.length > 0) return Promise.resolve(this.#shift());
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(null);
    if (this.#waiter) {
      return Promise.reject(
        new RkhilError("ByteDuplex.read: concurrent reads", "await each read() before the next"),
      );
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#error) throw this.#error;
    if (this.#ended) {
      throw new InfraError(
        `shell channel on ${this.#label} is closed`,
        "the remote shell exited; open a new shell channel",
      );
    }
    await writeAll(this.#ch, data);
  }

  async close(): Promise<void> {
    if (this.#gate.close()) this.#gate.droppedAfterClose += this.#queue.length;
    this.#queue = [];
    this.#queued = 0;
    if (this.#paused) {
      // Let the channel drain (into the gate) so its window opens and the close gets through.
      this.#paused = false;
      this.#ch.resume();
    }
    if (!this.#ended) {
      this.#ended = true;
      try {
        this.#ch.end();
        this.#ch.close();
      } catch { /* already gone */ }
    }
    this.#wake();
    this.#pending.delete(this.#onLost);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.#closed, new Promise((r) => timer = setTimeout(r, 1000))]);
    clearTimeout(timer);
  }
}
