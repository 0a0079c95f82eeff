/**
 * One QEMU aarch64 `-M virt` process: started paused (`-S`) under a watchdog so that it cannot
 * outlive the runner, console on a pseudo-terminal (path from QMP `query-chardev`), SSH through
 * a user-net host port forward, power through QMP.
 *
 * Why a watchdog and not only `setpriv --pdeathsig`: PR_SET_PDEATHSIG fires when the *thread*
 * that forked the child exits, not the process, and Deno spawns from whichever thread runs the
 * op; tying QEMU's life to a runtime thread is fragile. Instead the runner starts a tiny
 * single-threaded `sh` watchdog whose stdin is a pipe only the runner holds (Deno opens it
 * close-on-exec). When the runner dies for any reason, including SIGKILL, the kernel closes the
 * pipe, the watchdog reads EOF and kills QEMU. QEMU itself runs under
 * `setpriv --pdeathsig KILL` with the watchdog (single-threaded, so the caveat does not apply)
 * as its parent, so killing the watchdog kills QEMU too.
 *
 * @module
 */

import { InfraError, TimeoutError } from "../errors.ts";
import type { ConsoleStream } from "../serial/port.ts";
import { ConsoleRecorder, openQemuConsole } from "./console.ts";
import { QmpClient } from "./qmp.ts";
import { exists } from "../debian/cache.ts";
import { ensureHostTool, hostCommand } from "../debian/host_tools.ts";

/** Options of {@linkcode QemuMachine.launch}. */
export interface QemuLaunchOptions {
  kernel: string;
  initrd: string;
  /** Kernel command line (default: console on ttyAMA0, rdinit=/init, panic=-1). */
  append?: string;
  /** Memory (QEMU syntax, default `8G` like a ROCK 3B 8 GB). */
  memory?: string;
  cpus?: number;
  cpu?: string;
  /** Run directory: console logs, qemu.log, QMP socket, pid file. */
  runDir: string;
  /** Host port for SSH (default: a free one). */
  sshPort?: number;
  /**
   * Open the console pty (default {@linkcode openQemuConsole}: serialport on the Deno
   * binding, capturing every byte with timestamps into `logPath`).
   */
  openConsole?: (ptyPath: string, logPath: string) => Promise<ConsoleStream>;
  qemuBinary?: string;
  extraArgs?: string[];
  /**
   * Firmware that boots the guest instead of QEMU's direct kernel boot (`-bios`, e.g. U-Boot's
   * qemu_arm64 `u-boot.bin`): `kernel`, `initrd` and `append` are then not passed (the
   * firmware loads them from a disk in `extraArgs`).
   */
  bios?: string;
}

/** Default kernel command line. */
export const DEFAULT_APPEND = "console=ttyAMA0 rdinit=/init panic=-1";

/** The watchdog (see the module doc). $1 = log file, rest = QEMU command line. */
const WATCHDOG = [
  'log="$1"; shift',
  "exec 3<&0",
  'setpriv --pdeathsig KILL -- "$@" </dev/null >"$log" 2>&1 3<&- &',
  "q=$!",
  // Background lists get stdin from /dev/null unless redirected explicitly: read fd 3.
  "( while read -r _ <&3; do :; done; kill -KILL $q 2>/dev/null ) &",
  "w=$!",
  "exec 3<&-",
  "wait $q; rc=$?",
  "kill $w 2>/dev/null",
  "exit $rc",
].join("\n");

/** Longest UNIX socket path the kernel accepts (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;

/**
 * Where the QMP socket goes: in the run directory when its path fits a UNIX socket address,
 * otherwise in a short fresh directory under the system's temporary directory (deep run
 * directories, e.g. a validation inside a main job, exceed the 108-byte limit).
 */
export async function qmpSocketPath(runDir: string): Promise<{ path: string; tempDir?: string }> {
  const inRunDir = `${await Deno.realPath(runDir)}/qmp.sock`;
  if (new TextEncoder().encode(inRunDir).length <= MAX_SOCKET_PATH) return { path: inRunDir };
  const tempDir = await Deno.makeTempDir({ prefix: "rkhil-qmp-" });
  return { path: `${tempDir}/qmp.sock`, tempDir };
}

/**
 * A value inside a QEMU option list (`-chardev socket,path=PATH,server=on`): QemuOpts splits
 * at commas and reads `,,` as one literal comma, so commas are doubled. Without this a run
 * directory named `a,b` cut the socket path at the comma and made the rest an option (option
 * injection). Use it after an explicit `key=`: in an implied first value (`-qmp unix:PATH`) a
 * `=` in the path is still misread. Plain path arguments (`-kernel`, `-initrd`, `-dtb`, `-pidfile`) are taken
 * verbatim by QEMU and must not be escaped (checked on QEMU 7.2: `-kernel 'a,,b/k'` looks for
 * a file named `a,,b/k`).
 */
export function qemuOptValue(value: string): string {
  return value.replaceAll(",", ",,");
}

/** A free TCP port on 127.0.0.1 (the OS picks; small race until QEMU binds it). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A running (or paused) QEMU. */
export class QemuMachine {
  #exited = false;
  #exitCode: number | undefined;
  /** Status of the watchdog process that runs QEMU; resolves when it exits. */
  readonly exitStatus: Promise<Deno.CommandStatus>;

  private constructor(
    readonly watchdog: Deno.ChildProcess,
    readonly qmp: QmpClient,
    readonly console: ConsoleRecorder,
    readonly serial: ConsoleStream,
    readonly ptyPath: string,
    readonly sshPort: number,
    readonly qemuPid: number,
    readonly runDir: string,
    readonly args: string[],
    /** The raw console capture (plus `.idx.jsonl`). */
    readonly consoleCapturePath: string,
  ) {
    this.exitStatus = watchdog.status;
    this.exitStatus.then((s) => {
      this.#exited = true;
      this.#exitCode = s.code;
      this.console.note(`QEMU exited with status ${s.code}`);
    });
  }

  /**
   * Start QEMU paused, connect QMP, find and open the console pty and start recording it.
   * The guest CPU runs only after {@linkcode cont}, so the console log has the first byte.
   */
  static async launch(opts: QemuLaunchOptions): Promise<QemuMachine> {
    await Deno.mkdir(opts.runDir, { recursive: true });
    const sshPort = opts.sshPort ?? freePort();
    const { path: qmpPath, tempDir: qmpTempDir } = await qmpSocketPath(opts.runDir);
    const pidPath = `${opts.runDir}/qemu.pid`;
    await Deno.remove(qmpPath).catch(() => {});
    await Deno.remove(pidPath).catch(() => {});
    const args = [
      "-M",
      "virt",
      "-cpu",
      opts.cpu ?? "cortex-a53",
      "-smp",
      String(opts.cpus ?? 2),
      "-m",
      opts.memory ?? "8G",
      "-nodefaults",
      "-display",
      "none",
      "-S",
      ...(opts.bios !== undefined ? ["-bios", opts.bios] : [
        "-kernel",
        opts.kernel,
        "-initrd",
        opts.initrd,
        "-append",
        opts.append ?? DEFAULT_APPEND,
      ]),
      "-chardev",
      "pty,id=con0",
      "-serial",
      "chardev:con0",
      // QMP on a UNIX socket. Not `-qmp unix:PATH`: that legacy form reads PATH as an implied
      // first option, so a path with a `=` (even with its commas doubled) is a parse error.
      "-chardev",
      `socket,id=qmp0,path=${qemuOptValue(qmpPath)},server=on,wait=off`,
      "-mon",
      "chardev=qmp0,mode=control",
      "-netdev",
      `user,id=net0,hostfwd=tcp:127.0.0.1:${sshPort}-:22`,
      "-device",
      "virtio-net-device,netdev=net0",
      "-device",
      "virtio-rng-device",
      "-pidfile",
      pidPath,
      ...(opts.extraArgs ?? []),
    ];
    const qemu = opts.qemuBinary ?? "qemu-system-aarch64";
    await Deno.writeTextFile(`${opts.runDir}/qemu.cmdline`, [qemu, ...args].join(" ") + "\n");
    await ensureHostTool(qemu); // the watchdog script starts it ("$@"); setpriv it names
    const watchdog = (await hostCommand("sh", {
      args: ["-c", WATCHDOG, "rkhil-qemu-watchdog", `${opts.runDir}/qemu.log`, qemu, ...args],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    })).spawn();
    // A QMP socket outside the run directory goes away with QEMU.
    if (qmpTempDir) {
      watchdog.status.finally(() => Deno.remove(qmpTempDir, { recursive: true }).catch(() => {}));
    }
    let early: Deno.CommandStatus | undefined;
    // QEMU opens its QMP socket within a second when the host is idle, but on a loaded 2-core
    // host it has taken over 15 s: wait up to 90 s while the process lives, no longer once it
    // has exited.
    const exited = new AbortController();
    watchdog.status.then((s) => {
      early = s;
      exited.abort(`QEMU exited (code ${s.code})`);
    });
    let qmp: QmpClient;
    try {
      qmp = await QmpClient.connect(qmpPath, 90_000, exited.signal);
    } catch (err) {
      const log = await Deno.readTextFile(`${opts.runDir}/qemu.log`).catch(() => "");
      try {
        watchdog.kill("SIGKILL");
      } catch { /* gone */ }
      throw new InfraError(
        `QEMU did not start${early ? ` (exit ${early.code})` : ""}: ${log.trim().slice(-600)}`,
        "check the QEMU command line in qemu.cmdline of the run directory",
        { cause: err },
      );
    }
    const chardevs = await qmp.execute<{ label: string; filename: string }[]>("query-chardev");
    const con = chardevs.find((c) => c.label === "con0");
    const ptyPath = con?.filename.replace(/^pty:/, "");
    if (!ptyPath || !ptyPath.startsWith("/dev/")) {
      throw new InfraError(
        `QEMU reports no pty for the console: ${JSON.stringify(chardevs)}`,
        "check that this QEMU supports -chardev pty",
      );
    }
    const qemuPid = Number((await Deno.readTextFile(pidPath)).trim());
    // The capture is open before the guest runs (`cont`): it has the first byte. A second
    // QEMU in the same run directory (power cycle) gets the next free name.
    let logPath = `${opts.runDir}/console.raw`;
    for (let i = 1; await exists(logPath); i++) logPath = `${opts.runDir}/console.${i}.raw`;
    let serial: ConsoleStream;
    try {
      serial = await (opts.openConsole ?? openQemuConsole)(ptyPath, logPath);
    } catch (err) {
      try {
        watchdog.kill("SIGKILL");
      } catch { /* gone */ }
      throw err;
    }
    const recorder = await ConsoleRecorder.start(serial, opts.runDir);
    recorder.note(
      `QEMU pid ${qemuPid} paused; console ${ptyPath} (capture ${logPath}); ` +
        `ssh 127.0.0.1:${sshPort}`,
    );
    return new QemuMachine(
      watchdog,
      qmp,
      recorder,
      serial,
      ptyPath,
      sshPort,
      qemuPid,
      opts.runDir,
      args,
      logPath,
    );
  }

  /** True once QEMU has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** QEMU's exit code once it has exited, else undefined. */
  get exitCode(): number | undefined {
    return this.#exitCode;
  }

  /** Let the guest CPUs run (power on). */
  async cont(): Promise<void> {
    this.console.note("power on (QMP cont)");
    await this.qmp.execute("cont");
  }

  /** Hard reset (QMP system_reset). */
  async reset(): Promise<void> {
    this.console.note("reset (QMP system_reset)");
    await this.qmp.execute("system_reset");
  }

  /** Ask the guest to power down (ACPI/GPIO power button; the rkhil initramfs ignores it). */
  async powerdown(): Promise<void> {
    this.console.note("powerdown request (QMP system_powerdown)");
    await this.qmp.execute("system_powerdown");
  }

  /**
   * Power off: QMP `quit`, then SIGKILL if QEMU is still there after `timeoutMs`. Always ends
   * with QEMU gone and the console closed.
   */
  async quit(timeoutMs = 5_000): Promise<void> {
    // Close the console first: its end is then ours, not a lost console.
    await this.serial.close().catch(() => {});
    if (!this.#exited) {
      this.console.note("power off (QMP quit)");
      await this.qmp.execute("quit", undefined, timeoutMs).catch(() => {});
      let timer: ReturnType<typeof setTimeout> | undefined;
      const gone = await Promise.race([
        this.exitStatus.then(() => true),
        new Promise<boolean>((r) => timer = setTimeout(() => r(false), timeoutMs)),
      ]);
      clearTimeout(timer);
      if (!gone) this.kill();
      await this.exitStatus;
    }
    this.qmp.close();
    await this.watchdog.stdin.close().catch(() => {});
    this.console.close();
  }

  /** SIGKILL QEMU (and the watchdog). */
  kill(): void {
    try {
      Deno.kill(this.qemuPid, "SIGKILL");
    } catch { /* gone */ }
    try {
      this.watchdog.kill("SIGKILL");
    } catch { /* gone */ }
  }

  /**
   * Wait until the SSH port answers with an SSH identification line (`SSH-2.0-...`). QEMU's
   * user-net accepts connections before the guest listens, so a connection alone proves
   * nothing; retry until a banner arrives.
   */
  async waitSshBanner(timeoutMs: number, owner = "ssh banner"): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.#exited) throw new InfraError("QEMU exited while waiting for SSH", "see qemu.log");
      const banner = await readBanner(this.sshPort, Math.min(3_000, deadline - Date.now()));
      if (banner) return banner;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new TimeoutError(owner, timeoutMs, `no SSH banner on 127.0.0.1:${this.sshPort}`);
  }
}

async function readBanner(port: number, ms: number): Promise<string | undefined> {
  let conn: Deno.TcpConn | undefined;
  const timer = setTimeout(() => conn?.close(), Math.max(ms, 1));
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const buf = new Uint8Array(256);
    let text = "";
    while (!text.includes("\n")) {
      const n = await conn.read(buf);
      if (n === null) return undefined;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const line = text.split("\n")[0].trim();
    return line.startsWith("SSH-") ? line : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed */ }
  }
}
