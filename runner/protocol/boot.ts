/**
 * The Boot protocol: wait on the console for the stages of a boot, each with its own timeout.
 *
 * @module
 */

/** A boot stage a target can be waited for. */
export type BootStage = "bootloader" | "kernel" | "shell";

/** Options of {@linkcode BootProtocol.waitFor}. */
export interface BootWaitOptions {
  /** Console transcript mark to look from (the mark taken before power on). */
  from: number;
  /** Bound of the wait in milliseconds. */
  timeoutMs: number;
}

/** Waiting for a boot on the console. */
export interface BootProtocol {
  /**
   * Wait for `stage` on the console: `bootloader` (U-Boot's banner), `kernel` (`Booting Linux
   * on physical CPU`), `shell` (a shell prompt, after logging in when asked). Resolves with
   * seconds since `from` was taken.
   *
   * @throws {KernelFaultError} (FAIL) when the kernel panics while booting.
   * @throws {TimeoutError} (MISS) when the stage does not show within `timeoutMs`.
   */
  waitFor(stage: BootStage, opts: BootWaitOptions): Promise<number>;
}
