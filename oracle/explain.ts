/**
 * Explain the rk_iommu faults of a kernel log a user pastes: which SoC and IOMMU the device is,
 * which entry format the numbers were printed in (inferred when not given, with why), where the
 * directory and page tables lie, and what reached the hardware walker. The log is read by
 * `klog.parseLog` (every capture format of oracle/kline.ts, cut lines, 32-bit addresses).
 *
 * Pure: no I/O.
 *
 * @module
 */
import { decodeWalk, type FaultReport, type ParsedLog, type WalkDecoding } from "./klog.ts";
import { findInstance, getSoc } from "./soc.ts";
import type { EntryFormat } from "./types.ts";

const FOUR_GIB = 0x1_0000_0000;

/** Which SoC an IOMMU device name belongs to. */
export interface SocMatch {
  /** SoC id (`rk3568`, `rk3576`, ...), or null when nothing knows this unit address. */
  soc: string | null;
  /** Human name, or a sentence saying it is unknown. */
  name: string;
  /** True when the SoC is in the oracle's catalogue (oracle/soc.ts), so it can be predicted. */
  catalogued: boolean;
  /** The IOMMU's label and master, when known. */
  label?: string;
  /** The block the IOMMU serves (`VOP2`, `RKNN`), when known. */
  master?: string;
  /** Where the match comes from (oracle/soc.ts or the uncatalogued list). */
  source: string;
}

/**
 * IOMMU unit addresses of SoCs the oracle's catalogue lacks, from the real reports and device
 * trees they were seen in, so a log from such a board is named and still decoded.
 */
const UNCATALOGUED: readonly (SocMatch & { unit: string })[] = [
  {
    unit: "27920f00",
    soc: "rk3576",
    name: "Rockchip RK3576",
    catalogued: false,
    master: "RGA2 core 0",
    source: "rockchip-linux/mpp PR #736 (the rga RGA2_core0 lines beside the fault)",
  },
  {
    unit: "ff9a0800",
    soc: "rk3288",
    name: "Rockchip RK3288",
    catalogued: false,
    master: "VPU (vpu-service ff9a0000)",
    source: "rockchip-linux/mpp issue #206 (rk-vcodec ff9a0000.vpu-service lines beside it)",
  },
  {
    unit: "ff930300",
    soc: "rk3288",
    name: "Rockchip RK3288",
    catalogued: false,
    master: "VOP (display)",
    source: "rockchip-linux/kernel issue #102 (RK3288 Firefly, 4.4 kernel)",
  },
  {
    unit: "ff650800",
    soc: "rk3399",
    name: "Rockchip RK3399",
    catalogued: false,
    master: "VPU / VEPU (vpu_service ff650000)",
    source: "JeffyCN/rockchip_mirrors issue #12 (rk-vcodec ff650000.vpu_service beside it)",
  },
  {
    unit: "ff350800",
    soc: "rk3328",
    name: "Rockchip RK3328",
    catalogued: false,
    label: "vpu_mmu",
    master: "VPU",
    source: "upstream arch/arm64/boot/dts/rockchip/rk3328.dtsi (vpu_mmu: iommu@ff350800)",
  },
  {
    unit: "ff360480",
    soc: "rk3328",
    name: "Rockchip RK3328",
    catalogued: false,
    label: "vdec_mmu",
    master: "rkvdec",
    source: "upstream arch/arm64/boot/dts/rockchip/rk3328.dtsi (vdec_mmu: iommu@ff360480)",
  },
];

/** The unit address of an IOMMU device name (`fde4b000.iommu` → `fde4b000`), or null. */
export function unitOf(device: string): string | null {
  const m = /^([0-9a-f]{1,16})\.(?:iommu|[a-z0-9_-]{1,32})$/i.exec(device);
  return m ? m[1].toLowerCase().padStart(8, "0") : null;
}

/** Name the SoC of an IOMMU device from its unit address (catalogue first). */
export function socOfDevice(device: string): SocMatch {
  const unit = unitOf(device);
  if (unit) {
    for (const id of ["rk3568", "rk3588"]) {
      const soc = getSoc(id)!;
      const inst = findInstance(soc, unit);
      if (inst) {
        return {
          soc: id,
          name: id === "rk3568" ? "Rockchip RK3568 or RK3566 (same IOMMU map)" : soc.name,
          catalogued: true,
          label: inst.label,
          master: inst.master,
          source:
            `oracle/soc.ts (revision ${inst.revision.value}: ${inst.revision.provenance.source})`,
        };
      }
    }
    const u = UNCATALOGUED.find((x) => x.unit === unit);
    if (u) {
      const { unit: _unit, ...match } = u;
      return match;
    }
  }
  return {
    soc: null,
    name: `unknown SoC (no catalogued IOMMU at ${unit ?? device})`,
    catalogued: false,
    source: "oracle/soc.ts and the uncatalogued list in oracle/explain.ts",
  };
}

/** One way of reading a walk line's numbers. */
export interface FormatReading {
  /** The entry format this reading assumes. */
  format: EntryFormat;
  /** True when every relation the driver guarantees holds under this format. */
  consistent: boolean;
  /** What did not hold, in words (empty when consistent). */
  problems: string[];
}

/** The entry format a fault's numbers were printed in. */
export interface FormatInference {
  /** The format used to decode, or null when the log cannot tell and none was given. */
  format: EntryFormat | null;
  /** Given by the caller (from the board and kernel) rather than inferred. */
  given: boolean;
  /** Why, in one sentence. */
  why: string;
  /** The line read in each format (empty when no walk line was logged). */
  readings: FormatReading[];
}

/** Where one table or page lies. */
export interface Placed {
  /** Physical address in bytes. */
  address: number;
  /** True when the address is at or above 4 GiB. */
  above4G: boolean;
}

/** One rk_iommu fault, explained. */
export interface FaultExplanation {
  /** 1-based, in log order. */
  index: number;
  /** Device name from the line prefix (`fdd97e00.iommu`). */
  device: string;
  /** The SoC and IOMMU the device name points to. */
  soc: SocMatch;
  /** Faulting IO virtual address (bytes). */
  iova: number;
  /** Access type the fault line reports. */
  access: "read" | "write";
  /** Timestamp of the `Page fault at` line in seconds, when it had one. */
  timestampSec?: number;
  /** 1-based line numbers of the report's lines. */
  lines: FaultReport["lines"];
  /** A line of the report was cut short (see `truncated` on the klog events). */
  truncated: boolean;
  /** A `BUS_ERROR occurred at` line for the same IOVA followed. */
  busError: boolean;
  /** A `Page fault while iommu not attached to domain?` line followed. */
  notAttached: boolean;
  /** The entry format the numbers were read in, and why. */
  format: FormatInference;
  /** The walk line decoded in that format; absent without a walk line or a format. */
  decoded?: WalkDecoding;
  /** Directory table (the DTE_ADDR register), page table (from the DTE), page (from the PTE). */
  tables: { directory?: Placed; pageTable?: Placed; page?: Placed };
  /** What the hardware walker was given and found, in words. */
  reached: string;
}

function placed(address: number): Placed {
  return { address, above4G: address >= FOUR_GIB };
}

/** Infer the entry format from a report's numbers (or take the given one), with why. */
export function inferFormat(report: FaultReport, given?: EntryFormat): FormatInference {
  const walk = report.walk;
  const readings: FormatReading[] = walk
    ? (["v1", "v2"] as const).map((format) => {
      const d = decodeWalk(format, walk, { split: report.split });
      const problems = [...d.problems];
      if (format === "v1" && walk.mmuDteAddr >= FOUR_GIB) {
        problems.push("mmu_dte_addr is above 4 GiB, which a v1 DTE_ADDR register cannot hold");
      }
      return { format, consistent: problems.length === 0, problems };
    })
    : [];
  if (given) {
    const r = readings.find((x) => x.format === given);
    return {
      format: given,
      given: true,
      why: `given by the board and kernel${
        r && !r.consistent ? `; but the ${given} reading is inconsistent: ${r.problems[0]}` : ""
      }`,
      readings,
    };
  }
  if (!walk) {
    return {
      format: null,
      given: false,
      why: "no mmu_dte_addr line: nothing to infer from",
      readings,
    };
  }
  const ok = readings.filter((r) => r.consistent);
  if (ok.length === 1) {
    const bad = readings.find((r) => !r.consistent)!;
    return {
      format: ok[0].format,
      given: false,
      why: `only the ${ok[0].format} reading is consistent: the ${bad.format} reading fails ` +
        `because ${bad.problems.join("; ")}`,
      readings,
    };
  }
  if (ok.length === 2) {
    const d = decodeWalk("v1", walk, { split: report.split });
    const reason = d.invalidAt === "dte"
      ? "the walk stops at an invalid DTE, whose reading is the same in both formats"
      : d.invalidAt === "unknown"
      ? "the line is cut before any entry that differs between the formats"
      : "both readings are consistent with these numbers";
    return { format: null, given: false, why: `either format: ${reason}`, readings };
  }
  return {
    format: null,
    given: false,
    why: `neither format reads these numbers consistently (v1: ${readings[0].problems[0]}; ` +
      `v2: ${readings[1].problems[0]})`,
    readings,
  };
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function side(p: Placed): string {
  return p.above4G ? "above 4 GiB" : "below 4 GiB";
}

function reachedText(r: FaultReport, d: WalkDecoding | undefined, t: FaultExplanation["tables"]) {
  const parts: string[] = [];
  const io = `${r.access} at IOVA ${hex(r.iova)}`;
  if (r.busError) {
    parts.push(
      `BUS_ERROR at ${hex(r.iova)}: the walker's own read of a table failed (a table it ` +
        "cannot reach, e.g. above its address reach, or a bus fault)",
    );
  }
  if (r.notAttached) parts.push("the IOMMU had no domain attached when the device used it");
  if (!r.walk) {
    parts.push(`the device's ${io} faulted; the log has no walk line to say how far it got`);
    return parts.join("; ");
  }
  const dir = t.directory
    ? `directory table at ${hex(t.directory.address)} (${side(t.directory)})`
    : "";
  if (!d || d.invalidAt === "unknown") {
    parts.push(
      `the device's ${io} reached the walker with the ${dir}; the line is cut before the entries`,
    );
  } else if (d.invalidAt === "dte") {
    parts.push(
      `the device's ${io} reached the walker with the ${dir}; DTE ${d.dteIndex ?? "?"} there is ` +
        `${hex(r.walk.dte)} (invalid): no page table covers this 4 MiB of IOVA space, so the ` +
        "address was never mapped in this domain (a stale or wrong address from the driver or " +
        "user space, or a mapping already torn down)",
    );
  } else if (d.invalidAt === "pte") {
    parts.push(
      `the walker found the page table at ${hex(d.ptAddress!)} (${side(t.pageTable!)}) through ` +
        `DTE ${d.dteIndex}, but PTE ${d.pteIndex ?? "?"} is ${
          hex(r.walk.pte)
        } (invalid): the page ` +
        "is not mapped" + (r.walk.pte === 0 && t.pageTable?.above4G
          ? " (a zero PTE in a table above 4 GiB is also what SWIOTLB bounce poisoning leaves)"
          : ""),
    );
  } else {
    const perm = r.access === "write" ? d.write : d.read;
    parts.push(
      `the CPU's view of the tables maps the IOVA to page ${hex(d.pageBase!)} (${side(t.page!)})` +
        (perm === false
          ? `, without ${r.access} permission: a permission fault`
          : ", so the hardware saw something else: a table it could not reach or read the same " +
            "way (entry format, address reach), or a mapping made after the fault"),
    );
  }
  return parts.join("; ");
}

/**
 * Explain every fault of a parsed log. `format` is the entry format when known (from a board
 * and kernel); otherwise each fault's format is inferred from its numbers.
 */
export function explainFaults(log: ParsedLog, format?: EntryFormat): FaultExplanation[] {
  return log.faults.map((r, i) => {
    const inf = inferFormat(r, format);
    const decoded = r.walk && inf.format
      ? decodeWalk(inf.format, r.walk, { split: r.split })
      : r.walk
      ? decodeWalk("v1", r.walk, { split: r.split })
      : undefined;
    const tables: FaultExplanation["tables"] = {};
    if (r.walk && !(r.walk.missing ?? []).includes("mmuDteAddr")) {
      tables.directory = placed(r.walk.mmuDteAddr);
    }
    // Without a format, only what both readings share is stated (the directory table).
    if (decoded && (inf.format || decoded.invalidAt === "dte")) {
      if (decoded.ptAddress !== null) tables.pageTable = placed(decoded.ptAddress);
      if (decoded.pageBase !== null) tables.page = placed(decoded.pageBase);
    }
    const ex: FaultExplanation = {
      index: i + 1,
      device: r.device,
      soc: socOfDevice(r.device),
      iova: r.iova,
      access: r.access,
      lines: r.lines,
      truncated: r.truncated,
      busError: r.busError,
      notAttached: r.notAttached,
      format: inf,
      tables,
      reached: "",
    };
    if (r.timestampSec !== undefined) ex.timestampSec = r.timestampSec;
    if (decoded && (inf.format || decoded.invalidAt === "dte")) ex.decoded = decoded;
    ex.reached = reachedText(r, ex.decoded, tables);
    return ex;
  });
}
