/**
 * The `rkhil qemu` subcommands: `exec` (boot a guest, run one command, print its output, exit
 * with its status) and `shell` (the guest's serial console on this terminal, or piped).
 *
 * Exit statuses: the command's own status for `exec`; 2 for a user error (unknown kernel
 * spec: the message lists what the mirror has); 3 for an infrastructure failure (QEMU,
 * console or SSH broke, a timeout: MISS); 4 when the kernel crashed (FAIL).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { describeError, InfraError, RkhilError } from "../errors.ts";
import { shellQuote } from "../ssh/mod.ts";
import type { Via } from "../protocol/command.ts";
import { QemuTarget } from "../qemu/target.ts";
import { KernelFaultError } from "./faults.ts";

/** Thrown by a subcommand to end the CLI with `code` (its message is already printed). */
export class CliExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Exit status of an infrastructure failure. */
export const EXIT_INFRA = 3;
/** Exit status when the kernel crashed. */
export const EXIT_KERNEL_FAIL = 4;

/** Common options of the `qemu` subcommands. */
export interface QemuCliOptions {
  kernel: string;
  mem?: string;
  cpus?: number;
  runDir?: string;
  append?: string;
  verbose?: boolean;
}

/** `runs/qemu/<time>-<kernel>` in the rkhil checkout (absolute: QEMU gets absolute paths). */
function defaultRunDir(kernel: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const root = fileURLToPath(new URL("../../runs/qemu/", import.meta.url));
  return `${root}${stamp}-${kernel.replace(/[^A-Za-z0-9.+-]/g, "_")}`;
}

/** The command text from `-- CMD...`: one argument is shell text, several are argv words. */
export function commandText(words: string[]): string {
  if (words.length === 1) return words[0];
  return words.map((w) => /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : shellQuote(w)).join(" ");
}

/** Map a failure to the CLI's exit statuses, printing it. */
function failure(err: unknown, runDir: string): CliExit {
  if (err instanceof KernelFaultError) {
    console.error(describeError(err));
    console.error(`  run directory: ${runDir}`);
    return new CliExit(EXIT_KERNEL_FAIL);
  }
  if (err instanceof RkhilError && err.verdict === "MISS") {
    console.error(describeError(err, Deno.env.get("RKHIL_DEBUG") === "1"));
    console.error(`  infrastructure failure (MISS); run directory: ${runDir}`);
    return new CliExit(EXIT_INFRA);
  }
  if (err instanceof RkhilError || !(err instanceof Error)) throw err;
  // An unclassified error from the transports is still not a verdict on the kernel.
  console.error(describeError(err, Deno.env.get("RKHIL_DEBUG") === "1"));
  console.error(`  infrastructure failure (MISS); run directory: ${runDir}`);
  return new CliExit(EXIT_INFRA);
}

/** `rkhil qemu exec`: returns the command's exit status (throws CliExit on failures). */
export async function qemuExec(
  o: QemuCliOptions & { via?: string; timeout?: number },
  words: string[],
): Promise<number> {
  const via: Via = o.via === "serial" ? "serial" : o.via === "ssh-shell" ? "ssh-shell" : "ssh-exec";
  const runDir = o.runDir ?? defaultRunDir(o.kernel);
  const cmd = commandText(words);
  const log = o.verbose ? (l: string) => console.error(`rkhil: ${l}`) : undefined;
  let s: QemuTarget | undefined;
  try {
    s = await QemuTarget.prepare({
      kernel: o.kernel,
      runDir,
      memory: o.mem,
      cpus: o.cpus,
      extraAppend: o.append,
    }, { log });
    await s.ready({ consoleOnly: via === "serial" });
    const r = await s.command.run(cmd, { via, timeoutMs: (o.timeout ?? 300) * 1000 });
    await writeAll(Deno.stdout, r.stdoutBytes);
    log?.(`exit status ${r.exitStatus} after ${r.durationMs.toFixed(0)} ms (${via})`);
    return r.exitStatus;
  } catch (err) {
    if (err instanceof RkhilError && err.verdict === "ERROR" && !s) throw err; // user input
    throw failure(err, runDir);
  } finally {
    await s?.close();
  }
}

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, b: Uint8Array) {
  let off = 0;
  while (off < b.length) off += await w.write(b.subarray(off));
}

/** Ctrl-] ends an interactive console session. */
const ESCAPE = 0x1d;

/**
 * `rkhil qemu shell`: the guest's serial console on this terminal (raw mode; Ctrl-] quits)
 * or, when stdin is not a terminal, fed from stdin until its end, then until the console is
 * quiet for `quietMs` (bounded by `drainMs`). Returns 0.
 */
export async function qemuShell(
  o: QemuCliOptions & { quietMs?: number; drainMs?: number },
): Promise<number> {
  const runDir = o.runDir ?? defaultRunDir(o.kernel);
  const tty = Deno.stdin.isTerminal();
  let s: QemuTarget | undefined;
  const enc = new TextEncoder();
  try {
    console.error(`rkhil: booting ${o.kernel} (run directory ${runDir}) ...`);
    s = await QemuTarget.prepare({
      kernel: o.kernel,
      runDir,
      memory: o.mem,
      cpus: o.cpus,
      extraAppend: o.append,
    });
    await s.ready({ consoleOnly: true });
    const con = s.console!.stream;
    console.error(
      `rkhil: ${s.kernel.release} console ${con.name}` +
        (tty ? "; Ctrl-] quits" : "; reading commands from stdin"),
    );
    let lastRx = performance.now();
    let out: Promise<unknown> = Promise.resolve();
    const offData = con.onData((chunk) => {
      lastRx = performance.now();
      out = out.then(() => writeAll(Deno.stdout, chunk)).catch(() => {});
    });
    let lost: InfraError | undefined;
    const closed = new Promise<void>((resolve) => {
      con.onClose((err) => {
        lost = err ?? new InfraError("the console closed", "see the run directory");
        resolve();
      });
    });
    const m = s.machine!;
    const exited = m.exitStatus.then(() => {
      lost ??= new InfraError(`QEMU exited (status ${m.exitCode})`, "see qemu.log");
    });
    try {
      await con.write(enc.encode("\n"));
      if (tty) Deno.stdin.setRaw(true);
      const input = (async () => {
        const buf = new Uint8Array(4096);
        for (;;) {
          const n = await Deno.stdin.read(buf);
          if (n === null) return "eof" as const;
          const chunk = buf.subarray(0, n);
          const esc = chunk.indexOf(ESCAPE);
          if (esc >= 0) {
            if (esc > 0) await con.write(chunk.slice(0, esc));
            return "escape" as const;
          }
          await con.write(chunk.slice());
        }
      })();
      const how = await Promise.race([
        input,
        closed.then(() => "lost" as const),
        exited.then(() => "lost" as const),
      ]);
      if (how === "eof") {
        // Let the guest finish what was piped in: wait for a quiet console (bounded).
        const quiet = o.quietMs ?? 1500;
        const until = performance.now() + (o.drainMs ?? 60_000);
        while (!lost && performance.now() < until && performance.now() - lastRx < quiet) {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      if (lost) throw lost;
      await out;
      return 0;
    } finally {
      if (tty) Deno.stdin.setRaw(false);
      offData();
    }
  } catch (err) {
    if (err instanceof RkhilError && err.verdict === "ERROR" && !s) throw err;
    throw failure(err, runDir);
  } finally {
    await s?.close();
    if (tty) console.error("\nrkhil: console closed, guest powered off");
  }
}
