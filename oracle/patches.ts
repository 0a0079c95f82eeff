/**
 * Named downstream patch sets: changes to the driver or the device tree that are not (or not yet)
 * in the mainline release under test. Each one says where it comes from and how sure we are.
 *
 * @module
 */
import { compareRelease, type DriverFacts, type OpsSpec, type Release } from "./releases.ts";
import type { DtIommuNode } from "./scenario.ts";
import { type Confidence, fact } from "./types.ts";

/** A named patch set. */
export interface PatchSet {
  /** Name to pass to `--patch` (`per-device-ops`). */
  name: string;
  /** One-line description. */
  title: string;
  /** Where the patch comes from (mail thread, commit, tree). */
  source: string;
  /** How sure the source is. */
  confidence: Confidence;
  /** Patch sets this one is written on top of; applied first when the release lacks them. */
  requires: string[];
  /** Oldest release whose code the patch applies to. */
  minRelease?: Release;
  /** Compatible strings the patch adds to the driver's match table. */
  addsCompatibles?: string[];
  /** Release from which mainline has the same change (the patch is then a no-op). */
  mainlineFrom?: Release;
  /** What the patch does to the driver facts (pure; returns new facts). */
  driver?: (f: DriverFacts) => DriverFacts;
  /** What the patch does to a SoC's IOMMU nodes (pure; returns new nodes). */
  devicetree?: (nodes: DtIommuNode[], socId: string) => DtIommuNode[];
  /**
   * Public reports that contradict what the oracle predicts with this patch for an IOMMU
   * instance; predictions carry them as a condition (and an unknown workload verdict).
   */
  contrary?: ContraryReport[];
}

/** A public report that contradicts a prediction, and what was found when it was weighed. */
export interface ContraryReport {
  /** SoC ids and IOMMU unit the report is about. */
  socs: string[];
  /** IOMMU unit address (`fde4b000`). */
  unit: string;
  /** Where it comes from. */
  source: string;
  /** What the report says happened. */
  report: string;
  /** The mechanism looked for, and what was (not) found. */
  reasoning: string;
}

const SEED = "seed/rockchip-iommu-thread.txt";

function withOps(f: DriverFacts, compatible: string, ops: OpsSpec): DriverFacts {
  return { ...f, compatibles: { ...f.compatibles, [compatible]: ops } };
}

function v2(f: DriverFacts): OpsSpec {
  const ops = f.compatibles["rockchip,rk3568-iommu"];
  if (!ops) throw new Error("v2 ops missing from driver facts");
  return ops;
}

function rebind(
  nodes: DtIommuNode[],
  units: string[],
  compatible: string[],
  source: string,
): DtIommuNode[] {
  return nodes.map((n) =>
    units.includes(n.unit) ? { ...n, compatible, source: `${n.source}; ${source}` } : n
  );
}

const PATCHES: PatchSet[] = [
  {
    name: "v2-dma32-withdrawn",
    title: "iommu/rockchip: fix page table allocation flags for v2 IOMMU (withdrawn)",
    source:
      `${SEED}: Midgy BALON, 2026-03-31, Message-Id 20260331075010.1463-1-midgy971; withdrawn 2026-04-03`,
    confidence: "verified",
    requires: [],
    minRelease: { major: 6, minor: 6 },
    driver: (f) =>
      withOps(f, "rockchip,rk3568-iommu", {
        ...v2(f),
        name: "iommu_data_ops_v2 (patched)",
        dmaMaskBits: fact("dma_bit_mask", 32, `${SEED}: withdrawn patch`, "verified"),
        gfpZone: fact("table gfp zone", "GFP_DMA32", `${SEED}: withdrawn patch`, "verified"),
      }),
  },
  {
    name: "v2-gfp-dma32-distro",
    title: "Distribution patch: GFP_DMA32 for the v2 ops, DMA mask left at 40 bits",
    source: "research/npu-workloads.md §1.7 (Armbian build PR #9403, merged); " +
      "research/rockchip-iommu.md §0 S-618L (a 6.18 tree with the same change)",
    confidence: "reported",
    requires: [],
    minRelease: { major: 6, minor: 6 },
    driver: (f) =>
      withOps(f, "rockchip,rk3568-iommu", {
        ...v2(f),
        name: "iommu_data_ops_v2 (distro GFP_DMA32)",
        gfpZone: fact("table gfp zone", "GFP_DMA32", "Armbian PR #9403; S-618L", "reported"),
      }),
    contrary: [{
      socs: ["rk3568", "rk3566"],
      unit: "fde4b000",
      source: "armbian/build PR #10366 (frepkovsky, 2026-08-08, closed unmerged): ODROID-M1 " +
        "8 GB; research/npu-workloads.md §1.7 and §4",
      report: "with #9403's GFP_DMA32 patch the first NPU job still failed (E RKNN: failed to " +
        "submit, op id: 1 / rknn_run fail! ret=-1) until the v2 mask was 32 bits too; " +
        "disabling the NPU IOMMU also made inference work",
      reasoning: "no mechanism found: dma_bit_mask only decides how the IOMMU maps its own " +
        "tables (dma_map_single on its dma_dev), and GFP_DMA32 already keeps them below 4 GiB, " +
        "where a 40-bit mask maps them directly, so the mask cannot move or bounce them; the " +
        "report changed mask and flags in one step, shows no rk_iommu lines, and does not show " +
        "that the running kernel carried #9403's patch. Other failures the report cannot " +
        "exclude: the patch missing from that kernel branch, data pages at or above 4 GiB in " +
        "the v2 encoding on the v1.0 NPU MMU, an NPU driver fault",
    }],
  },
  {
    name: "v2-mask32-only",
    title: "Model of a mismatch: v2 ops with a 32-bit DMA mask but tables from all memory",
    source: `${SEED}: failure mode 2 (SWIOTLB bounce poisoning) as described in the patch mail; ` +
      "research/rockchip-iommu.md §2 [D]: mainline never pairs these, a partial backport can",
    confidence: "derived",
    requires: [],
    minRelease: { major: 6, minor: 6 },
    driver: (f) =>
      withOps(f, "rockchip,rk3568-iommu", {
        ...v2(f),
        name: "iommu_data_ops_v2 (32-bit mask only)",
        dmaMaskBits: fact("dma_bit_mask", 32, "patch set v2-mask32-only", "input"),
      }),
  },
  {
    name: "per-device-ops",
    title: "iommu/rockchip: Drop global rk_ops in favor of per-device ops",
    source: "research/rockchip-iommu.md §1.5: Simon Xue, lore 20260310105303.128859-1-xxm; " +
      "iommu next 414cb6f3ac62 (2026-07-26)",
    confidence: "reported",
    requires: [],
    mainlineFrom: { major: 7, minor: 3 },
    driver: (f) => ({
      ...f,
      perDeviceOps: fact("per-device ops", true, "patch set per-device-ops", "reported"),
    }),
  },
  {
    name: "rk3568-iommu-v1",
    title: 'Proposed "rockchip,rk3568-iommu-v1" compatible for the v1.0 blocks (NPU, VICAP)',
    source: `${SEED}: Midgy BALON, 2026-04-03, planned [1/2] and [2/2]; ` +
      "research §2: never found posted or merged",
    confidence: "reported",
    requires: ["per-device-ops"],
    minRelease: { major: 6, minor: 6 },
    addsCompatibles: ["rockchip,rk3568-iommu-v1"],
    driver: (f) =>
      withOps(f, "rockchip,rk3568-iommu-v1", {
        name: "iommu_data_ops_v1_0 (proposed)",
        format: "v2",
        dmaMaskBits: fact("dma_bit_mask", 40, `${SEED}: planned [1/2]`, "reported"),
        gfpZone: fact("table gfp zone", "GFP_DMA32", `${SEED}: planned [1/2]`, "reported"),
      }),
    devicetree: (nodes, soc) =>
      soc === "rk3568" || soc === "rk3566"
        ? rebind(nodes, ["fde4b000", "fdfe0800"], ["rockchip,rk3568-iommu-v1"], `${SEED}: [2/2]`)
        : nodes,
  },
  {
    name: "rocket-rk3568-rfc",
    title: 'Rocket RK3568 RFC v4: NPU MMU bound to "rockchip,iommu" (v1 ops)',
    source: "research/rockchip-iommu.md §2 and §3.3: Midgy BALON, RFC v4 2026-06-13, " +
      "on top of per-device ops, tested on v7.1-rc6; inference output still wrong",
    confidence: "reported",
    requires: ["per-device-ops"],
    devicetree: (nodes, soc) =>
      soc === "rk3568" || soc === "rk3566"
        ? rebind(nodes, ["fde4b000"], ["rockchip,iommu"], "Rocket RK3568 RFC v4 DTS")
        : nodes,
  },
];

/** Every compatible string rk_iommu binds in some release or patch set. */
export function driverCompatibles(): string[] {
  return [
    "rockchip,iommu",
    "rockchip,rk3568-iommu",
    ...PATCHES.flatMap((p) => p.addsCompatibles ?? []),
  ];
}

/** Names of every known patch set. */
export function patchNames(): string[] {
  return PATCHES.map((p) => p.name);
}

/** Look up a patch set. */
export function getPatch(name: string): PatchSet | undefined {
  return PATCHES.find((p) => p.name === name);
}

/** Whether mainline `r` already contains the patch's change. */
export function inMainline(p: PatchSet, r: Release): boolean {
  return p.mainlineFrom !== undefined && compareRelease(r, p.mainlineFrom) >= 0;
}
