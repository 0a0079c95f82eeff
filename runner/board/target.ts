/**
 * `BoardDriver`: the {@linkcode TargetDriver} of a board reached through its board file (a ROCK
 * 3B on a lab's desk, or a lab's QEMU guest reached the same way): console from the board
 * file's serial device or TCP console (opened before every power on, capturing from the first
 * byte), power through the board file's adapter, a shell prompt on the console (logging in
 * when asked), SSH with the board file's key file and pinned host key. The shared target
 * implementation (runner/target/) turns it into a `Target`. A board target runs whatever
 * kernel it boots; its release is what `uname -r` says.
 *
 * {@linkcode checkBoardTarget} refuses, before anything starts, a board file that cannot be
 * run as a board target: the embedded target's `qemu-pty` console, SSH without a pinned host
 * key (no trust on first use in a lab) or without a readable key file, a login whose password
 * variable is not set, a power adapter that cannot work here.
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "node:path";
import type { LoadedBoard } from "../../boards/load.ts";
import type { Capability } from "../../boards/schema.ts";
import { UserInputError } from "../errors.ts";
import type { PowerProtocol } from "../protocol/power.ts";
import { ConsoleRecorder } from "../qemu/console.ts";
import type { ConsoleStream } from "../serial/port.ts";
import type { FramedShellOptions } from "../shell/framed.ts";
import type { ConnectOptions } from "../ssh/client.ts";
import type { DriverBounds, OpenConsole, TargetDriver } from "../target/driver.ts";
import { openBoardConsole } from "./console.ts";
import { waitForShell } from "./login.ts";
import { checkPowerUsable, createPower } from "./power.ts";
import { exists } from "../debian/cache.ts";
import { DriverTarget, type DriverTargetOptions } from "../target/target.ts";

/** Default strategy bounds of a board (a real board boots slower than the QEMU guest). */
export const BOARD_BOUNDS: DriverBounds = {
  bootTimeoutMs: 180_000,
  sshTimeoutMs: 60_000,
  retries: 1,
};

/** Options of {@linkcode BoardDriver.create}. */
export interface BoardDriverOptions {
  /** Where console logs and captures go. */
  runDir: string;
  /** Strategy bounds (default {@linkcode BOARD_BOUNDS}). */
  bounds?: Partial<DriverBounds>;
  /** Environment for the login password (default: the process environment). */
  env?: { get(name: string): string | undefined };
  /** Whether standard input is a terminal (manual power; default: asked of Deno). */
  stdinIsTerminal?: boolean;
  /** Console open/connect bound, ms (default 5000). */
  consoleTimeoutMs?: number;
}

/** The private key file a board file names, resolved against the board file's directory. */
export function keyFilePath(loaded: LoadedBoard): string | undefined {
  const file = loaded.board.ssh?.key_file;
  if (file === undefined) return undefined;
  return isAbsolute(file) ? file : resolve(dirname(loaded.path), file);
}

/**
 * Refuse, before anything starts, a board file that cannot run as a board target (see the
 * module documentation). Reads nothing secret into messages: a key file is only checked to
 * be a readable regular file.
 *
 * @throws {UserInputError} one line saying what is wrong and what to do.
 */
export async function checkBoardTarget(
  loaded: LoadedBoard,
  opts: Pick<BoardDriverOptions, "env" | "stdinIsTerminal"> = {},
): Promise<void> {
  const b = loaded.board;
  if (b.console.type === "qemu-pty") {
    throw new UserInputError(
      `board ${loaded.id} is the embedded QEMU target (console.type qemu-pty), not a board ` +
        "reached through its board file",
      "run it with rkhil run (no --board), or give the board file a serial or tcp console",
    );
  }
  if (b.ssh) {
    if (b.ssh.host_key_fingerprint === undefined) {
      throw new UserInputError(
        `board ${loaded.id}: ssh.host_key_fingerprint is required to run a board (no trust on ` +
          "first use in a lab)",
        `add it to ${loaded.path}; get it with: ssh-keyscan -t ed25519 ${b.ssh.host} | ` +
          "ssh-keygen -lf -",
      );
    }
    const key = keyFilePath(loaded);
    if (key === undefined) {
      throw new UserInputError(
        `board ${loaded.id}: ssh.key_file is required (the private key rkhil logs in with)`,
        `add key_file: PATH to the ssh block of ${loaded.path} (relative to its directory)`,
      );
    }
    let ok = false;
    try {
      ok = (await Deno.stat(key)).isFile;
      if (ok) (await Deno.open(key, { read: true })).close();
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new UserInputError(
        `board ${loaded.id}: ssh.key_file ${key} is not a readable file`,
        `check ssh.key_file in ${loaded.path} (relative paths start at its directory)`,
      );
    }
  }
  const login = b.console.login;
  if (
    login?.password_env !== undefined &&
    (opts.env ?? Deno.env).get(login.password_env) === undefined
  ) {
    throw new UserInputError(
      `board ${loaded.id}: console.login.password_env names $${login.password_env}, which is ` +
        "not set",
      `set ${login.password_env} in rkhil's environment to the board's console password`,
    );
  }
  await checkPowerUsable(loaded, opts.env, opts.stdinIsTerminal);
}

/**
 * `stream` as seen by one listener that attaches late: its first `onData` subscriber first
 * gets the chunks `takeEarly()` returns (what arrived before it), then the live ones. Every
 * other member is the stream's own.
 */
function replayToFirstListener(
  stream: ConsoleStream,
  takeEarly: () => { chunk: Uint8Array; atMs: number }[],
): ConsoleStream {
  let replayed = false;
  return new Proxy(stream, {
    get(target, prop) {
      if (prop === "onData") {
        return (cb: (chunk: Uint8Array, atMs: number) => void) => {
          // Subscribe first, then replay what came before: nothing falls between the two.
          const live: { chunk: Uint8Array; atMs: number }[] = [];
          let replaying = !replayed;
          const off = target.onData((chunk, atMs) => {
            if (replaying) live.push({ chunk, atMs });
            else cb(chunk, atMs);
          });
          if (replaying) {
            replayed = true;
            for (const e of takeEarly()) cb(e.chunk, e.atMs);
            for (const e of live) cb(e.chunk, e.atMs);
            replaying = false;
          }
          return off;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The kind-specific part of a board target (see the module documentation). */
export class BoardDriver implements TargetDriver {
  readonly kind = "board" as const;
  readonly name: string;
  readonly capabilities: ReadonlySet<Capability>;
  readonly power: PowerProtocol;
  readonly bounds: DriverBounds;
  readonly goneSignal: Promise<string>;
  #console: OpenConsole | undefined;
  #gone: string | undefined;
  #setGone!: (why: string) => void;
  #closed = false;

  private constructor(
    readonly board: LoadedBoard,
    readonly runDir: string,
    private readonly opts: BoardDriverOptions,
  ) {
    this.name = board.id;
    this.capabilities = new Set(board.board.capabilities);
    this.bounds = { ...BOARD_BOUNDS, ...opts.bounds };
    this.power = createPower(board, {
      note: (line) => this.#console?.recorder.note(line),
    });
    this.goneSignal = new Promise((r) => (this.#setGone = r));
  }

  /**
   * A driver for `loaded`, after {@linkcode checkBoardTarget}.
   *
   * @throws {UserInputError} when the board file cannot run as a board target.
   */
  static async create(loaded: LoadedBoard, opts: BoardDriverOptions): Promise<BoardDriver> {
    await checkBoardTarget(loaded, opts);
    await Deno.mkdir(opts.runDir, { recursive: true });
    return new BoardDriver(loaded, opts.runDir, opts);
  }

  /** Open the board file's console unless it is open (capture: `console.raw`, `console.N.raw`). */
  async openConsole(): Promise<OpenConsole | undefined> {
    const cur = this.#console;
    if (cur && !cur.stream.closed) return cur;
    if (cur) cur.recorder.close();
    let logPath = `${this.runDir}/console.raw`;
    for (let i = 1; await exists(logPath); i++) logPath = `${this.runDir}/console.${i}.raw`;
    // What arrives before the recorder listens (the TCP settle, the recorder's own start) is
    // kept and handed to the recorder first: its transcript starts with the first byte too.
    let early: { chunk: Uint8Array; atMs: number }[] = [];
    let offEarly = () => {};
    const stream = await openBoardConsole(this.board, {
      logPath,
      timeoutMs: this.opts.consoleTimeoutMs,
      onOpen: (s) => {
        offEarly();
        early = [];
        offEarly = s.onData((chunk, atMs) => early.push({ chunk, atMs }));
      },
    });
    stream.onClose((err) => {
      if (err && !this.#closed && this.#gone === undefined) {
        // A serial device that vanished, a console server that went away.
        this.#gone = `console ${stream.name} lost: ${err.message}`;
        this.#setGone(this.#gone);
      }
    });
    const recorder = await ConsoleRecorder.start(
      replayToFirstListener(stream, () => {
        offEarly();
        return early;
      }),
      this.runDir,
    );
    recorder.note(`board ${this.name}: console ${stream.name} open (capture ${logPath})`);
    this.#console = { stream, recorder };
    return this.#console;
  }

  /**
   * Login for the framed shell on the console (user and the password from the variable the
   * board file names), when the board file has `console.login`.
   */
  get consoleShellOptions(): FramedShellOptions | undefined {
    const login = this.board.board.console.login;
    if (!login) return undefined;
    const name = login.password_env;
    return {
      name: `${this.name} console`,
      user: login.user,
      password: name === undefined ? undefined : (this.opts.env ?? Deno.env).get(name),
    };
  }

  /** Wait for a shell prompt on the console for this boot, logging in when asked. */
  async waitShell(recorder: ConsoleRecorder, from: number, timeoutMs: number): Promise<void> {
    await waitForShell(recorder, {
      board: this.name,
      from,
      timeoutMs,
      login: this.board.board.console.login,
      env: this.opts.env,
    });
  }

  /** SSH as the board file says: host, port, user, pinned key, key file, jump host. */
  async sshEndpoint(): Promise<ConnectOptions | undefined> {
    const ssh = this.board.board.ssh;
    if (!ssh) return undefined;
    const path = keyFilePath(this.board)!;
    let privateKey: Uint8Array;
    try {
      privateKey = await Deno.readFile(path);
    } catch (err) {
      throw new UserInputError(
        `board ${this.name}: cannot read ssh.key_file ${path}: ${
          err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).name
        }`,
        `check ssh.key_file in ${this.board.path}`,
      );
    }
    return {
      host: ssh.host,
      port: ssh.port,
      user: ssh.user,
      hostKeyFingerprint: ssh.host_key_fingerprint,
      privateKey,
      jump: ssh.jump
        ? {
          host: ssh.jump.host,
          port: ssh.jump.port,
          user: ssh.jump.user,
          hostKeyFingerprint: ssh.jump.host_key_fingerprint,
          privateKey,
        }
        : undefined,
    };
  }

  /** Why the board is gone for good (its console device or server went away), if it is. */
  gone(): string | undefined {
    return this.#gone;
  }

  /** Close the console and its recorder. Never throws; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const cur = this.#console;
    this.#console = undefined;
    if (cur) {
      await cur.stream.close().catch(() => {});
      cur.recorder.close();
    }
  }
}

/**
 * The `Target` of a board file: {@linkcode BoardDriver.create} (refusing, before anything
 * starts, what {@linkcode checkBoardTarget} refuses) under the one shared implementation,
 * `DriverTarget`. Nothing is opened or powered until `ready()`.
 *
 * @example
 * ```ts
 * const t = await openBoardTarget(await findBoard("rock-3b-8g", ["lab/boards"]), { runDir });
 * await t.ready(); // console open, power on, shell prompt (login when asked), SSH, uname -r
 * console.log(t.release, (await t.command.run("uname -m")).stdout);
 * await t.close();
 * ```
 *
 * @throws {UserInputError} when the board file cannot run as a board target.
 */
export async function openBoardTarget(
  loaded: LoadedBoard,
  opts: BoardDriverOptions & DriverTargetOptions,
): Promise<DriverTarget<BoardDriver>> {
  return new DriverTarget(await BoardDriver.create(loaded, opts), opts);
}
