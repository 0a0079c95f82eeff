/**
 * Which Debian kernel package a target runs, for what is built or read per package (the probe
 * module, the device trees the package ships): the spec itself for the embedded target, and for
 * a board target the package version its running kernel reports in `uname -v`
 * (`#1 SMP PREEMPT_DYNAMIC Debian 6.12.118-1 (2026-...)` → `debian:6.12.118-1`).
 *
 * @module
 */
import { RkhilError } from "../errors.ts";
import type { StepContext } from "./types.ts";

/**
 * The Debian package version in a `uname -v` line, or `undefined` when the kernel is not a
 * Debian build. Only a version Debian could have (digits, dots, `+`, `~`, `-`) is accepted.
 */
export function debianVersionOf(unameV: string): string | undefined {
  const m = /\bDebian ([0-9][0-9A-Za-z.+~-]{0,60})(?=\s|$)/.exec(unameV);
  return m?.[1];
}

/**
 * The kernel spec (`debian:<suite>` or `debian:<version>`) of the kernel `ctx.target` runs.
 *
 * @throws {RkhilError} with verdict SKIP (not applicable here: the target runs a kernel rkhil
 *   cannot fetch packages for) and what to do, when the kernel is not Debian's.
 */
export async function debianSpecOf(ctx: StepContext): Promise<string> {
  if (ctx.kernel.startsWith("debian:")) return ctx.kernel;
  const r = await ctx.target.command.run("uname -v", { timeoutMs: 20_000 });
  const version = debianVersionOf(r.stdout.trim());
  if (!version) {
    throw new RkhilError(
      `${ctx.target.name} runs ${ctx.release} (uname -v: ${
        r.stdout.trim().slice(0, 80)
      }), not a Debian kernel package`,
      "rkhil builds and reads per Debian kernel package: boot the board on a Debian arm64 kernel",
      "SKIP",
    );
  }
  return `debian:${version}`;
}
