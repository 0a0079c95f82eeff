/**
 * The oracle's prediction of a probe-module run (target/probe): the driver's table sequence
 * replayed with given ops (entry format, DMA mask, gfp zone) on a kernel whose memory the
 * scenario describes, walked by a walker with given address reach. `rkhil validate` holds this
 * against what the module observes on a real kernel.
 *
 * Pure: no I/O.
 *
 * @module
 */
import { memoryView } from "./memview.ts";
import type { Step } from "./prediction.ts";
import { reachable } from "./predict.ts";
import type { Scenario } from "./scenario.ts";
import { type EntryFormat, fact, type GfpZone } from "./types.ts";

/** What the walker finds for one IOVA (the module's walk results). */
export type ProbeWalkResult = "ok" | "BUS_ERROR" | "PAGE_FAULT" | "WRONG_PAGE";

/** Parameters of a probe scenario. */
export interface ProbeModelParams {
  /** Page-table entry format of the ops under test. */
  format: EntryFormat;
  /** Address bits of the DMA mask of the device that maps the tables. */
  maskBits: number;
  /** GFP zone modifier of the table allocations. */
  gfp: GfpZone;
  /** Address bits the walker can reach for the directory table (DTE_ADDR). */
  dtReach: number;
  /** Address bits the walker can reach for page tables (from a DTE). */
  ptReach: number;
  /** Backing pages: `low` asks GFP_DMA32, `high` GFP_HIGHUSER_MOVABLE (no zone limit). */
  iovas: { iova: number; where: "low" | "high" }[];
}

/** A predicted table. */
export interface ProbeTablePrediction {
  /** The table lies at or above 4 GiB. */
  above4G: boolean;
  /** The table is bounced through SWIOTLB. */
  bounced: boolean;
}

/** The prediction of one probe run. */
export interface ProbePrediction {
  /** Where the directory table lands. */
  dt: ProbeTablePrediction;
  /** Every page table comes from the same flags, so they share one prediction. */
  pt: ProbeTablePrediction;
  /** Per IOVA: the walk's predicted result and, for a failure, the level it fails at. */
  walks: { iova: number; result: ProbeWalkResult; level?: "dt" | "pt" | "dte" | "pte" }[];
  /** What the prediction depends on (small zones, unknown reach). */
  conditions: string[];
  /** The rules and facts behind the prediction, in order. */
  explanation: Step[];
}

const FOUR_GIB = 0x1_0000_0000;

/** Predict a probe run on the memory of `s` (banks, boot arguments, release). */
export function predictProbe(s: Scenario, p: ProbeModelParams): ProbePrediction {
  const mem = memoryView(s);
  const steps: Step[] = [...mem.steps];
  const conditions: string[] = [];
  const gfp = fact("table gfp zone", p.gfp, "probe scenario", "input");
  const place = mem.place(gfp);
  if (place.condition) conditions.push(place.condition);
  const map = mem.map(place, p.maskBits);
  const bounced = map.kind === "bounced";
  const table = { above4G: place.above4G, bounced };
  steps.push({
    rule: "table placement",
    conclusion: `tables come from ZONE_${place.zone} (${place.above4G ? "above" : "below"} ` +
      `4 GiB) and are ${bounced ? "bounced through SWIOTLB" : "mapped directly"} for a ` +
      `${p.maskBits}-bit mask`,
    facts: [gfp, ...place.facts],
  });
  const dtOk = reachable(map.dmaRange, fact("dt reach", p.dtReach, "probe scenario", "input"));
  const ptOk = reachable(map.dmaRange, fact("pt reach", p.ptReach, "probe scenario", "input"));
  const high = mem.place(fact("page gfp zone", "none", "GFP_HIGHUSER_MOVABLE", "derived"));
  const walks = p.iovas.map(({ iova, where }) => {
    const pageAbove = where === "high" && high.above4G;
    if (dtOk === false) return { iova, result: "BUS_ERROR" as const, level: "dt" as const };
    if (ptOk === false) return { iova, result: "BUS_ERROR" as const, level: "pt" as const };
    if (bounced) return { iova, result: "PAGE_FAULT" as const, level: "pte" as const };
    if (p.format === "v1" && pageAbove) return { iova, result: "WRONG_PAGE" as const };
    return { iova, result: "ok" as const };
  });
  if (dtOk === null || ptOk === null) conditions.push("a table straddles the walker's reach");
  steps.push({
    rule: "walk",
    conclusion: dtOk === false
      ? `the directory at DMA addresses ${hexRange(map.dmaRange)} is beyond ${p.dtReach} bits`
      : ptOk === false
      ? `page tables at DMA addresses ${hexRange(map.dmaRange)} are beyond ${p.ptReach} bits`
      : bounced
      ? "the page tables are bounced: the flush copies the zeroed originals over the PTEs"
      : p.format === "v1" && high.above4G
      ? "v1 entries truncate pages at or above 4 GiB to their alias below"
      : "every entry is reachable and correct",
    facts: [fact("format", p.format, "probe scenario", "input")],
  });
  if (high.condition && p.iovas.some((i) => i.where === "high")) conditions.push(high.condition);
  return { dt: table, pt: table, walks, conditions, explanation: steps };
}

function hexRange(r: { start: number; end: number }): string {
  return `[0x${r.start.toString(16)}, 0x${r.end.toString(16)})`;
}

/** True when `addr` is at or above 4 GiB. */
export function above4G(addr: number): boolean {
  return addr >= FOUR_GIB;
}
