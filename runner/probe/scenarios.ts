/**
 * The probe-module scenarios (the `probe` and `probe-boot` suites, `tests/probe*.ts`): what the
 * probe module replays of the rockchip-iommu driver's table sequence, on which boot (memory,
 * command line), what the oracle predicts for it on the kernel's measured memory
 * (`oracle/probe_model.ts`), and the comparison of that prediction with the module's report:
 * table placement, bouncing, and every IOVA's walk.
 *
 * @module
 */
import { predictProbe, type ProbePrediction } from "../../oracle/probe_model.ts";
import { mainlineFacts, type Release } from "../../oracle/releases.ts";
import { type BoardFacts, buildScenario } from "../../oracle/scenario.ts";
import type { KernelFacts } from "../facts/collect.ts";
import type { TestResult } from "../results/store.ts";
import { directoryTable, pageTableOf, type ProbeReport } from "./report.ts";
import type { ProbeParams } from "./run.ts";

/** A probe scenario: how the target boots and what the probe replays. */
export interface ValidateScenario {
  /** Scenario name (the step is `probe/<name>`). */
  name: string;
  /** What the scenario shows, in one sentence. */
  description: string;
  /**
   * A boot of its own (memory, extra command line): `{}` runs on the target as booted (suite
   * `probe`); otherwise the scenario needs `boot-config` (suite `probe-boot`).
   */
  boot: { memory?: string; append?: string };
  /** What the probe module replays in the guest. */
  params: ProbeParams;
}

/** A page below and a page above 4 GiB, in two DTEs. */
const LOW_HIGH: ProbeParams["mappings"] = [
  { iova: 0x1000_0000, where: "low" },
  { iova: 0x1040_0000, where: "high" },
];

/** Probe parameters: ops (format, mask, gfp) and a walker reaching `reach` bits at both levels. */
function ops(
  format: ProbeParams["format"],
  maskBits: number,
  gfp: ProbeParams["gfp"],
  reach = 32,
): ProbeParams {
  return { format, maskBits, gfp, dtReach: reach, ptReach: reach, mappings: LOW_HIGH };
}

/** The scenarios, in the order they run. */
export const SCENARIOS: readonly ValidateScenario[] = [
  {
    name: "v1",
    description: "v1 ops (rockchip,iommu): 32-bit mask, GFP_DMA32, v1 entries",
    boot: {},
    params: ops("v1", 32, "dma32"),
  },
  {
    name: "v2-6.1",
    description: "v2 ops as in 6.1: 40-bit mask, GFP_DMA32 hard-coded; a v1.0 walker (32 bits)",
    boot: {},
    params: ops("v2", 40, "dma32"),
  },
  {
    name: "v2-6.6",
    description: "v2 ops from 6.6: 40-bit mask, tables from all memory; a v1.0 walker (NPU)",
    boot: {},
    params: ops("v2", 40, "none"),
  },
  {
    name: "v2-6.6-vop",
    description: "v2 ops from 6.6 with a v2.0 walker (VOP2, 40-bit reach)",
    boot: {},
    params: ops("v2", 40, "none", 40),
  },
  {
    name: "bounce",
    description: "32-bit mask with unrestricted allocation: the seed's bounce poisoning",
    boot: {},
    params: ops("v2", 32, "none"),
  },
  {
    name: "swiotlb-force",
    description: "swiotlb=force: every mapping bounces, GFP_DMA32 tables too",
    boot: { append: "swiotlb=force" },
    params: ops("v2", 40, "dma32"),
  },
  {
    name: "mem-below-4g",
    description: "mem=3G: QEMU's RAM starts at 1 GiB, so no memory is left above 4 GiB",
    boot: { append: "mem=3G" },
    params: ops("v2", 40, "none"),
  },
  {
    name: "2g",
    description: "a 2 GiB guest: everything below 4 GiB",
    boot: { memory: "2G" },
    params: ops("v2", 40, "none"),
  },
];

/** One scenario's comparison. */
export interface ValidateRow {
  /** Scenario name. */
  scenario: string;
  /** What the oracle predicted, in words. */
  predicted: string;
  /** What the probe module saw, in words. */
  observed: string;
  /** Whether the observation agrees with the prediction, or could not decide. */
  verdict: "AGREE" | "DISAGREE" | "INCONCLUSIVE";
  /** The first differing fact, or what was missing. */
  why?: string;
}

/** A one-line summary of what a probe run shows: `PAGE_FAULT/pte (tables >=4G, bounced)`. */
export function summarise(
  dt: { above4G: boolean; bounced: boolean },
  walks: { result: string; level?: string }[],
): string {
  const results = [...new Set(walks.map((w) => w.level ? `${w.result}/${w.level}` : w.result))];
  return `${results.join("+")} (tables ${dt.above4G ? ">=4G" : "<4G"}${
    dt.bounced ? ", bounced" : ""
  })`;
}

/** Compare a prediction with a probe report: the first differing fact, or null. */
export function compareProbe(p: ProbePrediction, r: ProbeReport): string | null {
  const dt = directoryTable(r);
  if (!dt) return "the report has no directory table";
  const high = (zone: string) => zone === "high";
  if (p.dt.above4G !== high(dt.zone)) {
    return `directory table: predicted ${p.dt.above4G ? ">=4G" : "<4G"}, observed phys ` +
      `0x${dt.phys.toString(16)}`;
  }
  if (p.dt.bounced !== dt.bounced) {
    return `directory table bounced: predicted ${p.dt.bounced}, observed ${dt.bounced}`;
  }
  for (const w of p.walks) {
    const pt = pageTableOf(r, w.iova);
    if (!pt) return `no page table reported for iova 0x${w.iova.toString(16)}`;
    if (p.pt.above4G !== high(pt.zone)) {
      return `page table of 0x${w.iova.toString(16)}: predicted ${
        p.pt.above4G ? ">=4G" : "<4G"
      }, ` +
        `observed phys 0x${pt.phys.toString(16)}`;
    }
    if (p.pt.bounced !== pt.bounced) {
      return `page table of 0x${w.iova.toString(16)} bounced: predicted ${p.pt.bounced}, ` +
        `observed ${pt.bounced}`;
    }
    const o = r.walks.find((x) => x.iova === w.iova);
    if (!o) return `no walk reported for iova 0x${w.iova.toString(16)}`;
    if (o.result !== w.result || (w.level && o.level !== w.level)) {
      return `iova 0x${w.iova.toString(16)}: predicted ${w.result}${
        w.level ? `/${w.level}` : ""
      }, ` +
        `observed ${o.result}${o.level ? `/${o.level}` : ""}`;
    }
  }
  return null;
}

/**
 * The row a probe step's result holds (`details`, as the probe suites record it), or an
 * INCONCLUSIVE row with the result's verdict and reason when the step did not compare.
 */
export function rowOfResult(r: TestResult): ValidateRow {
  const d = r.details ?? {};
  const text = (v: unknown) => typeof v === "string" ? v : "-";
  const scenario = r.test.replace(/^probe\//, "");
  if (d.verdict === "AGREE" || d.verdict === "DISAGREE") {
    return {
      scenario,
      predicted: text(d.predicted),
      observed: text(d.observed),
      verdict: d.verdict,
      ...(typeof d.why === "string" ? { why: d.why } : {}),
    };
  }
  return {
    scenario,
    predicted: "-",
    observed: "-",
    verdict: "INCONCLUSIVE",
    why: `${r.verdict}${r.reason ? `: ${r.reason.split("\n")[0]}` : ""}`,
  };
}

/** Render the rows as a table. */
export function renderValidateRows(rows: readonly ValidateRow[]): string {
  const w = (k: keyof ValidateRow) =>
    Math.max(k.length, ...rows.map((r) => String(r[k] ?? "").length));
  const cols: (keyof ValidateRow)[] = ["scenario", "predicted", "observed", "verdict"];
  const line = (r: Record<string, string>) =>
    cols.map((c) => String(r[c] ?? "").padEnd(w(c))).join("  ").trimEnd();
  const out = [
    line({
      scenario: "scenario",
      predicted: "predicted",
      observed: "observed",
      verdict: "verdict",
    }),
  ];
  for (const r of rows) {
    out.push(line(r as unknown as Record<string, string>));
    if (r.why) out.push(`  ${r.why}`);
  }
  return out.join("\n");
}

/** The probe model's parameters for a scenario. */
function modelParams(s: ValidateScenario) {
  return {
    format: s.params.format,
    maskBits: s.params.maskBits,
    gfp: s.params.gfp === "none"
      ? "none" as const
      : s.params.gfp === "dma32"
      ? "GFP_DMA32" as const
      : "GFP_DMA" as const,
    dtReach: s.params.dtReach ?? 32,
    ptReach: s.params.ptReach ?? 32,
    iovas: s.params.mappings.map((m) => ({ iova: m.iova, where: m.where })),
  };
}

/**
 * What the oracle predicts for scenario `s` on `board` with the memory banks and command line
 * the running kernel reported (`facts`), for release `rel`.
 */
export function predictScenario(
  s: ValidateScenario,
  board: BoardFacts,
  facts: KernelFacts,
  rel: Release,
): ProbePrediction {
  const banks = facts.memoryBanks;
  if (!banks) throw new Error("the kernel's memory banks are unknown");
  return predictProbe(
    buildScenario({
      board: {
        ...board,
        banks: banks.value,
        ramSource: banks.provenance.source,
        ramConfidence: "measured",
      },
      kernel: mainlineFacts(rel),
      bootargs: facts.cmdline?.value.raw ?? "",
    }),
    modelParams(s),
  );
}

/**
 * What the oracle predicts for scenario `s` from a board file's memory alone (no kernel
 * measured), with `bootargs` (the scenario's own, for a boot of its own).
 */
export function predictScenarioFromBoard(
  s: ValidateScenario,
  board: BoardFacts,
  rel: Release,
): ProbePrediction {
  return predictProbe(
    buildScenario({ board, kernel: mainlineFacts(rel), bootargs: s.boot.append ?? "" }),
    modelParams(s),
  );
}

/** Hold a probe report against a prediction: the scenario's row. */
export function scenarioRow(s: ValidateScenario, p: ProbePrediction, r: ProbeReport): ValidateRow {
  const dt = directoryTable(r);
  const diff = compareProbe(p, r);
  return {
    scenario: s.name,
    predicted: summarise(p.dt, p.walks),
    observed: dt
      ? summarise({ above4G: dt.zone === "high", bounced: dt.bounced }, r.walks)
      : "no report",
    verdict: diff ? "DISAGREE" : "AGREE",
    why: diff ?? undefined,
  };
}
