/**
 * The Command protocol over a target's three transports, written once for every kind of
 * target (runner/target/target.ts): the serial console (a marker-framed shell on a console
 * tap), an SSH exec channel (a fresh process per command) and a persistent marker-framed shell
 * on an SSH shell channel. Every command has the same contract on every transport
 * (runner/protocol/command.ts): it cannot change the state of later commands (a subshell on the
 * framed shells, a fresh shell per exec channel), stdin is `stdin` or /dev/null, stderr is
 * merged into stdout, `exitStatus` is its status (128 + signal number after a signal). One
 * difference remains, from the guest's shell and not from rkhil: on a terminal (serial,
 * ssh-shell) busybox ash prints a job status line such as `Killed` after a command killed by
 * a signal; over an exec channel (pipes) it prints nothing.
 *
 * {@linkcode guard} holds a command to the failure rules: the target going away is an
 * InfraError (MISS) at once, a kernel fault a KernelFaultError (FAIL) at once, a transport
 * error that a fault follows within the grace time is the fault, and everything is bounded.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { InfraError, TimeoutError } from "../errors.ts";
import type { CommandResult, Via } from "../protocol/command.ts";
import type { FramedShell } from "../shell/framed.ts";
import type { SshSession } from "../ssh/client.ts";
import { type KernelFault, KernelFaultError } from "./faults.ts";

/** All transports, in the order the acceptance tests use them. */
export const VIAS: readonly Via[] = ["serial", "ssh-exec", "ssh-shell"];

/** Signal numbers of the names an SSH exit-signal carries (Linux, arm64 and x86 agree). */
const SIGNALS: Readonly<Record<string, number>> = {
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

/** What {@linkcode guard} and {@linkcode runOn} need from the target they run on. */
export interface CommandHost {
  /** Boots so far: identifies the current boot. */
  readonly bootCount: number;
  /** After a transport broke, how long to wait for a kernel fault on the console (ms). */
  readonly faultGraceMs: number;
  /** Why the target is gone, if it is (QEMU exited, console device vanished). */
  gone(): string | undefined;
  /**
   * Call `cb` (once, with the reason) when the target goes away. Returns an unsubscribe: a
   * command's subscription ends with it, so thousands of commands hold nothing.
   */
  onGone(cb: (reason: string) => void): () => void;
  /** The fatal fault seen in boot `boot`, if any. */
  faultIn(boot: number): KernelFault | undefined;
  /** Call `cb` on every fatal kernel event. Returns an unsubscribe. */
  onFault(cb: (fault: KernelFault) => void): () => void;
  /** Call `cb` on every kernel console line. Returns an unsubscribe. */
  onKernelLine(cb: (line: string, atMs: number) => void): () => void;
  /** The SSH connection of the current boot. */
  ssh(): Promise<SshSession>;
  /** The framed shell on the SSH shell channel of the current boot. */
  sshShell(): Promise<FramedShell>;
  /** The framed shell on the console of the current boot. */
  consoleShell(): Promise<FramedShell>;
}

/**
 * Run `fn` under the failure rules: the target gone → InfraError at once; a kernel fault →
 * KernelFaultError at once; a transport error → KernelFaultError if a fault shows within
 * `host.faultGraceMs`, else the transport's error; a hard bound of `timeoutMs` plus 30 s of
 * recovery time on everything (TimeoutError).
 *
 * @throws {InfraError} (MISS) when the target is gone before or while `fn` runs.
 * @throws {KernelFaultError} (FAIL) on a kernel fault meanwhile.
 * @throws {TimeoutError} (MISS) past the hard bound.
 */
export async function guard<T>(
  host: CommandHost,
  what: string,
  timeoutMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  const goneErr = (reason: string) =>
    new InfraError(
      `${what}: ${reason} while the command ran`,
      "the target went away (killed, crashed or unplugged): see the console log of the run directory",
    );
  const already = host.gone();
  if (already) {
    throw new InfraError(`${what}: the target is gone (${already})`, "power it on again");
  }
  const boot = host.bootCount;
  const cleanups: (() => void)[] = [];
  const faultNow = () => host.faultIn(boot);
  const stop = new Promise<never>((_, reject) => {
    cleanups.push(host.onFault((f) => reject(new KernelFaultError(f, what))));
    cleanups.push(host.onGone((reason) => {
      // A panic makes QEMU exit only with -no-reboot; a fault just before wins.
      const f = faultNow();
      reject(f ? new KernelFaultError(f, what) : goneErr(reason));
    }));
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
    if (!(err instanceof TimeoutError)) {
      // A transport that broke may be the first sign of a crash or of the target going away:
      // give the console and the driver time to say which.
      const grace = new Promise<void>((r) => {
        const t = setTimeout(r, host.faultGraceMs);
        cleanups.push(() => clearTimeout(t));
        cleanups.push(host.onFault(() => r()));
        cleanups.push(host.onGone(() => r()));
      });
      if (!faultNow()) await grace;
      const f = faultNow();
      if (f) throw new KernelFaultError(f, what, { cause: err });
    }
    const g = host.gone();
    if (g) throw goneErr(g);
    throw err;
  } finally {
    for (const c of cleanups) c();
  }
}

/** Options of {@linkcode runOn}, defaults filled in. */
export interface RunOnOptions {
  /** Transport. */
  via: Via;
  /** Bound of the command in milliseconds. */
  timeoutMs: number;
  /** Bytes for the command's stdin (default /dev/null). */
  stdin?: Uint8Array | string;
  /** Framed shells: run in a subshell (default true). */
  isolate?: boolean;
}

/**
 * Run `cmd` over `o.via` on `host` under {@linkcode guard} (the contract of
 * runner/protocol/command.ts). `what` names the command in errors.
 */
export async function runOn(
  host: CommandHost,
  what: string,
  cmd: string,
  o: RunOnOptions,
): Promise<CommandResult> {
  const kernelLines: string[] = [];
  const offKernel = host.onKernelLine((l) => kernelLines.push(l));
  const t0 = performance.now();
  try {
    return await guard(host, what, o.timeoutMs, async () => {
      if (o.via === "ssh-exec") {
        const ssh = await host.ssh();
        const r = await ssh.exec(execCommandLine(cmd, o.stdin !== undefined), {
          timeoutMs: o.timeoutMs,
          stdin: o.stdin,
        });
        const exitStatus = r.exitStatus ?? (r.signal ? 128 + (SIGNALS[r.signal] ?? 127) : 255);
        // The command's stderr is merged by the wrapper's `exec 2>&1`; what still reaches the
        // channel's stderr was written before it (a shell that could not start the script)
        // and follows the output, as a framed shell prints such lines on its terminal.
        const stdoutBytes = r.stderrBytes.length
          ? concatBytes(r.stdoutBytes, r.stderrBytes)
          : r.stdoutBytes;
        return {
          stdout: r.stderrBytes.length ? new TextDecoder().decode(stdoutBytes) : r.stdout,
          stdoutBytes,
          exitStatus,
          durationMs: performance.now() - t0,
          via: o.via,
          kernelLines,
        };
      }
      const sh = o.via === "serial" ? await host.consoleShell() : await host.sshShell();
      const left = () => Math.max(1_000, o.timeoutMs - (performance.now() - t0));
      let body = cmd;
      let staged: string | undefined;
      if (o.stdin !== undefined) {
        staged = await stageStdin(sh, o.stdin, left());
        body = `{ ${cmd}\n} <${staged}`;
      }
      try {
        const r = await sh.run(body, { timeoutMs: left(), isolate: o.isolate });
        return {
          stdout: r.stdout,
          stdoutBytes: r.stdoutBytes,
          exitStatus: r.exitStatus,
          durationMs: performance.now() - t0,
          via: o.via,
          kernelLines,
        };
      } finally {
        if (staged) await sh.run(`rm -f ${staged}`, { timeoutMs: 10_000 }).catch(() => {});
      }
    });
  } finally {
    offKernel();
  }
}

/**
 * The script an SSH exec channel runs for `cmd` under the contract of
 * runner/protocol/command.ts: stdin from /dev/null unless `withStdin`, stderr merged into
 * stdout. The redirections are `exec`'s, applied to the channel's own shell: each exec channel
 * is a fresh shell, so no subshell is needed to keep `cd`, variables or `exit` to the command,
 * and none is forked (a fork costs about 3 ms in a TCG guest). The SSH client's PID line
 * (runner/ssh/client.ts, for killing the command on timeout) goes before it, on the channel's
 * stderr.
 */
export function execCommandLine(cmd: string, withStdin: boolean): string {
  return withStdin ? `exec 2>&1\n${cmd}` : `exec </dev/null 2>&1\n${cmd}`;
}

/** Raw bytes of stdin written per framed command (as printf escapes, up to 4 chars each). */
const STDIN_CHUNK = 700;

/**
 * A printf format that prints exactly `bytes`, single-quote safe: printable ASCII stays, `%`
 * is doubled, everything else (`'`, `\`, controls, non-ASCII) is a three-digit octal escape.
 * Exported for tests.
 */
export function printfFormat(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) {
    if (b === 0x25) s += "%%";
    else if (b >= 0x20 && b < 0x7f && b !== 0x27 && b !== 0x5c) s += String.fromCharCode(b);
    else s += "\\" + b.toString(8).padStart(3, "0");
  }
  return s;
}

/**
 * Write `stdin` to a fresh file in the target's /tmp through the framed shell (a framed
 * command's own stdin is the terminal), checked by size and SHA-256; returns its path.
 */
async function stageStdin(
  sh: FramedShell,
  stdin: Uint8Array | string,
  timeoutMs: number,
): Promise<string> {
  const bytes = typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin;
  const rnd = crypto.getRandomValues(new Uint8Array(6));
  const path = `/tmp/rkhil-stdin-${[...rnd].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  const t0 = performance.now();
  const left = () => Math.max(1_000, timeoutMs - (performance.now() - t0));
  const check = async (cmd: string) => {
    const r = await sh.run(cmd, { timeoutMs: left() });
    if (r.exitStatus !== 0) {
      throw new InfraError(
        `writing the command's stdin to ${path} failed (exit ${r.exitStatus}): ${r.stdout.trim()}`,
        "check free space in the target's /tmp",
      );
    }
    return r;
  };
  await check(`: >${path}`);
  for (let i = 0; i < bytes.length; i += STDIN_CHUNK) {
    await check(`printf '${printfFormat(bytes.subarray(i, i + STDIN_CHUNK))}' >>${path}`);
  }
  const sha = createHash("sha256").update(bytes).digest("hex");
  const r = await check(`wc -c <${path}; sha256sum <${path}`);
  const [n, s] = r.stdout.trim().split(/\s+/);
  if (Number(n) !== bytes.length || s !== sha) {
    throw new InfraError(
      `the command's stdin arrived damaged in ${path}: ${n} bytes, sha256 ${s}; ` +
        `sent ${bytes.length} bytes, sha256 ${sha}`,
      "the console or shell channel mangles bytes: check the line settings",
    );
  }
  return path;
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
