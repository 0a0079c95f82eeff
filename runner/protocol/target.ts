/**
 * The Target interface: the protocols a target offers, its capabilities and its board facts.
 * Suites (`tests/`) see only this: they ask for capabilities, never for a board name
 * (DESIGN.md boundary 4). `QemuTarget` (the embedded target: a QEMU aarch64 guest on a Debian
 * kernel) and `BoardTarget` (a board reached through its board file: SSH, a serial or ser2net
 * console, a power adapter) implement it.
 *
 * State machine of the one strategy that brings any target to a shell:
 * `off → booting → shell → ready` (`shell`: a shell prompt on the console, after a login when
 * asked; `ready`: SSH answers and `uname -r` was read). A hung boot is power-cycled a bounded
 * number of times; a kernel panic while booting is a FAIL at once, never retried.
 *
 * @module
 */
import type { LoadedBoard } from "../../boards/load.ts";
import type { Capability } from "../../boards/schema.ts";
import type { KernelFault } from "../target/faults.ts";
import type { BootProtocol } from "./boot.ts";
import type { CommandProtocol } from "./command.ts";
import type { ConsoleProtocol } from "./console.ts";
import type { FileTransferProtocol } from "./file_transfer.ts";
import type { PowerProtocol } from "./power.ts";

/** Power and boot states of a target. */
export type TargetState = "off" | "booting" | "shell" | "ready";

/** A state transition, for the run record. */
export interface Transition {
  /** When (ISO 8601, UTC). */
  at: string;
  /** State before. */
  from: TargetState;
  /** State after. */
  to: TargetState;
  /** Why, in words. */
  why: string;
}

/** Timings of one boot, in seconds since power on. */
export interface BootTimes {
  /** First console byte. */
  firstByte?: number;
  /** The kernel started (`Booting Linux on physical CPU`). */
  kernel?: number;
  /** Shell prompt seen on the console. */
  shell?: number;
  /** SSH answered (banner read, or connected). */
  ssh?: number;
  /** Boot attempts it took (power cycles after a hung boot count). */
  attempts: number;
}

/** Options of {@linkcode Target.ready}. */
export interface ReadyOptions {
  /** Stop at `shell` (console prompt) instead of `ready` (SSH too). Default false. */
  consoleOnly?: boolean;
}

/** A target: protocols + capabilities + board facts. */
export interface Target {
  /** Name in results and logs: the board id (`rock-3b-8g`, `lab-1`) or `qemu-virt-8g`. */
  readonly name: string;
  /** `qemu` for the embedded target, `board` for a target from a board file. */
  readonly kind: "qemu" | "board";
  /** The board file this target is described by (its facts feed the oracle). */
  readonly board: LoadedBoard;
  /** What suites may ask of it (board file `capabilities`, plus `boot-config` on QEMU). */
  readonly capabilities: ReadonlySet<Capability>;
  /** Current state. */
  readonly state: TargetState;
  /** Every state change so far, in order. */
  readonly transitions: readonly Transition[];
  /** The running kernel's release (`uname -r`), once the target was `ready`. */
  readonly release: string | undefined;
  /** Console protocol; undefined for a target without a console (SSH only). */
  readonly console: ConsoleProtocol | undefined;
  /** Command protocol (SSH exec, framed SSH shell, or the serial console). */
  readonly command: CommandProtocol;
  /** File transfer; undefined when the target has no SSH. */
  readonly files: FileTransferProtocol | undefined;
  /** Power protocol. */
  readonly power: PowerProtocol;
  /** Boot protocol (waits on the console). */
  readonly boot: BootProtocol;
  /** Fatal kernel events (panic, Oops, BUG, SError) the console watchers saw. */
  readonly faults: readonly KernelFault[];
  /**
   * The strategy: bring the target from any state to `ready` (or `shell`), powering it on
   * with the console already open, power-cycling a hung boot at most the target's retry bound.
   * Returns the timings of the boot it waited for (`attempts: 0` when it was already ready).
   *
   * @throws {KernelFaultError} (FAIL) when the kernel panics while booting.
   * @throws {InfraError} (MISS) when power, console or SSH fail (unreachable host after the
   *   bounded wait, busy or missing serial device).
   * @throws {HostKeyError} (ERROR, `runner/ssh/classify.ts`) at once, never retried, when SSH
   *   presents another host key than the pinned one.
   * @throws {TimeoutError} (MISS) when no boot reached the stage within the bounds.
   */
  ready(opts?: ReadyOptions): Promise<BootTimes>;
  /**
   * Reboot (power cycle through the adapter, or `reboot` from the shell when the adapter is
   * `none`) and bring the target back to `ready`.
   */
  reboot(): Promise<BootTimes>;
  /** Why the target is gone, if it is (QEMU exited, console ended, SSH lost). */
  lost(): string | undefined;
  /**
   * `work`, ended early by an `InfraError` as soon as the kernel reports a fatal fault or the
   * target is lost, so a step waits for neither a dead kernel's timeouts nor a killed guest's.
   */
  whileUp<T>(work: Promise<T>): Promise<T>;
  /**
   * Close SSH, shells and console; power off a target rkhil powered on (QEMU always; a board
   * when its adapter can). Never throws. Idempotent.
   */
  close(): Promise<void>;
}
