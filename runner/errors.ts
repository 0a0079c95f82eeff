/**
 * Typed errors of the runner. Every error a user can cause or meet carries what to do next
 * (`hint`) and how a result touched by it is classified (`verdict`), so that an infrastructure
 * hiccup is never reported as a kernel regression (DESIGN.md, boundary 3).
 *
 * @module
 */

/** Result classes (DESIGN.md boundary 3). */
export type Verdict = "PASS" | "FAIL" | "ERROR" | "MISS" | "SKIP" | "DONE";

/** Base class: a message for the user, a hint on what to do, and a verdict class. */
export class RkhilError extends Error {
  /**
   * An error with a hint and the verdict it gives.
   *
   * @param message what went wrong, in one line
   * @param hint what the user should do about it
   * @param verdict the result class a test gets from this error (default ERROR)
   * @param options `cause`: the underlying error
   */
  constructor(
    message: string,
    readonly hint: string,
    readonly verdict: Verdict = "ERROR",
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input the user can fix: a broken board file, an unknown kernel, a bad flag. */
export class UserInputError extends RkhilError {
  /** Bad input (verdict ERROR; the CLI exits 2): `message` says what, `hint` what to pass. */
  constructor(message: string, hint: string, options?: { cause?: unknown }) {
    super(message, hint, "ERROR", options);
  }
}

/**
 * The harness or infrastructure broke (unreachable host, QEMU died, transport lost, timeout
 * before the test body ran): the test did not run, so its verdict is MISS.
 */
export class InfraError extends RkhilError {
  /** An infrastructure failure (verdict MISS): `message` says what broke, `hint` what to do. */
  constructor(message: string, hint: string, options?: { cause?: unknown }) {
    super(message, hint, "MISS", options);
  }
}

/** A wait ran out. `owner` names who set the timeout, `ms` how long it was. */
export class TimeoutError extends InfraError {
  /** A wait by `owner` that ran out after `ms` milliseconds; the message says both. */
  constructor(
    readonly owner: string,
    readonly ms: number,
    hint: string,
    options?: { cause?: unknown },
  ) {
    // Rounded: a bound computed from a deadline (2999.94...) reads as the bound it was.
    super(`${owner}: timed out after ${Math.round(ms)} ms`, hint, options);
  }
}

/** Format an error for a terminal: message and hint, no stack trace unless asked. */
export function describeError(err: unknown, withStack = false): string {
  if (err instanceof RkhilError) {
    const lines = [`error: ${err.message}`, `  what to do: ${err.hint}`];
    if (withStack && err.stack) lines.push(err.stack);
    return lines.join("\n");
  }
  if (err instanceof Error) {
    return withStack && err.stack ? `error: ${err.stack}` : `error: ${err.message}`;
  }
  return `error: ${String(err)}`;
}
