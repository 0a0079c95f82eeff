/**
 * The Console protocol: the target's console as a byte stream captured from power-on, its
 * recorded lines, and the marker-framed shell on it. Implemented by QEMU targets (the guest's
 * PL011 on a pty) and board targets (a USB UART, or a TCP console as ser2net serves it).
 *
 * @module
 */
import type { ConsoleRecorder } from "../qemu/console.ts";
import type { ConsoleStream } from "../serial/port.ts";
import type { FramedShell } from "../shell/framed.ts";

/** A target's console. */
export interface ConsoleProtocol {
  /**
   * The console stream of the current power-on (watchers attach with `onData`/`onClose`).
   *
   * @throws {InfraError} when no console is open (the target is off and its console closed).
   */
  readonly stream: ConsoleStream;
  /**
   * The recorder of that stream: `console.log` with seconds since the recorder started, the
   * in-memory transcript to wait on (`mark`, `waitFor`), host notes, and lines for watchers.
   */
  readonly recorder: ConsoleRecorder;
  /**
   * The marker-framed shell on the console for the current boot, started on first use (after
   * logging in when the console asks for a login). A new boot gets a new shell.
   *
   * @throws {InfraError} when the target has no shell on its console (off, booting).
   * @throws {TimeoutError} when the shell does not answer within its bounds.
   */
  shell(): Promise<FramedShell>;
}
