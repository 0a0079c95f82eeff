/**
 * DTE and PTE encodings of the Rockchip IOMMU, v1 ("rockchip,iommu") and v2
 * ("rockchip,rk3568-iommu"), and the encoding of the DTE_ADDR register.
 *
 * Sources (research/rockchip-iommu.md §1.3, §1.4, §1.5, §1.9):
 * - `rk_mk_dte`, `rk_mk_dte_v2`, `rk_mk_pte`, `rk_mk_pte_v2`, `rk_dte_pt_address`,
 *   `rk_dte_pt_address_v2`, `rk_mk_pte_invalid`: verified in microsoft/WSL2-Linux-Kernel
 *   `drivers/iommu/rockchip-iommu.c` @ d1b51b130d32080f42c568f24f5cb4445265600a (and S-612).
 * - v2 permission bits before v6.2 (R = bit 2, W = bit 1): verified in the patch mail of
 *   7eb99841f340 "iommu/rockchip: fix permission bits in page table entries v2" (Michael Riesch,
 *   2022-11-02), which removes `RK_PTE_PAGE_READABLE_V2 BIT(2)` / `RK_PTE_PAGE_WRITABLE_V2 BIT(1)`.
 * - Vendor DTE_ADDR layout (before 6df63b7ebdaf): verified in the patch mail of 6df63b7ebdaf
 *   "iommu: rockchip: Fix directory table address encoding" (Jonas Karlman, v3, 2023-06-17),
 *   which removes `rk_dma_addr_dte_v2` = `(dt_dma & 0xfffff000) | ((dt_dma & GENMASK_ULL(39, 32))
 *   >> 28)` and `rk_dte_addr_phys_v2` = `(addr & 0xfffff000) | ((addr & GENMASK(11, 4)) << 28)`;
 *   v1 used `(u32)dt_dma` and `(phys_addr_t)addr`.
 *
 * All entries are u32 numbers; addresses are plain numbers up to 40 bits. No 32-bit operator is
 * applied to a value that may be wider than 32 bits (see `bits.ts`).
 *
 * @module
 */

import type { EntryFormat } from "./types.ts";
import { hi, join64, lo32, toU32, TWO_POW_32 } from "./bits.ts";
import { DTE_ADDR_DUMMY } from "./iova.ts";

/** Linux `IOMMU_READ`, a bit of the `prot` argument of `iommu_map`. */
export const IOMMU_READ = 1;
/** Linux `IOMMU_WRITE`. */
export const IOMMU_WRITE = 2;

/** Bit 0 of every DTE and PTE (`RK_DTE_PT_VALID`, `RK_PTE_PAGE_VALID`). */
export const ENTRY_VALID = 0x1;
/** Bits 31:12 (`RK_DTE_PT_ADDRESS_MASK`, `RK_PTE_PAGE_ADDRESS_MASK`). */
export const ENTRY_ADDRESS_MASK = 0xfffff000;
/** `RK_PTE_PAGE_FLAGS_MASK`: what `log_iova` prints as `flags` (both formats). */
export const RK_PTE_PAGE_FLAGS_MASK = 0x000001fe;
/** `RK_PTE_PAGE_READABLE`. */
export const PTE_READABLE = 0x2;
/** `RK_PTE_PAGE_WRITABLE`. */
export const PTE_WRITABLE = 0x4;
/** v2 PTE bit 3, "security"; the driver never sets it. */
export const PTE_V2_SECURITY = 0x8;

/** Highest physical address width each format can encode. */
export const ADDRESS_BITS: Readonly<Record<EntryFormat, number>> = { v1: 32, v2: 40 };

/** Options of the PTE encoding that changed between kernel releases. */
export interface PteOptions {
  /**
   * Before v6.2 (7eb99841f340, also in 6.1.y stable) the v2 PTE used R = bit 2 and W = bit 1.
   * Ignored for v1. Default false (the fixed encoding).
   */
  v2PermSwapped?: boolean;
}

/** How the driver writes the DTE_ADDR register. */
export type DteAddrLayout =
  /** After 6df63b7ebdaf (v6.6, stable-backported): `mk_dtentries(dt_dma)`, valid bit included. */
  | "dte"
  /** Before it: `dma_addr_dte`; for v2, phys bits 39:32 in register bits 11:4. */
  | "vendor";

function v2Encode(addr: number): number {
  // (a & 0xfffff000) | ((a & GENMASK_ULL(35,32)) >> 24) | ((a & GENMASK_ULL(39,36)) >> 32),
  // then & GENMASK_ULL(31,4). Bits above 39 are dropped.
  const h = hi(addr);
  const lo = (lo32(addr) & ENTRY_ADDRESS_MASK) >>> 0;
  return (lo | ((h & 0xf) << 8) | (((h >>> 4) & 0xf) << 4)) >>> 0;
}

/** `rk_mk_dte` (v1) or `rk_mk_dte_v2` (v2): the DTE pointing at a page table at `ptDma`. */
export function mkDte(format: EntryFormat, ptDma: number): number {
  if (format === "v1") return ((lo32(ptDma) & ENTRY_ADDRESS_MASK) | ENTRY_VALID) >>> 0;
  return (v2Encode(ptDma) | ENTRY_VALID) >>> 0;
}

/** The permission bits `mk_ptentries` sets for `prot` (`IOMMU_READ`/`IOMMU_WRITE`). */
export function permBits(format: EntryFormat, prot: number, opts: PteOptions = {}): number {
  const swapped = format === "v2" && opts.v2PermSwapped === true;
  const r = (prot & IOMMU_READ) !== 0 ? (swapped ? PTE_WRITABLE : PTE_READABLE) : 0;
  const w = (prot & IOMMU_WRITE) !== 0 ? (swapped ? PTE_READABLE : PTE_WRITABLE) : 0;
  return r | w;
}

/**
 * `rk_mk_pte` (v1) or `rk_mk_pte_v2` (v2): the PTE mapping the 4 KiB page at `page` with
 * `prot`. The valid bit is always set; cache bits are never set (driver TODO).
 */
export function mkPte(
  format: EntryFormat,
  page: number,
  prot: number,
  opts: PteOptions = {},
): number {
  const flags = permBits(format, prot, opts);
  if (format === "v1") {
    return ((lo32(page) & ENTRY_ADDRESS_MASK) | flags | ENTRY_VALID) >>> 0;
  }
  return (v2Encode(page) | ENTRY_VALID | flags) >>> 0;
}

/**
 * `rk_dte_pt_address` (v1: `entry & 0xfffff000`) or `rk_dte_pt_address_v2` (v2:
 * `((e & 0xf0) << 32) | ((e & 0xf00) << 24) | (e & 0xfffff000)`). Decodes DTEs, PTEs and, after
 * 6df63b7ebdaf, the DTE_ADDR register. `entry` is cast to u32 first, as the C parameter is.
 */
export function ptAddress(format: EntryFormat, entry: number): number {
  const e = toU32(entry);
  const lo = (e & ENTRY_ADDRESS_MASK) >>> 0;
  if (format === "v1") return lo;
  const h = (((e >>> 4) & 0xf) << 4) | ((e >>> 8) & 0xf);
  return join64(h, lo);
}

/** True when bit 0 (valid) of a DTE or PTE is set. */
export function isValid(entry: number): boolean {
  return (toU32(entry) & ENTRY_VALID) !== 0;
}

/** `rk_mk_pte_invalid`: clears only the valid bit; address and flags stay. */
export function invalidate(entry: number): number {
  return (toU32(entry) & ~ENTRY_VALID) >>> 0;
}

/** A decoded DTE. */
export interface DecodedDte {
  /** Physical address of the page table. */
  address: number;
  /** The DTE's valid bit. */
  valid: boolean;
}

/** Decode a DTE. */
export function decodeDte(format: EntryFormat, entry: number): DecodedDte {
  return { address: ptAddress(format, entry), valid: isValid(entry) };
}

/** A decoded PTE. */
export interface DecodedPte {
  /** Physical address of the 4 KiB page. */
  address: number;
  /** The PTE's valid bit. */
  valid: boolean;
  /** The PTE's read permission. */
  read: boolean;
  /** The PTE's write permission. */
  write: boolean;
  /** `entry & 0x1fe`, what `log_iova` prints as `flags` (in v2 it includes address bits). */
  flags: number;
}

/** Decode a PTE; `opts.v2PermSwapped` selects the pre-v6.2 v2 meaning of bits 1 and 2. */
export function decodePte(
  format: EntryFormat,
  entry: number,
  opts: PteOptions = {},
): DecodedPte {
  const e = toU32(entry);
  const swapped = format === "v2" && opts.v2PermSwapped === true;
  const bit1 = (e & PTE_READABLE) !== 0;
  const bit2 = (e & PTE_WRITABLE) !== 0;
  return {
    address: ptAddress(format, e),
    valid: (e & ENTRY_VALID) !== 0,
    read: swapped ? bit2 : bit1,
    write: swapped ? bit1 : bit2,
    flags: e & RK_PTE_PAGE_FLAGS_MASK,
  };
}

/**
 * True when encoding `phys` in `format` silently loses address bits: v1 keeps bits 31:12 only
 * (so anything at or above 4 GiB aliases to `phys mod 4 GiB`), v2 keeps bits 39:12 (anything at
 * or above 2^40 aliases). Bits 11:0 are not counted: tables and pages are 4 KiB aligned.
 */
export function truncatedBy(format: EntryFormat, phys: number): boolean {
  if (!Number.isSafeInteger(phys) || phys < 0) throw new RangeError(`bad address ${phys}`);
  return phys >= 2 ** ADDRESS_BITS[format];
}

/** The page-aligned address an entry built from `phys` really points at (after truncation). */
export function encodedAddress(format: EntryFormat, phys: number): number {
  return ptAddress(format, mkDte(format, phys));
}

/**
 * The value the driver writes to DTE_ADDR when it enables the IOMMU for a directory table at
 * `dtDma`. Layout "dte": `mk_dtentries(dt_dma)`, including the valid bit. Layout "vendor":
 * v1 `(u32)dt_dma`; v2 `(dt_dma & 0xfffff000) | ((dt_dma & GENMASK_ULL(39,32)) >> 28)`.
 */
export function dteAddrRegister(format: EntryFormat, dtDma: number, layout: DteAddrLayout): number {
  if (layout === "dte") return mkDte(format, dtDma);
  if (format === "v1") return lo32(dtDma);
  const h = hi(dtDma) & 0xff; // bits 39:32
  return ((lo32(dtDma) & ENTRY_ADDRESS_MASK) | (h << 4)) >>> 0;
}

/**
 * How the driver itself decodes a DTE_ADDR value (in `log_iova`). Layout "dte": `pt_address`.
 * Layout "vendor": v1 `(phys_addr_t)addr` (all 32 bits, low bits included); v2
 * `(addr & 0xfffff000) | ((addr & GENMASK(11,4)) << 28)`.
 *
 * What the hardware makes of the register is a different question: per 6df63b7ebdaf's commit
 * message (Jonas Karlman's testing, [R]) the hardware reads it in the DTE encoding, i.e. with
 * {@link ptAddress}, whatever the driver meant.
 */
export function decodeDteAddrRegister(
  format: EntryFormat,
  reg: number,
  layout: DteAddrLayout,
): number {
  const r = toU32(reg);
  if (layout === "dte") return ptAddress(format, r);
  if (format === "v1") return r;
  const h = (r >>> 4) & 0xff;
  return join64(h, (r & ENTRY_ADDRESS_MASK) >>> 0);
}

/**
 * The value force reset writes to DTE_ADDR and expects to read back:
 * `(u32)pt_address(DTE_ADDR_DUMMY)`, 0xCAFEB000 for both formats (the v2 high bits are lost in
 * the u32 variable).
 */
export function forceResetProbe(format: EntryFormat): number {
  return ptAddress(format, DTE_ADDR_DUMMY) % TWO_POW_32;
}
