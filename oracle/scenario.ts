/**
 * Scenarios: what the oracle is asked about. A scenario is a board (memory map and device-tree
 * IOMMU nodes), the driver facts of a kernel (from the knowledge base or from the kernel under
 * test), boot arguments and an optional workload. `buildScenario` resolves a release and patch
 * sets into driver facts and a patched device tree, refusing unknown names with the known ones.
 *
 * @module
 */
import {
  compareRelease,
  type DriverFacts,
  isKnownRelease,
  mainlineFacts,
  parseRelease,
  type Release,
  releaseKey,
  RELEASES,
} from "./releases.ts";
import { getPatch, inMainline, patchNames, type PatchSet } from "./patches.ts";
import type { Confidence, PhysRange } from "./types.ts";

/** One IOMMU node of a device tree, as the kernel would bind it. */
export interface DtIommuNode {
  /** Unit address of the node (its first `reg` bank), 8 lower-case hex digits. */
  unit: string;
  /** Devicetree label (`rknpu_mmu`). */
  label: string;
  /** The node's `compatible` strings, in order. */
  compatible: string[];
  /** The node's `status`. */
  status: "okay" | "disabled";
  /** Boolean properties present on the node, e.g. `rockchip,disable-mmu-reset`. */
  properties: string[];
  /** Where this node's description comes from (board file, DTB path, patch set). */
  source: string;
  /** How sure that source is (a DTB read from a kernel package is `verified`). */
  confidence: Confidence;
}

/** The board facts a scenario needs. */
export interface BoardFacts {
  /** Board id (as in the board file). */
  id: string;
  /** Human name of the board. */
  name: string;
  /** SoC id (`rk3568`, `rk3588`). */
  soc: string;
  /** DRAM as the kernel receives it, half-open ranges. */
  banks: PhysRange[];
  /** Where the banks come from. */
  ramSource: string;
  /** How sure that source is. */
  ramConfidence: Confidence;
  /** Default IOMMU nodes (used when no DTB is given). */
  iommus: DtIommuNode[];
}

/** Where a workload's buffers come from. */
export type BufferSource = "all-memory" | "below-4g";

/** An NPU workload (or any DMA workload) run through one IOMMU. */
export interface Workload {
  /** `mobilenet_v1`, `yolov5s`, or another name (no latency baseline then). */
  name: string;
  /** Unit address of the IOMMU the workload goes through (default: the SoC's NPU MMU). */
  iommu?: string;
  /** Page source of the buffers: shmem/GEM pages come from all memory. */
  buffers: BufferSource;
}

/** Everything the oracle predicts from. */
export interface Scenario {
  /** The board. */
  board: BoardFacts;
  /** The rk_iommu driver's facts for the release, after patch sets. */
  driver: DriverFacts;
  /** The device tree's IOMMU nodes after patch sets. */
  devicetree: DtIommuNode[];
  /** Kernel command line. */
  bootargs: string;
  /** The workload to predict the effect on, if any. */
  workload?: Workload;
  /** Kernel configuration facts that move memory (default: Debian arm64). */
  config: { dmaBounceUnalignedKmalloc: boolean };
  /** Where the inputs came from (kernel package, DTB), for the reader of the prediction. */
  notes: string[];
}

/** Bad scenario input: carries the known values and what to do. Pure (no I/O). */
export class OracleInputError extends Error {
  /**
   * Bad input to the oracle.
   *
   * @param message what is wrong with the input, in one line
   * @param hint what to pass instead
   * @param known the valid values, when there is a list (board ids, releases, patch names)
   */
  constructor(message: string, readonly hint: string, readonly known: string[] = []) {
    super(message);
    this.name = "OracleInputError";
  }
}

/** Parse a release string and check it against the knowledge base. */
export function resolveRelease(text: string): Release {
  const r = parseRelease(text);
  if (!r || !isKnownRelease(r)) {
    throw new OracleInputError(
      `unknown kernel release "${text}"`,
      `use one of ${RELEASES[0]} … ${RELEASES[RELEASES.length - 1]} (e.g. --kernel 6.12), ` +
        "or read the facts from a running kernel",
      [...RELEASES],
    );
  }
  return r;
}

/** Order patch sets so that requirements come first, adding required ones the release lacks. */
export function resolvePatches(names: string[], r: Release): PatchSet[] {
  const out: PatchSet[] = [];
  const visit = (name: string, wantedBy?: string) => {
    const p = getPatch(name);
    if (!p) {
      throw new OracleInputError(
        `unknown patch set "${name}"${wantedBy ? ` (required by ${wantedBy})` : ""}`,
        `use one of: ${patchNames().join(", ")}`,
        patchNames(),
      );
    }
    if (out.includes(p)) return;
    if (p.minRelease && compareRelease(r, p.minRelease) < 0) {
      throw new OracleInputError(
        `patch set "${name}" applies to ${releaseKey(p.minRelease)} and later, not ${
          releaseKey(r)
        }`,
        `pick a release from ${releaseKey(p.minRelease)} on, or drop --patch ${name}`,
      );
    }
    for (const req of p.requires) {
      const rp = getPatch(req);
      if (rp && !inMainline(rp, r)) visit(req, name);
    }
    out.push(p);
  };
  for (const n of names) visit(n);
  return out;
}

/** Inputs of `buildScenario`. */
export interface ScenarioInput {
  /** The board. */
  board: BoardFacts;
  /** A release from the knowledge base, or driver facts read from a kernel. */
  kernel: string | DriverFacts;
  /** Names of downstream patch sets to apply (patches.ts), in order. */
  patches?: string[];
  /** IOMMU nodes from a DTB; the board's defaults when absent. */
  devicetree?: DtIommuNode[];
  /** Kernel command line (default: empty). */
  bootargs?: string;
  /** The workload to predict the effect on, if any. */
  workload?: Workload;
  /** Kernel configuration overrides (default: Debian arm64). */
  config?: Partial<Scenario["config"]>;
  /** Notes carried into `Scenario.notes`. */
  notes?: string[];
}

/** Resolve release and patch sets into a scenario. Throws OracleInputError on unknown names. */
export function buildScenario(input: ScenarioInput): Scenario {
  let driver: DriverFacts;
  let patches: PatchSet[] = [];
  if (typeof input.kernel === "string") {
    const r = resolveRelease(input.kernel);
    patches = resolvePatches(input.patches ?? [], r);
    driver = mainlineFacts(r);
  } else {
    driver = input.kernel;
    const r = parseRelease(driver.release);
    patches = r ? resolvePatches(input.patches ?? [], r) : [];
  }
  let dt = input.devicetree ?? input.board.iommus;
  for (const p of patches) {
    if (p.driver) driver = p.driver(driver);
    if (p.devicetree) dt = p.devicetree(dt, input.board.soc);
  }
  driver = { ...driver, patches: [...driver.patches, ...patches.map((p) => p.name)] };
  return {
    board: input.board,
    driver,
    devicetree: dt,
    bootargs: input.bootargs ?? "",
    workload: input.workload,
    // Assumed on (arm64 selects it with SWIOTLB from v6.5 [?]). It only decides whether a small
    // SWIOTLB exists when no RAM lies above the DMA limit and nothing forces bouncing.
    config: { dmaBounceUnalignedKmalloc: true, ...input.config },
    notes: input.notes ?? [],
  };
}
