/**
 * The lab: N real QEMU aarch64 guests on a Debian kernel (default `debian:trixie`), each
 * reached ONLY through a board file in the lab's board directory, exactly as a ROCK 3B on a
 * lab's desk is reached: SSH to 127.0.0.1:PORT with the key file and the pinned host key (the
 * initramfs's, generated at build time), the console on the guest's pty (`serial`, 1 500 000
 * baud) or served by ser2net (`tcp`, raw or telnet), power by `command` lines that run
 * `rkhil lab power on|off|cycle --qmp SOCKET` (or `qmp` with the socket).
 *
 * The lab starts each QEMU paused (power off) with the pieces of `QemuMachine.launch` (the
 * watchdog that kills QEMU with this process, the embedded initramfs and its keys), and never
 * holds a guest's console: the board file's user opens it, as it would a USB UART. Each guest
 * has a second QMP monitor for its power switch, so the lab's own QMP connection never blocks
 * the board file's power commands (QEMU serves one client per monitor socket).
 *
 * This is not `QemuTarget`: nothing here knows how to boot or reach the guest; the board files
 * carry everything, and the tests reach the guests through `BoardDriver` and `DriverTarget`.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { InfraError } from "../errors.ts";
import { type FetchedKernel, fetchKernel } from "../debian/kernel.ts";
import { ensureHostTools } from "../debian/host_tools.ts";
import { buildInitramfs } from "../qemu/initramfs.ts";
import { writeNewc } from "../qemu/cpio.ts";
import { run } from "../debian/proc.ts";
import { freePort, QemuMachine, qemuOptValue } from "../qemu/machine.ts";
import { QEMU_HOST_TOOLS } from "../qemu/target.ts";
import { BaseConsole } from "../serial/port.ts";
import { shellQuote } from "../ssh/client.ts";
import { labBoardYaml, type LabConsole, type LabPower } from "./board_file.ts";
import { type Ser2net, type Ser2netPort, startSer2net } from "./ser2net.ts";

/** How the lab's board files reach each guest's console. */
export type LabConsoleKind = "pty" | "ser2net-raw" | "ser2net-telnet";

/** Options of {@linkcode startLab}. */
export interface LabOptions {
  /** Number of guests (default 1, at most 8). */
  n?: number;
  /** Console of the board files (default `pty`). */
  console?: LabConsoleKind;
  /** Power of the board files: `command` lines (default) or the `qmp` socket itself. */
  power?: "command" | "qmp";
  /** Kernel spec (default `debian:trixie`). */
  kernel?: string;
  /** Lab directory (default: a new temporary directory, removed by `stop()`). */
  dir?: string;
  /** Keep the lab directory after `stop()`. */
  keep?: boolean;
  /** `power.min_off_ms` written into the board files (default 500). */
  minOffMs?: number;
  /** Guest memory (default `8G`, as the board facts say). */
  memory?: string;
  /** Board ids are `<prefix>-1` ... (default `lab`). */
  prefix?: string;
  /**
   * Guests whose console asks for a login (busybox `login`, user `root`, a fresh random
   * password, returned as {@linkcode Lab.loginPassword}); the board files name `passwordEnv` as
   * `console.login.password_env`. Set that variable to the password before reaching them.
   */
  login?: { passwordEnv: string };
}

/** One guest of the lab. */
export interface LabGuest {
  /** Board id (`lab-1`). */
  id: string;
  /** Its board file. */
  boardPath: string;
  /** Host port forwarded to its SSH. */
  sshPort: number;
  /** Its console pty. */
  ptyPath: string;
  /** The QMP socket its power commands use. */
  powerSocket: string;
  /** The QEMU process (for the lab's own bookkeeping; tests reach it through the board file). */
  machine: QemuMachine;
}

/** A running lab. */
export interface Lab {
  /** The lab directory (board files in `boards/`, QEMU logs per guest). */
  readonly dir: string;
  /** The board directory to pass as `--boards-dir` / `findBoard(id, [boardsDir])`. */
  readonly boardsDir: string;
  /** Board ids, in order. */
  readonly boards: string[];
  /** The guests. */
  readonly guests: LabGuest[];
  /** The kernel the guests boot. */
  readonly kernel: FetchedKernel;
  /** The ser2net serving the consoles, when the console kind is a ser2net one. */
  readonly ser2net: Ser2net | undefined;
  /** The console password of a login lab (`LabOptions.login`); a secret: never log it. */
  readonly loginPassword: string | undefined;
  /** Quit every guest, stop ser2net, remove the directory (unless `keep`). Never throws. */
  stop(): Promise<void>;
}

/** The repository's `rkhil` bootstrap, by absolute path (power command lines run it). */
export const RKHIL_BIN: string = fileURLToPath(new URL("../../rkhil", import.meta.url));

/**
 * The lab does not hold a guest's console: this stands in for it in `QemuMachine` (the lab's
 * guests and the U-Boot lab guest, runner/lab/uboot.ts). Writing to it rejects (InfraError).
 */
export class LeftToBoardFile extends BaseConsole {
  /** @param path the guest's console pty, named in its description. */
  constructor(path: string) {
    super(`${path} (left to the board file)`, {});
  }

  protected rawWrite(): Promise<void> {
    return Promise.reject(
      new InfraError("the lab does not hold the guest's console", "open it from the board file"),
    );
  }

  protected rawClose(): Promise<void> {
    return Promise.resolve();
  }
}

/** 20 random letters and digits. */
function randomPassword(): string {
  const abc = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  return [...crypto.getRandomValues(new Uint8Array(20))].map((b) => abc[b % abc.length]).join("");
}

/**
 * The lab's initramfs with a console login: the image, zero-padded to 512 bytes, followed by a
 * second newc archive (the kernel unpacks both; later files win) that replaces `/init` with the
 * same init whose console loop runs busybox `login` instead of a shell, and `/etc/passwd` with
 * root's password hash (`busybox mkpasswd -m sha512`, the password on its stdin). Written 0600:
 * the image holds the guest's SSH host key.
 */
async function loginInitramfs(base: string, out: string, password: string): Promise<string> {
  const init = await Deno.readTextFile(new URL("../../target/initramfs/init", import.meta.url));
  const shellLoop = "  setsid cttyhack sh -l\n";
  if (!init.includes(shellLoop)) {
    throw new InfraError(
      "target/initramfs/init no longer has its console loop (setsid cttyhack sh -l)",
      "update runner/lab/lab.ts loginInitramfs to the new init",
    );
  }
  const hash = (await run("busybox", ["mkpasswd", "-m", "sha512", "-P", "0"], {
    stdin: new TextEncoder().encode(password + "\n"),
    owner: "busybox mkpasswd",
  })).stdout.trim();
  const enc = new TextEncoder();
  const overlay = writeNewc([
    {
      type: "file",
      path: "init",
      data: enc.encode(init.replace(shellLoop, "  setsid cttyhack login\n")),
      mode: 0o755,
    },
    {
      type: "file",
      path: "etc/passwd",
      data: enc.encode(`root:${hash}:0:0:root:/root:/bin/sh\n`),
      mode: 0o644,
    },
  ]);
  return await withOverlay(base, overlay, out);
}

/**
 * Write `out` (mode 0600: an image holds the guest's SSH host key): the initramfs image at
 * `base`, zero-padded to 512 bytes, followed by the newc archive `overlay` (the kernel unpacks
 * both; later files win). Returns `out`.
 */
export async function withOverlay(base: string, overlay: Uint8Array, out: string): Promise<string> {
  const first = await Deno.readFile(base);
  const padded = Math.ceil(first.length / 512) * 512;
  const bytes = new Uint8Array(padded + overlay.length);
  bytes.set(first, 0);
  bytes.set(overlay, padded);
  await Deno.writeFile(out, bytes, { mode: 0o600 });
  await Deno.chmod(out, 0o600);
  return out;
}

/** The power command line of a lab guest, as its board file runs it with `sh -c`. */
export function labPowerLine(action: "on" | "off" | "cycle", socket: string): string {
  return `${shellQuote(RKHIL_BIN)} lab power ${action} --qmp ${shellQuote(socket)}`;
}

/**
 * Start a lab (see the module documentation): fetch the kernel and build the initramfs (both
 * cached), start each guest paused, start ser2net when asked, and write one board file per
 * guest. The guests are off until a board file's power command switches them on.
 *
 * @throws {InfraError} when QEMU or ser2net cannot start (what started is stopped again).
 */
export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const n = opts.n ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > 8) {
    throw new InfraError(`a lab has 1 to 8 guests (asked for ${n})`, "ask for fewer guests");
  }
  const consoleKind = opts.console ?? "pty";
  await ensureHostTools(QEMU_HOST_TOOLS);
  const kernel = await fetchKernel(opts.kernel ?? "debian:trixie");
  const image = await buildInitramfs(kernel);
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "rkhil-lab-" });
  let initrd = image.path;
  let loginPassword: string | undefined;
  if (opts.login) {
    loginPassword = randomPassword();
    initrd = await loginInitramfs(image.path, `${dir}/initramfs-login.cpio`, loginPassword);
  }
  const boardsDir = `${dir}/boards`;
  await Deno.mkdir(boardsDir, { recursive: true });
  // UNIX socket paths are short (108 bytes): the power sockets live in a short directory.
  const sockDir = await Deno.makeTempDir({ prefix: "rkhil-lab-qmp-" });
  const guests: LabGuest[] = [];
  let ser2net: Ser2net | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await ser2net?.stop();
    await Promise.all(guests.map((g) => g.machine.quit(3_000).catch(() => g.machine.kill())));
    await Deno.remove(sockDir, { recursive: true }).catch(() => {});
    if (!opts.keep && opts.dir === undefined) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  };
  try {
    for (let i = 1; i <= n; i++) {
      const id = `${opts.prefix ?? "lab"}-${i}`;
      const powerSocket = `${sockDir}/${id}.sock`;
      const machine = await QemuMachine.launch({
        kernel: kernel.vmlinuz,
        initrd,
        memory: opts.memory ?? "8G",
        cpus: 2,
        runDir: `${dir}/${id}`,
        openConsole: (ptyPath) => Promise.resolve(new LeftToBoardFile(ptyPath)),
        extraArgs: [
          "-chardev",
          `socket,id=labpower,path=${qemuOptValue(powerSocket)},server=on,wait=off`,
          "-mon",
          "chardev=labpower,mode=control",
        ],
      });
      guests.push({
        id,
        boardPath: `${boardsDir}/${id}.yaml`,
        sshPort: machine.sshPort,
        ptyPath: machine.ptyPath,
        powerSocket,
        machine,
      });
    }
    const ports: Ser2netPort[] = [];
    const consoles = new Map<string, LabConsole>();
    for (const g of guests) {
      if (consoleKind === "pty") {
        consoles.set(g.id, { type: "serial", device: g.ptyPath });
      } else {
        const protocol = consoleKind === "ser2net-telnet" ? "telnet" : "raw";
        const port = freePort();
        ports.push({ port, device: g.ptyPath, baud: 1_500_000, protocol });
        consoles.set(g.id, { type: "tcp", port, protocol });
      }
    }
    if (ports.length > 0) ser2net = await startSer2net(`${dir}/ser2net`, ports);
    for (const g of guests) {
      const con = consoles.get(g.id)!;
      const power: LabPower = opts.power === "qmp" ? { type: "qmp", socket: g.powerSocket } : {
        type: "command",
        on: labPowerLine("on", g.powerSocket),
        off: labPowerLine("off", g.powerSocket),
      };
      await Deno.writeTextFile(
        g.boardPath,
        labBoardYaml({
          id: g.id,
          sshPort: g.sshPort,
          fingerprint: image.hostKey.fingerprint,
          keyFile: image.clientKey.privateKeyPath,
          console: opts.login ? { ...con, login: { passwordEnv: opts.login.passwordEnv } } : con,
          power,
          minOffMs: opts.minOffMs ?? 500,
        }),
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    dir,
    boardsDir,
    boards: guests.map((g) => g.id),
    guests,
    kernel,
    ser2net,
    loginPassword,
    stop,
  };
}
