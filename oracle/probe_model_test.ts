import assert from "node:assert/strict";
import { mainlineFacts } from "./releases.ts";
import { predictProbe } from "./probe_model.ts";
import { buildScenario } from "./scenario.ts";

/** A QEMU virt guest: RAM at 1 GiB. */
function guest(gib: number, bootargs = "") {
  return buildScenario({
    board: {
      id: "qemu-virt",
      name: "QEMU virt",
      soc: "qemu-virt",
      banks: [{ start: 0x4000_0000, end: 0x4000_0000 + gib * 2 ** 30 }],
      ramSource: "test",
      ramConfidence: "input",
      iommus: [],
    },
    kernel: mainlineFacts({ major: 6, minor: 12 }),
    bootargs,
  });
}

const iovas = [{ iova: 0x1000_0000, where: "low" as const }, {
  iova: 0x1040_0000,
  where: "high" as const,
}];

Deno.test("probe model: the seed's failure modes on an 8 GiB guest", () => {
  const base = { format: "v2" as const, dtReach: 32, ptReach: 32, iovas };
  const m1 = predictProbe(guest(8), { ...base, maskBits: 40, gfp: "none" });
  assert.deepEqual(m1.dt, { above4G: true, bounced: false });
  assert.deepEqual(m1.walks.map((w) => `${w.result}/${w.level}`), ["BUS_ERROR/dt", "BUS_ERROR/dt"]);
  const m2 = predictProbe(guest(8), { ...base, maskBits: 32, gfp: "none" });
  assert.deepEqual(m2.dt, { above4G: true, bounced: true });
  assert.ok(m2.walks.every((w) => w.result === "PAGE_FAULT" && w.level === "pte"));
  const ok = predictProbe(guest(8), { ...base, maskBits: 40, gfp: "GFP_DMA32" });
  assert.deepEqual(ok.dt, { above4G: false, bounced: false });
  assert.ok(ok.walks.every((w) => w.result === "ok"));
  const v1 = predictProbe(guest(8), { ...base, format: "v1", maskBits: 32, gfp: "GFP_DMA32" });
  assert.deepEqual(v1.walks.map((w) => w.result), ["ok", "WRONG_PAGE"]);
  const vop = predictProbe(guest(8), {
    ...base,
    maskBits: 40,
    gfp: "none",
    dtReach: 40,
    ptReach: 40,
  });
  assert.ok(vop.walks.every((w) => w.result === "ok"));
});

Deno.test("probe model: swiotlb=force bounces GFP_DMA32 tables; mem=3G and 2 GiB leave nothing high", () => {
  const p = { format: "v2" as const, dtReach: 32, ptReach: 32, iovas };
  const f = predictProbe(guest(8, "swiotlb=force"), { ...p, maskBits: 40, gfp: "GFP_DMA32" });
  assert.deepEqual(f.dt, { above4G: false, bounced: true });
  assert.ok(f.walks.every((w) => w.result === "PAGE_FAULT"));
  for (const s of [guest(8, "mem=3G"), guest(2)]) {
    const r = predictProbe(s, { ...p, maskBits: 40, gfp: "none" });
    assert.deepEqual(r.dt, { above4G: false, bounced: false });
    assert.ok(r.walks.every((w) => w.result === "ok"));
  }
});
