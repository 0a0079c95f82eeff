/**
 * Power adapters of board targets, one per `power.type` of a board file, each a
 * {@linkcode PowerProtocol}:
 *
 * - `command`: the board file's `on`, `off` (and optional `cycle`) command lines, run with
 *   `sh -c` on the rkhil host through the host-tool install path (`run()` of
 *   runner/debian/proc.ts): what a lab runs to drive a PDU, a relay or a USB hub. A non-zero
 *   status is an {@linkcode InfraError} (MISS) carrying the first line of the command's stderr.
 * - `qmp`: a QEMU guest a lab runs, through its QMP socket: on = `cont`, off = `stop` +
 *   `system_reset` (the guest then waits, reset, for the next `cont`).
 * - `manual`: asks a person on the terminal and waits for Enter; refused before the run when
 *   standard input is not a terminal or `CI=true` ({@linkcode checkPowerUsable}).
 * - `none`: the board is always on; `cycle` is refused (a board without a power switch is
 *   rebooted from its own shell).
 *
 * Every adapter keeps the board off for at least `min_off_ms` between an `off` and the next
 * `on` (a cycle included).
 *
 * @module
 */

import type { LoadedBoard } from "../../boards/load.ts";
import type { PowerSpec } from "../../boards/schema.ts";
import { InfraError, UserInputError } from "../errors.ts";
import { run } from "../debian/proc.ts";
import { isDeclared, isHostProgram } from "../debian/host_tools.ts";
import { shellPrograms } from "../debian/shell_programs.ts";
import { QmpClient } from "../qemu/qmp.ts";
import type { PowerKind, PowerProtocol } from "../protocol/power.ts";
import { escapeControls, shown } from "../safe_text.ts";

/** Options shared by the adapters. */
export interface PowerOptions {
  /** Host notes (e.g. into the console log): `power on (command: ...)`. */
  note?: (line: string) => void;
  /** Bound of one command line or QMP exchange, in ms (default 60 000). */
  timeoutMs?: number;
  /** Manual adapter: where prompts go (default: standard error). */
  prompt?: (text: string) => void;
  /** Manual adapter: where Enter is read from (default: standard input). */
  input?: ReadableStream<Uint8Array>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What every adapter shares: `min_off_ms` bookkeeping between an `off` and the next `on`. */
export abstract class BasePower implements PowerProtocol {
  /** The adapter kind (`power.type` of the board file). */
  abstract readonly kind: PowerKind;
  #offAt: number | undefined;

  /**
   * An adapter for `board`.
   *
   * @param board board id, for messages
   * @param minOffMs minimum time in milliseconds the board stays off before the next `on`
   * @param opts notes, bounds, and the manual adapter's terminal
   */
  constructor(
    readonly board: string,
    readonly minOffMs: number,
    protected readonly opts: PowerOptions,
  ) {}

  /** A host note (console log). */
  protected note(line: string): void {
    this.opts.note?.(line);
  }

  /** Wait out the rest of `minOffMs` since the last `off`. */
  protected async waitMinOff(): Promise<void> {
    if (this.#offAt === undefined) return;
    const left = this.#offAt + this.minOffMs - performance.now();
    if (left > 0) {
      this.note(`power: keeping ${this.board} off ${Math.ceil(left)} ms more (min_off_ms)`);
      await sleep(left);
    }
  }

  /** Record the moment power went off. */
  protected markOff(): void {
    this.#offAt = performance.now();
  }

  /** Switch on, after the rest of `minOffMs` since the last `off`. @throws {InfraError} */
  async on(): Promise<void> {
    await this.waitMinOff();
    await this.switchOn();
  }

  /** Switch off. @throws {InfraError} when the adapter fails. */
  async off(): Promise<void> {
    await this.switchOff();
    this.markOff();
  }

  /** Off, `minOffMs`, on. @throws {InfraError} when the adapter fails. */
  async cycle(): Promise<void> {
    await this.off();
    await this.on();
  }

  /** The adapter's own switch-on. */
  protected abstract switchOn(): Promise<void>;
  /** The adapter's own switch-off. */
  protected abstract switchOff(): Promise<void>;
}

/** `power.type: command`: the board file's command lines through `sh -c`. */
export class CommandPower extends BasePower {
  /** Always `command`. */
  readonly kind = "command" as const;

  /**
   * The command adapter of `board`.
   *
   * @param board board id, for messages
   * @param spec the board file's `on`, `off`, optional `cycle` lines and `min_off_ms`
   * @param opts notes and the bound of one command line (default 60 s)
   */
  constructor(
    board: string,
    readonly spec: { on: string; off: string; cycle?: string; min_off_ms?: number },
    opts: PowerOptions = {},
  ) {
    super(board, spec.min_off_ms ?? 0, opts);
  }

  async #runLine(what: "on" | "off" | "cycle", line: string): Promise<void> {
    this.note(`power ${what} (command: ${line})`);
    const timeoutMs = this.opts.timeoutMs ?? 60_000;
    const owner = `power ${what} of ${this.board}`;
    const res = await run("sh", ["-c", line], { allowFailure: true, timeoutMs, owner });
    if (res.code !== 0) {
      const first = (res.stderr.trim() || res.stdout.trim()).split("\n")[0] ?? "";
      throw new InfraError(
        `power ${what} of ${this.board} failed: ${shown(line)} exited with status ${res.code}` +
          (first ? `: ${escapeControls(first.slice(0, 200), false)}` : ""),
        `run the power.${what} line of the board file by hand on this host and fix it`,
      );
    }
  }

  /** Run the `on` line. */
  protected switchOn(): Promise<void> {
    return this.#runLine("on", this.spec.on);
  }

  /** Run the `off` line. */
  protected switchOff(): Promise<void> {
    return this.#runLine("off", this.spec.off);
  }

  /** The board file's `cycle` line when it has one, else off, `min_off_ms`, on. */
  override async cycle(): Promise<void> {
    if (this.spec.cycle === undefined) return await super.cycle();
    await this.waitMinOff();
    await this.#runLine("cycle", this.spec.cycle);
  }
}

/** `power.type: qmp` with a socket: a QEMU guest a lab runs. */
export class QmpSocketPower extends BasePower {
  /** Always `qmp`. */
  readonly kind = "qmp" as const;

  /**
   * The QMP adapter of `board`.
   *
   * @param board board id, for messages
   * @param socket the guest's QMP socket path
   * @param minOffMs minimum off time in milliseconds
   * @param opts notes and the bound of one QMP exchange (default 15 s)
   */
  constructor(board: string, readonly socket: string, minOffMs: number, opts: PowerOptions = {}) {
    super(board, minOffMs, opts);
  }

  async #exec(what: string, commands: string[]): Promise<void> {
    this.note(`power ${what} (QMP ${commands.join(" + ")} on ${this.socket})`);
    const timeoutMs = this.opts.timeoutMs ?? 15_000;
    let qmp: QmpClient | undefined;
    try {
      qmp = await QmpClient.connect(this.socket, timeoutMs);
      for (const c of commands) await qmp.execute(c, undefined, timeoutMs);
    } catch (err) {
      if (err instanceof InfraError) {
        throw new InfraError(
          `power ${what} of ${this.board} through QMP ${this.socket}: ${err.message}`,
          "check that the QEMU guest runs and its QMP socket is this one (only one client at " +
            "a time: a socket another program holds never answers)",
          { cause: err },
        );
      }
      throw err;
    } finally {
      await qmp?.close().catch(() => {});
    }
  }

  /** QMP `cont`. */
  protected switchOn(): Promise<void> {
    return this.#exec("on", ["cont"]);
  }

  /** QMP `stop` + `system_reset`. */
  protected switchOff(): Promise<void> {
    return this.#exec("off", ["stop", "system_reset"]);
  }
}

/** Read one line (up to Enter) from `input`. */
async function readLine(input: ReadableStream<Uint8Array>): Promise<void> {
  const reader = input.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        throw new InfraError(
          "manual power: standard input ended before Enter",
          "run rkhil on a terminal to switch the board by hand, or give it a power command",
        );
      }
      if (value.includes(10) || value.includes(13)) return;
    }
  } finally {
    reader.releaseLock();
  }
}

/** `power.type: manual`: a person switches the board and presses Enter. */
export class ManualPower extends BasePower {
  /** Always `manual`. */
  readonly kind = "manual" as const;

  async #ask(text: string): Promise<void> {
    this.note(`power: asked on the terminal: ${text}`);
    (this.opts.prompt ?? ((t) => Deno.stderr.writeSync(new TextEncoder().encode(t))))(
      `rkhil: ${text}, then press Enter: `,
    );
    await readLine(this.opts.input ?? Deno.stdin.readable);
  }

  /** Ask for ON and wait for Enter. */
  protected switchOn(): Promise<void> {
    return this.#ask(`switch ${this.board} ON`);
  }

  /** Ask for OFF and wait for Enter. */
  protected switchOff(): Promise<void> {
    return this.#ask(`switch ${this.board} OFF`);
  }
}

/** `power.type: none` (or no power block): always on. */
export class NoPower extends BasePower {
  /** Always `none`. */
  readonly kind = "none" as const;

  /** Nothing to do: always on. */
  protected switchOn(): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing it can do. */
  protected switchOff(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Refused: a board without a power switch cannot be power-cycled.
   *
   * @throws {InfraError} always.
   */
  override cycle(): Promise<void> {
    return Promise.reject(
      new InfraError(
        `${this.board} has no power switch (power.type none): it cannot be power-cycled`,
        "give the board file a power command (relay, PDU) to recover a hung board",
      ),
    );
  }
}

/** Why `env`/`stdinIsTerminal` make a manual adapter unusable, or undefined. */
export function manualRefusal(
  env: { get(name: string): string | undefined } = Deno.env,
  stdinIsTerminal: boolean = Deno.stdin.isTerminal(),
): string | undefined {
  if (env.get("CI") === "true") return "CI=true is set";
  if (!stdinIsTerminal) return "standard input is not a terminal";
  return undefined;
}

/**
 * Check, before anything runs, that the board's power adapter can work here: a `manual`
 * adapter needs a person at a terminal (refused under `CI=true` or without a terminal on
 * standard input); every program a `command` line runs must parse and be known to rkhil's
 * host-tool declaration (or be called by a path outside the system's directories).
 *
 * @throws {UserInputError} one line saying what is wrong and what to do.
 */
export async function checkPowerUsable(
  loaded: LoadedBoard,
  env: { get(name: string): string | undefined } = Deno.env,
  stdinIsTerminal: boolean = Deno.stdin.isTerminal(),
): Promise<void> {
  const power = loaded.board.power;
  if (power?.type === "manual") {
    const why = manualRefusal(env, stdinIsTerminal);
    if (why) {
      throw new UserInputError(
        `board ${loaded.id} has power.type manual, which asks a person at a terminal, but ${why}`,
        `give ${loaded.path} a power command (relay, PDU) for unattended runs, or run rkhil ` +
          "on a terminal without CI=true",
      );
    }
  }
  if (power?.type === "command") {
    for (const key of ["on", "off", "cycle"] as const) {
      const line = power[key];
      if (line === undefined) continue;
      const { programs, error } = await shellPrograms(line);
      if (error) {
        throw new UserInputError(
          `${loaded.path}: power.${key} is not a valid shell command line: ${shown(error)}`,
          `fix power.${key}; it runs with sh -c on this host`,
        );
      }
      for (const p of programs) {
        if (isHostProgram(p.name) && !isDeclared(p.name)) {
          throw new UserInputError(
            `${loaded.path}: power.${key} runs ${shown(p.name)}, a program rkhil does not know`,
            "declare it with its Debian package in runner/debian/host_tools.ts (rkhil then " +
              "installs it), or call your own script by a path outside /usr, e.g. /opt/lab/relay",
          );
        }
      }
    }
  }
}

/**
 * The power adapter of a board file (`power` block; no block is `none`).
 *
 * @throws {UserInputError} for `qmp` without a socket (only the embedded QEMU target has one).
 */
export function createPower(loaded: LoadedBoard, opts: PowerOptions = {}): PowerProtocol {
  const spec: PowerSpec | undefined = loaded.board.power;
  const minOff = spec?.min_off_ms ?? 0;
  switch (spec?.type) {
    case "command":
      return new CommandPower(loaded.id, {
        on: spec.on!,
        off: spec.off!,
        cycle: spec.cycle,
        min_off_ms: spec.min_off_ms,
      }, opts);
    case "qmp":
      if (spec.socket === undefined) {
        throw new UserInputError(
          `board ${loaded.id}: power.type qmp without a socket is the embedded QEMU target's`,
          `add power.socket to ${loaded.path}, or run the embedded target (rkhil run)`,
        );
      }
      return new QmpSocketPower(loaded.id, spec.socket, minOff, opts);
    case "manual":
      return new ManualPower(loaded.id, minOff, opts);
    case "none":
    case undefined:
      return new NoPower(loaded.id, minOff, opts);
  }
}
