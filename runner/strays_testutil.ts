/**
 * Test helper for the close rule: collect the unhandled promise rejections (and, if asked, the
 * uncaught errors) that happen while a test body runs, instead of letting them end the process,
 * so the test can assert there were none. Used by the close-rule tests of the serial console,
 * SSH, QMP, the framed shell and the close gate.
 *
 * @module
 */

/** What {@linkcode catchingStrays} listens for, and how long it waits after the body. */
export interface StrayOptions {
  /** Wait this long (ms) after `fn` resolves, still listening, for late callbacks to fail. */
  settleMs: number;
  /** Also collect uncaught errors (`error` events), not only unhandled rejections. */
  uncaughtErrors: boolean;
}

/**
 * Run `fn`, then wait `settleMs`, collecting every unhandled rejection's reason (and, with
 * `uncaughtErrors`, every uncaught error) in order. The listeners are removed afterwards, also
 * when `fn` throws (its error is rethrown).
 */
export async function catchingStrays(
  fn: () => Promise<void> | void,
  o: StrayOptions,
): Promise<unknown[]> {
  const strays: unknown[] = [];
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    strays.push(e.reason);
  };
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    strays.push(e.error);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  if (o.uncaughtErrors) globalThis.addEventListener("error", onError);
  try {
    await fn();
    await new Promise((r) => setTimeout(r, o.settleMs));
  } finally {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    if (o.uncaughtErrors) globalThis.removeEventListener("error", onError);
  }
  return strays;
}
