/**
 * The suite runner: suites × targets (each target on its kernel), every step through the one
 * {@linkcode runStep} into the run's one store. Per target and kernel:
 *
 * 1. `boot` (suite `boot`, run whatever suites were chosen: every suite needs a booted target):
 *    the plan opens the target and the one strategy (`target.ready()`) brings it to ready;
 *    measurements boot to shell, boot to ssh, attempts. A boot that does not PASS ends this
 *    target and kernel there (nothing else is recorded for it; a panic is a FAIL with its line).
 * 1b. `deploy` (suite `boot`), for a plan that installs its kernel on a board (`deploy:`): a
 *    deployment that does not PASS ends this target and kernel there: every step of every suite
 *    is MISS `not run: the kernel was not deployed (...)`.
 * 2. Each chosen suite in order: a target without one of its capabilities gets ONE result, the
 *    suite's name as test, SKIP `needs capability X (this target has: ...)`, with the oracle's
 *    `details.prediction` when the suite has `predict`; otherwise its steps, in order. A step
 *    with a `variant` runs on a target the plan boots with that memory and command line (one
 *    per distinct variant of the suite, closed when the suite ends).
 * 3. The target is closed (powered off when rkhil powered it on).
 *
 * A kernel fault or a lost target in any step makes every later step of that target and kernel
 * MISS `not run: ...` (variants included); an interrupt records the running step MISS
 * `interrupted (...)` and ends the run (the caller powers off and writes the report).
 *
 * @module
 */
import { collectKernelFacts, type KernelFacts } from "../facts/collect.ts";
import { InfraError } from "../errors.ts";
import type { Interrupt } from "../jobs/interrupt.ts";
import type { Target } from "../protocol/target.ts";
import type { RunStore, TestResult } from "../results/store.ts";
import { type HistorySink, runStep, type RunStepContext, type StopState } from "./run_step.ts";
import { commandOf } from "./target_io.ts";
import type { StepContext, StepOutcome, Suite, Variant } from "./types.ts";

/** How to get one target on one kernel: what the runner opens and boots. */
export interface TargetPlan {
  /** Target name in results (`qemu-virt-8g`, a board id). */
  readonly name: string;
  /**
   * The kernel spec rkhil boots (`debian:trixie`) for the embedded target; `undefined` for a
   * board target, which runs its own kernel (results name it by its running release).
   */
  readonly kernel?: string;
  /** Extra details of the `boot` result (`memory`, `append`). */
  readonly bootDetails?: Record<string, unknown>;
  /**
   * Create the target (not yet powered on) with its files under `dir`; with `variant`, booted
   * with that memory and command line (only for plans whose targets have `boot-config`).
   *
   * @throws {RkhilError} classified as the `boot` step's (or the variant step's) verdict, e.g.
   *   a kernel the mirror does not have (ERROR, listing the suites it has).
   */
  open(dir: string, variant?: Variant): Promise<Target>;
  /**
   * A board whose kernel rkhil installs (board file `deploy:`): run after a `boot` that PASSed,
   * as the step `deploy` of suite `boot`; it leaves the target on the kernel under test (PASS)
   * or on the board's known-good kernel (FAIL: then every step of every suite is MISS
   * `not run: ...`).
   * A MISS or ERROR ends the target and kernel there too.
   */
  deploy?(target: Target): Promise<StepOutcome>;
}

/** Options of {@linkcode runSuites}. */
export interface SuiteRunOptions {
  /** The run's one store. */
  store: RunStore;
  /** The run directory (targets' files go to `<dir>/<target>/<kernel>/`). */
  dir: string;
  /** Suites to run, in order. */
  suites: readonly Suite[];
  /** Targets and kernels, in order. */
  plans: readonly TargetPlan[];
  /** Boards for the `iommu` suite's `oracle/predict <board>` steps. */
  predictBoards: readonly string[];
  /** SIGINT/SIGTERM of the run. */
  interrupt?: Interrupt;
  /** Progress lines. */
  log: (line: string) => void;
  /** Called when a step starts (the farm's live progress). */
  onStart?: (suite: string, test: string) => void;
  /**
   * Steps already recorded by the run this one resumes (`rkhil run --resume`): the result
   * recorded, undefined when none. They are neither run nor recorded again. A `boot` already
   * recorded boots the target again without a new record (a boot that fails this time is
   * recorded); so does a `deploy` recorded PASS, while a `deploy` recorded otherwise is not
   * run again and the target and kernel stop there (their steps are MISS `not run`).
   */
  done?: (suite: string, test: string) => TestResult | undefined;
  /** The results history every result is written to after the store (never fails the run). */
  history?: HistorySink;
  /**
   * Earlier runs' samples of a measurement on this target, kernel and release (the history's
   * {@linkcode import("../history/baseline.ts").baselineSamples}); steps see it as
   * `StepContext.baseline`.
   */
  baseline?: (
    q: { target: string; kernel: string; release: string; test: string; name: string },
  ) => number[];
}

/** A name safe as one path component (`debian:trixie` → `debian_trixie`). */
export function dirName(s: string): string {
  return s.replace(/[^a-z0-9.+-]/gi, "_");
}

/** `needs capability X (this target has: ...)`, or undefined when `target` has them all. */
export function missingCapability(
  suite: Pick<Suite, "requires">,
  target: Pick<Target, "capabilities">,
): string | undefined {
  const missing = suite.requires.filter((c) => !target.capabilities.has(c));
  if (!missing.length) return undefined;
  const has = [...target.capabilities].sort();
  return `needs capability ${missing.join(", ")} (this target has: ${
    has.length ? has.join(", ") : "none"
  })`;
}

/** The targets every run opened and has not closed yet (closed on an interrupt). */
const open = new Set<Target>();

/** Close every target the runner opened and has not closed (for an interrupted run). */
export async function closeOpenTargets(): Promise<void> {
  await Promise.all([...open].map((t) => t.close()));
  open.clear();
}

/**
 * Run `opts.suites` on every plan's target, recording every step (see the module
 * documentation). Returns when all ran.
 *
 * @throws {InterruptedError} after the interrupted step was recorded.
 */
export async function runSuites(opts: SuiteRunOptions): Promise<void> {
  const onceMap = new Map<string, Promise<unknown>>();
  const once = <T>(key: string, make: () => Promise<T>): Promise<T> => {
    let p = onceMap.get(key) as Promise<T> | undefined;
    if (!p) {
      p = make();
      p.catch(() => {});
      onceMap.set(key, p);
    }
    return p;
  };
  for (const plan of opts.plans) await runOnTarget(plan, opts, once);
}

/** A target brought up for steps, with the context its steps see. */
interface Up {
  target: Target;
  step: StepContext;
}

function stepContext(
  target: Target,
  kernel: string,
  dir: string,
  variant: Variant,
  opts: SuiteRunOptions,
  once: StepContext["once"],
): StepContext {
  const release = target.release;
  if (!release) {
    throw new InfraError(
      `${target.name} is ready but its release is unknown`,
      "see the console log",
    );
  }
  let facts: Promise<KernelFacts> | undefined;
  return {
    target,
    kernel,
    release,
    dir,
    variant,
    predictBoards: opts.predictBoards,
    facts() {
      facts ??= collectKernelFacts(commandOf(target), { target: `${target.name} ${release}` });
      return facts;
    },
    once,
    log: opts.log,
    baseline(test, name) {
      try {
        return opts.baseline?.({ target: target.name, kernel, release, test, name }) ?? [];
      } catch {
        return []; // an unreadable history has no baseline; the run goes on
      }
    },
  };
}

async function runOnTarget(
  plan: TargetPlan,
  opts: SuiteRunOptions,
  once: StepContext["once"],
): Promise<void> {
  const kernelDir = `${opts.dir}/${dirName(plan.name)}/${dirName(plan.kernel ?? "board-kernel")}`;
  opts.log(`\n${plan.name}${plan.kernel ? ` ${plan.kernel}` : ""}`);
  const state: StopState = {};
  const base: RunStepContext = {
    store: opts.store,
    suite: "boot",
    targetName: plan.name,
    kernel: plan.kernel ?? "(not booted)",
    state,
    interrupt: opts.interrupt,
    log: opts.log,
    history: opts.history,
    onStart: opts.onStart,
  };
  let opening: Promise<Target> | undefined;
  let main: Up | undefined;
  try {
    const bootWork = async (): Promise<StepOutcome> => {
      opening = plan.open(kernelDir);
      const target = await opening;
      opts.interrupt?.check();
      open.add(target);
      base.target = target;
      const times = await target.ready();
      base.release = target.release;
      if (!plan.kernel && target.release) base.kernel = target.release;
      return {
        verdict: "PASS",
        measurements: [
          { name: "boot to shell", value: times.shell ?? NaN, unit: "s" },
          { name: "boot to ssh", value: times.ssh ?? NaN, unit: "s" },
          { name: "boot attempts", value: times.attempts, unit: "" },
        ],
        details: { release: target.release, ...plan.bootDetails },
      };
    };
    const boot = opts.done?.("boot", "boot")
      ? await bootWork().then(
        (r) => r,
        (err) => runStep(base, "boot", () => Promise.reject(err)),
      )
      : await runStep(base, "boot", bootWork);
    if (boot.verdict !== "PASS" || !base.target) return;
    if (plan.deploy && !await deployStep(plan, base, opts) && !base.target.release) {
      return await suitesNotRun(base, opts);
    }
    main = {
      target: base.target,
      step: stepContext(base.target, base.kernel, kernelDir, {}, opts, once),
    };
    for (const suite of opts.suites) await runSuite(suite, plan, main, base, kernelDir, opts, once);
  } finally {
    if (base.target) {
      await base.target.close();
      open.delete(base.target);
    } else {
      // A target whose opening the interrupt overtook is closed when (if) it comes.
      opening?.then((t) => t.close(), () => {});
    }
  }
}

/**
 * The plan's `deploy` as step `deploy` (a resumed run that recorded it PASS deploys again
 * without a new record, as `boot`; one that recorded it otherwise does not deploy again).
 * Returns whether it PASSed; when not, the target and kernel are stopped (`not run: the kernel
 * was not deployed (...)`) so that every step of every suite is recorded MISS without running,
 * as the runner records steps not run. The `deploy` record and the steps after it carry the
 * release deployed (its `details.release`), also on a FAIL, when the target runs the
 * known-good kernel again.
 */
async function deployStep(
  plan: TargetPlan,
  base: RunStepContext,
  opts: SuiteRunOptions,
): Promise<boolean> {
  const target = base.target!;
  const notDeployed = (r: Pick<TestResult, "verdict" | "reason">) => {
    base.state.stopped ??= `the kernel was not deployed (deploy ${r.verdict}: ${
      (r.reason ?? "").split("\n")[0].slice(0, 200)
    })`;
    return false;
  };
  const recorded = opts.done?.("boot", "deploy");
  if (recorded && recorded.verdict !== "PASS") {
    if (recorded.release) base.release = recorded.release;
    return notDeployed(recorded);
  }
  const work = async () => {
    const r = await plan.deploy!(target);
    base.release = deployedRelease(r, target.release);
    return r;
  };
  let r: Pick<TestResult, "verdict" | "reason">;
  if (recorded) {
    r = await work().then(
      (o) => o.verdict === "PASS" ? o : runStep(base, "deploy", () => Promise.resolve(o)),
      (err) => runStep(base, "deploy", () => Promise.reject(err)),
    );
  } else r = await runStep(base, "deploy", work);
  return r.verdict === "PASS" || notDeployed(r);
}

/**
 * The release a deployment's results are recorded under: on PASS the one the target runs
 * (`running`), otherwise the one deployed (`details.release`; the target runs the known-good
 * kernel again), undefined when the outcome does not say.
 */
export function deployedRelease(
  outcome: Pick<StepOutcome, "verdict" | "details">,
  running: string | undefined,
): string | undefined {
  if (outcome.verdict === "PASS") return running;
  const r = outcome.details?.release;
  return typeof r === "string" ? r : undefined;
}

/** Each suite of a target whose release is unknown (a failed deployment): one MISS `<suite>/*`. */
async function suitesNotRun(base: RunStepContext, opts: SuiteRunOptions): Promise<void> {
  for (const suite of opts.suites) {
    if (opts.done?.(suite.name, `${suite.name}/*`)) continue;
    await runStep({ ...base, suite: suite.name }, `${suite.name}/*`, () =>
      Promise.resolve({
        verdict: "MISS",
        reason: `not run: ${base.state.stopped ?? "the kernel was not deployed"}`,
      }));
  }
}

async function runSuite(
  suite: Suite,
  plan: TargetPlan,
  main: Up,
  base: RunStepContext,
  kernelDir: string,
  opts: SuiteRunOptions,
  once: StepContext["once"],
): Promise<TestResult[]> {
  const ctx: RunStepContext = { ...base, suite: suite.name, state: base.state };
  const results: TestResult[] = [];
  const missing = missingCapability(suite, main.target);
  if (missing && opts.done?.(suite.name, suite.name)) return results;
  if (missing) {
    results.push(
      await runStep(ctx, suite.name, async () => {
        let prediction: Record<string, unknown> | undefined;
        let predictionError: string | undefined;
        try {
          prediction = await suite.predict?.({
            target: main.target,
            release: main.step.release,
            kernel: main.step.kernel,
          });
        } catch (err) {
          predictionError = (err as Error).message;
        }
        return {
          verdict: "SKIP",
          reason: missing,
          details: {
            requires: [...suite.requires],
            ...(prediction ? { prediction } : {}),
            ...(predictionError ? { predictionError } : {}),
          },
        };
      }),
    );
    return results;
  }
  /** Variant targets of this suite, by their boot. */
  const variants = new Map<string, { ctx: RunStepContext; up?: Promise<Up> }>();
  try {
    for (const step of suite.steps(main.step)) {
      if (opts.done?.(suite.name, step.name)) continue;
      if (!step.variant) {
        results.push(await runStep(ctx, step.name, () => step.run(main.step)));
        continue;
      }
      const variant = step.variant;
      const key = JSON.stringify([
        variant.memory ?? "",
        variant.append ?? "",
        variant.iommus?.join(",") ?? "",
      ]);
      let v = variants.get(key);
      if (!v) {
        v = { ctx: { ...ctx, target: undefined, state: base.state } };
        variants.set(key, v);
      }
      const slot = v;
      results.push(
        await runStep(slot.ctx, step.name, async () => {
          slot.up ??= (async () => {
            const dir = `${kernelDir}/${
              dirName(
                [variant.memory, variant.append, variant.iommus?.join("+")].filter(Boolean)
                  .join("-"),
              )
            }`;
            const target = await plan.open(dir, variant);
            if (opts.interrupt?.signal) {
              // The interrupt overtook the opening: this target is never powered on.
              await target.close();
              opts.interrupt.check();
            }
            open.add(target);
            slot.ctx.target = target;
            await target.ready();
            if (target.release !== main.step.release) {
              throw new InfraError(
                `the ${
                  JSON.stringify(variant)
                } boot runs ${target.release}, not ${main.step.release}`,
                "see the console log of that boot",
              );
            }
            return {
              target,
              step: stepContext(target, main.step.kernel, dir, variant, opts, once),
            };
          })();
          const up = await slot.up;
          slot.ctx.target = up.target;
          return await up.target.whileUp(step.run(up.step));
        }),
      );
    }
  } finally {
    for (const v of variants.values()) {
      if (v.ctx.target) {
        await v.ctx.target.close();
        open.delete(v.ctx.target);
      }
    }
  }
  return results;
}
