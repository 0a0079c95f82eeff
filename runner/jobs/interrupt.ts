/**
 * SIGINT and SIGTERM for the jobs (`rkhil run`, `validate`, `facts`): the first signal ends the
 * step that runs as a MISS "interrupted", the job powers its targets off and writes what it
 * has (results, report), and the command exits with {@linkcode INTERRUPT_EXIT} (130, for both
 * signals, as the shell reports a Ctrl-C). A second signal while that happens exits at once
 * (status 130) after killing every QEMU of the process.
 *
 * @module
 */
import { InfraError } from "../errors.ts";

/** The exit status of an interrupted job (SIGINT and SIGTERM alike). */
export const INTERRUPT_EXIT = 130;

/** The signals a job treats as an interrupt. */
export type InterruptSignal = "SIGINT" | "SIGTERM";

/** The work of a step was cut short by SIGINT or SIGTERM: the step did not run (MISS). */
export class InterruptedError extends InfraError {
  /** The signal that came. */
  readonly signal: InterruptSignal;

  /**
   * An interrupt by `signal`; the hint tells the user to run the job again.
   *
   * @param signal the signal that came
   */
  constructor(signal: InterruptSignal) {
    super(
      `interrupted (${signal})`,
      "run the job again; finished results are in the run directory",
    );
    this.signal = signal;
  }
}

/**
 * An interrupt that can happen: `race` ends a step's work with an {@linkcode InterruptedError}
 * as soon as a signal came (or at once if one already came).
 */
export class Interrupt {
  #signal?: InterruptSignal;
  #reject!: (err: InterruptedError) => void;
  readonly #fired: Promise<never>;

  constructor() {
    this.#fired = new Promise<never>((_, reject) => this.#reject = reject);
    this.#fired.catch(() => {});
  }

  /** The signal that came, if any. */
  get signal(): InterruptSignal | undefined {
    return this.#signal;
  }

  /** Mark the job interrupted by `signal` (the first call counts). */
  trigger(signal: InterruptSignal): void {
    if (this.#signal) return;
    this.#signal = signal;
    this.#reject(new InterruptedError(signal));
  }

  /** Throw an {@linkcode InterruptedError} if a signal came. */
  check(): void {
    if (this.#signal) throw new InterruptedError(this.#signal);
  }

  /**
   * `work`, or an {@linkcode InterruptedError} as soon as a signal comes. The work itself is not
   * cancelled (its later failure is ignored): power the targets off to end it.
   */
  race<T>(work: Promise<T>): Promise<T> {
    work.catch(() => {});
    return Promise.race([work, this.#fired]);
  }

  /**
   * Listen for SIGINT and SIGTERM until `dispose()`. The first signal triggers the interrupt;
   * a second one kills every QEMU of the process and exits with {@linkcode INTERRUPT_EXIT}.
   */
  static listen(): Interrupt & { dispose(): void } {
    const it = new Interrupt();
    const on = (sig: InterruptSignal) => () => {
      if (!it.signal) {
        console.error(`rkhil: ${sig}: stopping (the step that runs is recorded MISS)`);
        it.trigger(sig);
        return;
      }
      console.error(`rkhil: ${sig} again: stopping now`);
      // Loaded here: the CLI imports this module for commands that start no QEMU too.
      import("../qemu/target.ts").then((m) => m.QemuTarget.powerOffAll())
        .finally(() => Deno.exit(INTERRUPT_EXIT));
    };
    const handlers = (["SIGINT", "SIGTERM"] as const).map((s) => [s, on(s)] as const);
    for (const [s, h] of handlers) Deno.addSignalListener(s, h);
    return Object.assign(it, {
      dispose() {
        for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
      },
    });
  }
}
