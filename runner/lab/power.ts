/**
 * `rkhil lab power on|off|cycle --qmp SOCKET`: the power switch of a lab guest, as a command
 * line a board file's `power.type: command` runs (the lab's stand-in for a relay or a PDU).
 * `on` = QMP `cont`; `off` = `stop` + `system_reset` (the guest waits, reset, for the next
 * `cont`); `cycle` = off, then on.
 *
 * Before `cont`, `on` waits {@linkcode PTY_SETTLE_MS}: QEMU 7.2 (Debian 12) polls a pty chardev
 * whose other side was closed only once a second, and drops the guest's output until it has
 * seen the side open again. A console opened just before power on (as rkhil does, to capture
 * from the first byte; ser2net opens the pty when its client connects) would otherwise miss the
 * first line of the boot. A real relay has a delay of its own.
 *
 * @module
 */

import { InfraError, UserInputError } from "../errors.ts";
import { QmpClient } from "../qemu/qmp.ts";

/** Wait before `cont` so QEMU has noticed a freshly opened pty console (see the module doc). */
export const PTY_SETTLE_MS = 1_100;

/** Lab power actions. */
export const LAB_POWER_ACTIONS = ["on", "off", "cycle"] as const;
/** A lab power action. */
export type LabPowerAction = typeof LAB_POWER_ACTIONS[number];

/**
 * Switch the lab guest behind QMP socket `socket`.
 *
 * @throws {UserInputError} for an unknown action.
 * @throws {InfraError} when the socket does not answer or QEMU refuses a command.
 */
export async function labPower(
  action: string,
  socket: string,
  opts: { settleMs?: number; timeoutMs?: number } = {},
): Promise<void> {
  if (!(LAB_POWER_ACTIONS as readonly string[]).includes(action)) {
    throw new UserInputError(
      `unknown lab power action ${JSON.stringify(action)}`,
      `use one of ${LAB_POWER_ACTIONS.join(", ")}`,
    );
  }
  const timeoutMs = opts.timeoutMs ?? 10_000;
  if (!(await Deno.stat(socket).then((st) => !st.isFile && !st.isDirectory, () => false))) {
    throw new InfraError(
      `lab power ${action}: no QMP socket at ${socket}`,
      "the lab guest is not running (a lab's guests end with the lab); start the lab again",
    );
  }
  let qmp: QmpClient;
  try {
    qmp = await QmpClient.connect(socket, timeoutMs);
  } catch (err) {
    throw new InfraError(
      `lab power ${action}: QMP socket ${socket} does not answer: ${(err as Error).message}`,
      "check that the lab guest runs (rkhil's lab keeps it until the lab stops)",
      { cause: err },
    );
  }
  try {
    if (action === "off" || action === "cycle") {
      await qmp.execute("stop", undefined, timeoutMs);
      await qmp.execute("system_reset", undefined, timeoutMs);
    }
    if (action === "on" || action === "cycle") {
      await new Promise((r) => setTimeout(r, opts.settleMs ?? PTY_SETTLE_MS));
      await qmp.execute("cont", undefined, timeoutMs);
    }
  } finally {
    await qmp.close().catch(() => {});
  }
}
