/**
 * {@linkcode DriverTarget}: the one implementation of the {@linkcode Target} interface, over any
 * {@linkcode TargetDriver} (QEMU in runner/qemu/driver.ts, a board from its board file in
 * runner/board/). The driver gives what differs between kinds (console, power adapter, how a
 * shell shows, where SSH is); everything else is here, written once:
 *
 * - `ready()`: the strategy (runner/target/strategy.ts) brings the target to a shell on its
 *   console, powering it on with the console already open and power-cycling a hung boot at most
 *   `bounds.retries` times (a panic while booting is a FAIL at once); then SSH, when the driver
 *   has an endpoint, within `bounds.sshTimeoutMs` (a refused host key is not retried; an
 *   unreachable host ends as a MISS with the reason), and `uname -r` gives `release`.
 * - `command.run` over `serial`, `ssh-exec` (the default when the target has SSH) or
 *   `ssh-shell`, with one contract (runner/target/commands.ts); `files` upload and download
 *   with SHA-256 checks (runner/target/transfer.ts); `console` (stream, recorder, framed
 *   shell); `boot.waitFor`; fault watching with the console watchers of runner/watch/;
 *   `lost()`, `whileUp()`, `reboot()`, `close()`.
 * - A kernel fault seen while a command runs ends it as a KernelFaultError (FAIL); the target
 *   is rebooted before the next command. The target going away is an InfraError (MISS) at once.
 *
 * @module
 */
import { InfraError, RkhilError } from "../errors.ts";
import type { BootProtocol, BootStage, BootWaitOptions } from "../protocol/boot.ts";
import type { CommandOptions, CommandProtocol, CommandResult } from "../protocol/command.ts";
import type { ConsoleProtocol } from "../protocol/console.ts";
import type { FileTransferProtocol, TransferOptions } from "../protocol/file_transfer.ts";
import type {
  BootTimes,
  ReadyOptions,
  Target,
  TargetState,
  Transition,
} from "../protocol/target.ts";
import type { ConnectOptions } from "../ssh/client.ts";
import { type ConsoleRecorder, consoleTap, type RecordedLine } from "../qemu/console.ts";
import type { ConsoleStream } from "../serial/port.ts";
import { FramedShell } from "../shell/framed.ts";
import type { SshSession } from "../ssh/client.ts";
import { attachToConsole, ConsoleWatcher, type WatchEvent } from "../watch/watchers.ts";
import { CONSOLE_PREFIX_SOURCE } from "../../oracle/kline.ts";
import type { OpenConsole, TargetDriver } from "./driver.ts";
import { type CommandHost, guard, runOn } from "./commands.ts";
import { SshLink } from "./ssh_link.ts";
import { detectKernelFault, type KernelFault } from "./faults.ts";
import { bootToShell, type FirstPower, waitBootStage } from "./strategy.ts";
import { downloadOver, uploadOver } from "./transfer.ts";

/** Watcher event kinds that end a command as a kernel fault. */
const FATAL_KINDS = new Set(["panic", "oops", "bug", "serror"]);
/** A printk console prefix (oracle/kline.ts), anywhere in the line. */
const KERNEL_LINE = new RegExp(CONSOLE_PREFIX_SOURCE);

/** Options of a {@linkcode DriverTarget}. */
export interface DriverTargetOptions {
  /** Default command bound in milliseconds. Default 60 000. */
  defaultTimeoutMs?: number;
  /** After a transport broke, wait this long (ms) for a kernel fault on the console. Default 3000. */
  faultGraceMs?: number;
  /** Progress lines (boots, SSH, faults). */
  log?: (line: string) => void;
  /**
   * Console watchers (runner/watch/) fed with every console byte; their fatal events (panic,
   * Oops, BUG, SError: verdict FAIL) end the running command as a KernelFaultError. Default: a
   * new `ConsoleWatcher` with `commandOutputLf` (the framed shell runs with `-opost`).
   * `false`: only the minimal detector of runner/target/faults.ts.
   */
  watcher?: ConsoleWatcher | false;
}

/** The Target over a {@linkcode TargetDriver}; see the module documentation. */
export class DriverTarget<D extends TargetDriver = TargetDriver> implements Target {
  /** Target name in results (the board id, or `qemu-virt-8g`). */
  readonly name: string;
  /** `qemu` or `board`. */
  readonly kind: "qemu" | "board";
  /** The console watcher (undefined with `watcher: false`). */
  readonly watcher: ConsoleWatcher | undefined;
  /** Every fatal kernel event seen so far. */
  readonly faults: KernelFault[] = [];
  /** Every state change so far, in order. */
  readonly transitions: Transition[] = [];
  /** Boots so far (power on, cycles, reboots); identifies the current boot. */
  bootCount = 0;
  /** Timings of the last boot the strategy waited for. */
  lastBoot: BootTimes | undefined;
  /** Command protocol (default transport: `ssh-exec` with SSH, else `serial`). */
  readonly command: CommandProtocol;
  /** Boot protocol (waits on the console). */
  readonly boot: BootProtocol;
  #state: TargetState = "off";
  #release?: string;
  #opts: Required<Omit<DriverTargetOptions, "log" | "watcher">> & Pick<DriverTargetOptions, "log">;
  #con?: OpenConsole;
  #goneCbs = new Set<(reason: string) => void>();
  #goneWatch?: { con: OpenConsole | null; reason?: string };
  #noConsole = false;
  #detachWatcher?: () => void;
  #offLine?: () => void;
  #reported = new Set<number>();
  /** The SSH endpoint of the current boot: undefined = not asked yet, null = no SSH. */
  #endpoint?: ConnectOptions | null;
  #link: SshLink;
  #conShell?: { boot: number; stream: ConsoleStream; shell: Promise<FramedShell> };
  #chain: Promise<unknown> = Promise.resolve();
  #kernelCbs = new Set<(line: string, atMs: number) => void>();
  #faultCbs = new Set<(fault: KernelFault) => void>();
  #crashedBoot = -1;
  #bootMark?: { from: number; t0: number };
  #closed = false;
  #consoleProto: ConsoleProtocol;
  #filesProto: FileTransferProtocol;
  #host: CommandHost;

  /** A target over `driver` (nothing happens until {@linkcode ready}). */
  constructor(readonly driver: D, opts: DriverTargetOptions = {}) {
    this.name = driver.name;
    this.kind = driver.kind;
    this.#opts = {
      defaultTimeoutMs: opts.defaultTimeoutMs ?? 60_000,
      faultGraceMs: opts.faultGraceMs ?? 3_000,
      log: opts.log,
    };
    this.watcher = opts.watcher === false
      ? undefined
      : opts.watcher ?? new ConsoleWatcher({ commandOutputLf: true });
    this.watcher?.onEvent((ev) => this.#watchEvent(ev));
    this.#link = new SshLink(driver.name, driver.bounds.sshTimeoutMs, (l) => this.#log(l));
    // deno-lint-ignore no-this-alias
    const self = this;
    this.#consoleProto = {
      get stream(): ConsoleStream {
        return self.#openConsole().stream;
      },
      get recorder(): ConsoleRecorder {
        return self.#openConsole().recorder;
      },
      shell: () => this.#consoleShell(),
    };
    this.#filesProto = {
      upload: (source, remotePath, o: TransferOptions = {}) =>
        this.#serial(async () => {
          await this.#recoverIfCrashed();
          const what = `upload to ${remotePath} on ${this.#label()}`;
          return await guard(this.#host, what, o.timeoutMs ?? 300_000, async () =>
            await uploadOver(await this.#sshNow(), source, remotePath, o));
        }),
      download: (remotePath, localPath, o: TransferOptions = {}) =>
        this.#serial(async () => {
          await this.#recoverIfCrashed();
          const what = `download ${remotePath} from ${this.#label()}`;
          return await guard(this.#host, what, o.timeoutMs ?? 300_000, async () =>
            await downloadOver(await this.#sshNow(), remotePath, localPath, o));
        }),
    };
    this.command = { run: (cmd, o) => this.#serial(() => this.#run(cmd, o ?? {})) };
    this.boot = { waitFor: (stage, o) => this.#waitFor(stage, o) };
    this.#host = {
      get bootCount() {
        return self.bootCount;
      },
      get faultGraceMs() {
        return self.#opts.faultGraceMs;
      },
      gone: () => this.#gone(),
      onGone: (cb) => this.#onGone(cb),
      faultIn: (boot) => this.#crashedBoot === boot ? this.faults.at(-1) : undefined,
      onFault: (cb) => this.onFault(cb),
      onKernelLine: (cb) => this.onKernelLine(cb),
      ssh: () => this.#sshNow(),
      sshShell: () => this.#sshShellNow(),
      consoleShell: () => this.#consoleShell(),
    };
  }

  /** The board file this target is described by. */
  get board(): D["board"] {
    return this.driver.board;
  }

  /** Capabilities suites may ask for. */
  get capabilities(): D["capabilities"] {
    return this.driver.capabilities;
  }

  /** The power adapter. */
  get power(): D["power"] {
    return this.driver.power;
  }

  /** Current state. */
  get state(): TargetState {
    return this.#state;
  }

  /** The running kernel's release (`uname -r`), once the target was `ready`. */
  get release(): string | undefined {
    return this.#release;
  }

  /** Console protocol; undefined when the driver has no console. */
  get console(): ConsoleProtocol | undefined {
    return this.#noConsole ? undefined : this.#consoleProto;
  }

  /** File transfer; undefined when the target turned out to have no SSH. */
  get files(): FileTransferProtocol | undefined {
    return this.#endpoint === null ? undefined : this.#filesProto;
  }

  /** The SSH connection of the current boot, if one is open. */
  get sshSession(): SshSession | undefined {
    return this.#link.current(this.bootCount);
  }

  /** True while the target is up, not lost and not closed. */
  get usable(): boolean {
    return !this.#closed && this.#state !== "off" && !this.lost();
  }

  #label(): string {
    return this.#release ? `${this.name} (${this.#release})` : this.name;
  }

  #log(line: string): void {
    this.#opts.log?.(line);
    this.#con?.recorder.note(`target: ${line}`);
  }

  #openConsole(): OpenConsole {
    if (!this.#con || this.#state === "off") {
      throw new InfraError(`${this.name}: the target is off: no console`, "power it on first");
    }
    return this.#con;
  }

  #transition(to: TargetState, why: string): void {
    if (to === "booting") this.bootCount++;
    if (to === "booting" || to === "off") this.#dropShells();
    if (to === "off") this.#release = undefined;
    this.transitions.push({ at: new Date().toISOString(), from: this.#state, to, why });
    this.#con?.recorder.note(`state ${this.#state} -> ${to} (${why})`);
    this.#state = to;
  }

  #attachConsole(con: OpenConsole | undefined): void {
    if (!con) {
      this.#noConsole = true;
      return;
    }
    if (con === this.#con || con.recorder === this.#con?.recorder) return;
    this.#offLine?.();
    this.#detachWatcher?.();
    this.#con = con;
    if (this.watcher) this.#detachWatcher = attachToConsole(this.watcher, con.stream);
    this.#offLine = con.recorder.onLine((line) => this.#line(line));
  }

  #line(line: RecordedLine): void {
    if (!line.crlf || !KERNEL_LINE.test(line.text)) return;
    for (const cb of this.#kernelCbs) {
      try {
        cb(line.text, line.atMs);
      } catch { /* a subscriber's bug must not stop the console */ }
    }
    if (!this.watcher) {
      const fault = detectKernelFault(line.text, line.crlf, line.atMs);
      if (fault) this.reportFatal(fault);
    }
  }

  #watchEvent(ev: WatchEvent): void {
    if (ev.verdict !== "FAIL" || !FATAL_KINDS.has(ev.kind) || this.#reported.has(ev.id)) return;
    this.#reported.add(ev.id);
    this.reportFatal({
      kind: ev.kind as KernelFault["kind"],
      reason: ev.reason,
      line: ev.lines[0]?.text ?? ev.reason,
      atMs: ev.atMs,
      source: "watcher",
    });
  }

  /**
   * Report a fatal kernel event (the console watchers do; the minimal detector without them).
   * The running command ends with a KernelFaultError; the target reboots before the next one.
   */
  reportFatal(fault: KernelFault): void {
    this.faults.push(fault);
    this.#crashedBoot = this.bootCount;
    this.#log(`fatal kernel event (${fault.source}): ${fault.reason}`);
    for (const cb of this.#faultCbs) {
      try {
        cb(fault);
      } catch { /* ignore */ }
    }
  }

  /** Call `cb` for every kernel console line (printk prefix, CRLF). Returns an unsubscribe. */
  onKernelLine(cb: (line: string, atMs: number) => void): () => void {
    this.#kernelCbs.add(cb);
    return () => this.#kernelCbs.delete(cb);
  }

  /** Call `cb` for every fatal kernel event. Returns an unsubscribe. */
  onFault(cb: (fault: KernelFault) => void): () => void {
    this.#faultCbs.add(cb);
    return () => this.#faultCbs.delete(cb);
  }

  #gone(): string | undefined {
    const g = this.driver.gone();
    if (g) return g;
    if (this.#state !== "off" && this.#con?.stream.closed) {
      return `the console is gone (${this.#con.stream.name} closed` +
        (this.#con.stream.closeReason ? `: ${this.#con.stream.closeReason.message})` : ")");
    }
    return undefined;
  }

  /**
   * Call `cb` once the target is gone. One watch per console (per QEMU, per opened board
   * console) feeds every subscriber; a subscriber that unsubscribes holds nothing (the soak's
   * 9 MiB per 1 000 commands came from one watch per command that was never removed).
   */
  #onGone(cb: (reason: string) => void): () => void {
    const con = this.#con ?? null;
    if (this.#goneWatch?.con !== con) {
      const watch: { con: OpenConsole | null; reason?: string } = { con };
      this.#goneWatch = watch;
      this.#goneSignal().then((reason) => {
        watch.reason = reason;
        if (this.#goneWatch !== watch) return; // a later console has its own watch
        for (const f of [...this.#goneCbs]) f(reason);
      });
    }
    const fired = this.#goneWatch.reason;
    if (fired !== undefined) {
      queueMicrotask(() => cb(fired));
      return () => {};
    }
    this.#goneCbs.add(cb);
    return () => this.#goneCbs.delete(cb);
  }

  #goneSignal(): Promise<string> {
    const con = this.#con;
    const closed = con
      ? new Promise<string>((resolve) => {
        const why = (err?: Error) =>
          `the console is gone (${con.stream.name} closed${err ? `: ${err.message}` : ""})`;
        // The driver's reason (QEMU exited) explains a console end better: give it a moment.
        const later = (reason: string) =>
          setTimeout(() => resolve(this.driver.gone() ?? reason), 300);
        if (con.stream.closed) return later(why(con.stream.closeReason));
        con.stream.onClose((err) => later(why(err)));
      })
      : new Promise<string>(() => {});
    return Promise.race([this.driver.goneSignal, closed]);
  }

  /** Why the target is gone, if it is (the driver's reason, console closed, SSH lost). */
  lost(): string | undefined {
    const g = this.#gone();
    if (g) return g;
    if (this.#state === "ready" && this.#endpoint && this.#link.connected === false) {
      return "SSH connection lost";
    }
    return undefined;
  }

  /**
   * `work`, ended early by an InfraError as soon as the kernel reports a fatal fault or the
   * target is gone. The caller classifies with {@linkcode faults} and {@linkcode lost}.
   */
  whileUp<T>(work: Promise<T>): Promise<T> {
    work.catch(() => {});
    const offs: (() => void)[] = [];
    const down = new Promise<never>((_, reject) => {
      const fail = (why: string) =>
        reject(
          new InfraError(`the target failed while the step ran: ${why}`, "see the console log"),
        );
      offs.push(this.onFault((f) => fail(`kernel ${f.kind}: ${f.reason}`)));
      const g = this.#gone();
      if (g) fail(g);
      else offs.push(this.#onGone(fail));
    });
    down.catch(() => {});
    return Promise.race([work, down]).finally(() => offs.forEach((off) => off()));
  }

  /** Serialise operations (one command at a time, reboots in between). */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const job = this.#chain.then(fn, fn);
    this.#chain = job.catch(() => {});
    return job;
  }

  #strategyHost() {
    return {
      driver: this.driver,
      transition: (to: TargetState, why: string) => this.#transition(to, why),
      attachConsole: (con: OpenConsole | undefined) => this.#attachConsole(con),
      expectBoot: () => this.watcher?.expectBoot(),
      log: (line: string) => this.#log(line),
      bootStarted: (from: number, t0: number) => (this.#bootMark = { from, t0 }),
    };
  }

  /**
   * The strategy: bring the target to `ready` (or `shell` with `consoleOnly`). Returns the
   * timings of the boot it waited for (`attempts: 0` when it was already there).
   *
   * @throws {KernelFaultError} (FAIL) when the kernel panics while booting.
   * @throws {InfraError} (MISS) when power, console or SSH fail.
   * @throws {TimeoutError} (MISS) when no boot reached the stage within the bounds.
   * @throws {HostKeyError} (ERROR, not retried) when SSH presents another host key.
   */
  ready(opts: ReadyOptions = {}): Promise<BootTimes> {
    return this.#serial(() => this.#ready(opts, undefined));
  }

  async #ready(opts: ReadyOptions, first: FirstPower | undefined): Promise<BootTimes> {
    if (this.#closed) {
      throw new InfraError(`${this.name}: the target is closed`, "make a new target");
    }
    const want: TargetState = opts.consoleOnly ? "shell" : "ready";
    let times: BootTimes = { attempts: 0 };
    const lost = this.#state !== "off" && this.#gone();
    if (first || this.#state === "off" || this.#state === "booting" || lost) {
      if (lost) this.#log(`target lost (${lost}): powering it on again`);
      const how = first ?? (this.#state === "off" ? "on" : "cycle");
      times = await bootToShell(this.#strategyHost(), how);
      this.lastBoot = times;
      this.#endpoint = undefined;
      this.#log(`${this.name}: shell after ${times.shell?.toFixed(2)} s`);
      this.watcher?.declareBooted();
    }
    if (want === "ready" && this.#state === "shell") {
      const t0 = this.#bootMark?.t0 ?? performance.now();
      this.#endpoint ??= (await this.driver.sshEndpoint()) ?? null;
      if (this.#endpoint) {
        const ssh = await this.#sshNow();
        times.ssh = (performance.now() - t0) / 1000;
        const r = await ssh.exec("uname -r", { timeoutMs: 20_000 });
        this.#release = r.stdout.trim();
        this.#transition("ready", `ssh answers (connect ${Math.round(ssh.connectMs)} ms)`);
      } else {
        const sh = await this.#consoleShell();
        this.#release = (await sh.run("uname -r", { timeoutMs: 20_000 })).stdout.trim();
        this.#transition("ready", "no SSH: console shell answers");
      }
    }
    return times;
  }

  /**
   * Reboot and bring the target back to `ready`: a power cycle through the adapter, or
   * `reboot -f` typed in its shell when the adapter is `none`.
   */
  reboot(): Promise<BootTimes> {
    return this.#serial(() => this.#reboot());
  }

  #reboot(): Promise<BootTimes> {
    if (this.power.kind === "none" && this.#state !== "off") {
      return this.#ready({}, async () => {
        const sh = await this.#consoleShell();
        await sh.run("(sleep 1; reboot -f) >/dev/null 2>&1 &", { timeoutMs: 10_000 });
      });
    }
    return this.#ready({}, this.#state === "off" ? "on" : "cycle");
  }

  async #recoverIfCrashed(): Promise<void> {
    if (this.#crashedBoot >= 0 && this.#crashedBoot === this.bootCount) {
      this.#log("the previous boot crashed: rebooting before the next command");
      await this.#reboot();
    }
  }

  async #run(cmd: string, o: CommandOptions): Promise<CommandResult> {
    await this.#recoverIfCrashed();
    if (this.#state === "off" || this.#state === "booting") await this.#ready({}, undefined);
    if (o.via === undefined) this.#endpoint ??= (await this.driver.sshEndpoint()) ?? null;
    const via = o.via ?? (this.#endpoint ? "ssh-exec" : "serial");
    const what = `${via} \`${
      cmd.length > 50 ? cmd.slice(0, 47) + "..." : cmd
    }\` on ${this.#label()}`;
    return await runOn(this.#host, what, cmd, {
      via,
      timeoutMs: o.timeoutMs ?? this.#opts.defaultTimeoutMs,
      stdin: o.stdin,
      isolate: o.isolate,
    });
  }

  async #waitFor(stage: BootStage, o: BootWaitOptions): Promise<number> {
    const con = this.#con;
    if (!con) throw new InfraError(`${this.name}: no console to wait on`, "power it on first");
    const called = performance.now();
    const s = await waitBootStage(this.driver, con.recorder, stage, o.from, o.timeoutMs);
    const mark = this.#bootMark;
    return mark && mark.from === o.from ? s + (called - mark.t0) / 1000 : s;
  }

  async #endpointNow(): Promise<ConnectOptions> {
    if (this.#state === "off" || this.#state === "booting") {
      throw new InfraError(`${this.name} is ${this.#state}: no SSH`, "bring it up with ready()");
    }
    this.#endpoint ??= (await this.driver.sshEndpoint()) ?? null;
    if (!this.#endpoint) {
      throw new RkhilError(
        `${this.name} has no SSH`,
        "use the serial transport (via: 'serial'), or add ssh to the board file",
      );
    }
    return this.#endpoint;
  }

  async #sshNow(): Promise<SshSession> {
    return await this.#link.session(await this.#endpointNow(), this.bootCount);
  }

  async #sshShellNow(): Promise<FramedShell> {
    const ep = await this.#endpointNow();
    return await this.#link.shell(ep, this.bootCount, `${this.#label()} ssh shell`);
  }

  #consoleShell(): Promise<FramedShell> {
    const con = this.#con;
    if (!con || (this.#state !== "shell" && this.#state !== "ready")) {
      return Promise.reject(
        new InfraError(`${this.name} is ${this.#state}: no shell`, "bring it up with ready()"),
      );
    }
    const cur = this.#conShell;
    if (cur && cur.boot === this.bootCount && cur.stream === con.stream) {
      return cur.shell.then((sh) => {
        if (sh.usable) return sh;
        if (this.#conShell === cur) this.#conShell = undefined;
        return this.#consoleShell();
      });
    }
    const shell = FramedShell.start(consoleTap(con.stream), {
      name: `${this.#label()} console`,
      quietMs: 300,
      loginTimeoutMs: 30_000,
      syncTimeoutMs: 10_000,
      ...this.driver.consoleShellOptions,
    });
    const entry = { boot: this.bootCount, stream: con.stream, shell };
    this.#conShell = entry;
    shell.catch(() => {
      if (this.#conShell === entry) this.#conShell = undefined;
    });
    return shell;
  }

  #dropShells(): void {
    const c = this.#conShell;
    this.#conShell = undefined;
    c?.shell.then((sh) => sh.close(), () => {}).catch(() => {});
    this.#link.dropShell();
  }

  /**
   * Close shells, SSH and console watchers; switch a `command` adapter off when rkhil switched
   * the target on; release the driver (QEMU quits). Never throws. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropShells();
    this.#offLine?.();
    this.#detachWatcher?.();
    this.watcher?.flush();
    await this.#link.close();
    if (this.#state !== "off" && this.power.kind === "command") {
      await this.power.off().catch(() => {});
    }
    if (this.#state !== "off") this.#transition("off", "closed");
    await this.driver.close().catch(() => {});
  }
}

/** True when `err` is an error rkhil classifies as an infrastructure failure (MISS). */
export function isInfraFailure(err: unknown): boolean {
  return err instanceof RkhilError && err.verdict === "MISS";
}
