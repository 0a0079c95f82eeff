/**
 * A session on a booted target: one API to run commands over the serial console (a
 * marker-framed shell on the console), an SSH exec channel (isolation: a fresh process per
 * command) or a persistent marker-framed shell on an SSH shell channel (fast command
 * streams), to upload files with a checksum check, and to reboot and reconnect.
 *
 * - One SSH connection per boot: the host key is pinned from the guest image, the client key
 *   is the image's; after a reboot the same session reconnects within a bounded wait.
 * - Every command has the same contract on every transport: it runs in a subshell with stdin
 *   from /dev/null and stderr merged into stdout; `stdout` is exactly what it printed and
 *   `exitStatus` its status (128 + signal number when a signal killed it). One difference
 *   remains, from the guest's shell and not from rkhil: on a terminal (serial, ssh-shell)
 *   busybox ash prints a job status line such as `Killed` after a command killed by a
 *   signal; over an exec channel (pipes) it prints nothing.
 * - Every wait has a timeout with an owner. Failures are classified: a kernel fault seen on
 *   the console while a command runs (or within `faultGraceMs` after its transport broke)
 *   is a {@linkcode KernelFaultError} (FAIL); QEMU exiting or a transport loss is an
 *   InfraError (MISS) at once, never a hang; a timeout is a TimeoutError (MISS).
 * - Console lines go to `onConsoleLine` / `onKernelLine` subscribers; watchers that want the
 *   raw stream attach to {@linkcode TargetSession.console} (a `ConsoleStream`: `onData`,
 *   `onClose`) and report fatal events with {@linkcode TargetSession.reportFatal}.
 *
 * @module
 */

import { InfraError, RkhilError, TimeoutError } from "../errors.ts";
import type { ConsoleRecorder, RecordedLine } from "../qemu/console.ts";
import { type BootTimes, QemuTarget, type QemuTargetOptions } from "../qemu/target.ts";
import type { ConsoleStream } from "../serial/port.ts";
import { FramedShell } from "../shell/framed.ts";
import { type SshSession, type UploadResult, waitForSsh } from "../ssh/mod.ts";
import { attachToConsole, ConsoleWatcher, type WatchEvent } from "../watch/watchers.ts";
import { detectKernelFault, type KernelFault, KernelFaultError } from "./faults.ts";
import { CONSOLE_PREFIX_SOURCE } from "../../oracle/kline.ts";

/** Watcher event kinds that end a command as a kernel fault. */
const FATAL_KINDS = new Set(["panic", "oops", "bug", "serror"]);

/** How a command reaches the target. */
export type Via = "serial" | "ssh-exec" | "ssh-shell";

/** All transports, in the order the acceptance tests use them. */
export const VIAS: readonly Via[] = ["serial", "ssh-exec", "ssh-shell"];

/** Options of {@linkcode TargetSession.run}. */
export interface TargetRunOptions {
  /** Default `ssh-exec`. */
  via?: Via;
  /** Bound of the command. Default: the session's `defaultTimeoutMs`. */
  timeoutMs?: number;
  /**
   * Framed shells (`serial`, `ssh-shell`): run in a subshell (default true) or in the shell
   * itself (no fork per command; changes persist). SSH exec channels are always isolated.
   */
  isolate?: boolean;
}

/** What a command did. */
export interface TargetRunResult {
  /** stdout and stderr merged, decoded as UTF-8. */
  stdout: string;
  /** stdout and stderr merged, as bytes. */
  stdoutBytes: Uint8Array;
  /** Exit status (128 + signal number when a signal killed the command). */
  exitStatus: number;
  /** Wall time of the command in milliseconds. */
  durationMs: number;
  /** The transport it ran over. */
  via: Via;
  /** Kernel console lines that arrived while the command ran. */
  kernelLines: string[];
}

/** Options of a {@linkcode TargetSession}. */
export interface TargetSessionOptions {
  /** Connect SSH when the session opens (default true; else on first SSH use). */
  connectSsh?: boolean;
  /** Bound of an SSH (re)connect, retries included. Default 60 000 ms. */
  sshWaitMs?: number;
  /** Default command bound. Default 60 000 ms. */
  defaultTimeoutMs?: number;
  /** Bound of a whole reboot (reset, boot, SSH). Default 240 000 ms. */
  rebootTimeoutMs?: number;
  /** After a transport broke, wait this long for a kernel fault on the console. Default 3000. */
  faultGraceMs?: number;
  /** Progress lines (boots, reconnects, faults). */
  log?: (line: string) => void;
  /**
   * Console watchers (runner/watch/) fed with every console byte; their fatal events (panic,
   * Oops, BUG, SError: verdict FAIL) end the running command as a KernelFaultError. Default:
   * a new `ConsoleWatcher` with `commandOutputLf` (the framed shell runs with `-opost`).
   * `false`: only the minimal detector of faults.ts.
   */
  watcher?: ConsoleWatcher | false;
}

const SIGNALS: Record<string, number> = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  TRAP: 5,
  ABRT: 6,
  BUS: 7,
  FPE: 8,
  KILL: 9,
  USR1: 10,
  SEGV: 11,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
};

/** A printk console prefix (oracle/kline.ts), anywhere in the line. */
const KERNEL_LINE = new RegExp(CONSOLE_PREFIX_SOURCE);

/** A session on a QEMU target; see the module documentation. */
export class TargetSession {
  /** The options in force, defaults filled in. */
  readonly opts:
    & Required<Omit<TargetSessionOptions, "log" | "watcher">>
    & Pick<TargetSessionOptions, "log">;
  /** The console watcher (undefined with `watcher: false`). */
  readonly watcher: ConsoleWatcher | undefined;
  #detachWatcher?: () => void;
  #reported = new Set<number>();
  #ssh?: SshSession;
  #sshBoot = -1;
  #sshShell?: { boot: number; shell: Promise<FramedShell> };
  #privateKey?: string;
  #chain: Promise<unknown> = Promise.resolve();
  #lineCbs = new Set<(line: RecordedLine) => void>();
  #kernelCbs = new Set<(line: string, atMs: number) => void>();
  #faultCbs = new Set<(fault: KernelFault) => void>();
  #offRecorder?: () => void;
  #recorder?: ConsoleRecorder;
  /** The boot a fatal fault was seen in (the target needs a reboot before the next command). */
  #crashedBoot = -1;
  #closed = false;
  /** Every fatal kernel event seen in this session. */
  readonly faults: KernelFault[] = [];

  private constructor(readonly target: QemuTarget, opts: TargetSessionOptions) {
    this.opts = {
      connectSsh: opts.connectSsh ?? true,
      sshWaitMs: opts.sshWaitMs ?? 60_000,
      defaultTimeoutMs: opts.defaultTimeoutMs ?? 60_000,
      rebootTimeoutMs: opts.rebootTimeoutMs ?? 240_000,
      faultGraceMs: opts.faultGraceMs ?? 3_000,
      log: opts.log,
    };
    this.watcher = opts.watcher === false ? undefined : opts.watcher ??
      new ConsoleWatcher({
        commandOutputLf: true,
        initialBootState: target.state === "off" ? "booting" : "up",
      });
    this.watcher?.onEvent((ev) => this.#watchEvent(ev));
  }

  #watchEvent(ev: WatchEvent): void {
    if (ev.verdict !== "FAIL" || !FATAL_KINDS.has(ev.kind) || this.#reported.has(ev.id)) return;
    this.#reported.add(ev.id);
    this.reportFatal({
      kind: ev.kind as KernelFault["kind"],
      reason: ev.reason,
      line: ev.lines[0]?.text ?? ev.reason,
      atMs: ev.atMs,
      source: "watcher",
    });
  }

  /** Prepare a QEMU target (kernel, image), power it on and open a session on it. */
  static async boot(
    targetOpts: QemuTargetOptions,
    opts: TargetSessionOptions = {},
  ): Promise<TargetSession> {
    const target = await QemuTarget.prepare(targetOpts);
    try {
      return await TargetSession.open(target, opts);
    } catch (err) {
      await target.powerOff().catch(() => {});
      throw err;
    }
  }

  /** Open a session on `target`, powering it on if it is off. */
  static async open(target: QemuTarget, opts: TargetSessionOptions = {}): Promise<TargetSession> {
    const s = new TargetSession(target, opts);
    if (target.state === "off") {
      const times = await target.powerOn({ ssh: s.opts.connectSsh });
      s.#log(`booted ${target.kernel.release}: shell ${times.shell?.toFixed(2)} s`);
    }
    s.#attachRecorder();
    if (s.opts.connectSsh) await s.#sshNow();
    return s;
  }

  #log(line: string): void {
    this.opts.log?.(line);
    this.target.machine?.console.note(`session: ${line}`);
  }

  /** The console stream of the current QEMU (attach watchers here: `onData`, `onClose`). */
  get console(): ConsoleStream {
    const m = this.target.machine;
    if (!m) throw new InfraError("target is off: no console", "power it on first");
    return m.serial;
  }

  /** The console recorder of the current QEMU (transcript, `waitFor`, notes). */
  get recorder(): ConsoleRecorder {
    const m = this.target.machine;
    if (!m) throw new InfraError("target is off: no console", "power it on first");
    return m.console;
  }

  /** True while QEMU runs and the session is open. */
  get usable(): boolean {
    const m = this.target.machine;
    return !this.#closed && !!m && !m.exited && this.target.state !== "off";
  }

  /** Call `cb` for every console line. Returns an unsubscribe. */
  onConsoleLine(cb: (line: RecordedLine) => void): () => void {
    this.#lineCbs.add(cb);
    return () => this.#lineCbs.delete(cb);
  }

  /** Call `cb` for every kernel console line (printk prefix, CRLF). Returns an unsubscribe. */
  onKernelLine(cb: (line: string, atMs: number) => void): () => void {
    this.#kernelCbs.add(cb);
    return () => this.#kernelCbs.delete(cb);
  }

  /** Call `cb` for every fatal kernel event. Returns an unsubscribe. */
  onFault(cb: (fault: KernelFault) => void): () => void {
    this.#faultCbs.add(cb);
    return () => this.#faultCbs.delete(cb);
  }

  #attachRecorder(): void {
    const rec = this.target.machine?.console;
    if (!rec || rec === this.#recorder) return;
    this.#offRecorder?.();
    this.#recorder = rec;
    if (this.watcher) {
      this.#detachWatcher?.();
      this.#detachWatcher = attachToConsole(this.watcher, rec.stream);
      this.watcher.declareBooted();
    }
    this.#offRecorder = rec.onLine((line) => {
      for (const cb of this.#lineCbs) {
        try {
          cb(line);
        } catch { /* a subscriber's bug must not stop the console */ }
      }
      if (line.crlf && KERNEL_LINE.test(line.text)) {
        for (const cb of this.#kernelCbs) {
          try {
            cb(line.text, line.atMs);
          } catch { /* ignore */ }
        }
        if (!this.watcher) {
          const fault = detectKernelFault(line.text, line.crlf, line.atMs);
          if (fault) this.reportFatal(fault);
        }
      }
    });
  }

  /**
   * Report a fatal kernel event (the built-in detector does; console watchers may too). The
   * running command, if any, ends with a {@linkcode KernelFaultError}; the target is rebooted
   * before the next command.
   */
  reportFatal(fault: KernelFault): void {
    this.faults.push(fault);
    this.#crashedBoot = this.target.bootCount;
    this.#log(`fatal kernel event (${fault.source}): ${fault.reason}`);
    for (const cb of this.#faultCbs) {
      try {
        cb(fault);
      } catch { /* ignore */ }
    }
  }

  /** Serialise session operations (one command at a time, reboots in between). */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const job = this.#chain.then(fn, fn);
    this.#chain = job.catch(() => {});
    return job;
  }

  async #sshNow(): Promise<SshSession> {
    const m = this.target.machine;
    if (!m || m.exited) throw new InfraError("target is off: no SSH", "power it on first");
    const boot = this.target.bootCount;
    if (this.#ssh && this.#sshBoot === boot && this.#ssh.connected) return this.#ssh;
    this.#privateKey ??= await Deno.readTextFile(this.target.image.clientKey.privateKeyPath);
    const t0 = performance.now();
    const wait = { totalMs: this.opts.sshWaitMs, retryDelayMs: 100, maxRetryDelayMs: 1_000 };
    if (this.#ssh && !this.#ssh.target.endsWith(`:${m.sshPort}`)) {
      await this.#ssh.close().catch(() => {});
      this.#ssh = undefined;
    }
    if (this.#ssh) {
      await this.#ssh.reconnect(wait);
    } else {
      this.#ssh = await waitForSsh({
        host: "127.0.0.1",
        port: m.sshPort,
        user: "root",
        hostKeyFingerprint: this.target.image.hostKey.fingerprint,
        privateKey: this.#privateKey,
        connectTimeoutMs: 15_000,
        keepaliveIntervalMs: 5_000,
        keepaliveCountMax: 3,
      }, wait);
    }
    this.#sshBoot = boot;
    this.#sshShell = undefined;
    this.#log(`ssh connected in ${Math.round(performance.now() - t0)} ms`);
    return this.#ssh;
  }

  async #sshShellNow(): Promise<FramedShell> {
    const ssh = await this.#sshNow();
    const boot = this.target.bootCount;
    const cur = this.#sshShell;
    if (cur && cur.boot === boot) {
      const sh = await cur.shell.catch(() => undefined);
      if (sh?.usable) return sh;
    }
    const shell = (async () => {
      // A pty: Ctrl-C recovery after a timeout needs a terminal (the shell normalises it).
      const ch = await ssh.shellChannel({ pty: true });
      return await FramedShell.start(ch, {
        name: `${this.target.kernel.release} ssh shell`,
        quietMs: 200,
        loginTimeoutMs: 20_000,
        syncTimeoutMs: 10_000,
      });
    })();
    this.#sshShell = { boot, shell };
    return await shell;
  }

  /**
   * Run `cmd` on the target (see the module documentation for the contract). A non-zero
   * exit status is a result, not an error.
   */
  run(cmd: string, opts: TargetRunOptions = {}): Promise<TargetRunResult> {
    return this.#serial(() => this.#run(cmd, opts));
  }

  async #run(cmd: string, opts: TargetRunOptions): Promise<TargetRunResult> {
    const via = opts.via ?? "ssh-exec";
    const timeoutMs = opts.timeoutMs ?? this.opts.defaultTimeoutMs;
    const what = `${via} \`${
      cmd.length > 50 ? cmd.slice(0, 47) + "..." : cmd
    }\` on ${this.target.kernel.release}`;
    await this.#recoverIfCrashed();
    const kernelLines: string[] = [];
    const offKernel = this.onKernelLine((l) => kernelLines.push(l));
    const t0 = performance.now();
    try {
      return await this.#guard(what, timeoutMs, async () => {
        if (via === "ssh-exec") {
          const ssh = await this.#sshNow();
          const r = await ssh.exec(`(${cmd}\n) </dev/null 2>&1`, { timeoutMs });
          const exitStatus = r.exitStatus ??
            (r.signal ? 128 + (SIGNALS[r.signal] ?? 127) : 255);
          // The command's stderr is merged inside the wrapper; what reaches the channel's
          // stderr comes from the wrapping shell itself after the command (job status such
          // as "Killed"), which a framed shell prints on its terminal at the same place.
          const stdoutBytes = r.stderrBytes.length
            ? concatBytes(r.stdoutBytes, r.stderrBytes)
            : r.stdoutBytes;
          return {
            stdout: r.stderrBytes.length ? new TextDecoder().decode(stdoutBytes) : r.stdout,
            stdoutBytes,
            exitStatus,
            durationMs: performance.now() - t0,
            via,
            kernelLines,
          };
        }
        const sh = via === "serial" ? await this.target.consoleShell() : await this.#sshShellNow();
        const left = Math.max(1_000, timeoutMs - (performance.now() - t0));
        const r = await sh.run(cmd, { timeoutMs: left, isolate: opts.isolate });
        return {
          stdout: r.stdout,
          stdoutBytes: r.stdoutBytes,
          exitStatus: r.exitStatus,
          durationMs: performance.now() - t0,
          via,
          kernelLines,
        };
      });
    } finally {
      offKernel();
    }
  }

  /**
   * Run `fn` under the session's failure rules: QEMU exiting → InfraError at once; a kernel
   * fault → KernelFaultError at once; a transport error → KernelFaultError if a fault shows
   * within `faultGraceMs`, else the transport's error; a hard bound of `timeoutMs` plus
   * recovery time (30 s) on everything.
   */
  async #guard<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
    const m = this.target.machine;
    if (!m || m.exited) {
      throw new InfraError(`${what}: the target is off (QEMU not running)`, "power it on");
    }
    const boot = this.target.bootCount;
    const cleanups: (() => void)[] = [];
    const faultNow = () => this.#crashedBoot === boot ? this.faults.at(-1) : undefined;
    const qemuGone = () =>
      new InfraError(
        `${what}: QEMU exited (status ${m.exitCode}) while the command ran`,
        "QEMU was killed or crashed: see qemu.log and the console log of the run directory",
      );
    const stop = new Promise<never>((_, reject) => {
      cleanups.push(this.onFault((f) => reject(new KernelFaultError(f, what))));
      m.exitStatus.then(() => {
        // A panic makes QEMU exit only with -no-reboot; a fault just before wins.
        const f = faultNow();
        reject(f ? new KernelFaultError(f, what) : qemuGone());
      });
      const hard = timeoutMs + 30_000;
      const t = setTimeout(
        () =>
          reject(
            new TimeoutError(
              what,
              hard,
              "the command and its recovery did not end in time; the target may be hung",
            ),
          ),
        hard,
      );
      cleanups.push(() => clearTimeout(t));
    });
    stop.catch(() => {});
    const work = fn();
    work.catch(() => {});
    try {
      return await Promise.race([work, stop]);
    } catch (err) {
      if (err instanceof KernelFaultError) throw err;
      if (m.exited) throw qemuGone();
      if (err instanceof InfraError && !(err instanceof TimeoutError)) {
        // A transport that broke may be the first sign of a crash: give the console time.
        const grace = new Promise<void>((r) => {
          const t = setTimeout(r, this.opts.faultGraceMs);
          cleanups.push(() => clearTimeout(t));
          cleanups.push(this.onFault(() => r()));
          m.exitStatus.then(() => r());
        });
        if (!faultNow()) await grace;
        const f = faultNow();
        if (f) throw new KernelFaultError(f, what, { cause: err });
        if (m.exited) throw qemuGone();
      }
      throw err;
    } finally {
      for (const c of cleanups) c();
    }
  }

  async #recoverIfCrashed(): Promise<void> {
    if (this.#crashedBoot >= 0 && this.#crashedBoot === this.target.bootCount) {
      this.#log("the previous boot crashed: rebooting before the next command");
      await this.#reboot();
    }
  }

  /**
   * Copy a local file to `remotePath` over the session's SSH connection, verified by size and
   * SHA-256 in the target before it is moved into place.
   */
  upload(
    localPath: string,
    remotePath: string,
    opts: { timeoutMs?: number; mode?: number } = {},
  ): Promise<UploadResult> {
    return this.#serial(async () => {
      await this.#recoverIfCrashed();
      const timeoutMs = opts.timeoutMs ?? 300_000;
      return await this.#guard(`upload ${localPath} to ${remotePath}`, timeoutMs, async () => {
        const ssh = await this.#sshNow();
        return await ssh.upload(localPath, remotePath, { timeoutMs, mode: opts.mode });
      });
    });
  }

  /**
   * Reset the target (QMP system_reset), wait for the shell and reconnect SSH, all within
   * `rebootTimeoutMs`. Returns the boot's timings and the SSH reconnect time.
   */
  reboot(): Promise<{ boot: BootTimes; sshMs: number }> {
    return this.#serial(() => this.#reboot());
  }

  async #reboot(): Promise<{ boot: BootTimes; sshMs: number }> {
    const ms = this.opts.rebootTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TimeoutError(
              `reboot of ${this.target.kernel.release}`,
              ms,
              "the target did not come back (shell and SSH) in time: see the console log",
            ),
          ),
        ms,
      );
    });
    bound.catch(() => {});
    try {
      return await Promise.race([
        bound,
        (async () => {
          this.#sshShell = undefined;
          const m = this.target.machine;
          let boot: BootTimes;
          this.watcher?.expectBoot();
          if (!m || m.exited || this.target.state === "off") {
            if (this.target.state !== "off") await this.target.powerOff();
            boot = await this.target.powerOn();
          } else {
            boot = await this.target.reset();
          }
          this.#attachRecorder();
          this.watcher?.declareBooted();
          const t0 = performance.now();
          await this.#sshNow();
          const sshMs = performance.now() - t0;
          this.#log(
            `rebooted: shell ${boot.shell?.toFixed(2)} s, ssh reconnect ${sshMs.toFixed(0)} ms`,
          );
          return { boot, sshMs };
        })(),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Close the SSH connection and the shells (the target stays on). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#offRecorder?.();
    this.#detachWatcher?.();
    this.watcher?.flush();
    const sh = this.#sshShell;
    this.#sshShell = undefined;
    await sh?.shell.then((s) => s.close(), () => {}).catch(() => {});
    await this.#ssh?.close().catch(() => {});
  }

  /** Close the session and power the target off. */
  async powerOff(): Promise<void> {
    await this.close();
    await this.target.powerOff();
  }
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** True when `err` is an error rkhil classifies as an infrastructure failure (MISS). */
export function isInfraFailure(err: unknown): boolean {
  return err instanceof RkhilError && err.verdict === "MISS";
}
