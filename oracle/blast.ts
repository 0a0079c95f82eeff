/**
 * A patch's blast radius: for every board × release the patch could land on, predict each IOMMU
 * instance before and after the patch and name every fact that changed (outcome, ops, entry
 * format, DMA mask of the device that maps the tables, table GFP zone, the zone the tables come
 * from, whether they lie above 4 GiB, bouncing, bounce risk). A change that keeps the outcome but
 * narrows what a block may use (a 32-bit mask, tables forced below 4 GiB) is CONSTRAINED, so the
 * withdrawn v2 patch of the seed thread shows what it would have done to VOP2.
 *
 * The patch comes either as a parsed diff (patch_model.ts) or as named patch sets (patches.ts);
 * both go through the same comparison.
 *
 * Pure: no I/O.
 *
 * @module
 */
import { applyPatchSeries } from "./patch_apply.ts";
import type { PatchEffect } from "./patch_model.ts";
import { opsFor, predict } from "./predict.ts";
import type { InstancePrediction, Prediction } from "./prediction.ts";
import { getPatch, inMainline } from "./patches.ts";
import { parseRelease } from "./releases.ts";
import { type BoardFacts, buildScenario, OracleInputError, type Scenario } from "./scenario.ts";
import type { EntryFormat, GfpZone, Outcome } from "./types.ts";

/** The facts of one instance that a patch can change. */
export interface InstanceFacts {
  /** Predicted outcome of the instance (oracle/types.ts `Outcome`). */
  outcome: Outcome;
  /** The node's `compatible` strings, in devicetree order. */
  compatible: string[];
  /** The node's devicetree `status`. */
  status: "okay" | "disabled";
  /** Ops instance the compatible selects; `null` when none matches or the node is disabled. */
  ops: string | null;
  /** Page-table entry format of those ops (`v1`/`v2`); `null` without ops. */
  format: EntryFormat | null;
  /** Address bits of the mask of the device that maps this instance's tables. */
  dmaMaskBits: number | null;
  /** GFP zone modifier of the table allocations. */
  gfpZone: GfpZone | null;
  /** Zone the directory table comes from. */
  tableZone: "DMA" | "DMA32" | "NORMAL" | null;
  /** True when the directory table lies at or above 4 GiB; `null` when not predicted. */
  tablesAbove4G: boolean | null;
  /** True when the directory or a page table bounces through SWIOTLB; `null` when not predicted. */
  bounced: boolean | null;
  /** `bounced` on this board; `latent` when tables may come from above the mask. */
  bounceRisk: "bounced" | "latent" | "none" | null;
}

/** How an instance changed. */
export type ChangeClass =
  | "FIXED"
  | "BROKEN"
  | "CONSTRAINED"
  | "RELAXED"
  | "CHANGED"
  | "UNCHANGED";

/** One instance before and after. */
export interface InstanceDelta {
  /** Unit address of the IOMMU node (`fde4b000`). */
  unit: string;
  /** Devicetree label of the IOMMU node (`vop_mmu`). */
  label: string;
  /** The block the IOMMU serves (`VOP2`, `RKNN`). */
  master: string;
  /** How the instance changed, from the fact differences. */
  class: ChangeClass;
  /** Facts without the patch. */
  before: InstanceFacts;
  /** Facts with the patch. */
  after: InstanceFacts;
  /** Every fact that differs, by name. */
  changed: { fact: keyof InstanceFacts; before: unknown; after: unknown }[];
  /** What the patch narrows for this block (also listed for FIXED and BROKEN). */
  constraints: string[];
  /** What the patch widens for this block. */
  relaxations: string[];
}

/** One board × release. */
export interface BlastCell {
  /** Board id (the board file's `id`). */
  board: string;
  /** Kernel release of the knowledge base (`6.12`). */
  release: string;
  /** `applied`, `already` (the release has it), `no effect`, or `does not apply`. */
  status: "applied" | "already" | "no effect" | "does not apply";
  /** Why a patch did not apply or was skipped, per patch of the series. */
  why: string[];
  /** One delta per IOMMU instance of the board; empty unless `status` is `applied`. */
  instances: InstanceDelta[];
}

/** A board to assess, with the DTB name its board file gives (for `.dts` changes). */
export interface BlastBoard {
  /** The board's facts as the scenario builder takes them. */
  facts: BoardFacts;
  /** DTB file name the board file names (`rk3568-rock-3b.dtb`), matched against `.dts` paths. */
  dtb?: string;
}

/** How to get the after-scenario for one board and release. */
export type Applier = (
  board: BlastBoard,
  release: string,
  before: Scenario,
) =>
  | { status: "applied"; after: Scenario; why: string[] }
  | { status: "already" | "no effect" | "does not apply"; why: string[] };

const GFP_RANK: Record<GfpZone, number> = { none: 2, GFP_DMA32: 1, GFP_DMA: 0 };

/** The facts of one predicted instance. */
export function instanceFacts(s: Scenario, p: InstancePrediction): InstanceFacts {
  const node = s.devicetree.find((n) => n.unit === p.unit);
  const bound = node && node.status === "okay" ? opsFor(s, node) : null;
  const dmaStep = p.explanation.find((st) => st.rule === "table dma_dev");
  const maskFact = dmaStep?.facts.find((f) => f.name === "dma_bit_mask");
  const mask = typeof maskFact?.value === "number" ? maskFact.value : null;
  const gfp = p.dt ? bound?.ops.gfpZone.value ?? null : null;
  const bounced = p.dt ? p.dt.bounced || (p.pt?.bounced ?? false) : null;
  return {
    outcome: p.outcome,
    compatible: p.compatible,
    status: p.status,
    ops: p.ops,
    format: p.format,
    dmaMaskBits: p.dt ? mask : null,
    gfpZone: gfp,
    tableZone: p.dt?.zone ?? null,
    tablesAbove4G: p.dt ? p.dt.above4G : null,
    bounced,
    bounceRisk: bounced === null
      ? null
      : bounced
      ? "bounced"
      : gfp === "none" && mask !== null && mask <= 32
      ? "latent"
      : "none",
  };
}

const FACT_KEYS: (keyof InstanceFacts)[] = [
  "outcome",
  "compatible",
  "status",
  "ops",
  "format",
  "dmaMaskBits",
  "gfpZone",
  "tableZone",
  "tablesAbove4G",
  "bounced",
  "bounceRisk",
];

const FAILURES: readonly Outcome[] = ["BUS_ERROR", "PAGE_FAULT", "WRONG_PAGE", "PROBE_FAILED"];

/** Compare one instance before and after. */
export function instanceDelta(
  b: InstanceFacts,
  a: InstanceFacts,
  id: { unit: string; label: string; master: string },
): InstanceDelta {
  const changed = FACT_KEYS
    .filter((k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]))
    .map((k) => ({ fact: k, before: b[k], after: a[k] }));
  const constraints: string[] = [];
  const relaxations: string[] = [];
  if (b.dmaMaskBits !== null && a.dmaMaskBits !== null && a.dmaMaskBits !== b.dmaMaskBits) {
    (a.dmaMaskBits < b.dmaMaskBits ? constraints : relaxations)
      .push(`DMA mask ${b.dmaMaskBits} → ${a.dmaMaskBits} bits`);
  }
  if (b.gfpZone && a.gfpZone && a.gfpZone !== b.gfpZone) {
    (GFP_RANK[a.gfpZone] < GFP_RANK[b.gfpZone] ? constraints : relaxations)
      .push(`table gfp ${b.gfpZone} → ${a.gfpZone}`);
  }
  if (b.tablesAbove4G === true && a.tablesAbove4G === false) {
    constraints.push(`tables forced below 4 GiB (ZONE_${b.tableZone} → ZONE_${a.tableZone})`);
  } else if (b.tablesAbove4G === false && a.tablesAbove4G === true) {
    relaxations.push(`tables move above 4 GiB (ZONE_${b.tableZone} → ZONE_${a.tableZone})`);
  }
  let cls: ChangeClass;
  if (a.outcome !== b.outcome) {
    if (a.outcome === "OK" && (FAILURES.includes(b.outcome) || b.outcome === "UNCERTAIN")) {
      cls = "FIXED";
    } else if (b.outcome === "OK" && (FAILURES.includes(a.outcome) || a.outcome === "UNCERTAIN")) {
      cls = "BROKEN";
    } else cls = "CHANGED";
  } else if (constraints.length) cls = "CONSTRAINED";
  else if (relaxations.length) cls = "RELAXED";
  else cls = changed.length ? "CHANGED" : "UNCHANGED";
  return { ...id, class: cls, before: b, after: a, changed, constraints, relaxations };
}

/** Compare two predictions of the same board, instance by instance (matched by unit). */
export function predictionDelta(
  before: { s: Scenario; p: Prediction },
  after: { s: Scenario; p: Prediction },
): InstanceDelta[] {
  return before.p.instances.map((bi) => {
    const ai = after.p.instances.find((x) => x.unit === bi.unit) ?? bi;
    return instanceDelta(instanceFacts(before.s, bi), instanceFacts(after.s, ai), {
      unit: bi.unit,
      label: bi.label,
      master: bi.master,
    });
  });
}

/** Run an applier over boards × releases. */
export function blastRadius(
  boards: BlastBoard[],
  releases: string[],
  apply: Applier,
  bootargs = "",
): BlastCell[] {
  const cells: BlastCell[] = [];
  for (const board of boards) {
    for (const release of releases) {
      const before = buildScenario({ board: board.facts, kernel: release, bootargs });
      const pb = predict(before);
      const r = apply(board, release, before);
      if (r.status !== "applied") {
        cells.push({ board: board.facts.id, release, status: r.status, why: r.why, instances: [] });
        continue;
      }
      cells.push({
        board: board.facts.id,
        release,
        status: "applied",
        why: r.why,
        instances: predictionDelta({ s: before, p: pb }, { s: r.after, p: predict(r.after) }),
      });
    }
  }
  return cells;
}

/** An applier for a parsed patch series. */
export function seriesApplier(series: PatchEffect[]): Applier {
  return (board, _release, before) => {
    const r = applyPatchSeries(
      series,
      before.driver,
      before.devicetree,
      board.facts.soc,
      board.dtb,
    );
    const why = r.patches.flatMap((p) =>
      p.result === "applied" ? p.why : p.why.map((w) => `${p.subject}: ${w}`)
    );
    if (!r.applied) return { status: "does not apply", why };
    if (r.patches.every((p) => p.result === "already")) return { status: "already", why };
    if (r.patches.every((p) => p.result !== "applied")) return { status: "no effect", why };
    return {
      status: "applied",
      why,
      after: { ...before, driver: r.driver, devicetree: r.devicetree },
    };
  };
}

/** An applier for named patch sets (see `rkhil patches`). */
export function patchSetApplier(names: string[]): Applier {
  return (board, release, before) => {
    const r = parseRelease(release);
    const sets = names.map((n) => getPatch(n)).filter((p) => p !== undefined);
    if (r && sets.length === names.length && sets.every((p) => inMainline(p, r))) {
      return { status: "already", why: names.map((n) => `${n} is in mainline ${release}`) };
    }
    try {
      const after = buildScenario({
        board: board.facts,
        kernel: release,
        patches: names,
        bootargs: before.bootargs,
      });
      return { status: "applied", why: [], after };
    } catch (err) {
      if (err instanceof OracleInputError && !err.known.length) {
        return { status: "does not apply", why: [err.message] };
      }
      throw err;
    }
  };
}

/** Count instances per class over cells. */
export function classCounts(cells: BlastCell[]): Record<ChangeClass, number> {
  const out: Record<ChangeClass, number> = {
    FIXED: 0,
    BROKEN: 0,
    CONSTRAINED: 0,
    RELAXED: 0,
    CHANGED: 0,
    UNCHANGED: 0,
  };
  for (const c of cells) for (const i of c.instances) out[i.class]++;
  return out;
}
