/**
 * Reach a shell prompt on a board's console, logging in when the console asks: `login:` gets
 * the board file's `console.login.user`, `Password:` the password from the environment
 * variable `console.login.password_env` names (typed, never logged: the capture log records
 * only how many bytes were sent), then the shell prompt (`console.login.prompt`, default
 * `[#$] $`) must show at the end of the console output.
 *
 * While the console stays quiet without a prompt (a shell that printed its prompt before the
 * last kernel message, a getty waiting), rkhil presses Enter, never while U-Boot counts down
 * to autoboot (a key there would stop the boot) nor at U-Boot's extlinux menu (`Enter choice:`:
 * an Enter there is an unknown choice and shows the menu again, so it never times out to its
 * default; kernel deployment answers that menu itself, runner/board/deploy.ts), nor after
 * U-Boot's `Starting kernel ...` until the kernel prints something (a hung kernel does not read
 * it, and U-Boot would after the power cycle).
 *
 * @module
 */

import { DEFAULT_SHELL_PROMPT } from "../../boards/schema.ts";
import { InfraError, TimeoutError, UserInputError } from "../errors.ts";
import type { ConsoleRecorder } from "../qemu/console.ts";

/** Options of {@linkcode waitForShell}. */
export interface ShellWaitOptions {
  /** Board id, for messages. */
  board: string;
  /** Transcript mark taken before power on: only output after it counts. */
  from: number;
  /** Bound of the whole wait, ms. */
  timeoutMs: number;
  /** The board file's `console.login`, if any. */
  login?: {
    /** User typed at `login:`. */
    user: string;
    /** Name of the environment variable holding the password. */
    password_env?: string;
    /** Regex (source) of the shell prompt; default `[#$] $`. */
    prompt?: string;
  };
  /** Where the password variable is looked up (default: the process environment). */
  env?: { get(name: string): string | undefined };
  /** Quiet time before Enter is pressed, ms (default 2000). */
  pokeAfterMs?: number;
}

/** What {@linkcode waitForShell} did. */
export interface ShellWaitResult {
  /** Whether a login was typed. */
  loggedIn: boolean;
  /** Enter presses sent to wake a prompt. */
  pokes: number;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]/g;

/** The console's last line: after the last newline, without CRs and ANSI sequences. */
export function lastLine(text: string): string {
  const line = text.slice(text.lastIndexOf("\n") + 1);
  return line.replace(ANSI, "").replaceAll("\r", "");
}

const LOGIN = /(?:^|\s)(?:[\w.-]+ )?login: ?$/i;
const PASSWORD = /password: ?$/i;
const INCORRECT = /login incorrect|authentication fail|permission denied/i;
const AUTOBOOT = /autoboot|hit any key|press any key/i;
/** U-Boot's extlinux menu waiting for a choice (boot/pxe_utils.c). */
const UBOOT_MENU = /Enter choice: ?$/;
/**
 * U-Boot handed over to a kernel that has printed nothing yet. A key now is not read by that
 * kernel; on QEMU it waits in the pty and reaches the next U-Boot after a reset, where it stops
 * the autoboot (the `=>` prompt), so the fallback boot never comes.
 */
const HANDED_OVER = /Starting kernel \.\.\.\s*$/;

/**
 * Wait on `recorder` until a shell prompt ends the console output of this boot, logging in
 * when asked (see the module documentation).
 *
 * @throws {UserInputError} when the console asks for a login the board file does not give
 *   (`console.login`), or for a password and the named variable is not set.
 * @throws {InfraError} (MISS) when the login is refused (wrong user or password), or the console
 *   closes.
 * @throws {TimeoutError} (MISS) when no prompt shows within `timeoutMs`, with the last output.
 */
export async function waitForShell(
  recorder: ConsoleRecorder,
  opts: ShellWaitOptions,
): Promise<ShellWaitResult> {
  const prompt = new RegExp(opts.login?.prompt ?? DEFAULT_SHELL_PROMPT);
  const env = opts.env ?? Deno.env;
  const pokeAfter = opts.pokeAfterMs ?? 2_000;
  const deadline = performance.now() + opts.timeoutMs;
  const owner = `shell prompt on the console of ${opts.board}`;
  let pos = opts.from;
  let loginsTyped = 0;
  let passwordTyped = false;
  let pokes = 0;
  let lastHandled = -1; // transcript length at which the last prompt was answered
  for (;;) {
    const text = recorder.since(opts.from);
    const end = opts.from + text.length;
    const line = lastLine(text);
    if (passwordTyped && INCORRECT.test(recorder.since(pos))) {
      throw new InfraError(
        `console login on ${opts.board} refused: ${
          INCORRECT.exec(recorder.since(pos))![0]
        } (wrong user or password?)`,
        `check console.login.user and the password in $${opts.login?.password_env}`,
      );
    }
    if (end !== lastHandled) {
      if (prompt.test(line) && !PASSWORD.test(line) && !LOGIN.test(line)) {
        return { loggedIn: loginsTyped > 0, pokes };
      }
      if (LOGIN.test(line)) {
        if (!opts.login) {
          throw new UserInputError(
            `the console of ${opts.board} asks for a login and the board file gives none`,
            "add console.login: { user: ..., password_env: NAME_OF_A_VARIABLE } to the board file",
          );
        }
        if (loginsTyped >= 2) {
          throw new InfraError(
            `console login on ${opts.board} refused: asked for the login again after ` +
              `${loginsTyped} attempts (wrong user or password?)`,
            `check console.login.user and the password in $${opts.login.password_env}`,
          );
        }
        loginsTyped++;
        passwordTyped = false;
        lastHandled = end;
        pos = end;
        recorder.note(`console login: typing user ${opts.login.user}`);
        await recorder.write(`${opts.login.user}\r`);
      } else if (PASSWORD.test(line)) {
        const name = opts.login?.password_env;
        const password = name === undefined ? undefined : env.get(name);
        if (password === undefined) {
          throw new UserInputError(
            `the console of ${opts.board} asks for a password` +
              (name === undefined
                ? " and console.login names no password_env"
                : ` and $${name} is not set`),
            name === undefined
              ? "add password_env: NAME to console.login and set that variable"
              : `set ${name} in rkhil's environment to the board's password`,
          );
        }
        lastHandled = end;
        pos = end;
        passwordTyped = true;
        recorder.note("console login: typing the password (not logged)");
        await recorder.write(`${password}\r`);
      }
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      const tail = recorder.since(opts.from).slice(-300).replace(/\r/g, "");
      throw new TimeoutError(
        owner,
        opts.timeoutMs,
        `no shell prompt matching /${prompt.source}/ (console.login.prompt) showed; last ` +
          `console output:\n${tail}`,
      );
    }
    try {
      await recorder.waitFor(/[\s\S]/, {
        from: recorder.mark(),
        timeoutMs: Math.max(1, Math.min(left, pokeAfter)),
        owner,
      });
      // Let a burst finish before judging its last line.
      await new Promise((r) => setTimeout(r, 50));
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      if (recorder.ended) {
        throw new InfraError(`the console of ${opts.board} closed`, "check the console");
      }
      // Quiet: wake a prompt, unless U-Boot is counting down.
      if (
        performance.now() < deadline &&
        !AUTOBOOT.test(recorder.since(opts.from).slice(-300)) &&
        !UBOOT_MENU.test(lastLine(recorder.since(opts.from))) &&
        !HANDED_OVER.test(recorder.since(opts.from).slice(-300))
      ) {
        pokes++;
        lastHandled = -1;
        await recorder.write("\r");
      }
    }
  }
}
