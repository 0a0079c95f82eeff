/**
 * Device trees: a pure DTB parser (kernel packages' `.dtb` files and the live
 * `/sys/firmware/fdt`), a dtc-compatible source printer, a small DTB writer, and the IOMMU
 * facts the oracle reads from a tree.
 *
 * @module
 */
export * from "./fdt.ts";
export * from "./dts.ts";
export * from "./build.ts";
export * from "./iommus.ts";
