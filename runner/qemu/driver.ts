/**
 * The QEMU kind of target: {@linkcode QemuDriver} implements {@linkcode TargetDriver} for a QEMU
 * aarch64 `-M virt` guest on a Debian kernel and rkhil's initramfs, with {@linkcode QmpPower}
 * (the `qmp` power adapter). The one strategy and everything else of a target are in
 * runner/target/target.ts.
 *
 * - `openConsole()` launches QEMU paused (`-S`) when it is not running, which opens the pty
 *   console and starts recording it: the console captures from the first byte.
 * - Power (QMP): on = launch if needed + `cont`; off = `stop` + `system_reset` (the QEMU and its
 *   console stay, paused, for the next on); cycle = launch if needed + `system_reset` + `cont`.
 *   {@linkcode QemuDriver.close} quits QEMU.
 * - `waitShell`: the initramfs's `rkhil-init: start` marker, then its prompt
 *   ({@linkcode GUEST_PROMPT}) after that marker (never a prompt still arriving from before a
 *   reset).
 * - `sshEndpoint`: 127.0.0.1 and the forwarded port of the running QEMU, user root, the image's
 *   host key pinned, the image's client key.
 * - {@linkcode QemuDriver.powerOffAll} quits every QEMU of the process and refuses new launches
 *   (for SIGINT/SIGTERM).
 *
 * @module
 */
import type { LoadedBoard } from "../../boards/load.ts";
import type { Capability } from "../../boards/schema.ts";
import type { FetchedKernel } from "../debian/kernel.ts";
import { InfraError } from "../errors.ts";
import type { PowerProtocol } from "../protocol/power.ts";
import type { ConsoleStream } from "../serial/port.ts";
import type { ConnectOptions } from "../ssh/client.ts";
import type { DriverBounds, OpenConsole, TargetDriver } from "../target/driver.ts";
import type { ConsoleRecorder } from "./console.ts";
import { GUEST_PROMPT, type Initramfs } from "./initramfs.ts";
import { DEFAULT_APPEND, QemuMachine } from "./machine.ts";
import { type EmuIommu, writeEmuIommuDtb } from "./iommu_dtb.ts";

/** How a {@linkcode QemuDriver} launches its QEMU. */
export interface QemuDriverOptions {
  /** Target name in results (`qemu-virt-8g`). */
  name: string;
  /** The board file describing the guest (`boards/qemu-virt-8g.yaml`). */
  board: LoadedBoard;
  /** Capabilities: the board file's plus `boot-config`. */
  capabilities: ReadonlySet<Capability>;
  /** Run directory (console logs, qemu.log, QMP socket). */
  runDir: string;
  /** The kernel to boot. */
  kernel: FetchedKernel;
  /** The initramfs (with its pinned host key and client key). */
  image: Initramfs;
  /** Guest memory, QEMU syntax (default `8G`). */
  memory?: string;
  /** Guest CPUs (default 2). */
  cpus?: number;
  /** Extra kernel arguments appended to the default command line. */
  extraAppend?: string;
  /** Strategy bounds. */
  bounds: DriverBounds;
  /** Opens the guest console on the pty (default: `openQemuConsole`). */
  openConsole?: (ptyPath: string, logPath: string) => Promise<ConsoleStream>;
  /**
   * Emulated Rockchip IOMMUs (issue 15): booted with `-dtb` of QEMU's own tree plus their
   * nodes (runner/qemu/iommu_dtb.ts), written to `<runDir>/rkiommu.dtb` at each launch.
   */
  iommus?: readonly EmuIommu[];
}

/** The `qmp` power adapter of a {@linkcode QemuDriver} (see the module documentation). */
export class QmpPower implements PowerProtocol {
  /** Always `qmp`. */
  readonly kind = "qmp" as const;
  /** QEMU needs no off time. */
  readonly minOffMs = 0;
  /** The adapter of `driver`'s QEMU. */
  constructor(private readonly driver: QemuDriver) {}

  /** Launch QEMU if it is not running, then let the guest CPUs run (`cont`). */
  async on(): Promise<void> {
    const m = await this.driver.launch();
    await qmp(m, "cont", "power on (QMP cont)");
  }

  /** Stop the CPUs and reset the machine (`stop`, `system_reset`); QEMU stays, paused. */
  async off(): Promise<void> {
    const m = this.driver.machine;
    if (!m || m.exited) return;
    await qmp(m, "stop", "power off (QMP stop)");
    await qmp(m, "system_reset", "reset while off (QMP system_reset)");
  }

  /** Reset (`system_reset`) and run (`cont`), launching QEMU first if it is not running. */
  async cycle(): Promise<void> {
    const m = await this.driver.launch();
    await qmp(m, "system_reset", "power cycle (QMP system_reset)");
    await qmp(m, "cont", "run (QMP cont)");
  }
}

async function qmp(m: QemuMachine, cmd: string, note: string): Promise<void> {
  m.console.note(note);
  try {
    await m.qmp.execute(cmd);
  } catch (err) {
    throw new InfraError(
      `QMP ${cmd} failed: ${(err as Error).message}`,
      "QEMU is gone or hung: see qemu.log in the run directory",
      { cause: err },
    );
  }
}

/** The QEMU driver; see the module documentation. */
export class QemuDriver implements TargetDriver {
  /** Always `qemu`. */
  readonly kind = "qemu" as const;
  /** Target name. */
  readonly name: string;
  /** The board file describing the guest. */
  readonly board: LoadedBoard;
  /** Capabilities suites may ask for. */
  readonly capabilities: ReadonlySet<Capability>;
  /** The `qmp` adapter. */
  readonly power: QmpPower;
  /** Run directory. */
  readonly runDir: string;
  /** Strategy bounds. */
  readonly bounds: DriverBounds;
  /** The running (or paused) QEMU, if any. */
  machine?: QemuMachine;
  #quit = new WeakSet<QemuMachine>();
  #launching?: Promise<QemuMachine>;
  #privateKey?: string;

  static #live = new Set<QemuDriver>();
  static #shutdown = false;

  /** A driver for `opts` (nothing is launched until the console is opened). */
  constructor(readonly opts: QemuDriverOptions) {
    this.name = opts.name;
    this.board = opts.board;
    this.capabilities = opts.capabilities;
    this.runDir = opts.runDir;
    this.bounds = opts.bounds;
    this.power = new QmpPower(this);
  }

  /**
   * Quit every QEMU of this process (QMP quit, SIGKILL if needed) and refuse new launches from
   * now on (an InfraError): for an interrupted run, so no QEMU outlives it. Never throws.
   */
  static async powerOffAll(): Promise<void> {
    QemuDriver.#shutdown = true;
    await Promise.all([...QemuDriver.#live].map((d) => d.close().catch(() => {})));
  }

  /** The kernel it boots. */
  get kernel(): FetchedKernel {
    return this.opts.kernel;
  }

  /** The initramfs it boots. */
  get image(): Initramfs {
    return this.opts.image;
  }

  /**
   * The running QEMU, or a new one launched paused (the old one, exited, is cleaned up).
   *
   * @throws {InfraError} when QEMU does not start, or the process is shutting down.
   */
  launch(): Promise<QemuMachine> {
    const m = this.machine;
    if (m && !m.exited && !m.qmp.closed) return Promise.resolve(m);
    this.#launching ??= this.#launch().finally(() => (this.#launching = undefined));
    return this.#launching;
  }

  async #launch(): Promise<QemuMachine> {
    const refused = () =>
      new InfraError("interrupted: no new QEMU is started", "the run is shutting down");
    if (QemuDriver.#shutdown) throw refused();
    const old = this.machine;
    if (old) {
      this.#quit.add(old);
      await old.quit(2_000).catch(() => old.kill());
      this.machine = undefined;
    }
    const extraArgs: string[] = [];
    if (this.opts.iommus?.length) {
      const dtb = `${this.runDir}/rkiommu.dtb`;
      await Deno.mkdir(this.runDir, { recursive: true });
      await writeEmuIommuDtb(
        dtb,
        { memory: this.opts.memory, cpus: this.opts.cpus },
        this.opts.iommus,
      );
      extraArgs.push("-dtb", dtb);
    }
    const m = await QemuMachine.launch({
      extraArgs,
      kernel: this.opts.kernel.vmlinuz,
      initrd: this.opts.image.path,
      append: [DEFAULT_APPEND, this.opts.extraAppend].filter(Boolean).join(" "),
      memory: this.opts.memory,
      cpus: this.opts.cpus,
      runDir: this.runDir,
      openConsole: this.opts.openConsole,
    });
    if (QemuDriver.#shutdown) {
      this.#quit.add(m);
      await m.quit(2_000).catch(() => m.kill());
      throw refused();
    }
    this.machine = m;
    QemuDriver.#live.add(this);
    return m;
  }

  /** Launch QEMU paused if it is not running; its console (pty, recording). */
  async openConsole(): Promise<OpenConsole> {
    const m = await this.launch();
    return { stream: m.serial, recorder: m.console };
  }

  /** `rkhil-init: start`, then the guest prompt after it, within `timeoutMs`. */
  async waitShell(recorder: ConsoleRecorder, from: number, timeoutMs: number): Promise<void> {
    const t0 = performance.now();
    const owner = `boot ${this.opts.kernel.release} to shell`;
    const init = await recorder.waitFor("rkhil-init: start", {
      timeoutMs,
      owner,
      from,
      hint: "the kernel did not start init (kernel hang or panic?)",
    });
    await recorder.waitFor(GUEST_PROMPT, {
      timeoutMs: Math.max(1, timeoutMs - (performance.now() - t0)),
      owner,
      from: init.index,
      hint: "init started but no shell prompt (module load or dropbear hung?)",
    });
  }

  /** 127.0.0.1:forwarded port, root, the image's pinned host key and client key. */
  async sshEndpoint(): Promise<ConnectOptions> {
    const m = this.machine;
    if (!m) throw new InfraError("QEMU is not running: no SSH", "power the target on first");
    this.#privateKey ??= await Deno.readTextFile(this.opts.image.clientKey.privateKeyPath);
    return {
      host: "127.0.0.1",
      port: m.sshPort,
      user: "root",
      hostKeyFingerprint: this.opts.image.hostKey.fingerprint,
      privateKey: this.#privateKey,
      connectTimeoutMs: 15_000,
      keepaliveIntervalMs: 5_000,
      keepaliveCountMax: 3,
    };
  }

  /** `QEMU exited (status N)` when the QEMU exited without rkhil quitting it. */
  gone(): string | undefined {
    const m = this.machine;
    if (!m || !m.exited || this.#quit.has(m)) return undefined;
    return `QEMU exited (status ${m.exitCode})`;
  }

  /** Resolves when the current QEMU exits without rkhil quitting it. */
  get goneSignal(): Promise<string> {
    const m = this.machine;
    if (!m) return new Promise(() => {});
    return m.exitStatus.then((s) =>
      this.#quit.has(m) ? new Promise<string>(() => {}) : `QEMU exited (status ${s.code})`
    );
  }

  /** Quit QEMU (QMP quit, SIGKILL if needed). Never throws. Idempotent. */
  async close(): Promise<void> {
    const m = this.machine;
    this.machine = undefined;
    QemuDriver.#live.delete(this);
    if (m) {
      this.#quit.add(m);
      await m.quit().catch(() => m.kill());
    }
  }
}
