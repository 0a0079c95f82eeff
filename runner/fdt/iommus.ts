/**
 * Device-tree facts the IOMMU oracle needs, read from a parsed tree: the Rockchip IOMMU
 * nodes (as the oracle's {@link DtIommuNode}), which devices sit behind each of them, and
 * the memory banks.
 *
 * @module
 */

import type { DtIommuNode } from "../../oracle/scenario.ts";
import type { Confidence } from "../../oracle/types.ts";
import { FdtError } from "./fdt.ts";
import type { FdtNode, FdtTree, RegBank } from "./fdt.ts";

/**
 * The compatibles `drivers/iommu/rockchip-iommu.c` binds to (its `rk_iommu_dt_ids`):
 * `rockchip,iommu` gets the v1 ops, `rockchip,rk3568-iommu` the v2 ops. RK3588 nodes list
 * `rockchip,rk3588-iommu` first and fall back to `rockchip,rk3568-iommu`.
 */
export const ROCKCHIP_IOMMU_DRIVER_COMPATIBLES: readonly string[] = [
  "rockchip,iommu",
  "rockchip,rk3568-iommu",
];

/** The selection rule of {@link iommuNodes}: a `rockchip,` compatible that mentions `iommu`. */
export function isRockchipIommuCompatible(compatible: string): boolean {
  return compatible.startsWith("rockchip,") && compatible.includes("iommu");
}

/**
 * True when `rockchip-iommu.c` would bind to the node. Not every `rockchip,*iommu*` node
 * does: RK3588's AV1 decoder MMU is `"rockchip,rk3588-av1-iommu", "verisilicon,iommu-1.2"`
 * and belongs to the Verisilicon IOMMU driver.
 */
export function boundToRockchipIommu(node: DtIommuNode): boolean {
  return node.compatible.some((c) => ROCKCHIP_IOMMU_DRIVER_COMPATIBLES.includes(c));
}

/** An IOMMU node with the detail {@link DtIommuNode} leaves out. */
export interface IommuDetail {
  node: DtIommuNode;
  path: string;
  phandle: number | undefined;
  /** Every `reg` bank (the VOP MMU has two), first bank = `node.unit`. */
  banks: RegBank[];
  /** All `/__symbols__` labels of the node (empty when the blob has none). */
  labels: string[];
}

/** `address` as at least 8 lower-case hex digits. */
export function formatUnit(address: bigint): string {
  return address.toString(16).padStart(8, "0");
}

function rockchipIommuNodes(tree: FdtTree): FdtNode[] {
  return tree.nodes.filter((n) => n.compatible.some(isRockchipIommuCompatible));
}

/** Every Rockchip IOMMU node with its banks, phandle and labels, in blob order. */
export function iommuDetails(
  tree: FdtTree,
  source: string,
  confidence: Confidence = "verified",
): IommuDetail[] {
  return rockchipIommuNodes(tree).map((n) => {
    const banks = tree.reg(n);
    if (banks.length === 0) {
      throw new FdtError(n.offset, `${n.path}: Rockchip IOMMU node without reg`);
    }
    return {
      node: {
        unit: formatUnit(banks[0].address),
        label: tree.labelOrName(n),
        compatible: n.compatible,
        status: n.available ? "okay" : "disabled",
        properties: n.properties.filter((p) => p.isEmpty).map((p) => p.name),
        source: `${source}:${n.path}`,
        confidence,
      },
      path: n.path,
      phandle: n.phandle,
      banks,
      labels: tree.labels(n),
    };
  });
}

/**
 * The oracle's view of every node whose `compatible` holds a `rockchip,*iommu*` string.
 * `unit` is the first `reg` bank's address; `label` the `/__symbols__` label when the blob
 * was built with `dtc -@`, else the node's full name (`iommu@fe043e00`); `status` is
 * `okay` when the property is absent, `okay` or `ok`, else `disabled`; `properties` lists
 * the node's boolean (empty) properties; `source` is `source` + `:` + the node path;
 * `confidence` is `verified` (the blob itself was read) unless told otherwise.
 */
export function iommuNodes(
  tree: FdtTree,
  source: string,
  confidence: Confidence = "verified",
): DtIommuNode[] {
  return iommuDetails(tree, source, confidence).map((d) => d.node);
}

/** A device whose `iommus` property points at an IOMMU. */
export interface IommuMaster {
  path: string;
  label: string;
  compatible: string[];
  status: "okay" | "disabled";
  /** The IOMMU specifier cells after the phandle (`#iommu-cells` of them; 0 for Rockchip). */
  args: number[];
}

/** One Rockchip IOMMU and the devices behind it. */
export interface IommuWithMasters {
  path: string;
  unit: string;
  label: string;
  masters: IommuMaster[];
}

/**
 * For each Rockchip IOMMU node, the nodes whose `iommus` property references its phandle.
 * Each `iommus` entry is a phandle followed by the target's `#iommu-cells` cells (0 when
 * absent). A phandle that names no node is an {@link FdtError}.
 */
export function iommuMasters(tree: FdtTree): IommuWithMasters[] {
  const result = new Map<FdtNode, IommuWithMasters>();
  for (const n of rockchipIommuNodes(tree)) {
    const banks = tree.reg(n);
    result.set(n, {
      path: n.path,
      unit: banks.length > 0 ? formatUnit(banks[0].address) : (n.unitAddress ?? ""),
      label: tree.labelOrName(n),
      masters: [],
    });
  }
  for (const dev of tree.nodes) {
    const prop = dev.prop("iommus");
    if (prop === undefined) continue;
    const c = prop.asU32Array();
    let i = 0;
    while (i < c.length) {
      const target = tree.byPhandleValue(c[i]);
      if (target === undefined) {
        throw new FdtError(
          prop.valueOffset + i * 4,
          `${dev.path}: iommus names phandle 0x${c[i].toString(16)}, which no node has`,
        );
      }
      const nCells = target.prop("#iommu-cells")?.asU32() ?? 0;
      if (nCells > c.length - i - 1) {
        throw new FdtError(
          prop.valueOffset + i * 4,
          `${dev.path}: iommus entry needs ${nCells} cells after the phandle, has ${
            c.length - i - 1
          }`,
        );
      }
      const entry = result.get(target);
      if (entry) {
        entry.masters.push({
          path: dev.path,
          label: tree.labelOrName(dev),
          compatible: dev.compatible,
          status: dev.available ? "okay" : "disabled",
          args: c.slice(i + 1, i + 1 + nCells),
        });
      }
      i += 1 + nCells;
    }
  }
  return [...result.values()];
}

/** A RAM bank from a `/memory` node. */
export interface MemoryBank {
  path: string;
  address: bigint;
  size: bigint;
}

/**
 * RAM banks from the root's memory nodes (`device_type = "memory"`, or named `memory` /
 * `memory@...`), skipping unavailable nodes, in blob order. Debian's DTBs carry no memory
 * node (the bootloader adds one), so this is for live trees (`/sys/firmware/fdt`).
 */
export function memoryBanks(tree: FdtTree): MemoryBank[] {
  const out: MemoryBank[] = [];
  for (const n of tree.root.children) {
    const type = n.prop("device_type");
    const isMemory = type !== undefined
      ? type.value.length > 0 && type.asString() === "memory"
      : n.baseName === "memory";
    if (!isMemory || !n.available) continue;
    for (const b of tree.reg(n)) out.push({ path: n.path, address: b.address, size: b.size });
  }
  return out;
}
