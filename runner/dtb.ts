/**
 * Read a device-tree blob from a file (a DTB from a kernel package, or a copy of a board's
 * `/sys/firmware/fdt`) and return its Rockchip IOMMU nodes for the oracle.
 *
 * @module
 */
import { driverCompatibles } from "../oracle/patches.ts";
import type { DtIommuNode } from "../oracle/scenario.ts";
import { UserInputError } from "./errors.ts";
import { shown } from "./safe_text.ts";
import { FdtError, parseFdt } from "./fdt/fdt.ts";
import { iommuNodes } from "./fdt/iommus.ts";

/** Largest blob accepted; real DTBs are well under 1 MiB. */
export const MAX_DTB_BYTES = 16 * 1024 * 1024;

/** What the oracle needs from a DTB. */
export interface DtbIommus {
  /** Root `compatible`, e.g. `["radxa,rock-3b", "rockchip,rk3568"]`. */
  compatible: string[];
  /** Root `model`, when present. */
  model?: string;
  /** Nodes rk_iommu binds (in some release or patch set). */
  nodes: DtIommuNode[];
  /** Other `rockchip,*iommu*` nodes, bound by other drivers (e.g. RK3588's AV1 MMU). */
  others: DtIommuNode[];
}

/**
 * The IOMMU nodes of the DTB at `path`. When `soc` is given (`rk3568`), the blob must be for
 * that SoC (`rockchip,<soc>` in the root compatible). Throws UserInputError with a hint on bad
 * input.
 */
export async function dtbIommuNodes(path: string, soc?: string): Promise<DtbIommus> {
  let bytes: Uint8Array;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new Error("not a regular file");
    if (info.size > MAX_DTB_BYTES) throw new Error(`${info.size} bytes is too large for a DTB`);
    bytes = await Deno.readFile(path);
  } catch (err) {
    throw new UserInputError(
      `cannot read DTB ${path}: ${(err as Error).message}`,
      "give the path of a .dtb file (e.g. from /usr/lib/linux-image-*/rockchip/ or a copy of " +
        "/sys/firmware/fdt)",
    );
  }
  try {
    const tree = parseFdt(bytes);
    const compatible = tree.root.compatible;
    const model = tree.root.prop("model")?.asString();
    if (soc && soc !== "qemu-virt" && compatible.length === 0) {
      throw new UserInputError(
        `${path} has no root compatible, so it cannot be told to be for an ${soc} board` +
          (model ? ` (its model is ${shown(model)})` : ""),
        `pass the board's compiled DTB; a board's device tree names its SoC in the root ` +
          `compatible (e.g. "radxa,rock-3b", "rockchip,${soc}")`,
      );
    }
    if (soc && soc !== "qemu-virt" && !compatible.includes(`rockchip,${soc}`)) {
      throw new UserInputError(
        `${path} is for ${
          model ? shown(model) : compatible.map((c) => shown(c)).join(", ")
        }, not for an ${soc} board`,
        `pass the DTB of the board you predict for, or pick a board with that SoC ` +
          "(see `rkhil boards`)",
      );
    }
    const known = driverCompatibles();
    const all = iommuNodes(tree, path);
    const ours = (n: DtIommuNode) => n.compatible.some((c) => known.includes(c));
    return { compatible, model, nodes: all.filter(ours), others: all.filter((n) => !ours(n)) };
  } catch (err) {
    if (err instanceof FdtError) {
      throw new UserInputError(
        `${path} is not a valid device-tree blob: ${err.message}`,
        "pass a compiled .dtb (dtc -I dts -O dtb), not a .dts source or another file",
      );
    }
    throw err;
  }
}
