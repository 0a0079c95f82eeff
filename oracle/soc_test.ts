import assert from "node:assert/strict";
import { findInstance, getSoc, walkerReach } from "./soc.ts";
import { fact } from "./types.ts";

Deno.test("RK3568 catalog: NPU and ISP are v1.0 (Rockchip), VOP2 is v2.0, the rest unknown", () => {
  const soc = getSoc("rk3568")!;
  assert.equal(findInstance(soc, "fde4b000")?.revision.value, "v1.0");
  assert.equal(findInstance(soc, "fdff1a00")?.revision.value, "v1.0");
  assert.equal(findInstance(soc, "fe043e00")?.revision.value, "v2.0");
  assert.equal(findInstance(soc, "fe043f00")?.label, "vop_mmu", "second bank finds the instance");
  assert.equal(findInstance(soc, "fdea0800")?.revision.value, "unknown");
  assert.equal(findInstance(soc, "fdea0800")?.revision.provenance.confidence, "unknown");
  assert.equal(findInstance(soc, "deadbeef"), undefined);
  for (const i of soc.instances) assert.ok(i.revision.provenance.source.length > 10, i.unit);
});

Deno.test("walker reach per revision carries the uncertainty", () => {
  const v1 = walkerReach(fact("rev", "v1.0" as const, "t", "reported"));
  assert.equal(v1.dt.value, 32);
  assert.equal(v1.pt.value, null);
  assert.equal(v1.pt.provenance.confidence, "unknown");
  assert.equal(v1.page.value, 40);
  const v2 = walkerReach(fact("rev", "v2.0" as const, "t", "reported"));
  assert.deepEqual([v2.dt.value, v2.pt.value, v2.page.value], [40, 40, 40]);
  const u = walkerReach(fact("rev", "unknown" as const, "t", "unknown"));
  assert.equal(u.dt.value, null);
  assert.equal(u.page.value, 40);
});

Deno.test("RK3566 shares the RK356x catalog; qemu-virt has no Rockchip IOMMU", () => {
  assert.deepEqual(
    getSoc("rk3566")!.instances.map((i) => i.unit),
    getSoc("rk3568")!.instances.map((i) => i.unit),
  );
  assert.deepEqual(getSoc("qemu-virt")!.instances, []);
  assert.equal(getSoc("rk9999"), undefined);
});
