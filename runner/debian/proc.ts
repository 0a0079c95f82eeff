/**
 * Running host tools with a timeout that has an owner, and errors that say what failed.
 *
 * @module
 */

import { InfraError, TimeoutError } from "../errors.ts";
import { ensureSpawnable } from "./host_tools.ts";

/** Result of a finished command. */
export interface RunResult {
  /** Exit code of the command. */
  code: number;
  /** Standard output, decoded as UTF-8. */
  stdout: string;
  /** Standard error, decoded as UTF-8. */
  stderr: string;
}

/** Options of {@linkcode run}. */
export interface RunOptions {
  /** Working directory (default: rkhil's). */
  cwd?: string;
  /** Variables added to (and overriding) the inherited environment. */
  env?: Record<string, string>;
  /** Kill the command after this long (default 10 minutes). */
  timeoutMs?: number;
  /** Who set the timeout, for the TimeoutError. */
  owner?: string;
  /** Do not throw on a non-zero exit status; return it. */
  allowFailure?: boolean;
  /** Bytes to write on stdin. */
  stdin?: Uint8Array;
}

/** Last `n` lines of a text, for error messages. */
export function tail(text: string, n = 12): string {
  const lines = text.trimEnd().split("\n");
  return lines.slice(-n).join("\n");
}

/**
 * Run the host program `cmd args...`, collect its output, and throw an InfraError naming the
 * command and the tail of its stderr if it fails (unless `allowFailure`), or a TimeoutError if
 * it runs too long. `cmd` must be declared in runner/debian/host_tools.ts: it is installed
 * (apt-get) before it runs when missing, and so is every program of a `sh -c SCRIPT`; an
 * undeclared one throws UndeclaredToolError before anything runs. A path outside the system's
 * directories (a relocated toolchain in rkhil's cache) runs as it is.
 */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return await runResolved(cmd, await ensureSpawnable(cmd, args), args, opts);
}

/**
 * {@linkcode run} with the program's path already resolved (`path`); `cmd` names it in errors.
 * It installs nothing: only runner/debian/host_tools.ts uses it, for apt-get itself.
 */
export async function runResolved(
  cmd: string,
  path: string,
  args: string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const owner = opts.owner ?? `${cmd} ${args.slice(0, 3).join(" ")}`;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(path, {
      args,
      cwd: opts.cwd,
      env: opts.env,
      stdin: opts.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new InfraError(
        `${cmd} is not installed`,
        `declare it in runner/debian/host_tools.ts and start it with run() or hostCommand()`,
        { cause: err },
      );
    }
    throw err;
  }
  if (opts.stdin) {
    const w = child.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, timeoutMs);
  const out = await child.output().finally(() => clearTimeout(timer));
  const result = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (timedOut) {
    throw new TimeoutError(
      owner,
      timeoutMs,
      `\`${cmd} ${args.join(" ")}\` did not finish; check the network or the mirror`,
    );
  }
  if (result.code !== 0 && !opts.allowFailure) {
    throw new InfraError(
      `\`${cmd} ${args.join(" ")}\` failed with status ${result.code}:\n${
        tail(result.stderr || result.stdout)
      }`,
      `see the output above; rerun the command by hand to investigate`,
    );
  }
  return result;
}
