/**
 * The arm64 memory model: DRAM banks, `mem=`, the zones ZONE_DMA / ZONE_DMA32 / ZONE_NORMAL and
 * where a page allocation with given zone flags comes from.
 *
 * Sources (read through the code index unless noted):
 * - `memblock_mem_limit_remove_map()` / `__find_max_addr()` (mm/memblock.c): `mem=N` keeps the
 *   first N bytes of memory in address order, a bank may be cut; `N == 0` does nothing.
 *   arm64 re-adds the kernel image afterwards (`arm64_memblock_init`, arch/arm64/mm/init.c).
 * - Zone limits (arch/arm64/mm/init.c), which changed over releases, see {@link ZoneRule}.
 * - Zone spans (`free_area_init`, mm/mm_init.c): zone i spans from the end of zone i-1 (the first
 *   from `PHYS_PFN(memblock_start_of_DRAM())`) to `max(max_zone_pfn[i], start)`.
 * - Allocation fallback (`gfp_zone`, zonelists): research/rockchip-iommu.md §5.2.
 *
 * Log rendering and parsing live in `memory_log.ts`, SWIOTLB and `dma_map_single` in
 * `swiotlb.ts`; both are re-exported here.
 *
 * @module
 */

import { type Fact, fact, type GfpZone, type PhysRange } from "./types.ts";

export * from "./memory_log.ts";
export * from "./swiotlb.ts";

/** 4 GiB, the 32-bit DMA boundary. */
export const FOUR_GIB = 0x1_0000_0000;
/** Page size of the modelled kernels (arm64, 4 KiB pages). */
export const PAGE = 4096;
/** `U32_MAX`. */
const U32_MAX = FOUR_GIB - 1;
/** Stand-in for `PHYS_ADDR_MAX` (and "no dma-ranges limit"). */
const PHYS_ADDR_MAX = Number.MAX_SAFE_INTEGER;

const SRC_MEMBLOCK = "linux mm/memblock.c __find_max_addr/memblock_mem_limit_remove_map " +
  "(code index, ids 40432713492, 46248919200)";
const SRC_ARM64_MEM =
  "linux arch/arm64/mm/init.c early_mem/arm64_memblock_init (code index id 67191805689)";
const SRC_RESEARCH_ZONES = "research/rockchip-iommu.md §5.1";
const SRC_RESEARCH_ALLOC = "research/rockchip-iommu.md §5.2";
const SRC_FREE_AREA = "linux mm/mm_init.c free_area_init (zone spans, 'Zone ranges:' printout)";

/** Names of the zones in the order the kernel prints them (Movable and Device excluded). */
export type ZoneName = "DMA" | "DMA32" | "Normal";
/** The three zones, lowest first. */
export const ZONE_NAMES: readonly ZoneName[] = ["DMA", "DMA32", "Normal"];

/**
 * How a kernel computes the ZONE_DMA limit (arch/arm64/mm/init.c). For DRAM that starts below
 * 4 GiB without `dma-ranges` narrower than 32 bits, every rule but the first gives the same
 * layout (ZONE_DMA up to min(4 GiB, end of DRAM)); they differ for DRAM starting above 4 GiB,
 * for narrow `dma-ranges`, and v5.5-v5.10 as released used a fixed 30-bit ZONE_DMA.
 * - `bits30-offset` (v5.5-v5.10 as released, `ARM64_ZONE_DMA_BITS 30`): ZONE_DMA = first GiB.
 * - `dt-bits-offset` (v5.11-v5.14): bits = min(32, fls64(dt), fls64(iort));
 *   `max_zone_phys(bits) = min(offset + 2^bits, end)` with `offset = start & ~(4 GiB - 1)`.
 * - `dt-bits-mask` (v5.15-v6.11; backported to stable 5.10.y): mask = `DMA_BIT_MASK(bits)`,
 *   `PHYS_ADDR_MAX` if DRAM starts above 4 GiB, `U32_MAX` if it starts above the mask;
 *   `min(mask, end - 1) + 1`.
 * - `limit-clamp-in-max-zone-phys` (v6.12, `zone_dma_limit` from ba0fb44aed47): limit = min(dt,
 *   iort), clamped to `U32_MAX` inside `max_zone_phys()` when DRAM starts below 4 GiB.
 * - `limit-clamped` (v6.13+ and 6.12.y stable, "arm64: mm: Fix zone_dma_limit calculation"):
 *   the clamp moved onto `zone_dma_limit` itself; `max_zone_phys(l) = min(l, end - 1) + 1`.
 */
export type ZoneRule =
  | "bits30-offset"
  | "dt-bits-offset"
  | "dt-bits-mask"
  | "limit-clamp-in-max-zone-phys"
  | "limit-clamped";

const RULE_SOURCE: Record<ZoneRule, string> = {
  "bits30-offset":
    "linux arch/arm64/mm/init.c v5.5-v5.10 (ARM64_ZONE_DMA_BITS 30; removal seen in " +
    "'arm64: mm: Set ZONE_DMA size based on devicetree's dma-ranges', code index id 48483091374)",
  "dt-bits-offset":
    "linux arch/arm64/mm/init.c v5.11-v5.14 (max_zone_phys with DMA offset; code index ids " +
    "11037160289, 2993121210)",
  "dt-bits-mask":
    "linux arch/arm64/mm/init.c v5.15-v6.11 (zone_mask form; code index id 43521889282, " +
    "replaced in ba0fb44aed47 diff id 25172556371)",
  "limit-clamp-in-max-zone-phys":
    "linux arch/arm64/mm/init.c v6.12 (context of Yang Shi's fix, Nov 2024, " +
    "Cc stable 6.12+; code index id 1996596309)",
  "limit-clamped":
    "linux arch/arm64/mm/init.c v6.13+ dma_limits_init (code index ids 67191805689, 1996596309)",
};

/**
 * The rule a mainline release uses. Stable branches may carry later rules (5.10.y got the
 * DT/IORT sizing and the mask form; 6.12.y got the v6.13 fix), so prefer `measured` zones.
 */
export function zoneRuleForRelease(major: number, minor: number): ZoneRule {
  const v = major * 1000 + minor;
  if (v < 5011) return "bits30-offset";
  if (v < 5015) return "dt-bits-offset";
  if (v < 6012) return "dt-bits-mask";
  if (v < 6013) return "limit-clamp-in-max-zone-phys";
  return "limit-clamped";
}

/** Options of {@link computeZones}. */
export interface ZoneOptions {
  /** Limit rule; default `limit-clamped` (current mainline). */
  rule?: ZoneRule;
  /**
   * Highest CPU physical address every DMA master can reach according to DT `dma-ranges` / ACPI
   * IORT (`of_dma_get_max_cpu_address(NULL)`, inclusive). Omit when there is no such limit
   * (RK3568 and QEMU virt have none).
   */
  dmaMaxCpuAddress?: number;
  /** CONFIG_ZONE_DMA (default true, as in Debian arm64). */
  zoneDma?: boolean;
  /** CONFIG_ZONE_DMA32 (default true, as in Debian arm64). */
  zoneDma32?: boolean;
}

/** One zone. */
export interface Zone {
  /** Zone name (`DMA`, `DMA32`, `Normal`). */
  name: ZoneName;
  /** The span the kernel prints, half-open; `null` when the zone is empty. */
  span: PhysRange | null;
  /** DRAM inside the span (banks intersected with it). */
  present: PhysRange[];
  /** Bytes of DRAM inside the span. */
  presentBytes: number;
}

/** The zone layout of one boot. */
export interface ZoneLayout {
  /** Sorted, merged banks the layout was computed from. */
  banks: PhysRange[];
  /** Configured zones, lowest first (a zone compiled out is absent). */
  zones: Zone[];
  /** `arm64_dma_phys_limit` (exclusive): top of ZONE_DMA, also CMA's limit. */
  dmaPhysLimit: number;
  /** `ARCH_LOW_ADDRESS_LIMIT` = `arm64_dma_phys_limit - 1` (inclusive): SWIOTLB's ceiling. */
  archLowAddressLimit: number;
  /** `max_pfn << PAGE_SHIFT`: end of DRAM rounded down to a page. */
  maxPfnAddr: number;
  /** `memblock_phys_mem_size()`. */
  totalBytes: number;
  /** The facts the zones rest on, each with its source. */
  facts: Fact<unknown>[];
}

function checkAddr(x: number, what: string): void {
  if (!Number.isSafeInteger(x) || x < 0) throw new RangeError(`${what} is not an address: ${x}`);
}

/** Sort and merge banks like memblock does; empty banks are dropped. */
export function normalizeBanks(banks: readonly PhysRange[]): PhysRange[] {
  const list = banks.map((b, i) => {
    checkAddr(b.start, `bank ${i} start`);
    checkAddr(b.end, `bank ${i} end`);
    if (b.end < b.start) throw new RangeError(`bank ${i} ends before it starts`);
    return { start: b.start, end: b.end };
  }).filter((b) => b.end > b.start).sort((a, b) => a.start - b.start);
  const out: PhysRange[] = [];
  for (const b of list) {
    const last = out[out.length - 1];
    if (last && b.start <= last.end) last.end = Math.max(last.end, b.end);
    else out.push(b);
  }
  return out;
}

/** Sum of the sizes of ranges. */
export function totalSize(ranges: readonly PhysRange[]): number {
  return ranges.reduce((s, r) => s + (r.end - r.start), 0);
}

/** Intersections of `ranges` with `window`. */
export function clip(ranges: readonly PhysRange[], window: PhysRange): PhysRange[] {
  const out: PhysRange[] = [];
  for (const r of ranges) {
    const start = Math.max(r.start, window.start);
    const end = Math.min(r.end, window.end);
    if (end > start) out.push({ start, end });
  }
  return out;
}

/** Result of {@link applyMemLimit}. */
export interface MemLimitResult {
  /** Banks after `mem=`. */
  banks: PhysRange[];
  /** The first address removed, or null when nothing was removed. */
  cutAt: number | null;
  /** The facts the limit rests on, each with its source. */
  facts: Fact<unknown>[];
}

/**
 * Apply `mem=` the arm64 way: keep the first `memLimit` bytes of memory in address order
 * (`__find_max_addr`, then `memblock_cap_memory_range(0, max_addr)`); the bank holding the last
 * kept byte is cut. `memLimit` is page-masked first (`early_mem`). 0 or undefined: no limit;
 * a limit at or above the total: nothing removed. When `kernelImage` is given it is added back,
 * as `arm64_memblock_init` does.
 */
export function applyMemLimit(
  banks: readonly PhysRange[],
  memLimit?: number,
  kernelImage?: PhysRange,
): MemLimitResult {
  const norm = normalizeBanks(banks);
  const facts: Fact<unknown>[] = [];
  if (memLimit === undefined || memLimit === 0) {
    facts.push(fact("mem.limit", null, SRC_ARM64_MEM, "input", "no mem= limit"));
    return { banks: norm, cutAt: null, facts };
  }
  checkAddr(memLimit, "mem= limit");
  const limit = Math.floor(memLimit / PAGE) * PAGE;
  facts.push(fact("mem.limit", limit, SRC_ARM64_MEM, "input", "memparse(p) & PAGE_MASK"));
  if (limit === 0) return { banks: norm, cutAt: null, facts };
  let left = limit;
  let maxAddr: number | null = null;
  for (const b of norm) {
    const size = b.end - b.start;
    if (left <= size) {
      maxAddr = b.start + left;
      break;
    }
    left -= size;
  }
  facts.push(
    fact(
      "mem.rule",
      "keep the first N bytes of memory in address order",
      SRC_MEMBLOCK,
      "verified",
    ),
  );
  if (maxAddr === null) {
    facts.push(
      fact("mem.cutAt", null, SRC_MEMBLOCK, "derived", "limit >= total memory: nothing removed"),
    );
    return { banks: norm, cutAt: null, facts };
  }
  const cutAt = maxAddr;
  let kept = clip(norm, { start: 0, end: cutAt });
  facts.push(fact("mem.cutAt", cutAt, SRC_MEMBLOCK, "derived"));
  if (kernelImage) {
    kept = normalizeBanks([...kept, kernelImage]);
    facts.push(fact("mem.kernelImageReadded", kernelImage, SRC_ARM64_MEM, "verified"));
  }
  return { banks: kept, cutAt, facts };
}

function fls64(x: number): number {
  let bits = 0;
  while (bits < 64 && 2 ** bits <= x) bits++;
  return bits;
}

/** ZONE_DMA and ZONE_DMA32 limits (exclusive) for a rule. */
function zoneLimits(
  rule: ZoneRule,
  start: number,
  end: number,
  dmaMax: number,
): { dma: number; dma32: number } {
  const offset = start - (start % FOUR_GIB);
  const offsetRule = (bits: number) => Math.min(offset + 2 ** bits, end);
  const maskRule = (bits: number) => {
    let mask = 2 ** bits - 1;
    if (start > U32_MAX) mask = PHYS_ADDR_MAX;
    else if (start > mask) mask = U32_MAX;
    return Math.min(mask, end - 1) + 1;
  };
  const dtBits = Math.min(32, fls64(dmaMax));
  switch (rule) {
    case "bits30-offset":
      return { dma: offsetRule(30), dma32: offsetRule(32) };
    case "dt-bits-offset":
      return { dma: offsetRule(dtBits), dma32: offsetRule(32) };
    case "dt-bits-mask":
      return { dma: maskRule(dtBits), dma32: maskRule(32) };
    case "limit-clamp-in-max-zone-phys": {
      const mzp = (limit: number) => {
        const l = start < U32_MAX ? Math.min(limit, U32_MAX) : limit;
        return Math.min(l, end - 1) + 1;
      };
      return { dma: mzp(dmaMax), dma32: mzp(U32_MAX) };
    }
    case "limit-clamped": {
      const l = start < U32_MAX ? Math.min(dmaMax, U32_MAX) : dmaMax;
      return { dma: Math.min(l, end - 1) + 1, dma32: Math.min(U32_MAX, end - 1) + 1 };
    }
  }
}

/**
 * The zone layout arm64 computes for these banks (after `mem=`). Throws RangeError for banks
 * that are not addresses or an empty bank list.
 */
export function computeZones(banks: readonly PhysRange[], opts: ZoneOptions = {}): ZoneLayout {
  const norm = normalizeBanks(banks);
  if (norm.length === 0) throw new RangeError("computeZones: no memory");
  const rule = opts.rule ?? "limit-clamped";
  const zoneDma = opts.zoneDma ?? true;
  const zoneDma32 = opts.zoneDma32 ?? true;
  const dmaMax = opts.dmaMaxCpuAddress ?? PHYS_ADDR_MAX;
  const start = norm[0].start;
  const end = norm[norm.length - 1].end;
  const facts: Fact<unknown>[] = [
    fact("memory.banks", norm, "input", "input"),
    fact("memory.start", start, "memblock_start_of_DRAM", "derived"),
    fact("memory.end", end, "memblock_end_of_DRAM (exclusive)", "derived"),
    fact("zones.rule", rule, RULE_SOURCE[rule], "verified"),
    fact(
      "zones.dmaMaxCpuAddress",
      opts.dmaMaxCpuAddress ?? null,
      "DT dma-ranges / ACPI IORT",
      "input",
      opts.dmaMaxCpuAddress === undefined ? "no restriction (PHYS_ADDR_MAX)" : undefined,
    ),
  ];
  const lim = zoneLimits(rule, start, end, dmaMax);
  let dmaPhysLimit: number;
  if (zoneDma) dmaPhysLimit = lim.dma;
  else if (zoneDma32) dmaPhysLimit = lim.dma32;
  else dmaPhysLimit = PHYS_ADDR_MAX;
  const maxPfnAddr = Math.floor(end / PAGE) * PAGE;
  const limits: [ZoneName, number][] = [];
  if (zoneDma) limits.push(["DMA", Math.floor(lim.dma / PAGE) * PAGE]);
  if (zoneDma32) limits.push(["DMA32", Math.floor(lim.dma32 / PAGE) * PAGE]);
  limits.push(["Normal", maxPfnAddr]);
  let zoneStart = Math.floor(start / PAGE) * PAGE;
  const zones: Zone[] = [];
  for (const [name, limit] of limits) {
    const zoneEnd = Math.max(limit, zoneStart);
    const span = zoneEnd > zoneStart ? { start: zoneStart, end: zoneEnd } : null;
    const present = span ? clip(norm, span) : [];
    zones.push({ name, span, present, presentBytes: totalSize(present) });
    zoneStart = zoneEnd;
  }
  facts.push(
    fact("zones.dmaPhysLimit", dmaPhysLimit, RULE_SOURCE[rule], "derived", "arm64_dma_phys_limit"),
    fact(
      "zones.spans",
      zones.map((z) => ({ name: z.name, span: z.span })),
      SRC_FREE_AREA,
      "derived",
    ),
    fact(
      "zones.rk3568",
      "ZONE_DMA covers up to 4 GiB, ZONE_DMA32 is empty",
      SRC_RESEARCH_ZONES,
      "derived",
    ),
  );
  return {
    banks: norm,
    zones,
    dmaPhysLimit,
    archLowAddressLimit: dmaPhysLimit - 1,
    maxPfnAddr,
    totalBytes: totalSize(norm),
    facts,
  };
}

/** The zone called `name` in a layout, if configured. */
export function zoneOf(layout: ZoneLayout, name: ZoneName): Zone | undefined {
  return layout.zones.find((z) => z.name === name);
}

/** Where ranges lie relative to 4 GiB. */
export type Side4G = "below" | "above" | "straddles" | "none";

/** Whether `ranges` lie below 4 GiB, above it, on both sides, or are empty. */
export function side4G(ranges: readonly PhysRange[]): Side4G {
  if (ranges.length === 0) return "none";
  const below = ranges.some((r) => r.start < FOUR_GIB);
  const above = ranges.some((r) => r.end > FOUR_GIB);
  return below && above ? "straddles" : above ? "above" : "below";
}

/** A zone a page may come from. */
export interface ZoneCandidate {
  /** Zone name. */
  name: ZoneName;
  /** The zone's memory (physical ranges, bytes). */
  present: PhysRange[];
  /** Bytes of memory in the zone. */
  presentBytes: number;
  /** Whether the zone lies below, above or across 4 GiB. */
  side: Side4G;
}

/** Result of {@link placeAllocation}. */
export interface Placement {
  /** The GFP zone modifier of the request. */
  gfpZone: GfpZone;
  /** `gfp_zone()`: the highest zone the request may use. */
  highestZone: ZoneName;
  /** First populated zone of the zonelist, or null when none can serve it. */
  preferred: ZoneCandidate | null;
  /** Populated lower zones tried next, in order. */
  fallbacks: ZoneCandidate[];
  /** Zones skipped because they are empty. */
  skippedEmpty: ZoneName[];
  /** There is a candidate zone and every one (preferred and fallbacks) lies above 4 GiB. */
  certainlyAbove4G: boolean;
  /** Some candidate zone lies above or across 4 GiB. */
  possiblyAbove4G: boolean;
  /** There is a candidate zone and every one lies below 4 GiB. */
  certainlyBelow4G: boolean;
  /** When the answer depends on free memory, what it depends on. */
  condition: string;
  /**
   * rkhil's derived modelling rule, not kernel behaviour: the preferred zone is the likely source
   * unless it holds less than `smallZoneBytes` (default 64 MiB), in which case it is assumed
   * exhausted by early boot and the first fallback is the likely source.
   */
  likely: { zone: ZoneName; side: Side4G; rule: string } | null;
  /** The facts the placement rests on, each with its source. */
  facts: Fact<unknown>[];
}

/** Default threshold of the `likely` rule: 64 MiB. */
export const SMALL_ZONE_BYTES = 64 * 1024 * 1024;

function mib(n: number): string {
  const v = n / (1024 * 1024);
  return Number.isInteger(v) ? `${v} MiB` : `${v.toFixed(2)} MiB`;
}

function describe(c: ZoneCandidate): string {
  const where = c.present.map((r) => `0x${r.start.toString(16)}-0x${r.end.toString(16)}`).join(
    ", ",
  );
  return `ZONE_${c.name.toUpperCase()} (${mib(c.presentBytes)} at ${where})`;
}

/**
 * Where a page allocation with these zone flags comes from (`gfp_zone` + zonelist fallback
 * NORMAL -> DMA32 -> DMA, empty zones skipped).
 */
export function placeAllocation(
  layout: ZoneLayout,
  gfpZone: GfpZone,
  opts: { smallZoneBytes?: number } = {},
): Placement {
  const small = opts.smallZoneBytes ?? SMALL_ZONE_BYTES;
  const configured = layout.zones.map((z) => z.name);
  let highestZone: ZoneName = gfpZone === "GFP_DMA"
    ? "DMA"
    : gfpZone === "GFP_DMA32"
    ? "DMA32"
    : "Normal";
  // A zone modifier for a zone compiled out maps to the next zone up (DMA -> DMA32 -> Normal).
  while (!configured.includes(highestZone)) {
    highestZone = highestZone === "DMA" ? "DMA32" : "Normal";
  }
  const facts: Fact<unknown>[] = [
    fact("alloc.gfpZone", gfpZone, "input", "input"),
    fact("alloc.highestZone", highestZone, SRC_RESEARCH_ALLOC, "verified", "gfp_zone()"),
    fact(
      "alloc.fallback",
      "NORMAL -> DMA32 -> DMA, skipping empty zones",
      SRC_RESEARCH_ALLOC,
      "verified",
    ),
  ];
  const order = [...layout.zones].reverse();
  const from = order.findIndex((z) => z.name === highestZone);
  const skippedEmpty: ZoneName[] = [];
  const candidates: ZoneCandidate[] = [];
  for (const z of order.slice(from)) {
    if (z.presentBytes === 0) skippedEmpty.push(z.name);
    else {
      candidates.push({
        name: z.name,
        present: z.present,
        presentBytes: z.presentBytes,
        side: side4G(z.present),
      });
    }
  }
  const [preferred = null, ...fallbacks] = candidates;
  const sides = candidates.map((c) => c.side);
  const certainlyAbove4G = sides.length > 0 && sides.every((s) => s === "above");
  const certainlyBelow4G = sides.length > 0 && sides.every((s) => s === "below");
  const possiblyAbove4G = sides.some((s) => s === "above" || s === "straddles");
  let condition: string;
  let likely: Placement["likely"] = null;
  if (preferred === null) {
    condition = "no populated zone can serve this request: the allocation fails";
  } else if (fallbacks.length === 0) {
    condition = `always from ${describe(preferred)}, the only populated zone allowed`;
    likely = { zone: preferred.name, side: preferred.side, rule: "only candidate" };
  } else {
    condition = `from ${describe(preferred)} while it has free pages above its watermark; ` +
      `once exhausted, falls back to ${fallbacks.map(describe).join(", then ")} ` +
      `(lowmem_reserve keeps part of each lower zone for requests that need it)`;
    if (preferred.presentBytes < small) {
      likely = {
        zone: fallbacks[0].name,
        side: fallbacks[0].side,
        rule:
          `derived rule: ZONE_${preferred.name.toUpperCase()} holds only ${
            mib(preferred.presentBytes)
          } ` +
          `(< ${mib(small)}) and is assumed exhausted by early boot, so ZONE_${
            fallbacks[0].name.toUpperCase()
          } is the likely source`,
      };
      condition += `; ZONE_${preferred.name.toUpperCase()} is small (${
        mib(preferred.presentBytes)
      })`;
    } else {
      likely = {
        zone: preferred.name,
        side: preferred.side,
        rule: `derived rule: the preferred zone holds ${mib(preferred.presentBytes)} (>= ${
          mib(small)
        })`,
      };
    }
  }
  facts.push(
    fact("alloc.skippedEmpty", skippedEmpty, SRC_RESEARCH_ALLOC, "derived"),
    fact("alloc.preferred", preferred?.name ?? null, SRC_RESEARCH_ALLOC, "derived"),
    fact(
      "alloc.likely",
      likely,
      "rkhil modelling rule (oracle/memory.ts SMALL_ZONE_BYTES)",
      "derived",
    ),
  );
  return {
    gfpZone,
    highestZone,
    preferred,
    fallbacks,
    skippedEmpty,
    certainlyAbove4G,
    possiblyAbove4G,
    certainlyBelow4G,
    condition,
    likely,
    facts,
  };
}
