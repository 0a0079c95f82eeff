/**
 * The boot device tree of a QEMU guest with emulated Rockchip IOMMUs (issue 15): QEMU's own
 * `-M virt` tree (`-M virt,dumpdtb=FILE` with the guest's CPU, CPU count and memory) plus, per
 * IOMMU instance of the modelled board,
 * - a `reserved-memory` region with `no-map` inside guest RAM holding its register banks (the
 *   registers are RAM that the emulator module, target/rkiommu-emu/, serves from a poller),
 * - the IOMMU node as the board has it (`iommu@fde4b000`, its compatible, `reg` banks of 0x100,
 *   `interrupts = <GIC_SPI n IRQ_TYPE_LEVEL_HIGH>`, `#iommu-cells = <0>`, clocks `aclk` and
 *   `iface` from one fixed clock so the driver has no clock to complain about),
 * - a master node (`rkhil,iommu-master`) with `iommus = <&that_iommu>`, bound by the emulator
 *   module's master driver.
 * QEMU boots it with `-dtb` and still writes `/chosen` (command line, initrd) and `/memory`
 * itself (hw/arm/boot.c), so the tree stays the machine's. Debian's kernels have no
 * CONFIG_OF_OVERLAY, hence the nodes go into the boot tree (issue 15).
 *
 * Instance facts (addresses, banks, SPIs, hardware revision) are the ROCK 3B's from
 * ../shared/research/rockchip-iommu.md §3 (rk356x-base.dtsi); the revision of each block is the
 * seed thread's (Simon Xue: "NPU and ISP use the v1.0 IOMMU"; VOP2's MMU is v2.0).
 *
 * @module
 */

import { InfraError, UserInputError } from "../errors.ts";
import { buildFdt, cells, empty, type NodeSpec, strings } from "../fdt/build.ts";
import { type FdtNode, parseFdt } from "../fdt/fdt.ts";
import { run, tail } from "../debian/proc.ts";

/** One emulated Rockchip IOMMU instance in the guest's device tree. */
export interface EmuIommu {
  /** Short name (`npu`, `vop`): names the master node `rkhil-<name>-master`. */
  name: string;
  /** Physical address of bank 0 (the node's unit address), e.g. 0xfde4b000. */
  base: number;
  /** Register banks, 0x100 bytes each, consecutive from `base` (VOP2's MMU has 2). */
  banks: number;
  /** The node's compatible list as the modelled device tree has it for the release. */
  compatible: string[];
  /** GIC SPI number (the `interrupts` cell; Linux's hwirq is SPI + 32). */
  spi: number;
  /**
   * The hardware revision the emulator's walker models: `1.0` reads the directory only below
   * 4 GiB, `2.0` within 40 bits (seed thread; see target/rkiommu-emu/README.md).
   */
  revision: "1.0" | "2.0";
}

/**
 * The ROCK 3B (RK3568) IOMMUs the emulation knows, by short name: the NPU's MMU (v1.0 hardware,
 * bound as `rockchip,rk3568-iommu` in rk356x-base.dtsi, SPI 151) and VOP2's MMU (v2.0, two banks
 * fe043e00 and fe043f00, SPI 148). research/rockchip-iommu.md §3 [V].
 */
export const ROCK3B_IOMMUS: Readonly<Record<string, EmuIommu>> = {
  npu: {
    name: "npu",
    base: 0xfde4b000,
    banks: 1,
    compatible: ["rockchip,rk3568-iommu"],
    spi: 151,
    revision: "1.0",
  },
  // The NPU MMU as the Rocket RK3568 RFC v4 binds it (2026-06-13, research/rockchip-iommu.md
  // §2): `rockchip,iommu`, the v1 ops (32-bit mask, GFP_DMA32, v1 entries). Its node comes
  // first in the tree, so it probes before VOP2's: with a global rk_ops (before 414cb6f3ac62)
  // VOP2's probe then fails, and the v1 PTEs keep only bits 31:12 of the NPU's pages.
  "npu-rfc": {
    name: "npu",
    base: 0xfde4b000,
    banks: 1,
    compatible: ["rockchip,iommu"],
    spi: 151,
    revision: "1.0",
  },
  vop: {
    name: "vop",
    base: 0xfe043e00,
    banks: 2,
    compatible: ["rockchip,rk3568-iommu"],
    spi: 148,
    revision: "2.0",
  },
};

/** The reserved windows are 64 KiB, aligned, each holding the banks that fall inside it. */
const WINDOW = 0x10000;

/** QEMU virt's RAM starts at 1 GiB (hw/arm/virt.c base_memmap[VIRT_MEM]). */
export const VIRT_RAM_BASE = 0x4000_0000;

/**
 * Why a QEMU virt guest of `memoryBytes` cannot hold `iommus`' register windows, or undefined
 * when it can: the windows lie at the board's addresses inside guest RAM
 * (`0x4000_0000 + memoryBytes`), so a guest below ~3 GiB has no RAM there (a 2 GiB guest's RAM
 * ends at 0xc000_0000; the ROCK 3B windows end at 0xfe05_0000). The windows are not moved: the
 * oracle finds each block's hardware revision (and so its walker's reach) in the SoC catalog by
 * the board's unit address, and its expected lines name `<unit>.iommu`, the driver's device
 * name: a relocated block would be an unknown revision (UNCERTAIN) with other log lines.
 */
export function emuRamRefusal(
  memoryBytes: number,
  iommus: readonly EmuIommu[],
): string | undefined {
  const end = VIRT_RAM_BASE + memoryBytes;
  const out = iommus.find((i) => Math.floor(i.base / WINDOW) * WINDOW + WINDOW > end);
  if (!out) return undefined;
  return `the registers of ${out.name} (0x${out.base.toString(16)}) are outside guest RAM ` +
    `0x${VIRT_RAM_BASE.toString(16)}..0x${end.toString(16)}: emulated IOMMUs need 3G or more ` +
    "(the register windows are guest RAM at the board's addresses)";
}

/**
 * The instances for a QemuTarget option: ids of {@linkcode ROCK3B_IOMMUS} or full instances.
 *
 * @throws {UserInputError} for an unknown id, a bad address, SPI or bank count, or two
 *   instances whose banks overlap.
 */
export function resolveEmuIommus(spec: readonly (string | EmuIommu)[]): EmuIommu[] {
  const out = spec.map((s) => {
    if (typeof s !== "string") return s;
    const known = ROCK3B_IOMMUS[s];
    if (!known) {
      throw new UserInputError(
        `unknown emulated IOMMU "${s}"`,
        `use one of ${Object.keys(ROCK3B_IOMMUS).join(", ")} or a full instance`,
      );
    }
    return known;
  });
  const bad = (what: string): never => {
    throw new UserInputError(`emulated IOMMU: ${what}`, "see runner/qemu/iommu_dtb.ts");
  };
  const names = new Set<string>();
  for (const i of out) {
    if (!/^[a-z][a-z0-9]{0,15}$/.test(i.name)) bad(`name "${i.name}" is not [a-z][a-z0-9]*`);
    if (names.has(i.name)) bad(`name "${i.name}" given twice`);
    names.add(i.name);
    if (!Number.isInteger(i.base) || i.base < 0 || i.base % 0x100 || i.base >= 2 ** 32) {
      bad(`base 0x${i.base.toString(16)} of ${i.name} is not a 256-byte aligned 32-bit address`);
    }
    if (!Number.isInteger(i.banks) || i.banks < 1 || i.banks > 4) bad(`banks of ${i.name}: 1..4`);
    if (Math.floor(i.base / WINDOW) !== Math.floor((i.base + i.banks * 0x100 - 1) / WINDOW)) {
      bad(`banks of ${i.name} cross a 64 KiB boundary`);
    }
    if (!Number.isInteger(i.spi) || i.spi < 0 || i.spi > 223) bad(`SPI ${i.spi} is not 0..223`);
    if (i.compatible.length === 0) bad(`${i.name} has no compatible`);
    if (i.revision !== "1.0" && i.revision !== "2.0") bad(`revision of ${i.name}: 1.0 or 2.0`);
  }
  for (const a of out) {
    for (const b of out) {
      if (a !== b && a.base < b.base + b.banks * 0x100 && b.base < a.base + a.banks * 0x100) {
        bad(`${a.name} and ${b.name} overlap`);
      }
    }
  }
  return out;
}

function toSpec(node: FdtNode): NodeSpec {
  return {
    name: node.name,
    props: node.properties.map((p) => [p.name, p.value] as [string, Uint8Array]),
    children: node.children.map(toSpec),
  };
}

function hi(v: number): number {
  return Math.floor(v / 2 ** 32);
}

/**
 * Add the emulated IOMMUs' nodes to a QEMU virt DTB (pure). The windows must lie in the
 * guest's RAM (`ramStart`..`ramEnd`, from the tree's `/memory` node).
 *
 * @throws {UserInputError} when a register window is outside guest RAM (e.g. a 2 GiB guest:
 *   RAM ends at 0xc0000000, below fde4b000).
 * @throws {FdtError} for a DTB that does not parse.
 */
export function addEmuIommus(dtb: Uint8Array, iommus: readonly EmuIommu[]): Uint8Array {
  const tree = parseFdt(dtb);
  const root = tree.root;
  const gic = root.prop("interrupt-parent")?.asPhandle();
  if (gic === undefined) throw new UserInputError("the DTB has no interrupt-parent", "use QEMU's");
  const mem = tree.nodes.find((n) =>
    n.prop("device_type")?.value.length && n.baseName === "memory"
  );
  const reg = mem?.prop("reg")?.asU32Array() ?? [];
  const ramStart = (reg[0] ?? 0) * 2 ** 32 + (reg[1] ?? 0);
  const ramEnd = ramStart + (reg[2] ?? 0) * 2 ** 32 + (reg[3] ?? 0);
  let phandle = 0;
  for (const n of tree.nodes) phandle = Math.max(phandle, n.phandle ?? 0);
  const spec = toSpec(root);
  // A tree that already has the emulation's clock (nodes added before) keeps it.
  const oldClk = root.children.find((c) => c.name === "rkhil-iommu-clk")?.phandle;
  const clk = oldClk ?? ++phandle;
  const windows = new Map<number, string[]>();
  for (const i of iommus) {
    const w = Math.floor(i.base / WINDOW) * WINDOW;
    if (w < ramStart || w + WINDOW > ramEnd) {
      throw new UserInputError(
        `the registers of ${i.name} (0x${i.base.toString(16)}) are outside guest RAM ` +
          `0x${ramStart.toString(16)}..0x${ramEnd.toString(16)}`,
        "give the guest at least 4G of memory (the windows must be RAM the kernel leaves alone)",
      );
    }
    windows.set(w, [...(windows.get(w) ?? []), i.name]);
  }
  const children = spec.children ?? [];
  let resv = children.find((c) => c.name === "reserved-memory");
  if (!resv) {
    resv = {
      name: "reserved-memory",
      props: [["#address-cells", cells(2)], ["#size-cells", cells(2)], ["ranges", empty]],
      children: [],
    };
    children.push(resv);
  }
  for (const [w, names] of [...windows].sort((a, b) => a[0] - b[0])) {
    resv.children!.push({
      name: `rkhil-iommu-regs@${w.toString(16)}`,
      props: [
        ["reg", cells(hi(w), w >>> 0, 0, WINDOW)],
        ["no-map", empty],
        ["rkhil,iommus", strings(...names)],
      ],
    });
  }
  if (oldClk === undefined) {
    children.push({
      name: "rkhil-iommu-clk",
      props: [
        ["compatible", strings("fixed-clock")],
        ["#clock-cells", cells(0)],
        ["clock-frequency", cells(300_000_000)],
        ["clock-output-names", strings("rkhil_iommu_clk")],
        ["phandle", cells(clk)],
      ],
    });
  }
  for (const i of iommus) {
    if (children.some((c) => c.name === `iommu@${i.base.toString(16)}`)) {
      throw new UserInputError(
        `the DTB already has iommu@${i.base.toString(16)}`,
        "add each emulated IOMMU once",
      );
    }
  }
  for (const i of iommus) {
    const ph = ++phandle;
    const regCells: number[] = [];
    for (let b = 0; b < i.banks; b++) regCells.push(0, i.base + b * 0x100, 0, 0x100);
    children.push({
      name: `iommu@${i.base.toString(16)}`,
      props: [
        ["compatible", strings(...i.compatible)],
        ["reg", cells(...regCells)],
        ["interrupts", cells(0, i.spi, 4)],
        ["clocks", cells(clk, clk)],
        ["clock-names", strings("aclk", "iface")],
        ["#iommu-cells", cells(0)],
        ["rkhil,revision", strings(i.revision)],
        ["phandle", cells(ph)],
      ],
    });
    children.push({
      name: `rkhil-${i.name}-master`,
      props: [
        ["compatible", strings("rkhil,iommu-master")],
        ["iommus", cells(ph)],
      ],
    });
  }
  spec.children = children;
  return buildFdt(spec, {
    reservations: tree.reservations,
    bootCpuidPhys: tree.header.bootCpuidPhys,
  });
}

/** Machine options that shape QEMU's generated tree (must match the boot's). */
export interface VirtShape {
  /** Memory, QEMU syntax (default `8G`). */
  memory?: string;
  /** CPUs (default 2). */
  cpus?: number;
  /** CPU model (default `cortex-a53`). */
  cpu?: string;
  /** QEMU binary (default `qemu-system-aarch64`). */
  qemuBinary?: string;
}

/**
 * Dump QEMU's own virt tree for `shape` (`-M virt,dumpdtb=`), add `iommus` and write the result
 * to `path` (for `-dtb`).
 *
 * @throws {InfraError} when QEMU cannot dump its tree.
 * @throws {UserInputError} as {@linkcode addEmuIommus}.
 */
export async function writeEmuIommuDtb(
  path: string,
  shape: VirtShape,
  iommus: readonly EmuIommu[],
): Promise<void> {
  const raw = `${path}.virt`;
  const res = await run(shape.qemuBinary ?? "qemu-system-aarch64", [
    "-M",
    `virt,dumpdtb=${raw.replaceAll(",", ",,")}`,
    "-cpu",
    shape.cpu ?? "cortex-a53",
    "-smp",
    String(shape.cpus ?? 2),
    "-m",
    shape.memory ?? "8G",
    "-nodefaults",
    "-display",
    "none",
  ], { allowFailure: true, owner: "qemu dumpdtb", timeoutMs: 60_000 });
  let dtb: Uint8Array;
  try {
    dtb = await Deno.readFile(raw);
  } catch (err) {
    throw new InfraError(
      `QEMU did not dump its virt device tree (status ${res.code}): ${tail(res.stderr, 5)}`,
      "check that qemu-system-aarch64 runs (-M virt,dumpdtb=FILE)",
      { cause: err },
    );
  }
  await Deno.remove(raw).catch(() => {});
  await Deno.writeFile(path, addEmuIommus(dtb, iommus));
}
