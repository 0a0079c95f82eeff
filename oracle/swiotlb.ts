/**
 * The default SWIOTLB buffer (whether, how big, where) and `dma_map_single()` on dma-direct.
 *
 * Sources:
 * - arm64 `arch_mm_preinit()` / `mem_init()` (arch/arm64/mm/init.c, code index id 67191805689):
 *   SWIOTLB is needed when `max_pfn > PFN_DOWN(arm64_dma_phys_limit)`; otherwise, with
 *   CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC, a reduced buffer of 1 MB per GB of RAM
 *   (`DIV_ROUND_UP(memblock_phys_mem_size(), 1024)`) is still set up.
 * - kernel/dma/swiotlb.c (code index ids 26939301, 57323343): `setup_io_tlb_npages`,
 *   `swiotlb_adjust_size` (only while the size is still the 64 MiB default), `swiotlb_adjust_nareas`
 *   and `round_up_default_nslabs` (areas default to `num_possible_cpus()`; slabs round up to a
 *   power of two and to at least 128 per area), `swiotlb_init_remap` (no buffer unless needed
 *   or forced; `noforce` disables it; allocation by `memblock_alloc_low()`, retried at half the
 *   size down to 1 MiB), `swiotlb_print_info`.
 * - memblock top-down allocation (`__memblock_find_range_top_down`): the highest free,
 *   page-aligned spot whose end is at most `ARCH_LOW_ADDRESS_LIMIT` (= limit - 1, used as an
 *   exclusive end, so a buffer touching the limit ends one page below it).
 * - dma-direct `dma_direct_map_page` / `dma_capable` (research/rockchip-iommu.md §5.4).
 *
 * @module
 */

import { type Fact, fact, type PhysRange } from "./types.ts";
import type { BootArgs } from "./bootargs.ts";
import type { ZoneLayout } from "./memory.ts";
import { renderSwiotlbLine } from "./memory_log.ts";
import { fmtPa } from "./printk.ts";
import { roundUpPow2 } from "./bits.ts";

/** `IO_TLB_DEFAULT_SIZE`: 64 MiB. */
export const IO_TLB_DEFAULT_SIZE = 64 * 1024 * 1024;
/** `IO_TLB_SIZE`: one slab, 2 KiB. */
export const IO_TLB_SIZE = 2048;
/** `IO_TLB_SEGSIZE`: slabs per segment; also the largest single mapping (256 KiB). */
export const IO_TLB_SEGSIZE_SLABS = 128;
/** `IO_TLB_MIN_SLABS`: 1 MiB, the smallest size the halving retry goes down to. */
export const IO_TLB_MIN_SLABS = (1024 * 1024) / IO_TLB_SIZE;

const SRC_ARM64 = "linux arch/arm64/mm/init.c arch_mm_preinit (code index id 67191805689); " +
  "research/rockchip-iommu.md §5.3";
const SRC_SWIOTLB = "linux kernel/dma/swiotlb.c (code index ids 26939301, 57323343)";
const SRC_MEMBLOCK_TOPDOWN = "linux mm/memblock.c __memblock_find_range_top_down";
const SRC_DIRECT = "linux kernel/dma/direct.h dma_direct_map_page; research/rockchip-iommu.md §5.4";

/** Kernel facts SWIOTLB depends on. */
export interface SwiotlbKernelFacts {
  /** CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC (arm64 selects it from v6.5). */
  bounceUnalignedKmalloc: boolean;
  /** `num_possible_cpus()`, the default number of areas. Unknown: assumed 1 (noted). */
  possibleCpus?: number;
  /**
   * Memblock reservations that exist when SWIOTLB is allocated (kernel image, DT
   * reserved-memory, CMA, crashkernel, ...). Supply them all to get an exact address; without
   * them the window is only bounded.
   */
  reservations?: PhysRange[];
}

/** Where the window is. */
export type SwiotlbPlacement =
  | { kind: "exact"; window: PhysRange }
  | {
    kind: "bounded";
    /** The window lies inside this range (its end is at most `within.end`). */
    within: PhysRange;
    /** The highest position possible (no earlier reservation below the limit). */
    highest: PhysRange;
  }
  | { kind: "none" };

/** Result of {@link swiotlbWindow}. */
export interface SwiotlbWindow {
  /** True when the kernel sets up a SWIOTLB buffer at all. */
  enabled: boolean;
  /** `swiotlb=force`: every mapping bounces. */
  forced: boolean;
  /** The reduced 1 MB/GB buffer for unaligned kmalloc bouncing. */
  reduced: boolean;
  /** Why it is (or is not) set up and sized so, in words. */
  reason: string;
  /** Number of 2 KiB slabs (`IO_TLB_SIZE`). */
  nslabs: number;
  /** Size of the buffer in bytes. */
  sizeBytes: number;
  /** Where the buffer lies: exactly, within a range, or nowhere (`none`: disabled or no room). */
  placement: SwiotlbPlacement;
  /** The boot-log line, when the address is exactly known. */
  logLine: string | null;
  /** The facts the window rests on, each with its source. */
  facts: Fact<unknown>[];
}

function isPow2(n: number): boolean {
  return n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** `round_up_default_nslabs()`. */
function roundUpNslabs(nslabs: number, nareas: number): number {
  if (nareas === 0) return nslabs;
  let n = nslabs;
  if (n < IO_TLB_SEGSIZE_SLABS * nareas) n = IO_TLB_SEGSIZE_SLABS * nareas;
  else if (isPow2(n)) return n;
  return roundUpPow2(n);
}

/** Free memory (banks minus reservations), sorted. */
function freeRanges(banks: readonly PhysRange[], reserved: readonly PhysRange[]): PhysRange[] {
  let free = banks.map((b) => ({ ...b }));
  for (const r of reserved) {
    const next: PhysRange[] = [];
    for (const f of free) {
      if (r.end <= f.start || r.start >= f.end) next.push(f);
      else {
        if (r.start > f.start) next.push({ start: f.start, end: r.start });
        if (r.end < f.end) next.push({ start: r.end, end: f.end });
      }
    }
    free = next;
  }
  return free.sort((a, b) => a.start - b.start);
}

/** `memblock_alloc_low` top-down: highest page-aligned fit ending at most at `endExcl`. */
function topDown(free: readonly PhysRange[], size: number, endExcl: number): number | null {
  for (let i = free.length - 1; i >= 0; i--) {
    const thisEnd = Math.min(free[i].end, endExcl);
    if (thisEnd < size) continue;
    const cand = Math.floor((thisEnd - size) / 4096) * 4096;
    if (cand >= free[i].start) return cand;
  }
  return null;
}

/**
 * Predict the default SWIOTLB buffer: whether it is set up, its size and its placement.
 */
export function swiotlbWindow(
  layout: ZoneLayout,
  bootargs: Pick<BootArgs, "swiotlb">,
  kernel: SwiotlbKernelFacts,
): SwiotlbWindow {
  const facts: Fact<unknown>[] = [];
  const arg = bootargs.swiotlb;
  const force = arg?.force ?? false;
  const noforce = arg?.noforce ?? false;
  const cpusKnown = kernel.possibleCpus !== undefined;
  const cpus = kernel.possibleCpus ?? 1;
  const addressingLimit = layout.maxPfnAddr > layout.dmaPhysLimit;
  facts.push(
    fact("swiotlb.maxPfnAddr", layout.maxPfnAddr, "zone layout", "derived"),
    fact("swiotlb.dmaPhysLimit", layout.dmaPhysLimit, "zone layout", "derived"),
    fact(
      "swiotlb.ramAboveDmaLimit",
      addressingLimit,
      SRC_ARM64,
      "derived",
      "max_pfn > PFN_DOWN(arm64_dma_phys_limit)",
    ),
    fact("swiotlb.bounceUnalignedKmalloc", kernel.bounceUnalignedKmalloc, "kernel config", "input"),
    fact("swiotlb.cmdline", arg ?? null, "boot arguments", "input"),
  );
  let nslabs = IO_TLB_DEFAULT_SIZE / IO_TLB_SIZE;
  let nareas = 0;
  if (arg?.slabs !== undefined) nslabs = arg.slabs;
  if (arg?.areas !== undefined) {
    nareas = arg.areas;
    nslabs = roundUpNslabs(nslabs, nareas);
  }
  let needed = addressingLimit;
  let reduced = false;
  if (kernel.bounceUnalignedKmalloc && !needed) {
    const want = Math.ceil(layout.totalBytes / 1024);
    if (nslabs === IO_TLB_DEFAULT_SIZE / IO_TLB_SIZE) {
      const size = Math.min(nslabs * IO_TLB_SIZE, want);
      const aligned = Math.ceil(size / IO_TLB_SIZE);
      nslabs = Math.ceil(aligned / IO_TLB_SEGSIZE_SLABS) * IO_TLB_SEGSIZE_SLABS;
      nslabs = roundUpNslabs(nslabs, nareas);
      reduced = true;
    }
    needed = true;
    facts.push(
      fact(
        "swiotlb.reducedRequest",
        want,
        SRC_ARM64,
        "verified",
        "no bouncing needed for ZONE_DMA: 1 MB per GB of RAM for kmalloc() bouncing",
      ),
    );
  }
  const off = (reason: string): SwiotlbWindow => {
    facts.push(fact("swiotlb.enabled", false, SRC_SWIOTLB, "derived", reason));
    return {
      enabled: false,
      forced: false,
      reduced: false,
      reason,
      nslabs: 0,
      sizeBytes: 0,
      placement: { kind: "none" },
      logLine: null,
      facts,
    };
  };
  if (!needed && !force) {
    return off("no RAM above the DMA limit, not forced, and no unaligned-kmalloc bouncing");
  }
  if (noforce) return off("swiotlb=noforce disables the buffer");
  if (nareas === 0) {
    nareas = roundUpPow2(cpus);
    nslabs = roundUpNslabs(nslabs, nareas);
    facts.push(
      fact(
        "swiotlb.areas",
        nareas,
        SRC_SWIOTLB,
        cpusKnown ? "derived" : "unknown",
        cpusKnown ? "num_possible_cpus()" : "CPU count unknown: 1 assumed (affects rounding only)",
      ),
    );
  }
  const reason = force
    ? "swiotlb=force"
    : addressingLimit
    ? "RAM above the DMA limit"
    : "reduced buffer for unaligned kmalloc() bouncing (CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC)";
  // memblock_alloc_low: below ARCH_LOW_ADDRESS_LIMIT, used as an exclusive end.
  const endExcl = layout.archLowAddressLimit;
  const lowBanks = layout.banks;
  let placement: SwiotlbPlacement;
  let logLine: string | null = null;
  const tryAlloc = (free: PhysRange[]): { start: number; slabs: number } | null => {
    let n = nslabs;
    for (;;) {
      const bytes = Math.ceil((n * IO_TLB_SIZE) / 4096) * 4096;
      const at = topDown(free, bytes, endExcl);
      if (at !== null) return { start: at, slabs: n };
      if (n <= IO_TLB_MIN_SLABS) return null;
      n = Math.ceil(Math.floor(n / 2) / IO_TLB_SEGSIZE_SLABS) * IO_TLB_SEGSIZE_SLABS;
    }
  };
  if (kernel.reservations) {
    const got = tryAlloc(freeRanges(lowBanks, kernel.reservations));
    if (!got) {
      facts.push(fact("swiotlb.placement", "No low mem", SRC_SWIOTLB, "derived"));
      return {
        enabled: false,
        forced: force,
        reduced,
        reason: 'no low memory for the buffer ("software IO TLB: No low mem" is not printed: ' +
          "the allocation failed before)",
        nslabs: 0,
        sizeBytes: 0,
        placement: { kind: "none" },
        logLine: null,
        facts,
      };
    }
    nslabs = got.slabs;
    const window = { start: got.start, end: got.start + nslabs * IO_TLB_SIZE };
    placement = { kind: "exact", window };
    logLine = renderSwiotlbLine(window);
    facts.push(
      fact(
        "swiotlb.placement",
        window,
        SRC_MEMBLOCK_TOPDOWN,
        "derived",
        "reservations supplied by the caller",
      ),
    );
  } else {
    const got = tryAlloc(freeRanges(lowBanks, []));
    if (!got) {
      placement = { kind: "none" };
      facts.push(fact("swiotlb.placement", "no low memory", SRC_MEMBLOCK_TOPDOWN, "derived"));
    } else {
      const size = got.slabs * IO_TLB_SIZE;
      const highest = { start: got.start, end: got.start + size };
      placement = {
        kind: "bounded",
        within: { start: lowBanks[0].start, end: highest.end },
        highest,
      };
      facts.push(
        fact(
          "swiotlb.placement",
          placement,
          SRC_MEMBLOCK_TOPDOWN,
          "unknown",
          `somewhere below ${fmtPa(highest.end)}: top-down below ARCH_LOW_ADDRESS_LIMIT ` +
            `${fmtPa(endExcl)}, under earlier top-down reservations (CMA, ...) not supplied`,
        ),
      );
    }
  }
  facts.push(
    fact("swiotlb.enabled", true, SRC_SWIOTLB, "derived", reason),
    fact("swiotlb.nslabs", nslabs, SRC_SWIOTLB, "derived"),
    fact("swiotlb.forced", force, SRC_SWIOTLB, "derived"),
  );
  return {
    enabled: true,
    forced: force,
    reduced,
    reason,
    nslabs,
    sizeBytes: nslabs * IO_TLB_SIZE,
    placement,
    logLine,
    facts,
  };
}

/** Outcome of {@link dmaMapSingle}. */
export type DmaMapOutcome =
  | { kind: "direct"; dma: number; facts: Fact<unknown>[] }
  | {
    kind: "bounced";
    /** Range the bounce slot lies in (exact window or its bound), and its alignment. */
    slotRange: PhysRange;
    alignment: number;
    /** Whether the bounce address satisfies the mask: unknown when the window is only bounded. */
    capable: boolean | "unknown";
    forced: boolean;
    facts: Fact<unknown>[];
  }
  | { kind: "failed"; message: string; facts: Fact<unknown>[] };

/** Options of {@link dmaMapSingle}. */
export interface DmaMapOptions {
  /** `dev->bus_dma_limit` (0 = none, the RK3568 case). */
  busDmaLimit?: number;
  /** `dev_name` prefix for the warning, e.g. `rk_iommu fde4b000.iommu`. */
  device?: string;
}

function hexNoPrefix(n: number): string {
  return n.toString(16);
}

/**
 * `dma_map_single(dev, phys, size, dir)` on dma-direct (no IOMMU in front of the device).
 * `mask` is the device's DMA mask, e.g. `2 ** 32 - 1` for `DMA_BIT_MASK(32)`.
 */
export function dmaMapSingle(
  phys: number,
  size: number,
  mask: number,
  swiotlb: SwiotlbWindow,
  opts: DmaMapOptions = {},
): DmaMapOutcome {
  for (const [v, w] of [[phys, "phys"], [size, "size"], [mask, "mask"]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`dmaMapSingle: bad ${w}: ${v}`);
  }
  if (size === 0) throw new RangeError("dmaMapSingle: size 0");
  const bus = opts.busDmaLimit ?? 0;
  const limit = bus === 0 ? mask : Math.min(mask, bus);
  const capable = phys + size - 1 <= limit;
  const facts: Fact<unknown>[] = [
    fact("dma.phys", phys, "input", "input"),
    fact("dma.size", size, "input", "input"),
    fact("dma.mask", mask, "input", "input"),
    fact(
      "dma.capable",
      capable,
      SRC_DIRECT,
      "verified",
      "phys + size - 1 <= min_not_zero(mask, bus limit)",
    ),
    fact("dma.swiotlbForced", swiotlb.forced, "swiotlbWindow", "derived"),
    fact("dma.swiotlbEnabled", swiotlb.enabled, "swiotlbWindow", "derived"),
  ];
  if (capable && !swiotlb.forced) return { kind: "direct", dma: phys, facts };
  const prefix = opts.device ? `${opts.device}: ` : "";
  if (!swiotlb.enabled) {
    const message =
      `${prefix}DMA addr ${fmtPa(phys)}+${size} overflow (mask ${hexNoPrefix(mask)}, ` +
      `bus limit ${hexNoPrefix(bus)}).`;
    facts.push(
      fact("dma.failure", message, SRC_DIRECT, "verified", "dev_WARN_ONCE; DMA_MAPPING_ERROR"),
    );
    return { kind: "failed", message, facts };
  }
  const maxMapping = IO_TLB_SEGSIZE_SLABS * IO_TLB_SIZE;
  if (size > maxMapping) {
    const message =
      `${prefix}swiotlb buffer is full (sz: ${size} bytes), total ${swiotlb.nslabs} ` +
      `(slots), used <unknown> (slots)`;
    facts.push(
      fact("dma.failure", message, SRC_SWIOTLB, "derived", "larger than one 256 KiB segment"),
    );
    return { kind: "failed", message, facts };
  }
  const alignment = size >= 4096 ? 4096 : IO_TLB_SIZE;
  const p = swiotlb.placement;
  const window = p.kind === "exact" ? p.window : p.kind === "bounded" ? p.within : null;
  if (window === null) {
    const message =
      `${prefix}DMA addr ${fmtPa(phys)}+${size} overflow (mask ${hexNoPrefix(mask)}, ` +
      `bus limit ${hexNoPrefix(bus)}).`;
    return { kind: "failed", message, facts };
  }
  const slotRange = { start: window.start, end: window.end };
  const bounceCapable: boolean | "unknown" = window.end - 1 <= limit
    ? true
    : p.kind === "exact" && window.start + size - 1 > limit
    ? false
    : "unknown";
  facts.push(
    fact(
      "dma.bounce.window",
      slotRange,
      "swiotlbWindow",
      p.kind === "exact" ? "derived" : "unknown",
    ),
    fact(
      "dma.bounce.alignment",
      alignment,
      SRC_SWIOTLB,
      "reported",
      "allocations >= PAGE_SIZE are page-aligned in the pool [believed, not re-read]",
    ),
    fact(
      "dma.bounce.copy",
      "original -> bounce at map time and at every sync for device",
      SRC_DIRECT,
      "verified",
    ),
  );
  if (bounceCapable === false) {
    const message =
      `${prefix}swiotlb addr ${fmtPa(window.start)}+${size} overflow (mask ${hexNoPrefix(mask)}, ` +
      `bus limit ${hexNoPrefix(bus)}).`;
    facts.push(
      fact("dma.failure", message, SRC_SWIOTLB, "derived", "bounce buffer above the mask"),
    );
    return { kind: "failed", message, facts };
  }
  return {
    kind: "bounced",
    slotRange,
    alignment,
    capable: bounceCapable,
    forced: swiotlb.forced,
    facts,
  };
}
