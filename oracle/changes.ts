/**
 * What each kernel release changed for a board: predict the board on consecutive releases and,
 * wherever an IOMMU instance's outcome changes, name the driver facts that changed between the
 * two releases (with their provenance, usually the commit). This is the oracle's side of the
 * per-release regression report: "6.6 brought BUS_ERROR on fde4b000 because the v2 table gfp
 * zone went from GFP_DMA32 to none (2a7e6400f72b)".
 *
 * Pure: no I/O.
 *
 * @module
 */
import { predict } from "./predict.ts";
import type { Prediction } from "./prediction.ts";
import type { DriverFacts } from "./releases.ts";
import { buildScenario, type ScenarioInput } from "./scenario.ts";
import type { Fact, Outcome } from "./types.ts";

/** A driver fact that differs between two releases. */
export interface FactChange {
  /** Where in the driver facts, e.g. `rockchip,rk3568-iommu gfpZone` or `dmaDev`. */
  path: string;
  /** The fact's value in the older release. */
  before: unknown;
  /** The fact's value in the newer release. */
  after: unknown;
  /** The newer release's fact, with its provenance. */
  fact: Fact<unknown>;
}

/** An instance whose outcome changed from one release to the next. */
export interface OutcomeChange {
  /** Unit address of the IOMMU node (`fde4b000`). */
  unit: string;
  /** Devicetree label of the node. */
  label: string;
  /** Outcome in the previous release. */
  from: Outcome;
  /** Outcome in this release. */
  to: Outcome;
  /**
   * `regression` (OK → a failure), `fix` (a failure → OK), or `change` (anything involving
   * UNCERTAIN or DISABLED, or one failure for another).
   */
  kind: "regression" | "fix" | "change";
  /** What the new outcome depends on, when it is conditional. */
  condition?: string;
}

/** One step of the timeline: a release and what changed from the previous one. */
export interface ReleaseStep {
  /** Kernel release of the knowledge base (`6.12`). */
  release: string;
  /** The release before it, or null for the first. */
  previous: string | null;
  /** Unit address → predicted outcome in this release. */
  outcomes: Record<string, Outcome>;
  /** Instances whose outcome differs from the previous release. */
  changes: OutcomeChange[];
  /** Driver facts that differ from the previous release (empty for the first release). */
  facts: FactChange[];
}

function factEntries(f: DriverFacts): [string, Fact<unknown>][] {
  const out: [string, Fact<unknown>][] = [];
  for (const [compat, ops] of Object.entries(f.compatibles)) {
    out.push([`${compat} dma_bit_mask`, ops.dmaMaskBits], [`${compat} gfp zone`, ops.gfpZone]);
  }
  out.push(
    ["v2 R/W bits swapped", f.v2PermSwapped],
    ["DTE_ADDR layout", f.dteAddrLayout],
    ["per-device ops", f.perDeviceOps],
    ["table dma_dev", f.dmaDev],
    ["table allocation call", f.allocCall],
    ["AUTO_GATING bit 31", f.autoGatingBit31],
  );
  return out;
}

/** Driver facts whose value differs between `a` and `b`. */
export function driverFactChanges(a: DriverFacts, b: DriverFacts): FactChange[] {
  const before = new Map(factEntries(a));
  const changes: FactChange[] = [];
  for (const [path, fb] of factEntries(b)) {
    const fa = before.get(path);
    const va = fa === undefined ? undefined : JSON.stringify(fa.value);
    if (va !== JSON.stringify(fb.value)) {
      changes.push({ path, before: fa?.value, after: fb.value, fact: fb });
    }
  }
  return changes;
}

const NOT_A_FAILURE: Outcome[] = ["OK", "UNCERTAIN", "DISABLED"];

function kindOf(from: Outcome, to: Outcome): OutcomeChange["kind"] {
  if (from === "OK" && !NOT_A_FAILURE.includes(to)) return "regression";
  if (to === "OK" && !NOT_A_FAILURE.includes(from)) return "fix";
  return "change";
}

/**
 * Predict `input` on each release in order and report what changed from one to the next.
 * `releases` are knowledge-base releases (e.g. `RELEASES`), oldest first.
 */
export function releaseTimeline(
  input: Omit<ScenarioInput, "kernel">,
  releases: readonly string[],
): ReleaseStep[] {
  const steps: ReleaseStep[] = [];
  let prev: { release: string; p: Prediction; driver: DriverFacts } | null = null;
  for (const release of releases) {
    const scenario = buildScenario({ ...input, kernel: release });
    const p = predict(scenario);
    const outcomes = Object.fromEntries(p.instances.map((i) => [i.unit, i.outcome]));
    const changes: OutcomeChange[] = [];
    if (prev) {
      for (const i of p.instances) {
        const before = prev.p.instances.find((x) => x.unit === i.unit);
        if (!before || before.outcome === i.outcome) continue;
        const c: OutcomeChange = {
          unit: i.unit,
          label: i.label,
          from: before.outcome,
          to: i.outcome,
          kind: kindOf(before.outcome, i.outcome),
        };
        if (i.condition) c.condition = i.condition;
        changes.push(c);
      }
    }
    steps.push({
      release,
      previous: prev?.release ?? null,
      outcomes,
      changes,
      facts: prev ? driverFactChanges(prev.driver, scenario.driver) : [],
    });
    prev = { release, p, driver: scenario.driver };
  }
  return steps;
}
