/**
 * The memory view the predictor works with: boot arguments applied to the board's banks, the
 * zone layout, the SWIOTLB window, and two questions asked of them — where does a page with
 * these GFP flags come from, and what does `dma_map_single` do with it for a given mask.
 * Everything is computed by `memory.ts`, `swiotlb.ts` and `bootargs.ts`; this module only
 * phrases their answers for `predict.ts`.
 *
 * @module
 */
import {
  BootArgsError,
  briefArg,
  COMMAND_LINE_MAX_BYTES,
  COMMAND_LINE_SIZE,
  parseBootArgs,
} from "./bootargs.ts";
import {
  applyMemLimit,
  computeZones,
  FOUR_GIB,
  placeAllocation,
  type ZoneName,
  zoneOf,
  zoneRuleForRelease,
} from "./memory.ts";
import type { MemorySummary, Step } from "./prediction.ts";
import { parseRelease } from "./releases.ts";
import { placeCma, withoutCma } from "./cma.ts";
import { OracleInputError, type Scenario } from "./scenario.ts";
import { dmaMapSingle, type SwiotlbWindow, swiotlbWindow } from "./swiotlb.ts";
import { type Fact, fact, type GfpZone, type PhysRange } from "./types.ts";

/** Below this, a preferred zone can plausibly run dry before a driver probes: say so [D]. */
const CONDITIONAL_ZONE_BYTES = 1024 * 1024 * 1024;

/** Where a page with given GFP flags comes from. */
export interface Placement {
  zone: "DMA" | "DMA32" | "NORMAL";
  /** Smallest range covering the zone's memory. */
  range: PhysRange;
  above4G: boolean;
  /** Set when the answer depends on free memory. */
  condition?: string;
  /** When it does and the other zone lies on the other side of 4 GiB: that zone. */
  alternative?: Placement;
  facts: Fact<unknown>[];
}

/** What `dma_map_single` does with a placed page. */
export interface Mapping {
  kind: "direct" | "bounced" | "failed";
  /** Range the DMA address falls in. */
  dmaRange: PhysRange;
}

/** The memory view of a scenario. */
export interface MemView {
  summary: MemorySummary;
  steps: Step[];
  /** What the kernel does silently with the command line (truncation), for the notes. */
  notes: string[];
  place(gfp: Fact<GfpZone>): Placement;
  map(p: Placement, maskBits: number): Mapping;
}

const ZONE_KEY: Record<ZoneName, Placement["zone"]> = {
  DMA: "DMA",
  DMA32: "DMA32",
  Normal: "NORMAL",
};

function hull(ranges: readonly PhysRange[]): PhysRange {
  return { start: ranges[0].start, end: ranges[ranges.length - 1].end };
}

function placementIn(present: PhysRange[], name: ZoneName, facts: Fact<unknown>[]): Placement {
  const range = hull(present);
  return { zone: ZONE_KEY[name], range, above4G: range.start >= FOUR_GIB, facts };
}

function fmt(r: PhysRange | null): string {
  return r ? `[0x${r.start.toString(16)}, 0x${r.end.toString(16)})` : "empty";
}

/** Compute the memory view of a scenario. Throws OracleInputError on malformed boot arguments. */
export function memoryView(s: Scenario): MemView {
  let args;
  try {
    args = parseBootArgs(s.bootargs);
  } catch (err) {
    if (err instanceof BootArgsError) {
      throw new OracleInputError(`bad boot arguments: ${err.message}`, "fix --bootargs");
    }
    throw err;
  }
  const limited = applyMemLimit(s.board.banks, args.mem?.limit);
  const r = parseRelease(s.driver.release);
  const layout = computeZones(
    limited.banks,
    r ? { rule: zoneRuleForRelease(r.major, r.minor) } : {},
  );
  const cma = placeCma(layout, args.cma, r);
  // Page tables are unmovable: they never come from the CMA area.
  const tableLayout = withoutCma(layout, cma);
  const sw = swiotlbWindow(layout, args, {
    bounceUnalignedKmalloc: s.config.dmaBounceUnalignedKmalloc,
  });
  const span = (n: ZoneName) => zoneOf(layout, n)?.span ?? null;
  const swBelow = sw.placement.kind === "exact"
    ? sw.placement.window.end
    : sw.placement.kind === "bounded"
    ? sw.placement.within.end
    : null;
  const summary: MemorySummary = {
    banks: limited.banks,
    zones: { dma: span("DMA"), dma32: span("DMA32"), normal: span("Normal") },
    swiotlb: { present: sw.enabled, forced: sw.forced, sizeBytes: sw.sizeBytes, below: swBelow },
  };
  if (args.cma) {
    summary.cma = {
      kind: cma.kind,
      sizeBytes: cma.sizeBytes,
      ...(cma.range ? { range: cma.range } : {}),
    };
  }
  const ramFact = fact("DRAM banks", s.board.banks, s.board.ramSource, s.board.ramConfidence);
  const steps: Step[] = [];
  if (args.truncated) {
    steps.push({
      rule: "kernel command line",
      conclusion: `only the first ${COMMAND_LINE_MAX_BYTES} of ${args.truncated.bytes} bytes are ` +
        `seen; the rest is not applied${
          args.truncated.dropped.length
            ? ` (${args.truncated.dropped.slice(0, 8).map(briefArg).join(" ")}${
              args.truncated.dropped.length > 8 ? " …" : ""
            })`
            : ""
        }${
          args.truncated.cut
            ? `; ${briefArg(args.truncated.cut.written)} is read as ` +
              briefArg(args.truncated.cut.seen)
            : ""
        }`,
      facts: [
        fact(
          "COMMAND_LINE_SIZE",
          COMMAND_LINE_SIZE,
          "arch/arm64/include/uapi/asm/setup.h; drivers/of/fdt.c early_init_dt_scan_chosen(): " +
            "strscpy(cmdline, bootargs, min(len, COMMAND_LINE_SIZE)), the NUL included",
          "measured",
          "Debian 6.1, 6.12 and 7.3 under QEMU: /proc/cmdline keeps 2047 bytes, mem= past " +
            "them is not applied",
        ),
      ],
    });
  }
  steps.push(
    {
      rule: "memory map",
      conclusion: `DRAM ${limited.banks.map(fmt).join(" + ")}` +
        (limited.cutAt !== null ? ` (mem= cuts at 0x${limited.cutAt.toString(16)})` : "") +
        `; ZONE_DMA ${fmt(summary.zones.dma)}, ZONE_DMA32 ${fmt(summary.zones.dma32)}, ` +
        `ZONE_NORMAL ${fmt(summary.zones.normal)}`,
      facts: [ramFact, ...limited.facts, ...layout.facts],
    },
    {
      rule: "SWIOTLB",
      conclusion: sw.enabled
        ? `${sw.forced ? "forced: every mapping bounces; " : ""}${sw.sizeBytes / 2 ** 20} MiB ` +
          `bounce buffer below 0x${(swBelow ?? 0).toString(16)} (${sw.reason})`
        : `no bounce buffer (${sw.reason})`,
      facts: sw.facts,
    },
  );

  if (args.cma) {
    const below = cma.range && sw.enabled && cma.range.start < layout.dmaPhysLimit;
    steps.push({
      rule: "CMA",
      conclusion: `cma=${args.cma.raw}: ${cma.reason}` +
        (cma.range
          ? `; its pageblocks serve only movable pages, so no page table comes from ${
            fmt(cma.range)
          }`
          : "") +
        (below ? "; reserved before SWIOTLB, which lands below it" : "") +
        (cma.logLines.length ? ` (log: ${cma.logLines.join(" / ")})` : ""),
      facts: cma.facts,
    });
  }

  const place = (gfp: Fact<GfpZone>): Placement => {
    const pl = placeAllocation(tableLayout, gfp.value);
    const likely = pl.likely;
    const zone = likely ? tableLayout.zones.find((z) => z.name === likely.zone) : undefined;
    if (!zone || zone.present.length === 0) {
      throw new OracleInputError(
        `no memory zone can serve a ${gfp.value} allocation on board ${s.board.id}`,
        "check the board's RAM banks and mem=",
      );
    }
    const out = placementIn(zone.present, zone.name, [gfp, ...pl.facts]);
    const preferred = pl.preferred;
    if (preferred && pl.fallbacks.length > 0 && preferred.presentBytes < CONDITIONAL_ZONE_BYTES) {
      out.condition = `${pl.condition}${likely ? `; ${likely.rule}` : ""}`;
      const other = preferred.name === zone.name ? pl.fallbacks[0] : preferred;
      const alt = placementIn(other.present, other.name, out.facts);
      if (alt.above4G !== out.above4G) out.alternative = alt;
    }
    return out;
  };

  const map = (p: Placement, maskBits: number): Mapping => mapRange(p.range, maskBits, sw);
  return { summary, steps, notes: args.truncated ? args.warnings : [], place, map };
}

function mapRange(range: PhysRange, maskBits: number, sw: SwiotlbWindow): Mapping {
  const mask = 2 ** maskBits - 1;
  // A zone lies on one side of a 32- or 40-bit mask on every catalogued board, so the top page
  // decides for the whole range.
  const top = dmaMapSingle(range.end - 4096, 4096, mask, sw);
  if (top.kind === "direct") return { kind: "direct", dmaRange: range };
  if (top.kind === "bounced") return { kind: "bounced", dmaRange: top.slotRange };
  return { kind: "failed", dmaRange: range };
}
