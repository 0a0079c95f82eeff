/**
 * The embedded target: {@linkcode QemuTarget} is the {@linkcode Target} of a QEMU aarch64 guest
 * on a Debian kernel, the one implementation of a target (`DriverTarget`,
 * runner/target/target.ts) over the QEMU driver (runner/qemu/driver.ts). Its name is the board
 * id (`qemu-virt-8g` for 8 GiB; boards/qemu-virt-8g.yaml), its capabilities the board file's plus
 * `boot-config` (rkhil chooses the kernel, command line and RAM of each boot), and `rk-iommu`
 * with the `iommus` option (emulated Rockchip IOMMUs, runner/qemu/iommu_dtb.ts).
 *
 * {@linkcode QemuTarget.prepare} installs the host tools, fetches the kernel and builds (or
 * reuses) the initramfs; nothing runs until `ready()`. {@linkcode QemuTarget.powerOffAll} quits
 * every QEMU of the process and refuses new launches (for SIGINT/SIGTERM).
 *
 * @module
 */

import { findBoard, type LoadedBoard, UnknownBoardError } from "../../boards/load.ts";
import type { Capability } from "../../boards/schema.ts";
import { ensureHostTools } from "../debian/host_tools.ts";
import { type FetchedKernel, fetchKernel } from "../debian/kernel.ts";
import { InfraError } from "../errors.ts";
import type { BootTimes, ReadyOptions } from "../protocol/target.ts";
import type { ConsoleStream } from "../serial/port.ts";
import { DriverTarget, type DriverTargetOptions } from "../target/target.ts";
import { QemuDriver } from "./driver.ts";
import { buildInitramfs, type Initramfs, type InitramfsOptions } from "./initramfs.ts";
import type { QemuMachine } from "./machine.ts";
import { type EmuIommu, resolveEmuIommus } from "./iommu_dtb.ts";

/**
 * Host tools a QEMU target needs (QEMU, the watchdog's setpriv, initramfs building and the
 * private apt's extraction), and nothing else: {@linkcode QemuTarget.prepare} installs only
 * these.
 */
export const QEMU_HOST_TOOLS = [
  "qemu-system-aarch64",
  "sh",
  "setpriv",
  "dropbearkey",
  "dpkg-deb",
  "apt-get",
  "apt-cache",
  "depmod",
  "xz",
  "zstd",
  "gzip",
] as const;

/** Options of {@linkcode QemuTarget.prepare}. */
export interface QemuTargetOptions {
  /** Kernel spec (`debian:trixie`, `debian:6.1.192-2`, ...). */
  kernel: string;
  /** Run directory (console logs etc.). */
  runDir: string;
  /** Guest memory, QEMU syntax (`8G`, the default). */
  memory?: string;
  /** Guest CPUs (default 2). */
  cpus?: number;
  /** Extra kernel arguments appended to the default command line. */
  extraAppend?: string;
  /** Boot-to-shell timeout per attempt in ms (default 120 000; TCG on a loaded host is slow). */
  bootTimeoutMs?: number;
  /** Shell-to-SSH timeout in ms (default 60 000). */
  sshTimeoutMs?: number;
  /** Power cycles after a hung boot (default 2). */
  retries?: number;
  /** How to build the guest's initramfs. */
  initramfs?: InitramfsOptions;
  /** Opens the guest console on the pty, logging to `logPath` (default: `openQemuConsole`). */
  openConsole?: (ptyPath: string, logPath: string) => Promise<ConsoleStream>;
  /**
   * Emulated Rockchip IOMMUs in the boot device tree (issue 15): ids of `ROCK3B_IOMMUS`
   * (`npu`, `vop`) or full instances (runner/qemu/iommu_dtb.ts). The guest then needs the
   * emulator module (target/rkiommu-emu/) loaded before a master binds.
   */
  iommus?: readonly (string | EmuIommu)[];
}

/** The board id of a QEMU guest with `memory` (`8G` → `qemu-virt-8g`). */
export function qemuBoardId(memory = "8G"): string {
  return `qemu-virt-${memory.toLowerCase().replace(/[^a-z0-9]+/g, "")}`;
}

/** The board file of the QEMU guest: `qemu-virt-<mem>` when one exists, else qemu-virt-8g. */
async function qemuBoard(id: string): Promise<LoadedBoard> {
  try {
    return await findBoard(id);
  } catch (err) {
    if (err instanceof UnknownBoardError && id !== "qemu-virt-8g") {
      return await findBoard("qemu-virt-8g");
    }
    throw err;
  }
}

/** The embedded target (see the module documentation). */
export class QemuTarget extends DriverTarget<QemuDriver> {
  /**
   * Install missing host tools (one apt-get run; found once per process), fetch the kernel and
   * build (or reuse) the initramfs. Nothing is launched until `ready()`.
   *
   * @throws {UserInputError} for an unknown kernel spec (the message lists what exists).
   * @throws {InfraError} when the mirror, apt or the initramfs build fail.
   */
  static async prepare(
    opts: QemuTargetOptions,
    targetOpts: DriverTargetOptions = {},
  ): Promise<QemuTarget> {
    const iommus = opts.iommus ? resolveEmuIommus(opts.iommus) : undefined;
    await ensureHostTools(QEMU_HOST_TOOLS);
    const kernel = await fetchKernel(opts.kernel);
    const image = await buildInitramfs(kernel, opts.initramfs);
    const name = qemuBoardId(opts.memory);
    const board = await qemuBoard(name);
    const capabilities = new Set<Capability>([
      ...board.board.capabilities,
      "boot-config",
      // Emulated Rockchip IOMMUs run the real rk_iommu driver (issue 15).
      ...(iommus?.length ? ["rk-iommu" as const] : []),
    ]);
    const driver = new QemuDriver({
      name,
      board,
      capabilities,
      runDir: opts.runDir,
      kernel,
      image,
      memory: opts.memory,
      cpus: opts.cpus,
      extraAppend: opts.extraAppend,
      openConsole: opts.openConsole,
      iommus,
      bounds: {
        bootTimeoutMs: opts.bootTimeoutMs ?? 120_000,
        sshTimeoutMs: opts.sshTimeoutMs ?? 60_000,
        retries: opts.retries ?? 2,
      },
    });
    return new QemuTarget(driver, targetOpts);
  }

  /**
   * Quit every QEMU of this process and refuse new launches from now on (an InfraError): for
   * an interrupted run, so no QEMU outlives it. Never throws.
   */
  static powerOffAll(): Promise<void> {
    return QemuDriver.powerOffAll();
  }

  /** The kernel it boots. */
  get kernel(): FetchedKernel {
    return this.driver.kernel;
  }

  /** The initramfs it boots (pinned host key, client key). */
  get image(): Initramfs {
    return this.driver.image;
  }

  /** The running (or paused) QEMU, if any. */
  get machine(): QemuMachine | undefined {
    return this.driver.machine;
  }

  /** The host port forwarded to the guest's SSH port, while QEMU runs. */
  get sshPort(): number | undefined {
    return this.driver.machine?.sshPort;
  }

  /**
   * The strategy (see `DriverTarget.ready`), then a check that the guest runs the kernel asked
   * for.
   *
   * @throws {InfraError} (MISS) when the guest runs another release than the kernel package's.
   */
  override async ready(opts: ReadyOptions = {}): Promise<BootTimes> {
    const times = await super.ready(opts);
    if (this.release !== undefined && this.release !== this.kernel.release) {
      throw new InfraError(
        `guest runs ${this.release}, expected ${this.kernel.release}`,
        `see the console log in ${this.driver.runDir}`,
      );
    }
    return times;
  }
}

/**
 * Prepare a QEMU target, bring it to `ready`, run `fn` with it, and always close it (QEMU
 * quits). For tests and one-shot tools; jobs run suites through the suite runner.
 *
 * @throws what {@linkcode QemuTarget.prepare}, `ready()` and `fn` throw.
 */
export async function withQemuTarget<T>(
  opts: QemuTargetOptions,
  fn: (target: QemuTarget) => Promise<T>,
  targetOpts: DriverTargetOptions = {},
): Promise<T> {
  const t = await QemuTarget.prepare(opts, targetOpts);
  try {
    await t.ready();
    return await fn(t);
  } finally {
    await t.close();
  }
}
