/**
 * IOVA geometry of the Rockchip IOMMU: a 32-bit IOVA split 10/10/12 into directory index,
 * page-table index and page offset (research/rockchip-iommu.md §1.2, verified in S-612 and
 * microsoft/WSL2-Linux-Kernel `drivers/iommu/rockchip-iommu.c` @ d1b51b13).
 *
 * @module
 */

import { toU32 } from "./bits.ts";

/** log2 of the IOMMU page size (`SPAGE_ORDER`). */
export const SPAGE_ORDER = 12;
/** The IOMMU page size, 4 KiB (`SPAGE_SIZE`). */
export const SPAGE_SIZE = 4096;
/** Entries in the directory table (`NUM_DT_ENTRIES`). */
export const NUM_DT_ENTRIES = 1024;
/** Entries in one page table (`NUM_PT_ENTRIES`). */
export const NUM_PT_ENTRIES = 1024;
/** Size of one table entry in bytes (`sizeof(u32)`). */
export const ENTRY_SIZE = 4;
/** Bytes of IOVA covered by one DTE: 1024 pages, 4 MiB. */
export const DTE_SPAN = NUM_PT_ENTRIES * SPAGE_SIZE;
/** Size of the whole IOVA space: 4 GiB (the aperture is `0..DMA_BIT_MASK(32)`). */
export const IOVA_SPACE = NUM_DT_ENTRIES * DTE_SPAN;
/** Every power of two from 4 KiB to 4 MiB (`RK_IOMMU_PGSIZE_BITMAP`). */
export const RK_IOMMU_PGSIZE_BITMAP = 0x007ff000;
/** The value force reset writes, before decoding, to test DTE_ADDR (`DTE_ADDR_DUMMY`). */
export const DTE_ADDR_DUMMY = 0xcafebabe;

/** `RK_IOVA_DTE_MASK`, bits 31:22. */
export const RK_IOVA_DTE_MASK = 0xffc00000;
/** `RK_IOVA_DTE_SHIFT`. */
export const RK_IOVA_DTE_SHIFT = 22;
/** `RK_IOVA_PTE_MASK`, bits 21:12. */
export const RK_IOVA_PTE_MASK = 0x003ff000;
/** `RK_IOVA_PTE_SHIFT`. */
export const RK_IOVA_PTE_SHIFT = 12;
/** `RK_IOVA_PAGE_MASK`, bits 11:0. */
export const RK_IOVA_PAGE_MASK = 0x00000fff;

/** The three fields of an IOVA. */
export interface IovaParts {
  /** Bits 31:22, 0..1023: index into the directory table. */
  dteIndex: number;
  /** Bits 21:12, 0..1023: index into the page table. */
  pteIndex: number;
  /** Bits 11:0, 0..4095: offset into the 4 KiB page. */
  pageOffset: number;
}

/**
 * Split an IOVA as `rk_iova_dte_index`/`rk_iova_pte_index`/`rk_iova_page_offset` do: the
 * `dma_addr_t` is masked and cast to `u32`, so bits above 31 are ignored.
 */
export function splitIova(iova: number): IovaParts {
  const v = toU32(iova);
  return {
    dteIndex: v >>> RK_IOVA_DTE_SHIFT,
    pteIndex: (v & RK_IOVA_PTE_MASK) >>> RK_IOVA_PTE_SHIFT,
    pageOffset: v & RK_IOVA_PAGE_MASK,
  };
}

/** Inverse of {@link splitIova}. Throws if a field is out of range. */
export function joinIova(parts: IovaParts): number {
  const { dteIndex, pteIndex, pageOffset } = parts;
  const ok = (x: number, n: number) => Number.isInteger(x) && x >= 0 && x < n;
  if (
    !ok(dteIndex, NUM_DT_ENTRIES) || !ok(pteIndex, NUM_PT_ENTRIES) || !ok(pageOffset, SPAGE_SIZE)
  ) {
    throw new RangeError(`IOVA fields out of range: ${JSON.stringify(parts)}`);
  }
  return dteIndex * DTE_SPAN + pteIndex * SPAGE_SIZE + pageOffset;
}

/** True when `size` is one of the sizes in {@link RK_IOMMU_PGSIZE_BITMAP}. */
export function isSupportedPageSize(size: number): boolean {
  return Number.isInteger(size) && size >= SPAGE_SIZE && size <= DTE_SPAN &&
    (size & (size - 1)) === 0;
}
