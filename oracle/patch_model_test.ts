import assert from "node:assert/strict";
import { applyPatchSeries, dtFileReaches } from "./patch_apply.ts";
import { patchEffect } from "./patch_model.ts";
import { parsePatchText } from "./patch_text.ts";
import { mainlineFacts } from "./releases.ts";
import type { DtIommuNode } from "./scenario.ts";

const T = new URL("./testdata/patches/", import.meta.url);
const effects = (...names: string[]) =>
  names.flatMap((n) =>
    parsePatchText(Deno.readTextFileSync(new URL(n, T)), n).map((p) => patchEffect(p))
  );
const rel = (major: number, minor: number) => mainlineFacts({ major, minor });

function node(unit: string, label: string, compatible = ["rockchip,rk3568-iommu"]): DtIommuNode {
  return {
    unit,
    label,
    compatible,
    status: "okay",
    properties: [],
    source: "test",
    confidence: "input",
  };
}
const RK3568_NODES = [
  node("fde4b000", "rknpu_mmu"),
  { ...node("fdfe0800", "vicap_mmu"), status: "disabled" as const },
  node("fe043e00", "vop_mmu"),
];

Deno.test("the withdrawn v2 patch is two ops-field changes of iommu_data_ops_v2", () => {
  const [e] = effects("seed-thread.txt");
  const edits = e.changes.filter((c) => c.kind === "ops-field" && c.before !== c.after);
  assert.deepEqual(edits, [
    {
      kind: "ops-field",
      ops: "iommu_data_ops_v2",
      field: "dma_bit_mask",
      before: "DMA_BIT_MASK(40)",
      after: "DMA_BIT_MASK(32)",
    },
    {
      kind: "ops-field",
      ops: "iommu_data_ops_v2",
      field: "gfp_flags",
      before: "0",
      after: "GFP_DMA32",
    },
  ]);
  assert.deepEqual(e.notModelled, []);
});

Deno.test("the withdrawn patch applies from 6.6 (gfp_flags) and sets 32 bits + GFP_DMA32", () => {
  const s = effects("seed-thread.txt");
  const r = applyPatchSeries(s, rel(6, 12), RK3568_NODES, "rk3568");
  assert.equal(r.applied, true);
  const v2 = r.driver.compatibles["rockchip,rk3568-iommu"];
  assert.equal(v2.dmaMaskBits.value, 32);
  assert.equal(v2.gfpZone.value, "GFP_DMA32");
  // v1 ops are untouched.
  assert.deepEqual(
    r.driver.compatibles["rockchip,iommu"],
    rel(6, 12).compatibles["rockchip,iommu"],
  );
  const old = applyPatchSeries(s, rel(6, 1), RK3568_NODES, "rk3568");
  assert.equal(old.applied, false);
  assert.match(old.patches[0].why.join(" "), /no gfp_flags field in 6\.1/);
});

Deno.test("a hunk whose removed line does not match the release does not apply", () => {
  const text = [
    "--- a/drivers/iommu/rockchip-iommu.c",
    "+++ b/drivers/iommu/rockchip-iommu.c",
    "@@ -1358,3 +1358,3 @@ static struct rk_iommu_ops iommu_data_ops_v2 = {",
    " \t.mk_ptentries = &rk_mk_pte_v2,",
    "-\t.gfp_flags = GFP_DMA32,",
    "+\t.gfp_flags = 0,",
    "",
  ].join("\n");
  const s = parsePatchText(text, "t").map(patchEffect);
  const r = applyPatchSeries(s, rel(6, 12), RK3568_NODES, "rk3568");
  assert.equal(r.applied, false);
  assert.match(r.patches[0].why[0], /gfp_flags is 0 in 6\.12, the hunk expects GFP_DMA32/);
});

Deno.test("the two-step fix: per-device ops, a new v1.0 ops + compatible, and the DT rebinding", () => {
  const s = effects(
    "0000-per-device-ops.patch",
    "0001-rk3568-iommu-v1-compatible.patch",
    "0002-rk356x-dts-iommu-v1.patch",
  );
  assert.ok(s[0].changes.some((c) => c.kind === "per-device-ops"));
  assert.ok(s[1].changes.some((c) => c.kind === "ops-new" && c.ops === "iommu_data_ops_v1_0"));
  assert.ok(
    s[1].changes.some((c) =>
      c.kind === "compatible" && c.compatible === "rockchip,rk3568-iommu-v1" &&
      c.after === "iommu_data_ops_v1_0"
    ),
  );
  // The comment above the new ops is listed, not dropped.
  assert.ok(s[1].notModelled.some((n) => n.lines.some((l) => /IOMMU v1\.0 blocks/.test(l))));
  const r = applyPatchSeries(s, rel(6, 12), RK3568_NODES, "rk3568");
  assert.equal(r.applied, true);
  assert.equal(r.driver.perDeviceOps.value, true);
  const v10 = r.driver.compatibles["rockchip,rk3568-iommu-v1"];
  assert.equal(v10.format, "v2");
  assert.equal(v10.dmaMaskBits.value, 40);
  assert.equal(v10.gfpZone.value, "GFP_DMA32");
  assert.deepEqual(r.devicetree.map((n) => n.compatible[0]), [
    "rockchip,rk3568-iommu-v1",
    "rockchip,rk3568-iommu-v1",
    "rockchip,rk3568-iommu",
  ]);
  // 7.3 already has per-device ops: that patch is skipped, the rest applies.
  const r73 = applyPatchSeries(s, rel(7, 3), RK3568_NODES, "rk3568");
  assert.equal(r73.applied, true);
  assert.equal(r73.patches[0].result, "already");
  // On an RK3588 board the rk356x dtsi change does not reach.
  const r88 = applyPatchSeries(s, rel(6, 12), [node("fdab9000", "rknn_mmu_0")], "rk3588");
  assert.equal(r88.patches[2].result, "no effect");
});

Deno.test("a DT hunk against a node the board lacks does not apply; other files are not modelled", () => {
  const s = effects("0002-rk356x-dts-iommu-v1.patch");
  const r = applyPatchSeries(s, rel(6, 12), [node("fe043e00", "vop_mmu")], "rk3568");
  assert.equal(r.applied, false);
  assert.match(r.patches[0].why.join(" "), /no node iommu@fde4b000/);
  const other = parsePatchText(
    "--- a/drivers/accel/rocket/rocket_drv.c\n+++ b/drivers/accel/rocket/rocket_drv.c\n" +
      "@@ -1 +1 @@\n-a\n+b\n",
    "t",
  ).map(patchEffect)[0];
  assert.equal(other.changes.length, 0);
  assert.equal(other.notModelled.length, 1);
  assert.match(other.notModelled[0].reason, /outside the model/);
});

Deno.test("which boards a device-tree file reaches", () => {
  const d = "arch/arm64/boot/dts/rockchip/";
  assert.ok(dtFileReaches(`${d}rk356x-base.dtsi`, "rk3566"));
  assert.ok(!dtFileReaches(`${d}rk356x-base.dtsi`, "rk3588"));
  assert.ok(dtFileReaches(`${d}rk3588-base.dtsi`, "rk3588"));
  assert.ok(dtFileReaches(`${d}rk3568-rock-3b.dts`, "rk3568", "rockchip/rk3568-rock-3b.dtb"));
  assert.ok(!dtFileReaches(`${d}rk3568-rock-3b.dts`, "rk3568", "rockchip/rk3568-rock-3a.dtb"));
});

Deno.test("rebinding an existing compatible to other ops: one entry removed, one added", () => {
  const text = [
    "--- a/drivers/iommu/rockchip-iommu.c",
    "+++ b/drivers/iommu/rockchip-iommu.c",
    "@@ -1369,4 +1369,4 @@ static const struct of_device_id rk_iommu_dt_ids[] = {",
    ' \t{\t.compatible = "rockchip,rk3568-iommu",',
    "-\t\t.data = &iommu_data_ops_v2,",
    "+\t\t.data = &iommu_data_ops_v1,",
    " \t},",
    "",
  ].join("\n");
  const s = parsePatchText(text, "t").map(patchEffect);
  assert.deepEqual(s[0].changes, [
    { kind: "compatible", compatible: "rockchip,rk3568-iommu", before: "iommu_data_ops_v2" },
    { kind: "compatible", compatible: "rockchip,rk3568-iommu", after: "iommu_data_ops_v1" },
  ]);
  const r = applyPatchSeries(s, rel(6, 12), RK3568_NODES, "rk3568");
  assert.equal(r.applied, true);
  assert.equal(r.driver.compatibles["rockchip,rk3568-iommu"].name, "iommu_data_ops_v1");
  assert.equal(r.driver.compatibles["rockchip,rk3568-iommu"].format, "v1");
});
