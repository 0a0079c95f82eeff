/**
 * Decode the numbers of an rk_iommu walk line (`mmu_dte_addr: ... dte@ ... pte@ ... page@`) for
 * an entry format, and compute the two lines `log_iova` prints for a memory image. Split from
 * `klog.ts`, which re-exports everything here.
 *
 * Pure: no I/O, no clocks.
 *
 * @module
 */

import type { EntryFormat } from "./types.ts";
import type { IovaSplitEvent, WalkEvent } from "./klog.ts";
import {
  decodeDteAddrRegister,
  decodePte,
  type DteAddrLayout,
  isValid,
  ptAddress,
  type PteOptions,
  RK_PTE_PAGE_FLAGS_MASK,
} from "./entries.ts";
import { ENTRY_SIZE, NUM_DT_ENTRIES, NUM_PT_ENTRIES, SPAGE_SIZE, splitIova } from "./iova.ts";
import { toU32 } from "./bits.ts";

/** How the numbers of a walk line decode for a given entry format. */
export interface WalkDecoding {
  /** The entry format the numbers were decoded as. */
  format: EntryFormat;
  /**
   * The first level found invalid, "none" when the walk reached a valid page, "unknown" when a
   * truncated line stops before it can tell.
   */
  invalidAt: "dte" | "pte" | "none" | "unknown";
  /** Directory table address (the decoded DTE_ADDR register, `mmu_dte_addr`). */
  dtAddress: number;
  /** `(dte@ - mmu_dte_addr) / 4` when that is a valid index, else null. */
  dteIndex: number | null;
  /** Page-table address decoded from the DTE value, when the DTE is valid. */
  ptAddress: number | null;
  /** `(pte@ - ptAddress) / 4` when that is a valid index, else null. */
  pteIndex: number | null;
  /** Page address decoded from the PTE value, when the PTE is valid. */
  pageBase: number | null;
  /** `page@ - pageBase` when it is a valid offset, else null. */
  pageOffset: number | null;
  /** Permissions from the PTE (when valid), honouring `v2PermSwapped`. */
  read: boolean | null;
  /** Write permission from the PTE (when valid); `null` otherwise. */
  write: boolean | null;
  /**
   * Bits of the printed `flags` that are really address bits: in v2, bit 8 is phys bit 32 and
   * bits 7:4 are phys bits 39:36 (so a v2 page in 4–8 GiB prints `flags: 0x106` for R|W). 0 in v1.
   */
  flagsAddressBits: number;
  /** Bits of `flags` that are attributes: v1 bits 8:1, v2 bits 3:1. */
  flagsAttributeBits: number;
  /** Every arithmetic relation the driver guarantees between the numbers holds. */
  consistent: boolean;
  /** What did not hold, in words. */
  problems: string[];
}

/**
 * Decode the numbers of a walk line for `format`: page-table address from the DTE value, page
 * from the PTE, permissions, and the v2 flags quirk; check that the numbers are consistent with
 * each other (and with `split` when given).
 */
export function decodeWalk(
  format: EntryFormat,
  walk: WalkEvent,
  opts: PteOptions & { split?: IovaSplitEvent } = {},
): WalkDecoding {
  const problems: string[] = [];
  const missing = new Set(walk.missing ?? []);
  const has = (...f: string[]) => f.every((x) => !missing.has(x));
  const index = (addr: number, base: number, n: number): number | null => {
    const d = addr - base;
    return d >= 0 && d % ENTRY_SIZE === 0 && d / ENTRY_SIZE < n ? d / ENTRY_SIZE : null;
  };
  const dteIndex = has("dteAddr", "mmuDteAddr")
    ? index(walk.dteAddr, walk.mmuDteAddr, NUM_DT_ENTRIES)
    : null;
  if (dteIndex === null && has("dteAddr", "mmuDteAddr")) {
    problems.push("dte@ is not mmu_dte_addr + 4 * index");
  }
  if (has("dte", "dteValid") && walk.dteValid !== isValid(walk.dte)) {
    problems.push("dte valid flag disagrees with dte bit 0");
  }
  let ptAddr: number | null = null;
  let pteIndex: number | null = null;
  let pageBase: number | null = null;
  let pageOffset: number | null = null;
  let read: boolean | null = null;
  let write: boolean | null = null;
  let invalidAt: WalkDecoding["invalidAt"] = "none";
  const zeroAfter = (what: string, fields: [string, number | boolean][]) => {
    for (const [n, v] of fields) {
      if (v !== 0 && v !== false) problems.push(`${n} should be 0 after ${what}`);
    }
  };
  const dteOk = has("dteValid") ? walk.dteValid : has("dte") ? isValid(walk.dte) : null;
  const pteOk = has("pteValid") ? walk.pteValid : has("pte") ? isValid(walk.pte) : null;
  // A cut line decodes like a whole one when the cut falls after an invalid DTE (the driver
  // prints zeros from there on); otherwise only what precedes the cut.
  if (missing.size > 0 && dteOk !== false) {
    return {
      format,
      invalidAt: dteOk && pteOk === false ? "pte" : "unknown",
      dtAddress: walk.mmuDteAddr,
      dteIndex,
      ptAddress: dteOk && has("dte") ? ptAddress(format, walk.dte) : null,
      pteIndex: null,
      pageBase: null,
      pageOffset: null,
      read: null,
      write: null,
      flagsAddressBits: 0,
      flagsAttributeBits: 0,
      consistent: problems.length === 0,
      problems,
    };
  }
  if (!walk.dteValid) {
    invalidAt = "dte";
    zeroAfter("an invalid DTE", [
      ["pte@", walk.pteAddr],
      ["pte", walk.pte],
      ["pte valid", walk.pteValid],
      ["page@", walk.pageAddr],
      ["flags", walk.flags],
    ]);
  } else {
    ptAddr = ptAddress(format, walk.dte);
    pteIndex = index(walk.pteAddr, ptAddr, NUM_PT_ENTRIES);
    if (pteIndex === null) problems.push("pte@ is not pt_address(dte) + 4 * index");
    if (walk.pteValid !== isValid(walk.pte)) {
      problems.push("pte valid flag disagrees with pte bit 0");
    }
    if (!walk.pteValid) {
      invalidAt = "pte";
      zeroAfter("an invalid PTE", [["page@", walk.pageAddr], ["flags", walk.flags]]);
    } else {
      const d = decodePte(format, walk.pte, opts);
      pageBase = d.address;
      read = d.read;
      write = d.write;
      const off = walk.pageAddr - pageBase;
      pageOffset = off >= 0 && off < SPAGE_SIZE ? off : null;
      if (pageOffset === null) problems.push("page@ is not pt_address(pte) + offset");
      if (walk.flags !== (toU32(walk.pte) & RK_PTE_PAGE_FLAGS_MASK)) {
        problems.push("flags is not pte & 0x1fe");
      }
    }
  }
  const split = opts.split;
  if (split) {
    if (dteIndex !== null && dteIndex !== split.dteIndex) {
      problems.push("dte index differs from iova line");
    }
    if (pteIndex !== null && pteIndex !== split.pteIndex) {
      problems.push("pte index differs from iova line");
    }
    if (pageOffset !== null && pageOffset !== split.pageOffset) {
      problems.push("page offset differs from iova line");
    }
  }
  return {
    format,
    invalidAt,
    dtAddress: walk.mmuDteAddr,
    dteIndex,
    ptAddress: ptAddr,
    pteIndex,
    pageBase,
    pageOffset,
    read,
    write,
    flagsAddressBits: format === "v2" ? walk.flags & 0x1f0 : 0,
    flagsAttributeBits: format === "v2" ? walk.flags & 0x00e : walk.flags & RK_PTE_PAGE_FLAGS_MASK,
    consistent: problems.length === 0,
    problems,
  };
}

/**
 * The two lines `log_iova(iommu, bank, iova)` prints, computed as the driver does: split the
 * IOVA, decode the HARDWARE DTE_ADDR register (`pt_address`, or `dte_addr_phys` with the
 * pre-6df63b7ebdaf "vendor" layout), read the DTE through `readU32` (the CPU's view of physical
 * memory, `*phys_to_virt(addr)`), and the PTE if the DTE is valid; fields after the first
 * invalid level stay 0.
 */
export function logIova(
  format: EntryFormat,
  device: string,
  iova: number,
  dteAddrRegister: number,
  readU32: (phys: number) => number,
  opts: { layout?: DteAddrLayout } = {},
): [IovaSplitEvent, WalkEvent] {
  const { dteIndex, pteIndex, pageOffset } = splitIova(iova);
  const mmuDteAddr = decodeDteAddrRegister(format, dteAddrRegister, opts.layout ?? "dte");
  const dteAddr = mmuDteAddr + ENTRY_SIZE * dteIndex;
  const dte = toU32(readU32(dteAddr));
  let pteAddr = 0;
  let pte = 0;
  let pageAddr = 0;
  let flags = 0;
  if (isValid(dte)) {
    pteAddr = ptAddress(format, dte) + ENTRY_SIZE * pteIndex;
    pte = toU32(readU32(pteAddr));
    if (isValid(pte)) {
      pageAddr = ptAddress(format, pte) + pageOffset;
      flags = pte & RK_PTE_PAGE_FLAGS_MASK;
    }
  }
  return [
    { kind: "iova_split", device, iova, dteIndex, pteIndex, pageOffset },
    {
      kind: "walk",
      device,
      mmuDteAddr,
      dteAddr,
      dte,
      dteValid: isValid(dte),
      pteAddr,
      pte,
      pteValid: isValid(pte),
      pageAddr,
      flags,
    },
  ];
}
