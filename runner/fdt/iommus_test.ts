/**
 * The device-tree facts the oracle rests on, asserted on Debian's own DTBs (provenance in
 * testdata/README.md). If a fixture is refreshed and one of these changes, that is news.
 */
import assert from "node:assert/strict";
import { parseFdt } from "./fdt.ts";
import type { FdtTree } from "./fdt.ts";
import {
  boundToRockchipIommu,
  iommuDetails,
  iommuMasters,
  iommuNodes,
  isRockchipIommuCompatible,
  memoryBanks,
} from "./iommus.ts";

const load = (f: string): FdtTree =>
  parseFdt(Deno.readFileSync(new URL(`./testdata/${f}`, import.meta.url)));

/** `unit status label [boolean props]` per IOMMU, compact for assertions. */
const summary = (t: FdtTree, f: string) =>
  iommuNodes(t, f).map((n) =>
    [n.unit, n.status, n.label, ...n.properties].join(" ") +
    (n.compatible.length === 1 ? "" : ` {${n.compatible.join(",")}}`)
  );

const RK356X_V2 = ["rockchip,rk3568-iommu"];
const RK3588 = "{rockchip,rk3588-iommu,rockchip,rk3568-iommu}";

Deno.test("RK3568/RK3566 in Debian 6.1: vdpu, vepu and vop MMUs, no NPU MMU", () => {
  for (const f of ["6.1.0-56-arm64/rk3568-rock-3a.dtb", "6.1.0-56-arm64/rk3566-quartz64-a.dtb"]) {
    const t = load(f);
    assert.deepEqual(summary(t, f), [
      "fdea0800 okay iommu@fdea0800",
      "fdee0800 okay iommu@fdee0800",
      "fe043e00 okay iommu@fe043e00",
    ], f);
    for (const n of iommuNodes(t, f)) {
      assert.deepEqual(n.compatible, RK356X_V2);
      assert.equal(n.confidence, "verified");
      assert.equal(n.source, `${f}:/iommu@${n.unit}`);
    }
  }
});

Deno.test("ROCK 3B in Debian 6.12: vop_mmu fe043e00 okay with two banks; no NPU MMU", () => {
  const f = "6.12.118+deb13-arm64/rk3568-rock-3b.dtb";
  const t = load(f);
  assert.deepEqual(summary(t, f), [
    "fdea0800 okay iommu@fdea0800",
    "fdee0800 okay iommu@fdee0800",
    "fe043e00 okay iommu@fe043e00",
  ]);
  const vop = iommuDetails(t, f).find((d) => d.node.unit === "fe043e00");
  assert.deepEqual(vop?.banks, [
    { address: 0xfe043e00n, size: 0x100n },
    { address: 0xfe043f00n, size: 0x100n },
  ]);
  assert.deepEqual(
    iommuMasters(t).map((
      m,
    ) => [m.unit, m.masters.map((x) => `${x.path} ${x.compatible[0]} ${x.status}`)]),
    [
      ["fdea0800", ["/video-codec@fdea0400 rockchip,rk3568-vpu okay"]],
      ["fdee0800", ["/video-codec@fdee0000 rockchip,rk3568-vepu okay"]],
      ["fe043e00", ["/vop@fe040000 rockchip,rk3568-vop okay"]],
    ],
  );
  // The RK3566 ROCK 3C has the same three.
  const c = "6.12.118+deb13-arm64/rk3566-rock-3c.dtb";
  assert.deepEqual(iommuNodes(load(c), c).map((n) => `${n.unit} ${n.status}`), [
    "fdea0800 okay",
    "fdee0800 okay",
    "fe043e00 okay",
  ]);
});

Deno.test("ROCK 3B in Debian 7.3: vicap_mmu fdfe0800 appears (disabled, disable-mmu-reset)", () => {
  const f = "7.3.4+deb13-arm64/rk3568-rock-3b.dtb";
  const t = load(f);
  assert.equal(t.hasSymbols, false);
  assert.deepEqual(summary(t, f), [
    "fdea0800 okay iommu@fdea0800",
    "fdee0800 okay iommu@fdee0800",
    "fdfe0800 disabled iommu@fdfe0800 rockchip,disable-mmu-reset",
    "fe043e00 okay iommu@fe043e00",
  ]);
  assert.deepEqual(iommuMasters(t)[2].masters.map((m) => `${m.path} ${m.status}`), [
    "/video-capture@fdfe0000 disabled",
  ]);
});

Deno.test("no Debian RK356x DTB has an NPU node or an NPU MMU (fde4b000)", () => {
  for (
    const f of [
      "6.1.0-56-arm64/rk3568-rock-3a.dtb",
      "6.1.0-56-arm64/rk3566-quartz64-a.dtb",
      "6.12.118+deb13-arm64/rk3568-rock-3b.dtb",
      "6.12.118+deb13-arm64/rk3566-rock-3c.dtb",
      "7.3.4+deb13-arm64/rk3568-rock-3b.dtb",
    ]
  ) {
    const t = load(f);
    assert.equal(iommuNodes(t, f).some((n) => n.unit === "fde4b000"), false, f);
    // Nothing is mapped at the NPU's registers (fde40000..fde4ffff) ...
    const atNpu = t.nodes.filter((n) => {
      try {
        return t.reg(n).some((b) => b.address >= 0xfde40000n && b.address < 0xfde50000n);
      } catch {
        return false; // reg of pinctrl-like nodes without cells semantics
      }
    });
    assert.deepEqual(atNpu.map((n) => n.path), [], f);
    // ... and the only "npu" nodes are the pin group (and, in 7.3, an efuse cell).
    assert.deepEqual(
      t.nodes.filter((n) => n.name.includes("npu")).map((n) => n.path),
      f.startsWith("7.3")
        ? ["/efuse@fe38c000/nvmem-layout/npu-leakage@1c", "/pinctrl/npu"]
        : ["/pinctrl/npu"],
      f,
    );
    assert.equal(
      t.nodes.some((n) => n.compatible.some((c) => c.includes("rknn") || c.includes("npu"))),
      false,
      f,
    );
  }
});

Deno.test("RK3588 ROCK 5B in Debian 6.12: no rknn MMUs; vop_mmu disabled", () => {
  const f = "6.12.118+deb13-arm64/rk3588-rock-5b.dtb";
  const t = load(f);
  assert.deepEqual(summary(t, f), [
    `fdb50800 okay iommu@fdb50800 ${RK3588}`,
    `fdba0800 okay iommu@fdba0800 ${RK3588}`,
    `fdba4800 okay iommu@fdba4800 ${RK3588}`,
    `fdba8800 okay iommu@fdba8800 ${RK3588}`,
    `fdbac800 okay iommu@fdbac800 ${RK3588}`,
    `fdd97e00 disabled iommu@fdd97e00 ${RK3588}`,
  ]);
  assert.equal(t.nodes.some((n) => n.compatible.some((c) => c.includes("rknn"))), false);
  // The two Arm SMMU-v3 (MMU-600) nodes are not Rockchip IOMMUs.
  assert.equal(t.find("/iommu@fc900000")?.compatible[0], "arm,smmu-v3");
});

Deno.test("RK3588 ROCK 5B in Debian 7.3: rknn_mmu_0..2 okay, labels from __symbols__", () => {
  const f = "7.3.4+deb13-arm64/rk3588-rock-5b.dtb";
  const t = load(f);
  assert.equal(t.hasSymbols, true);
  const AV1 = "{rockchip,rk3588-av1-iommu,verisilicon,iommu-1.2}";
  assert.deepEqual(summary(t, f), [
    `fdab9000 okay rknn_mmu_0 ${RK3588}`,
    `fdaca000 okay rknn_mmu_1 ${RK3588}`,
    `fdada000 okay rknn_mmu_2 ${RK3588}`,
    `fdb50800 okay vpu121_mmu ${RK3588}`,
    `fdb60f00 okay rga3_0_mmu ${RK3588}`,
    `fdb70f00 okay rga3_1_mmu ${RK3588}`,
    `fdba0800 okay vepu121_0_mmu ${RK3588}`,
    `fdba4800 okay vepu121_1_mmu ${RK3588}`,
    `fdba8800 okay vepu121_2_mmu ${RK3588}`,
    `fdbac800 okay vepu121_3_mmu ${RK3588}`,
    `fdc38700 okay vdec0_mmu ${RK3588}`,
    `fdc40700 okay vdec1_mmu ${RK3588}`,
    `fdca0000 okay av1d_mmu ${AV1}`,
    `fdce0800 disabled vicap_mmu rockchip,disable-mmu-reset ${RK3588}`,
    `fdd97e00 okay vop_mmu ${RK3588}`,
  ]);
  const d = iommuDetails(t, f);
  assert.deepEqual(d[0].banks, [
    { address: 0xfdab9000n, size: 0x100n },
    { address: 0xfdaba000n, size: 0x100n },
  ]);
  assert.deepEqual(d[1].banks, [{ address: 0xfdaca000n, size: 0x100n }]);
  // The AV1 MMU matches `rockchip,*iommu*` but rockchip-iommu.c does not bind to it.
  assert.deepEqual(
    iommuNodes(t, f).filter((n) => !boundToRockchipIommu(n)).map((n) => n.label),
    ["av1d_mmu"],
  );
  const masters = iommuMasters(t).slice(0, 3).map((m) => [
    m.label,
    m.masters.map((x) => `${x.label} ${x.path} ${x.compatible.join(",")} ${x.status}`),
  ]);
  assert.deepEqual(masters, [
    ["rknn_mmu_0", ["rknn_core_0 /npu@fdab0000 rockchip,rk3588-rknn-core okay"]],
    ["rknn_mmu_1", ["rknn_core_1 /npu@fdac0000 rockchip,rk3588-rknn-core okay"]],
    ["rknn_mmu_2", ["rknn_core_2 /npu@fdad0000 rockchip,rk3588-rknn-core okay"]],
  ]);
});

Deno.test("selection rule and memory banks of Debian DTBs", () => {
  assert.equal(isRockchipIommuCompatible("rockchip,rk3568-iommu"), true);
  assert.equal(isRockchipIommuCompatible("rockchip,iommu"), true);
  assert.equal(isRockchipIommuCompatible("arm,smmu-v3"), false);
  assert.equal(isRockchipIommuCompatible("rockchip,rk3568-vop"), false);
  // The bootloader adds /memory; Debian's blobs have none.
  assert.deepEqual(memoryBanks(load("6.12.118+deb13-arm64/rk3568-rock-3b.dtb")), []);
});
