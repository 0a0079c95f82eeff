/**
 * The atlas: every Rockchip RK356x and RK3588 device tree a kernel release ships, with the
 * oracle's outcome for each IOMMU node at each RAM size, and what changed from one release to the
 * next. This module is the pure part: RAM layouts per SoC and size, the predictions, the
 * release-to-release differences. Reading kernel packages and DTBs is in runner/atlas.ts.
 *
 * RAM layouts are derived from the board files, never invented: a size with a board file of that
 * SoC family and size uses its banks unchanged; every other size is generalised from the pattern
 * the board files share (DRAM from 2 MiB up to the 0xF000_0000 MMIO hole, DRAM from 4 GiB up to
 * the size, and the 256 MiB hidden behind the hole at hole + size, as rk3568-4g and rk3588-16g
 * place it), and says so.
 *
 * Pure: no I/O.
 *
 * @module
 */
import { predict } from "./predict.ts";
import { type BoardFacts, buildScenario, type DtIommuNode } from "./scenario.ts";
import { findInstance, getSoc } from "./soc.ts";
import type { Outcome, PhysRange } from "./types.ts";

/** RAM sizes the atlas predicts for, in GiB. */
export const ATLAS_SIZES_GB: readonly number[] = [2, 4, 8, 16, 32];

const GIB = 0x4000_0000;
const HOLE = 0xF000_0000;
const BANK0 = 0x20_0000;

/** A reference layout: a board file's banks for one SoC family and size. */
export interface ReferenceLayout {
  /** Id of the board file the banks come from. */
  boardId: string;
  /** `rk356x` or `rk3588`. */
  family: string;
  /** Memory size in GiB. */
  sizeGb: number;
  /** The board file's memory banks (physical ranges, bytes). */
  banks: PhysRange[];
}

/** The banks used for one family and size, and where they come from. */
export interface AtlasLayout {
  /** `rk356x` or `rk3588`. */
  family: string;
  /** Memory size in GiB. */
  sizeGb: number;
  /** Memory banks used for the prediction (physical ranges, bytes). */
  banks: PhysRange[];
  /** False when the banks are a board file's own; true when generalised. */
  generalised: boolean;
  /** Where the banks come from, in words (board file or the generalisation rule). */
  source: string;
}

/** SoC family of a SoC id: `rk3566`/`rk3568` → `rk356x`; `rk3588`/`rk3588s` → `rk3588`. */
export function socFamily(soc: string): string | undefined {
  if (soc === "rk3566" || soc === "rk3568") return "rk356x";
  if (soc === "rk3588" || soc === "rk3588s") return "rk3588";
  return undefined;
}

/**
 * A node's label: the DTB's own (from `__symbols__`), else the SoC catalog's for that unit
 * address (Debian's DTBs carry no symbols, so the parser names nodes `iommu@<unit>`).
 */
export function nodeLabel(soc: string, n: DtIommuNode): string {
  if (n.label && !n.label.includes("@")) return n.label;
  const s = getSoc(soc === "rk3588s" ? "rk3588" : soc);
  return (s && findInstance(s, n.unit)?.label) ?? n.label;
}

/** The generalised bank pattern for `sizeGb` (see the module comment). */
export function generalBanks(sizeGb: number): PhysRange[] {
  const size = sizeGb * GIB;
  if (size <= HOLE) return [{ start: BANK0, end: size }];
  const banks: PhysRange[] = [{ start: BANK0, end: HOLE }];
  if (size > 4 * GIB) banks.push({ start: 4 * GIB, end: size });
  // The 256 MiB behind the MMIO hole, remapped to hole + size (rk3568-4g, rk3588-16g).
  banks.push({ start: HOLE + size, end: 4 * GIB + size });
  return banks;
}

/**
 * The layout for a family and size: the reference board file's banks when one matches, else the
 * generalised pattern (naming the board files it generalises).
 */
export function atlasLayout(
  family: string,
  sizeGb: number,
  refs: ReferenceLayout[],
): AtlasLayout {
  const own = refs.find((r) => r.family === family && r.sizeGb === sizeGb);
  if (own) {
    return {
      family,
      sizeGb,
      banks: own.banks,
      generalised: false,
      source: `boards/${own.boardId}.yaml`,
    };
  }
  // The board files that show the pattern: a bank at hole + size holding the hidden 256 MiB.
  const from = refs.filter((r) => r.banks.some((b) => b.start === HOLE + r.sizeGb * GIB))
    .map((r) => `boards/${r.boardId}.yaml`).sort().join(" and ") || "no board file";
  return {
    family,
    sizeGb,
    banks: generalBanks(sizeGb),
    generalised: true,
    source: `generalised from the pattern of ${from}: DRAM from 0x200000 to the ` +
      "0xF0000000 hole, from 4 GiB to the size, the hidden 256 MiB at hole + size (firmware " +
      "carve-outs of one board left out)",
  };
}

/** One DTB as the atlas reads it. */
export interface AtlasDtb {
  /** File name, e.g. `rk3568-rock-3b.dtb`. */
  name: string;
  /** The root `model` property, when the DTB has one. */
  model?: string;
  /** SoC id from the root compatible (`rk3568`, `rk3566`, `rk3588`, `rk3588s`). */
  soc: string;
  /** Nodes rk_iommu binds. */
  nodes: DtIommuNode[];
  /** Other `rockchip,*iommu*` nodes (bound by other drivers). */
  others: string[];
}

/** Outcomes of one DTB: size (GiB) → unit → outcome. */
export type DtbOutcomes = Record<string, Record<string, Outcome>>;

/** Predict every IOMMU node of a DTB at every size for a release of the knowledge base. */
export function predictDtb(
  dtb: AtlasDtb,
  release: string,
  layouts: AtlasLayout[],
): DtbOutcomes {
  const family = socFamily(dtb.soc);
  const soc = dtb.soc === "rk3588s" ? "rk3588" : dtb.soc;
  const out: DtbOutcomes = {};
  for (const l of layouts.filter((x) => x.family === family)) {
    const board: BoardFacts = {
      id: dtb.name,
      name: dtb.model ?? dtb.name,
      soc,
      banks: l.banks,
      ramSource: l.source,
      ramConfidence: l.generalised ? "derived" : "reported",
      iommus: dtb.nodes,
    };
    const p = predict(buildScenario({ board, kernel: release, devicetree: dtb.nodes }));
    out[String(l.sizeGb)] = Object.fromEntries(p.instances.map((i) => [i.unit, i.outcome]));
  }
  return out;
}

/** What changed for one DTB between two releases. */
export interface DtbChange {
  /** DTB file name. */
  dtb: string;
  /** `added`/`removed`: the DTB is only in the newer/older release; `changed`: in both, differing. */
  kind: "added" | "removed" | "changed";
  /** Node changes (`fde4b000: compatible a → b`, `fdd97e00 added`). */
  nodes: string[];
  /** Outcome changes (`8 GB fde4b000: OK → BUS_ERROR`). */
  outcomes: string[];
}

function nodeKey(n: DtIommuNode): string {
  return `${n.compatible.join(",")} ${n.status}`;
}

/** Compare one release's DTBs and outcomes with the previous one's. */
export function atlasChanges(
  prev: { dtbs: AtlasDtb[]; outcomes: Record<string, DtbOutcomes> },
  cur: { dtbs: AtlasDtb[]; outcomes: Record<string, DtbOutcomes> },
): DtbChange[] {
  const out: DtbChange[] = [];
  const before = new Map(prev.dtbs.map((d) => [d.name, d]));
  const after = new Map(cur.dtbs.map((d) => [d.name, d]));
  for (const d of cur.dtbs) {
    if (!before.has(d.name)) out.push({ dtb: d.name, kind: "added", nodes: [], outcomes: [] });
  }
  for (const d of prev.dtbs) {
    if (!after.has(d.name)) out.push({ dtb: d.name, kind: "removed", nodes: [], outcomes: [] });
  }
  for (const d of cur.dtbs) {
    const p = before.get(d.name);
    if (!p) continue;
    const nodes: string[] = [];
    const pn = new Map(p.nodes.map((n) => [n.unit, n]));
    const cn = new Map(d.nodes.map((n) => [n.unit, n]));
    for (const n of d.nodes) {
      const o = pn.get(n.unit);
      if (!o) nodes.push(`${n.unit} ${n.label} added (${nodeKey(n)})`);
      else if (nodeKey(o) !== nodeKey(n)) {
        nodes.push(`${n.unit} ${n.label}: ${nodeKey(o)} → ${nodeKey(n)}`);
      }
    }
    for (const n of p.nodes) if (!cn.has(n.unit)) nodes.push(`${n.unit} ${n.label} removed`);
    const outcomes: string[] = [];
    const po = prev.outcomes[d.name] ?? {}, co = cur.outcomes[d.name] ?? {};
    for (const size of Object.keys(co)) {
      for (const [unit, o] of Object.entries(co[size])) {
        const was = po[size]?.[unit];
        if (was && was !== o) outcomes.push(`${size} GB ${unit}: ${was} → ${o}`);
      }
    }
    if (nodes.length || outcomes.length) {
      out.push({ dtb: d.name, kind: "changed", nodes, outcomes });
    }
  }
  return out;
}

/** DTBs grouped by identical IOMMU nodes and outcomes (one table row set per group). */
export interface DtbGroup {
  soc: string;
  dtbs: string[];
  nodes: DtIommuNode[];
  outcomes: DtbOutcomes;
}

/** Group DTBs that have the same SoC, IOMMU nodes and outcomes. */
export function groupDtbs(dtbs: AtlasDtb[], outcomes: Record<string, DtbOutcomes>): DtbGroup[] {
  const groups = new Map<string, DtbGroup>();
  for (const d of dtbs) {
    const key = JSON.stringify([
      d.soc,
      d.nodes.map((n) => [n.unit, n.label, n.compatible, n.status]),
      outcomes[d.name],
    ]);
    const g = groups.get(key);
    if (g) g.dtbs.push(d.name);
    else {
      groups.set(key, { soc: d.soc, dtbs: [d.name], nodes: d.nodes, outcomes: outcomes[d.name] });
    }
  }
  return [...groups.values()];
}
