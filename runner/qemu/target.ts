/**
 * A QEMU target with a power state machine: `off → booting → shell → ready`. `booting` ends
 * when the console shows the guest's shell prompt (`shell`); `ready` when SSH answers with a
 * banner too. A boot that hangs is power-cycled (QMP system_reset, or a fresh QEMU if QMP is
 * gone) up to `retries` times; a kernel panic on the console while booting is a
 * `KernelFaultError` (FAIL, the panic's first line) at once, never retried. Every wait has a
 * timeout with an owner. {@linkcode QemuTarget.powerOffAll} powers off every target of the
 * process and refuses new launches (for SIGINT/SIGTERM).
 *
 * @module
 */

import { InfraError, TimeoutError } from "../errors.ts";
import { type FetchedKernel, fetchKernel } from "../debian/kernel.ts";
import { ensureHostTools } from "../debian/host_tools.ts";
import {
  buildInitramfs,
  GUEST_PROMPT,
  type Initramfs,
  type InitramfsOptions,
} from "./initramfs.ts";
import type { ConsoleStream } from "../serial/port.ts";
import { FramedShell, type FramedShellOptions, type RunResult } from "../shell/framed.ts";
import { consoleTap } from "./console.ts";
import { detectKernelFault, KernelFaultError } from "../target/faults.ts";
import { DEFAULT_APPEND, QemuMachine } from "./machine.ts";

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

/** Power states. */
export type TargetState = "off" | "booting" | "shell" | "ready";

/** Options of {@linkcode QemuTarget.prepare}. */
export interface QemuTargetOptions {
  /** Kernel spec (`debian:trixie`, `debian:6.1.192-2`, ...). */
  kernel: string;
  /** Run directory (console logs etc.). */
  runDir: string;
  /** Guest memory, QEMU syntax (`8G`). */
  memory?: string;
  /** Guest CPUs (default 2). */
  cpus?: number;
  /** Extra kernel arguments appended to the default command line. */
  extraAppend?: string;
  /** Boot-to-shell timeout per attempt (default 120 s; TCG on a loaded host is slow). */
  bootTimeoutMs?: number;
  /** Shell-to-SSH timeout (default 60 s). */
  sshTimeoutMs?: number;
  /** Power cycles after a hung boot (default 2). */
  retries?: number;
  /** How to build the guest's initramfs. */
  initramfs?: InitramfsOptions;
  /** Opens the guest console on the pty, logging to `logPath` (default: `openQemuConsole`). */
  openConsole?: (ptyPath: string, logPath: string) => Promise<ConsoleStream>;
}

/** Timings of one boot, in seconds since power on (QMP cont). */
export interface BootTimes {
  /** First console byte. */
  firstByte?: number;
  /** `rkhil-init: start` seen. */
  init?: number;
  /** Shell prompt seen. */
  shell?: number;
  /** SSH banner read. */
  ssh?: number;
  /** Boot attempts it took (power cycles after a hung boot count). */
  attempts: number;
}

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

/** A QEMU target: kernel, image and (while on) a machine. */
export class QemuTarget {
  /** Current state of the target. */
  state: TargetState = "off";
  /** Every state change, in order, for the run record. */
  readonly transitions: Transition[] = [];
  /** The running QEMU machine, while on. */
  machine?: QemuMachine;
  /** The guest's SSH banner, once read. */
  sshBanner?: string;
  /** Boots so far (power on, power cycles, resets); identifies the current boot. */
  bootCount = 0;
  #shell?: { boot: number; machine: QemuMachine; shell: Promise<FramedShell> };

  private constructor(
    readonly opts: QemuTargetOptions,
    readonly kernel: FetchedKernel,
    readonly image: Initramfs,
  ) {}

  /**
   * Install missing host tools (one apt-get run; found once per process), fetch the kernel and
   * build (or reuse) the initramfs.
   */
  static async prepare(opts: QemuTargetOptions): Promise<QemuTarget> {
    await ensureHostTools(QEMU_HOST_TOOLS);
    const kernel = await fetchKernel(opts.kernel);
    const image = await buildInitramfs(kernel, opts.initramfs);
    return new QemuTarget(opts, kernel, image);
  }

  #to(to: TargetState, why: string): void {
    if (to === "booting") {
      this.bootCount++;
      this.#dropShell();
    }
    this.transitions.push({ at: new Date().toISOString(), from: this.state, to, why });
    this.machine?.console.note(`state ${this.state} -> ${to} (${why})`);
    this.state = to;
  }

  /** The host port forwarded to the guest's SSH port. */
  get sshPort(): number | undefined {
    return this.machine?.sshPort;
  }

  static #live = new Set<QemuTarget>();
  static #shutdown = false;

  /**
   * Power off every target of this process that has a QEMU (QMP quit, SIGKILL if needed) and
   * refuse new launches from now on (an `InfraError`): for an interrupted run, so no QEMU
   * outlives it. Never throws.
   */
  static async powerOffAll(): Promise<void> {
    QemuTarget.#shutdown = true;
    await Promise.all([...QemuTarget.#live].map((t) => t.powerOff().catch(() => {})));
  }

  async #launch(): Promise<QemuMachine> {
    const refused = () =>
      new InfraError("interrupted: no new QEMU is started", "the run is shutting down");
    if (QemuTarget.#shutdown) throw refused();
    const m = await QemuMachine.launch({
      kernel: this.kernel.vmlinuz,
      initrd: this.image.path,
      append: [DEFAULT_APPEND, this.opts.extraAppend].filter(Boolean).join(" "),
      memory: this.opts.memory,
      cpus: this.opts.cpus,
      runDir: this.opts.runDir,
      openConsole: this.opts.openConsole,
    });
    if (QemuTarget.#shutdown) {
      await m.quit(2_000).catch(() => m.kill());
      throw refused();
    }
    this.machine = m;
    QemuTarget.#live.add(this);
    return m;
  }

  /** Wait for the shell prompt after `from` (a console mark) and check a command runs. */
  async #waitShell(m: QemuMachine, from: number, t0: number, times: BootTimes): Promise<void> {
    const timeoutMs = this.opts.bootTimeoutMs ?? 120_000;
    const owner = `boot ${this.kernel.release} to shell`;
    m.console.waitFor(/[\s\S]/, { timeoutMs, owner, from }).then(() =>
      times.firstByte ??= (performance.now() - t0) / 1000
    ).catch(() => {});
    // A kernel panic while booting is the kernel's failure (FAIL, with the panic's first line),
    // never a hung boot to power-cycle into a MISS.
    // Only this boot's lines count: the tail of an earlier panic (its `---[ end Kernel panic`
    // line) may still be arriving after a reset.
    let offPanic = () => {};
    let thisBoot = false;
    const panicked = new Promise<never>((_, reject) => {
      offPanic = m.console.onLine((line) => {
        if (/Booting Linux on physical CPU/.test(line.text)) thisBoot = true;
        if (!thisBoot || line.text.includes("---[ end ")) return;
        const fault = detectKernelFault(line.text, line.crlf, Date.now());
        if (fault?.kind === "panic") {
          reject(new KernelFaultError(fault, `boot ${this.kernel.release}`));
        }
      });
    });
    // A panic makes QEMU exit only with -no-reboot: a panic just seen wins over the exit.
    const died = m.exitStatus.then(async (s) => {
      await new Promise((r) => setTimeout(r, 50));
      throw new InfraError(`QEMU exited (status ${s.code}) during boot`, "see qemu.log");
    });
    // The prompt must come from the new boot, not from output still arriving from before a
    // reset: look for it only after this boot's init marker.
    const booted = async () => {
      const init = await m.console.waitFor("rkhil-init: start", {
        timeoutMs,
        owner,
        from,
        hint: "the kernel did not start init (kernel hang or panic?)",
      });
      times.init = (performance.now() - t0) / 1000;
      const left = Math.max(1, timeoutMs - (performance.now() - t0));
      await m.console.waitFor(GUEST_PROMPT, {
        timeoutMs: left,
        owner,
        from: init.index,
        hint: "init started but no shell prompt (module load or dropbear hung?)",
      });
    };
    try {
      await Promise.race([booted(), died, panicked]);
    } finally {
      offPanic();
    }
    times.shell = (performance.now() - t0) / 1000;
  }

  /**
   * Power on and bring the target to `ready` (or to `shell` with `{ ssh: false }`), power
   * cycling a hung boot. Returns the boot timings.
   */
  async powerOn(opts: { ssh?: boolean } = {}): Promise<BootTimes> {
    if (this.state !== "off") {
      throw new InfraError(`target is ${this.state}, not off`, "power it off first");
    }
    const retries = this.opts.retries ?? 2;
    const times: BootTimes = { attempts: 0 };
    let lastErr: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      times.attempts = attempt + 1;
      let m = this.machine;
      let t0: number;
      let from: number;
      if (!m || m.exited || m.qmp.closed) {
        if (m) await m.quit(2_000).catch(() => {});
        m = await this.#launch();
        from = m.console.mark();
        t0 = performance.now();
        this.#to("booting", attempt === 0 ? "power on" : `power cycle ${attempt} (new QEMU)`);
        await m.cont();
      } else {
        from = m.console.mark();
        t0 = performance.now();
        this.#to("booting", `power cycle ${attempt} (QMP system_reset)`);
        await m.reset();
      }
      try {
        await this.#waitShell(m, from, t0, times);
        this.#to("shell", "console prompt seen");
        if (opts.ssh === false) return times;
        this.sshBanner = await m.waitSshBanner(
          this.opts.sshTimeoutMs ?? 60_000,
          `ssh banner of ${this.kernel.release}`,
        );
        times.ssh = (performance.now() - t0) / 1000;
        this.#to("ready", `ssh answers: ${this.sshBanner}`);
        return times;
      } catch (err) {
        lastErr = err;
        if (!(err instanceof TimeoutError) && !(err instanceof InfraError)) {
          // A kernel panic (or a bug of ours) is not retried; the machine does not outlive it.
          m.console.note(`boot failed: ${(err as Error).message.split("\n")[0]}`);
          await this.powerOff().catch(() => {});
          throw err;
        }
        m.console.note(`attempt ${attempt + 1} failed: ${(err as Error).message.split("\n")[0]}`);
      }
    }
    await this.powerOff();
    throw lastErr;
  }

  /** Reset (QMP system_reset) and wait for the shell again; returns the new boot's timings. */
  async reset(opts: { ssh?: boolean } = {}): Promise<BootTimes> {
    const m = this.machine;
    if (!m || this.state === "off") throw new InfraError("target is off", "power it on first");
    const from = m.console.mark();
    const t0 = performance.now();
    this.#to("booting", "reset requested");
    await m.reset();
    const times: BootTimes = { attempts: 1 };
    await this.#waitShell(m, from, t0, times);
    this.#to("shell", "console prompt seen after reset");
    if (opts.ssh !== false) {
      this.sshBanner = await m.waitSshBanner(this.opts.sshTimeoutMs ?? 60_000);
      times.ssh = (performance.now() - t0) / 1000;
      this.#to("ready", "ssh answers after reset");
    }
    return times;
  }

  #dropShell(): void {
    const s = this.#shell;
    this.#shell = undefined;
    s?.shell.then((sh) => sh.close(), () => {}).catch(() => {});
  }

  /**
   * The marker-framed shell on the console for the current boot (started on first use on a
   * {@linkcode consoleTap}; a new boot gets a new one). `opts` apply when it starts.
   */
  consoleShell(opts: FramedShellOptions = {}): Promise<FramedShell> {
    const m = this.machine;
    if (!m || (this.state !== "shell" && this.state !== "ready")) {
      return Promise.reject(
        new InfraError(`target is ${this.state}, no shell`, "power it on first"),
      );
    }
    const cur = this.#shell;
    if (cur && cur.boot === this.bootCount && cur.machine === m) {
      return cur.shell.then((sh) => {
        if (sh.usable) return sh;
        if (this.#shell === cur) this.#shell = undefined;
        return this.consoleShell(opts);
      });
    }
    const shell = FramedShell.start(consoleTap(m.serial), {
      name: `${this.kernel.release} console`,
      quietMs: 300,
      loginTimeoutMs: 30_000,
      syncTimeoutMs: 10_000,
      ...opts,
    });
    const entry = { boot: this.bootCount, machine: m, shell };
    this.#shell = entry;
    shell.catch(() => {
      if (this.#shell === entry) this.#shell = undefined;
    });
    return shell;
  }

  /** Run a command on the console through the framed shell (stdout and stderr merged). */
  async consoleRun(cmd: string, timeoutMs = 30_000): Promise<RunResult> {
    const sh = await this.consoleShell();
    return await sh.run(cmd, { timeoutMs });
  }

  /** Power off (QMP quit, SIGKILL if needed). */
  async powerOff(): Promise<void> {
    this.#dropShell();
    if (this.machine) {
      await this.machine.quit();
      this.machine = undefined;
    }
    QemuTarget.#live.delete(this);
    if (this.state !== "off") this.#to("off", "power off");
  }
}
