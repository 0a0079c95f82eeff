/**
 * Core types of the IOMMU oracle. Pure data: no I/O anywhere in oracle/.
 *
 * Physical and DMA addresses are plain `number`s. Every address the model deals with fits in
 * 40 bits, far below Number.MAX_SAFE_INTEGER (2^53), and plain numbers serialise to JSON and are
 * fast enough to predict the whole release matrix in well under the benchmark's budget.
 * Never use JavaScript's 32-bit bitwise operators on a value that may exceed 32 bits: the
 * helpers in `oracle/bits.ts` split such values into high and low words.
 *
 * @module
 */

/**
 * How sure a fact is. The first four follow the labels of `research/rockchip-iommu.md`:
 * - `verified`: read in the cited source ([V]).
 * - `reported`: someone reported it in a mail, PR or log; not checked against code ([R]).
 * - `derived`: reasoned from verified facts; stated by no source ([D]).
 * - `unknown`: could not be verified; an open question ([?]).
 * - `measured`: read from the kernel or hardware under test.
 * - `input`: supplied by the caller (command line, board file, scenario).
 */
export type Confidence = "verified" | "reported" | "derived" | "unknown" | "measured" | "input";

/** Where a fact comes from. `source` names a research section, a commit, a file or a probe. */
export interface Provenance {
  /** The research section, commit, file or probe the fact comes from. */
  source: string;
  /** How sure that source is. */
  confidence: Confidence;
  /** A caveat on the fact, when there is one. */
  note?: string;
}

/** A named value with its provenance. */
export interface Fact<T> {
  /** Name of the fact (`dma_bit_mask`, `gfp_flags`, ...). */
  name: string;
  /** Its value. */
  value: T;
  /** Where it comes from. */
  provenance: Provenance;
}

/** Build a fact. */
export function fact<T>(
  name: string,
  value: T,
  source: string,
  confidence: Confidence,
  note?: string,
): Fact<T> {
  return note === undefined
    ? { name, value, provenance: { source, confidence } }
    : { name, value, provenance: { source, confidence, note } };
}

/** Half-open physical address range `[start, end)`. */
export interface PhysRange {
  /** First address of the range (bytes). */
  start: number;
  /** First address past the range (bytes, exclusive). */
  end: number;
}

/** The entry format a kernel uses for DTEs and PTEs (software side, chosen by compatible). */
export type EntryFormat = "v1" | "v2";

/** The IOMMU hardware revision of one instance (hardware side, per Rockchip). */
export type HwRevision = "v1.0" | "v2.0" | "unknown";

/** Allocation zone modifier in the GFP flags the driver passes for its tables. */
export type GfpZone = "none" | "GFP_DMA32" | "GFP_DMA";

/** Outcome words, per IOMMU instance. */
export type Outcome =
  | "OK"
  | "BUS_ERROR"
  | "PAGE_FAULT"
  | "WRONG_PAGE"
  | "PROBE_FAILED"
  | "UNCERTAIN"
  | "DISABLED";

/** Every outcome word, in the order reports list them. */
export const OUTCOMES: readonly Outcome[] = [
  "OK",
  "BUS_ERROR",
  "PAGE_FAULT",
  "WRONG_PAGE",
  "PROBE_FAILED",
  "UNCERTAIN",
  "DISABLED",
];
