/**
 * The shape of a suite (`tests/<name>.ts`): a name, a one-line description, the capabilities a
 * target must have, and steps written once for every target against the `Target` interface
 * (runner/protocol/target.ts) only — never a board name, never QEMU (DESIGN.md boundary 4).
 * The suite runner (`runner/suite/runner.ts`) runs every step through the one
 * {@linkcode import("./run_step.ts").runStep}, which records it into the run's one store.
 *
 * @module
 */
import type { Capability } from "../../boards/schema.ts";
import type { KernelFacts } from "../facts/collect.ts";
import type { Target } from "../protocol/target.ts";
import type { Measurement, TestResult } from "../results/store.ts";

/** What a step returns: its verdict and what it saw. The runner adds test, suite, target, timing. */
export type StepOutcome = Omit<
  TestResult,
  "test" | "suite" | "target" | "kernel" | "release" | "startedAt" | "durationMs"
>;

/**
 * A boot of its own for a step (capability `boot-config`: rkhil chooses RAM and command line).
 * The runner boots one target per distinct variant of a suite, on the same kernel, and closes
 * it when the suite ends.
 */
export interface Variant {
  /** Guest memory in QEMU syntax (`2G`); default: the base target's. */
  memory?: string;
  /** Kernel command line appended to the default one (`swiotlb=force`, `mem=3G`). */
  append?: string;
  /**
   * Emulated Rockchip IOMMUs in the boot device tree (issue 15), ids of `ROCK3B_IOMMUS`
   * (runner/qemu/iommu_dtb.ts: `npu`, `npu-rfc`, `vop`), in probe order; default: the base
   * target's. Only targets with `boot-config` boot them (the target then has `rk-iommu`).
   */
  iommus?: readonly string[];
}

/** What a step sees: the booted target and where it runs. */
export interface StepContext {
  /** The target, `ready` (booted, SSH answering where it has SSH, `release` read). */
  readonly target: Target;
  /**
   * The kernel under test as results name it: the spec for the embedded target
   * (`debian:trixie`), the running release for a board target.
   */
  readonly kernel: string;
  /** The running kernel's release (`uname -r`). */
  readonly release: string;
  /** Directory for this target and kernel's artifacts (console logs, probe outputs). */
  readonly dir: string;
  /** The variant this step's target was booted with (`{}` for the base target). */
  readonly variant: Variant;
  /** Boards whose outcome each release's driver is predicted for (`--predict-board`). */
  readonly predictBoards: readonly string[];
  /**
   * The kernel's facts (runner/facts/collect.ts), collected once per boot of this target (the
   * first step that asks pays for it; later ones share the result, or its failure).
   */
  facts(): Promise<KernelFacts>;
  /**
   * A value computed once per run for `key` (e.g. a probe module per kernel), shared by every
   * target and suite; a failure is shared too.
   */
  once<T>(key: string, make: () => Promise<T>): Promise<T>;
  /** A progress line (not a result). */
  log(line: string): void;
  /**
   * This target's own baseline: the samples of measurement `name` of test `test` that earlier
   * runs recorded in the results history on the same target, kernel and release (PASS/DONE
   * results only, newest first); empty without a history or when it has none.
   */
  baseline?(test: string, name: string): number[];
}

/** One step of a suite. */
export interface SuiteStep {
  /** Test id in results (`facts`, `oracle/driver`, `probe/v1`); unique within the run's target. */
  name: string;
  /** Run on a target booted with this variant (needs `boot-config`); default: the base target. */
  variant?: Variant;
  /**
   * Do the step. Throwing is allowed: an `RkhilError` gives its verdict (MISS for an
   * `InfraError`), anything else ERROR; a kernel fault or a lost target meanwhile overrides both
   * (FAIL, MISS), as {@linkcode import("./run_step.ts").runStep} documents.
   */
  run(ctx: StepContext): Promise<StepOutcome>;
}

/** What {@linkcode Suite.predict} is given: the target's board and its running kernel. */
export interface PredictContext {
  /** The target (booted: `release` is known). */
  readonly target: Target;
  /** The running kernel's release (`uname -r`). */
  readonly release: string;
  /** The kernel under test as results name it (spec or release). */
  readonly kernel: string;
}

/** A suite of the product's HIL tests (one module in `tests/`). */
export interface Suite {
  /** Name (`boot`, `iommu`, ...), as `--suite` takes it. */
  readonly name: string;
  /** One line: what the suite checks. */
  readonly description: string;
  /** Capabilities a target must have; a target without one gets the suite SKIPped. */
  readonly requires: readonly Capability[];
  /** The steps, in order (they may depend on the context: predicted boards, scenarios). */
  steps(ctx: StepContext): readonly SuiteStep[];
  /**
   * What the oracle predicts for this suite on the target's board and running kernel
   * (JSON). Recorded in the suite's SKIP result (`details.prediction`) when the target lacks a
   * capability, so the report still says what the oracle expects there. Pure or nearly so: it
   * must not use the target's protocols.
   */
  predict?(ctx: PredictContext): Record<string, unknown> | Promise<Record<string, unknown>>;
}

/** Re-exported for suites: measurements they attach to outcomes. */
export type { Measurement };
