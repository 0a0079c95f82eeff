/**
 * The Power protocol: switch a target on and off. Adapters: `qmp` (QEMU: `cont`, `stop` +
 * `system_reset`), `command` (shell command lines, as labs drive PDUs, relays and USB hubs),
 * `manual` (asks a person on the terminal; refused when not interactive) and `none` (the
 * target is always on: only reboots from its own shell).
 *
 * @module
 */

/** Power adapter kinds, as in board files (`power.type`). */
export type PowerKind = "qmp" | "command" | "manual" | "none";

/** A power switch. */
export interface PowerProtocol {
  /** The adapter. */
  readonly kind: PowerKind;
  /** Minimum time in milliseconds the target stays off before it is switched on again. */
  readonly minOffMs: number;
  /**
   * Switch on (after the rest of `minOffMs` since the last `off`, if needed).
   *
   * @throws {InfraError} (MISS) when the adapter fails (command status, QMP gone, no answer).
   */
  on(): Promise<void>;
  /** Switch off. @throws {InfraError} (MISS) when the adapter fails. */
  off(): Promise<void>;
  /** Off, wait `minOffMs`, on (or the adapter's own cycle command). @throws {InfraError}. */
  cycle(): Promise<void>;
}
