/**
 * Where a `cma=` area lands at boot, and what it takes away from page-table allocations.
 *
 * Kernel facts (code index, see the sources below):
 * - kernel/dma/contiguous.c `dma_contiguous_reserve(limit)`, called by arm64 with
 *   `arm64_dma_phys_limit`: with `cma=size@base[-end]`, `selected_limit =
 *   min_not_zero(limit_cmdline, limit)`, and the area is fixed when `base + size ==
 *   limit_cmdline` (`cma=size@base` sets `limit_cmdline = base + size`). Feng Tang's "dma-contiguous:
 *   hornor the cma address limit setup by user" (posted 2025-06-12) makes it `limit_cmdline ?:
 *   limit`: taken here as in mainline from 6.17 on, which is an assumption (confidence
 *   "reported").
 * - mm/cma.c `cma_declare_contiguous_nid`: a fixed base must be aligned (`Region at %pa must be
 *   aligned to %pa bytes`); `limit` above memblock_end becomes memblock_end; `base + size >
 *   limit` fails with `Size (%pa) of region at %pa exceeds limit (%pa)`; every failure ends in
 *   `Failed to reserve %ld MiB`. A dynamic area is tried bottom-up from 4 GiB first when memory
 *   reaches 4 GiB + size, else top-down below the limit.
 * - MIGRATE_CMA pageblocks serve only movable allocations (mm/page_alloc.c
 *   `__rmqueue` falls back to CMA for `ALLOC_CMA` = movable requests only), so page-table
 *   pages, which are unmovable kernel allocations, never come from a CMA area.
 * - Order at boot on arm64: CMA is reserved in `bootmem_init` (early), SWIOTLB in `mem_init`
 *   (later), both by memblock top-down below the DMA limit: a CMA area below that limit pushes
 *   the SWIOTLB buffer under it.
 *
 * Pure: no I/O.
 *
 * @module
 */
import type { CmaArg } from "./bootargs.ts";
import { clip, FOUR_GIB, type ZoneLayout } from "./memory.ts";
import { fmtPa } from "./printk.ts";
import { type Fact, fact, type PhysRange } from "./types.ts";

const SRC_CONTIG = "linux kernel/dma/contiguous.c dma_contiguous_reserve (code index id 27489110)";
const SRC_CMA = "linux mm/cma.c cma_declare_contiguous_nid (code index ids 33697445334, 54402060)";
const SRC_HONOR =
  "Feng Tang, [PATCH] dma-contiguous: hornor the cma address limit setup by user, " +
  "2025-06-12, Message-Id 20250612021417.44929-1-feng.tang@linux.alibaba.com (id 45944957543)";
const SRC_MOVABLE = "linux mm/page_alloc.c: MIGRATE_CMA pageblocks serve movable allocations only";

/** Where the CMA area is. */
export interface CmaPlacement {
  /** `none`: no cma= given; `fixed`: at the given base; `bounded`: somewhere inside `range`. */
  kind: "none" | "fixed" | "bounded" | "failed";
  /** Size of the area in bytes (0 for `none`). */
  sizeBytes: number;
  /** fixed: the area; bounded: the window it lies in. */
  range?: PhysRange;
  /** The limit the kernel applies (exclusive). */
  limit?: number;
  /** Why the area lands there (or failed), in one sentence. */
  reason: string;
  /** Kernel log lines this predicts (mm/cma.c `pr_fmt` is `cma: `). */
  logLines: string[];
  /** The facts the placement rests on, each with its source. */
  facts: Fact<unknown>[];
}

/** True when the release takes the user's cma= limit over the architecture's (see module). */
export function honoursUserLimit(
  release: { major: number; minor: number } | null | undefined,
): boolean {
  return release != null && (release.major > 6 || (release.major === 6 && release.minor >= 17));
}

/** Place the `cma=` area of a boot (see the module documentation for the kernel rules). */
export function placeCma(
  layout: ZoneLayout,
  arg: CmaArg | undefined,
  release: { major: number; minor: number } | null | undefined,
): CmaPlacement {
  if (!arg) {
    return {
      kind: "none",
      sizeBytes: 0,
      reason: "no cma= given (a CONFIG_CMA_SIZE default area is not modelled; it would lie " +
        "top-down below the DMA limit and, like any CMA area, hold no page tables)",
      logLines: [],
      facts: [],
    };
  }
  const size = arg.size.bytes;
  const base = arg.base?.bytes ?? 0;
  const limitCmdline = arg.limit ?? 0;
  const archLimit = layout.dmaPhysLimit;
  const honour = honoursUserLimit(release);
  let limit = honour
    ? (limitCmdline || archLimit)
    : Math.min(...[limitCmdline, archLimit].filter((x) => x > 0));
  let fixed = base !== 0 && base + size === limitCmdline;
  const alignment = release && (release.major > 5 || release.minor >= 19) ? 2 ** 21 : 2 ** 22;
  const memEnd = layout.banks.length ? layout.banks[layout.banks.length - 1].end : 0;
  const facts: Fact<unknown>[] = [
    fact("cma.cmdline", arg.raw, "boot arguments", "input"),
    fact(
      "cma.archLimit",
      archLimit,
      `${SRC_CONTIG}: arm64 passes arm64_dma_phys_limit`,
      "verified",
    ),
    fact(
      "cma.limitRule",
      honour ? "limit_cmdline ?: limit" : "min_not_zero(limit_cmdline, limit)",
      honour ? SRC_HONOR : SRC_CONTIG,
      honour ? "reported" : "verified",
      honour ? "assumed merged for 6.17; not confirmed from a release tree" : undefined,
    ),
    fact("cma.fixed", fixed, `${SRC_CONTIG}: fixed when base + size == limit_cmdline`, "verified"),
    fact("cma.unmovableOnly", "page tables never come from CMA", SRC_MOVABLE, "verified"),
  ];
  const mib = Math.floor(size / 2 ** 20);
  const fail = (why: string, line?: string): CmaPlacement => ({
    kind: "failed",
    sizeBytes: size,
    limit,
    reason: `not reserved: ${why}`,
    logLines: [...(line ? [`cma: ${line}`] : []), `cma: Failed to reserve ${mib} MiB`],
    facts: [...facts, fact("cma.failure", why, SRC_CMA, "verified")],
  });
  if (fixed && base % alignment !== 0) {
    return fail(
      `base ${fmtPa(base)} is not aligned to ${alignment / 2 ** 20} MiB`,
      `Region at ${fmtPa(base)} must be aligned to ${fmtPa(alignment)} bytes`,
    );
  }
  if (base === 0) fixed = false;
  if (limit === 0 || limit > memEnd) limit = memEnd;
  const alignedBase = Math.ceil(base / alignment) * alignment;
  const alignedSize = Math.ceil(size / alignment) * alignment;
  if (alignedBase + alignedSize > limit) {
    return fail(
      `${mib} MiB at ${fmtPa(alignedBase)} ends above the limit ${fmtPa(limit)}` +
        (!honour && limitCmdline > archLimit
          ? " (this kernel caps the user's limit at arm64_dma_phys_limit)"
          : ""),
      `Size (${fmtPa(alignedSize)}) of region at ${fmtPa(alignedBase)} exceeds limit (${
        fmtPa(limit)
      })`,
    );
  }
  if (fixed) {
    const range = { start: base, end: base + alignedSize };
    const inRam = layout.banks.some((b) => b.start <= range.start && range.end <= b.end);
    if (!inRam) return fail(`[${fmtPa(range.start)}, ${fmtPa(range.end)}) is not all RAM`);
    return {
      kind: "fixed",
      sizeBytes: alignedSize,
      range,
      limit,
      reason: `${mib} MiB fixed at ${fmtPa(base)}`,
      logLines: [`cma: Reserved ${mib} MiB at ${fmtPa(base)} on node -1`],
      facts,
    };
  }
  // Dynamic: bottom-up from 4 GiB when memory reaches that far, else top-down below the limit.
  const up = memEnd >= FOUR_GIB + alignedSize && limit > FOUR_GIB
    ? clip(layout.banks, { start: Math.max(FOUR_GIB, alignedBase), end: limit })
      .find((r) => r.end - r.start >= alignedSize)
    : undefined;
  const window = up ?? { start: alignedBase, end: limit };
  return {
    kind: "bounded",
    sizeBytes: alignedSize,
    range: window,
    limit,
    reason: up
      ? `${mib} MiB bottom-up from ${fmtPa(up.start)} (memory reaches 4 GiB + size)`
      : `${mib} MiB top-down below ${fmtPa(limit)}, under earlier reservations`,
    logLines: [],
    facts,
  };
}

/** The zones' memory without the CMA area: what an unmovable page (a page table) can use. */
export function withoutCma(layout: ZoneLayout, cma: CmaPlacement): ZoneLayout {
  if (cma.kind !== "fixed" || !cma.range) return layout;
  const r = cma.range;
  const cut = (ranges: readonly PhysRange[]): PhysRange[] =>
    ranges.flatMap((x) =>
      [{ start: x.start, end: Math.min(x.end, r.start) }, {
        start: Math.max(x.start, r.end),
        end: x.end,
      }].filter((y) => y.end > y.start)
    );
  return {
    ...layout,
    zones: layout.zones.map((z) => {
      const present = cut(z.present);
      return { ...z, present, presentBytes: present.reduce((s, x) => s + x.end - x.start, 0) };
    }),
  };
}
