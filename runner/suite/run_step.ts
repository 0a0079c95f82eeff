/**
 * `runStep`: the one way a result is recorded. Every step of every suite (and the runner's own
 * `boot`, and a suite's SKIP) goes through it into the run's one store (`results.jsonl`,
 * flushed before it returns), with suite, target, kernel, running release, start time and
 * duration. It owns the classification (DESIGN.md boundary 3):
 *
 * - the step's own outcome, or the verdict of the error it threw (`RkhilError.verdict`: MISS
 *   for an `InfraError`, FAIL for a `KernelFaultError`; ERROR for anything else);
 * - a kernel fault (panic, Oops, BUG, SError) that the target's console watchers saw while the
 *   step ran makes it FAIL `kernel <kind>: <line>`, whatever it returned;
 * - a target lost while it ran (`target.lost()`: QEMU gone, console gone, SSH lost) makes it
 *   MISS `target lost: <why>`, whatever it saw;
 * - after either, every later step on that target and kernel is MISS
 *   `not run: <what happened in which step>` without running;
 * - SIGINT/SIGTERM (the run's {@linkcode Interrupt}) ends the step at once as MISS
 *   `interrupted (SIGINT)` and rethrows the {@linkcode InterruptedError} so the run stops.
 *
 * While the step runs, its work is raced against `target.whileUp()`, so it waits neither for a
 * dead kernel's timeouts nor for a killed guest's.
 *
 * After the store, a result goes to the run's results history ({@linkcode RunStepContext.history},
 * runner/history/writer.ts), when the run has one. The store (`results.jsonl`) stays the
 * crash-safe record: a history write that throws never loses or fails the result; the first
 * failure of a history is logged (one line), later ones are not, and writing goes on.
 *
 * @module
 */
import { describeError, RkhilError, type Verdict } from "../errors.ts";
import { type Interrupt, InterruptedError } from "../jobs/interrupt.ts";
import type { Target } from "../protocol/target.ts";
import type { RunStore, TestResult } from "../results/store.ts";
import { KernelFaultError } from "../target/faults.ts";
import type { StepOutcome } from "./types.ts";

/** What happened to a target and kernel so far: set once a step lost it or crashed it. */
export interface StopState {
  /** Why later steps cannot run (`target lost in facts (QEMU exited)`), once set. */
  stopped?: string;
}

/** Where and under which names {@linkcode runStep} records. */
export interface RunStepContext {
  /** The run's one store. */
  readonly store: RunStore;
  /** The suite the step belongs to (`boot`, `driver`, ...). */
  readonly suite: string;
  /** Target name in results (`qemu-virt-8g`, a board id). */
  readonly targetName: string;
  /** Kernel under test in results: the spec (embedded target) or the running release (board). */
  kernel: string;
  /** The running release, once known. */
  release?: string;
  /**
   * The target the step runs on, once it exists: watched for faults and loss. A step that
   * brings it up (`boot`, a variant's first step) sets it before it returns.
   */
  target?: Target;
  /** Shared by every step on this target and kernel (variants included). */
  readonly state: StopState;
  /** SIGINT/SIGTERM of the run. */
  readonly interrupt?: Interrupt;
  /** Progress lines: one per recorded result (`  PASS  facts: ...`). */
  readonly log: (line: string) => void;
  /** The run's results history, written after the store (e.g. `HistoryWriter`); optional. */
  readonly history?: HistorySink;
  /** Called when a step starts (the farm's live progress): its suite and test id. */
  readonly onStart?: (suite: string, test: string) => void;
}

/** Where results go after the run's store: the results history. `record` may throw. */
export interface HistorySink {
  /** Record one result (called after `results.jsonl` has it). */
  record(r: TestResult): void;
}

/** Histories whose failure was already logged (one line per history, not per result). */
const failedHistories = new WeakSet<HistorySink>();

/** The first line of an error as a result's reason (without `error: `), hint kept after it. */
export function errorReason(err: unknown): string {
  return describeError(err).replace(/^error: /, "");
}

async function record(ctx: RunStepContext, r: TestResult): Promise<TestResult> {
  await ctx.store.record(r);
  ctx.log(`  ${r.verdict.padEnd(5)} ${r.test}${r.reason ? `: ${r.reason.split("\n")[0]}` : ""}`);
  if (ctx.history) {
    try {
      ctx.history.record(r);
    } catch (err) {
      // results.jsonl has the result: the history is a copy for comparing runs.
      if (!failedHistories.has(ctx.history)) {
        failedHistories.add(ctx.history);
        ctx.log(
          `  history: could not record ${r.test} (${
            errorReason(err).split("\n")[0].slice(0, 200)
          }); results.jsonl has every result (rkhil history import RUN_DIR adds them later); ` +
            "further history failures of this run are not logged",
        );
      }
    }
  }
  return r;
}

/**
 * Run one step and record its result (see the module documentation for the classes).
 *
 * @param ctx where to record and which target to watch
 * @param name the test id (`facts`, `probe/v1`)
 * @param fn the step's work
 * @returns the recorded result
 * @throws {InterruptedError} after recording the step MISS `interrupted (...)`.
 * @throws whatever the store throws when it cannot write (a run that cannot record must stop).
 */
export async function runStep(
  ctx: RunStepContext,
  name: string,
  fn: () => Promise<StepOutcome>,
): Promise<TestResult> {
  const base = { test: name, suite: ctx.suite, target: ctx.targetName };
  if (ctx.state.stopped && !ctx.interrupt?.signal) {
    return await record(ctx, {
      ...base,
      kernel: ctx.kernel,
      ...(ctx.release ? { release: ctx.release } : {}),
      verdict: "MISS",
      reason: `not run: ${ctx.state.stopped}`,
      startedAt: new Date().toISOString(),
      durationMs: 0,
    });
  }
  ctx.onStart?.(ctx.suite, name);
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const watched = ctx.target;
  const faultsBefore = watched?.faults.length ?? 0;
  let r: StepOutcome;
  let stop: InterruptedError | undefined;
  let faultError = false;
  try {
    // An interrupt that came before the step started ends it before it does anything.
    ctx.interrupt?.check();
    const work = watched ? watched.whileUp(fn()) : fn();
    r = await (ctx.interrupt ? ctx.interrupt.race(work) : work);
  } catch (err) {
    if (err instanceof InterruptedError) stop = err;
    faultError = err instanceof KernelFaultError;
    const verdict: Verdict = err instanceof RkhilError ? err.verdict : "ERROR";
    // An interrupt's reason is just "interrupted (SIGINT)": the step is not at fault.
    r = { verdict, reason: stop ? stop.message : errorReason(err) };
  }
  // The step may have brought the target up (boot, a variant): it is watched from now on.
  const target = ctx.target;
  if (!stop && target) {
    // A kernel crash while the step ran is the kernel's failure, whatever the step saw.
    const fault = target.faults[target === watched ? faultsBefore : 0];
    const lost = fault ? undefined : target.lost();
    if (fault) {
      // A step ended by the fault itself (a panic while booting) already says what and where.
      if (!faultError) {
        r = { ...r, verdict: "FAIL", reason: `kernel ${fault.kind}: ${fault.reason}` };
      }
      ctx.state.stopped = `the kernel crashed in ${name} (${fault.kind}: ${fault.reason})`;
    } else if (lost) {
      const saw = r.verdict === "PASS" || !r.reason ? "" : ` (the step saw: ${r.reason})`;
      r = { ...r, verdict: "MISS", reason: `target lost: ${lost}${saw}` };
      ctx.state.stopped = `target lost in ${name} (${lost})`;
    }
  }
  const result = await record(ctx, {
    ...base,
    kernel: ctx.kernel,
    ...(ctx.release ? { release: ctx.release } : {}),
    ...r,
    startedAt,
    durationMs: Math.round(performance.now() - t0),
  });
  if (stop) throw stop;
  return result;
}
