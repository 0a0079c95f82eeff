/**
 * Helpers for tests that run the CLI as a user does: `main.ts` in a Deno subprocess, its output
 * and its exit status (main_test.ts, runner/blast_atlas_cli_test.ts).
 *
 * @module
 */
import assert from "node:assert/strict";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** A finished CLI run. */
export interface CliRun {
  /** Exit status. */
  code: number;
  /** Standard output, decoded as UTF-8. */
  stdout: string;
  /** Standard error, decoded as UTF-8. */
  stderr: string;
}

/** Run `deno run -A main.ts ...args` (stdin closed) and wait for it to end. */
export function rkhil(...args: string[]): Promise<CliRun> {
  return rkhilWithEnv({}, ...args);
}

/** As {@linkcode rkhil}, with `env` added to the environment (e.g. `RKHIL_HOST`). */
export async function rkhilWithEnv(
  env: Record<string, string>,
  ...args: string[]
): Promise<CliRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Assert that stderr holds no TypeScript stack frame (`at … .ts:N`); `message` says whose. */
export function noStackTrace(r: CliRun, message = "stack trace printed"): void {
  assert.doesNotMatch(r.stderr, /\n\s+at .*\.ts:\d+/, message);
}

/** Run `fn` with a new temporary directory, removed (recursively) afterwards, also on a throw. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
