/**
 * What the one strategy and the shared session code need from a kind of target: the part of
 * a target that differs between QEMU (`runner/qemu/`) and a board from a board file
 * (`runner/board/`). Everything else (commands over serial, SSH exec and SSH shell; file
 * transfer; fault watching; the `off → booting → shell → ready` strategy with bounded power
 * cycles; `lost`, `whileUp`, `reboot`) is written once, over this interface.
 *
 * @module
 */
import type { LoadedBoard } from "../../boards/load.ts";
import type { Capability } from "../../boards/schema.ts";
import type { PowerProtocol } from "../protocol/power.ts";
import type { ConsoleRecorder } from "../qemu/console.ts";
import type { ConsoleStream } from "../serial/port.ts";
import type { FramedShellOptions } from "../shell/framed.ts";
import type { ConnectOptions } from "../ssh/client.ts";

/** An open console: the stream and its recorder (capturing from the first byte). */
export interface OpenConsole {
  /** The byte stream (serial device, TCP console, QEMU pty). */
  stream: ConsoleStream;
  /** Its recorder (`console.log`, transcript, lines). */
  recorder: ConsoleRecorder;
}

/** Bounds of the strategy, in milliseconds. */
export interface DriverBounds {
  /** Power on to a shell prompt on the console, per attempt. */
  bootTimeoutMs: number;
  /** Shell prompt to SSH answering. */
  sshTimeoutMs: number;
  /** Power cycles after a hung boot (a panic is never retried). */
  retries: number;
}

/** The kind-specific part of a target. */
export interface TargetDriver {
  /** Target name in results (board id, or `qemu-virt-8g`). */
  readonly name: string;
  /** `qemu` or `board`. */
  readonly kind: "qemu" | "board";
  /** The board file describing the target. */
  readonly board: LoadedBoard;
  /** Capabilities suites may ask for. */
  readonly capabilities: ReadonlySet<Capability>;
  /** The power adapter. */
  readonly power: PowerProtocol;
  /** Where console logs, captures and sockets of this target go. */
  readonly runDir: string;
  /** Strategy bounds. */
  readonly bounds: DriverBounds;
  /**
   * Options of the marker-framed shell on the console (`user`, `password` and prompts for a
   * console that asks for a login; `consoleLogLevel`), merged over the defaults. Optional.
   */
  readonly consoleShellOptions?: FramedShellOptions;
  /**
   * Open the console if it is not open (QEMU: launch QEMU paused, which opens its pty; a
   * board: open the serial device or TCP console). Called before every power on, so the
   * console captures from the first byte. `undefined`: the target has no console.
   *
   * @throws {InfraError} (MISS) when the console cannot be opened (missing or busy device,
   *   refused TCP port), with what to do.
   */
  openConsole(): Promise<OpenConsole | undefined>;
  /**
   * Wait on `recorder` (from transcript mark `from`) until a shell prompt shows for this boot,
   * logging in when the console asks for a login. Resolves when a command can be typed.
   *
   * @throws {TimeoutError} (MISS) when no prompt shows within `timeoutMs`.
   */
  waitShell(recorder: ConsoleRecorder, from: number, timeoutMs: number): Promise<void>;
  /**
   * How to reach SSH for the current boot (host, port, user, pinned fingerprint, private key,
   * jump host), or `undefined` when the target has no SSH.
   *
   * @throws {UserInputError} when the key file named in the board file cannot be read.
   */
  sshEndpoint(): Promise<ConnectOptions | undefined>;
  /**
   * Why the target is gone for good, if it is (QEMU exited; the serial device vanished);
   * `undefined` while it may still answer.
   */
  gone(): string | undefined;
  /** Resolves (with the reason) once the target is gone for good; never for a board with a console that stays. */
  readonly goneSignal: Promise<string>;
  /**
   * Release everything the driver holds: console, processes (QEMU quits). Never throws.
   */
  close(): Promise<void>;
}
