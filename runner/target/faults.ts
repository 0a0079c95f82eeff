/**
 * Minimal kernel fault detection on console lines, and the error a kernel fault turns a
 * command into. A target (runner/target/target.ts) uses this detector while it boots (a panic
 * then is a FAIL, never retried) and, for commands, only when it runs without the console
 * watchers of runner/watch/ (`watcher: false`); by default the watchers decide and report
 * their fatal events through `DriverTarget.reportFatal`.
 *
 * Only kernel console lines count: a `[ seconds.micros]` printk prefix (possibly in the middle
 * of a line of other output) and a CRLF line end (the kernel console writes `\r\n`; the
 * framed shell runs with `stty -opost`, so command output such as `dmesg` ends in a bare LF
 * and is never taken for a crash).
 *
 * @module
 */

import { RkhilError } from "../errors.ts";
import { CONSOLE_PREFIX_SOURCE } from "../../oracle/kline.ts";

/** A fatal kernel event seen on the console. */
export interface KernelFault {
  /** `panic`, `oops`, `bug`, `serror`. */
  kind: "panic" | "oops" | "bug" | "serror";
  /** The line without its printk prefix. */
  reason: string;
  /** The whole console line. */
  line: string;
  /** Epoch ms. */
  atMs: number;
  /** Who reported it (`console` for the built-in detector, or a watcher's name). */
  source: string;
}

/** The printk console prefix of the one grammar (oracle/kline.ts), anywhere in the line. */
const PREFIX = new RegExp(CONSOLE_PREFIX_SOURCE);
const RULES: { kind: Exclude<KernelFault["kind"], "serror">; re: RegExp }[] = [
  { kind: "panic", re: /Kernel panic - not syncing: .*/ },
  { kind: "oops", re: /Unable to handle kernel .*|Internal error: .*/ },
  { kind: "bug", re: /kernel BUG at .*|\bBUG: .*/ },
];

/** The fatal kernel event in one console line, if any (see the module documentation). */
export function detectKernelFault(
  line: string,
  crlf: boolean,
  atMs: number,
): KernelFault | undefined {
  if (!crlf) return undefined;
  const p = PREFIX.exec(line);
  if (!p) return undefined;
  const rest = line.slice(p.index + p[0].length);
  for (const r of RULES) {
    const m = r.re.exec(rest);
    if (m) return { kind: r.kind, reason: m[0].trim(), line, atMs, source: "console" };
  }
  return undefined;
}

/**
 * A command (or the boot) was ended by a kernel fault: the kernel is wrong, so the verdict
 * is FAIL, not MISS, even though the transport broke too.
 */
export class KernelFaultError extends RkhilError {
  /** `what` (the command or the boot) ended by `fault` (verdict FAIL). */
  constructor(readonly fault: KernelFault, what: string, options?: { cause?: unknown }) {
    super(
      `${what}: kernel ${fault.kind}: ${fault.reason}`,
      "the kernel crashed: see the console log of the run directory for the full trace; " +
        "the target reboots before the next command",
      "FAIL",
      options,
    );
  }
}
