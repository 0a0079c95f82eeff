/**
 * SoC catalog: the Rockchip IOMMU instances of each SoC, their hardware revision and what that
 * revision's page-table walker can reach. Every fact carries its provenance; where Rockchip has
 * not said which revision an instance is, the revision is `unknown` and so is its reach, so the
 * oracle carries the uncertainty instead of guessing.
 *
 * @module
 */
import { type Fact, fact, type HwRevision } from "./types.ts";

/** One IOMMU instance as the hardware has it (not as a device tree binds it). */
export interface IommuInstance {
  /** Unit address of the first register bank, 8 lower-case hex digits (e.g. `fde4b000`). */
  unit: string;
  /** Device-tree label used by the vendor or upstream trees. */
  label: string;
  /** Unit addresses of every register bank, first one included. */
  banks: string[];
  /** The bus master the IOMMU translates for. */
  master: string;
  /** Hardware revision and where that statement comes from. */
  revision: Fact<HwRevision>;
}

/** Address reach of a walker, in address bits; `null` when nobody knows. */
export interface WalkerReach {
  /** Reach for the first-level (directory) table, programmed in DTE_ADDR. */
  dt: Fact<number | null>;
  /** Reach for second-level page tables, pointed to by DTEs. */
  pt: Fact<number | null>;
  /** Reach for the pages PTEs point to. */
  page: Fact<number | null>;
}

/** A catalogued SoC. */
export interface Soc {
  /** SoC id (`rk3568`). */
  id: string;
  /** Human name (`Rockchip RK3568`). */
  name: string;
  /** The SoC's IOMMU instances. */
  instances: IommuInstance[];
  /** CPU physical to DMA address offset (no `dma-ranges` offset on these SoCs). */
  dmaOffset: Fact<number>;
}

const SIMON = "seed thread: Simon Xue (Rockchip), 2026-04-03; research/rockchip-iommu.md §2";
const JONAS = "seed thread: Jonas Karlman, 2026-04-01 (VOP2 MMU handles 40-bit DTE/PTE)";
const RESEARCH_31 = "research/rockchip-iommu.md §3.1 (upstream rk356x-base.dtsi)";
const RESEARCH_32 = "research/rockchip-iommu.md §3.2 (vendor BSP rk3568.dtsi)";
const RESEARCH_34 = "research/rockchip-iommu.md §3.4 (upstream rk3588-base.dtsi)";
const RK3588_DTB = `${RESEARCH_34}; Debian 7.3.4 rk3588-rock-5b.dtb (runner/fdt/testdata)`;

function unknownRevision(source: string): Fact<HwRevision> {
  return fact(
    "hardware revision",
    "unknown",
    source,
    "unknown",
    "Rockchip has not said which IOMMU revision this block integrates",
  );
}

function inst(
  unit: string,
  label: string,
  master: string,
  revision: Fact<HwRevision>,
  extraBanks: string[] = [],
): IommuInstance {
  return { unit, label, master, banks: [unit, ...extraBanks], revision };
}

function rk356x(id: "rk3568" | "rk3566", name: string): Soc {
  const src = id === "rk3568" ? RESEARCH_32 : `${RESEARCH_32}; RK3566 shares rk356x-base.dtsi`;
  return {
    id,
    name,
    dmaOffset: fact("dma offset", 0, "research/rockchip-iommu.md §4.1", "derived"),
    instances: [
      inst(
        "fde4b000",
        "rknpu_mmu",
        "npu@fde40000",
        fact("hardware revision", "v1.0", SIMON, "reported", '"NPU and ISP use the v1.0 IOMMU"'),
      ),
      inst("fdea0800", "vdpu_mmu", "vpu@fdea0400", unknownRevision(`${RESEARCH_31}; ${src}`)),
      inst("fded0480", "jpegd_mmu", "jpegd", unknownRevision(src)),
      inst("fdee0800", "vepu_mmu", "vepu", unknownRevision(`${RESEARCH_31}; ${src}`)),
      inst("fdef0800", "iep_mmu", "iep", unknownRevision(src)),
      inst("fdf40f00", "rkvenc_mmu", "rkvenc", unknownRevision(src), ["fdf40f40"]),
      inst("fdf80800", "rkvdec_mmu", "rkvdec", unknownRevision(src), ["fdf80840"]),
      inst(
        "fdfe0800",
        "vicap_mmu",
        "vicap (rkcif)",
        fact(
          "hardware revision",
          "v1.0",
          "seed thread: Midgy BALON's planned [2/2] moves vicap_mmu to the v1 compatible",
          "reported",
          "Rockchip named the NPU and ISP only; VICAP as v1.0 is Midgy's reading",
        ),
      ),
      inst(
        "fdff1a00",
        "rkisp_mmu",
        "rkisp",
        fact("hardware revision", "v1.0", SIMON, "reported", '"NPU and ISP use the v1.0 IOMMU"'),
      ),
      inst(
        "fe043e00",
        "vop_mmu",
        "vop@fe040000 (VOP2)",
        fact("hardware revision", "v2.0", JONAS, "reported", "walks 40-bit tables in testing"),
        ["fe043f00"],
      ),
    ],
  };
}

const ROCKET_RK3588 =
  "research/npu-workloads.md §2 and rockchip-iommu.md §3.5: Rocket (v6.18) drives the RK3588 " +
  "NPU through these MMUs with the v2 ops, whose tables come from all memory since v6.6";

function rk3588npu(unit: string, label: string, master: string, extra: string[] = []) {
  return inst(
    unit,
    label,
    master,
    fact(
      "hardware revision",
      "v2.0",
      ROCKET_RK3588,
      "derived",
      "inferred from the mainline NPU driver working with tables above 4 GiB; not stated by Rockchip",
    ),
    extra,
  );
}

const RK3588: Soc = {
  id: "rk3588",
  name: "Rockchip RK3588",
  dmaOffset: fact("dma offset", 0, RESEARCH_34, "derived"),
  instances: [
    rk3588npu("fdab9000", "rknn_mmu_0", "npu@fdab0000 (core 0)", ["fdaba000"]),
    rk3588npu("fdaca000", "rknn_mmu_1", "npu@fdac0000 (core 1)"),
    rk3588npu("fdada000", "rknn_mmu_2", "npu@fdad0000 (core 2)"),
    inst("fdb50800", "vpu121_mmu", "vpu121 (Hantro G1 decoder)", unknownRevision(RK3588_DTB)),
    inst("fdb60f00", "rga3_0_mmu", "rga3_0", unknownRevision(RK3588_DTB)),
    inst("fdb70f00", "rga3_1_mmu", "rga3_1", unknownRevision(RK3588_DTB)),
    inst("fdba0800", "vepu121_0_mmu", "vepu121_0 (JPEG encoder)", unknownRevision(RK3588_DTB)),
    inst("fdba4800", "vepu121_1_mmu", "vepu121_1 (JPEG encoder)", unknownRevision(RK3588_DTB)),
    inst("fdba8800", "vepu121_2_mmu", "vepu121_2 (JPEG encoder)", unknownRevision(RK3588_DTB)),
    inst("fdbac800", "vepu121_3_mmu", "vepu121_3 (JPEG encoder)", unknownRevision(RK3588_DTB)),
    inst("fdc38700", "vdec0_mmu", "vdec0", unknownRevision(RK3588_DTB), ["fdc38740"]),
    inst("fdc40700", "vdec1_mmu", "vdec1", unknownRevision(RK3588_DTB)),
    inst("fdcb7f00", "isp0_mmu", "isp0", unknownRevision(RESEARCH_34)),
    inst("fdce0800", "vicap_mmu", "vicap", unknownRevision(RK3588_DTB)),
    inst(
      "fdd97e00",
      "vop_mmu",
      "vop@fdd90000 (VOP2)",
      fact("hardware revision", "v2.0", JONAS, "reported", "RK3588 VOP2 MMU walks 40-bit tables"),
      ["fdd97f00"],
    ),
  ],
};

const QEMU_VIRT: Soc = {
  id: "qemu-virt",
  name: "QEMU virt (no Rockchip IOMMU)",
  dmaOffset: fact("dma offset", 0, "QEMU -M virt has no dma-ranges offset", "derived"),
  instances: [],
};

const CATALOG: Record<string, Soc> = {
  rk3568: rk356x("rk3568", "Rockchip RK3568"),
  rk3566: rk356x("rk3566", "Rockchip RK3566"),
  rk3588: RK3588,
  "qemu-virt": QEMU_VIRT,
};

/** Ids of every catalogued SoC. */
export function socIds(): string[] {
  return Object.keys(CATALOG);
}

/** Look up a SoC; `undefined` when it is not catalogued. */
export function getSoc(id: string): Soc | undefined {
  return CATALOG[id];
}

/** Find the instance whose first bank (or any bank) has this unit address. */
export function findInstance(soc: Soc, unit: string): IommuInstance | undefined {
  const u = unit.toLowerCase();
  return soc.instances.find((i) => i.banks.includes(u));
}

/**
 * What a hardware revision's walker can reach.
 * - v1.0: directory table below 4 GiB only (Rockchip); pages 40-bit (Rockchip); second-level
 *   tables unknown (Rockchip spoke of the first level only; the seed's author reported a 32-bit
 *   AXI walker for all levels).
 * - v2.0: 40-bit for all levels (reported from VOP2 testing).
 * - unknown: pages 40-bit (Rockchip: both revisions map 40-bit pages); tables unknown.
 */
export function walkerReach(revision: Fact<HwRevision>): WalkerReach {
  const page = fact<number | null>(
    "page reach (bits)",
    40,
    SIMON,
    "reported",
    '"Both versions can map 40-bit physical pages"',
  );
  switch (revision.value) {
    case "v1.0":
      return {
        dt: fact<number | null>(
          "directory table reach (bits)",
          32,
          SIMON,
          "reported",
          '"v1.0 does not support placing the first-level page table above 4 GB"',
        ),
        pt: fact<number | null>(
          "page table reach (bits)",
          null,
          `${SIMON}; seed patch mail (Midgy BALON: 32-bit AXI walker)`,
          "unknown",
          "Rockchip stated the first-level limit only; a 32-bit walker for all levels is reported " +
            "by the seed's author but not confirmed",
        ),
        page,
      };
    case "v2.0":
      return {
        dt: fact<number | null>(
          "directory table reach (bits)",
          40,
          revision.provenance.source,
          "reported",
        ),
        pt: fact<number | null>(
          "page table reach (bits)",
          40,
          revision.provenance.source,
          "reported",
        ),
        page,
      };
    default:
      return {
        dt: fact<number | null>(
          "directory table reach (bits)",
          null,
          revision.provenance.source,
          "unknown",
          "32 bits if this block is v1.0, 40 bits if v2.0",
        ),
        pt: fact<number | null>(
          "page table reach (bits)",
          null,
          revision.provenance.source,
          "unknown",
          "depends on the unknown hardware revision",
        ),
        page,
      };
  }
}
