import assert from "node:assert/strict";
import {
  atlasChanges,
  type AtlasDtb,
  atlasLayout,
  generalBanks,
  groupDtbs,
  nodeLabel,
  predictDtb,
  type ReferenceLayout,
  socFamily,
} from "./atlas.ts";
import type { DtIommuNode } from "./scenario.ts";

const G = 0x4000_0000;
const REFS: ReferenceLayout[] = [
  { boardId: "rk3568-2g", family: "rk356x", sizeGb: 2, banks: [{ start: 0x20_0000, end: 2 * G }] },
  {
    boardId: "rk3568-4g",
    family: "rk356x",
    sizeGb: 4,
    banks: [{ start: 0x20_0000, end: 0xF000_0000 }, { start: 0x1_F000_0000, end: 0x2_0000_0000 }],
  },
  {
    boardId: "rock-3b-8g",
    family: "rk356x",
    sizeGb: 8,
    banks: [{ start: 0x20_0000, end: 0xF000_0000 }, { start: 4 * G, end: 8 * G }],
  },
];

function node(unit: string, compatible: string, status: "okay" | "disabled" = "okay"): DtIommuNode {
  return {
    unit,
    label: `iommu@${unit}`,
    compatible: [compatible],
    status,
    properties: [],
    source: "test",
    confidence: "verified",
  };
}

Deno.test("the generalised layout reproduces the 4 GB board file and extends it", () => {
  assert.deepEqual(generalBanks(4), REFS[1].banks);
  assert.deepEqual(generalBanks(2), [{ start: 0x20_0000, end: 2 * G }]);
  assert.deepEqual(generalBanks(16), [
    { start: 0x20_0000, end: 0xF000_0000 },
    { start: 4 * G, end: 16 * G },
    { start: 0xF000_0000 + 16 * G, end: 20 * G },
  ]);
  // Total RAM is the size less the 2 MiB kept for BL31.
  for (const s of [2, 4, 8, 16, 32]) {
    const total = generalBanks(s).reduce((n, b) => n + b.end - b.start, 0);
    assert.equal(total, s * G - 0x20_0000, `${s} GB`);
  }
});

Deno.test("a board file's own size is used as is; other sizes say they are generalised", () => {
  const own = atlasLayout("rk356x", 8, REFS);
  assert.equal(own.generalised, false);
  assert.equal(own.source, "boards/rock-3b-8g.yaml");
  assert.deepEqual(own.banks, REFS[2].banks);
  const gen = atlasLayout("rk356x", 16, REFS);
  assert.equal(gen.generalised, true);
  assert.match(gen.source, /boards\/rk3568-4g\.yaml/);
  assert.doesNotMatch(gen.source, /rock-3b-8g/);
});

Deno.test("outcomes per size: the v1.0 VICAP MMU breaks from 4 GB on 7.2, VOP2 stays OK", () => {
  const layouts = [2, 4, 8].map((s) => atlasLayout("rk356x", s, REFS));
  const dtb: AtlasDtb = {
    name: "rk3568-test.dtb",
    soc: "rk3568",
    nodes: [node("fdfe0800", "rockchip,rk3568-iommu"), node("fe043e00", "rockchip,rk3568-iommu")],
    others: [],
  };
  const o = predictDtb(dtb, "7.2", layouts);
  assert.deepEqual(Object.keys(o), ["2", "4", "8"]);
  assert.equal(o["2"]["fdfe0800"], "OK");
  assert.equal(o["8"]["fdfe0800"], "BUS_ERROR");
  assert.equal(o["8"]["fe043e00"], "OK");
  // On 6.1 the tables are GFP_DMA32 for every block: OK at every size.
  const o61 = predictDtb(dtb, "6.1", layouts);
  for (const s of ["2", "4", "8"]) assert.equal(o61[s]["fdfe0800"], "OK");
  assert.equal(nodeLabel("rk3568", dtb.nodes[0]), "vicap_mmu");
  assert.equal(socFamily("rk3588s"), "rk3588");
  assert.equal(socFamily("rk3399"), undefined);
});

Deno.test("changes between releases and grouping of identical DTBs", () => {
  const a: AtlasDtb = { name: "a.dtb", soc: "rk3568", nodes: [node("fe043e00", "x")], others: [] };
  const b: AtlasDtb = { name: "b.dtb", soc: "rk3568", nodes: [node("fe043e00", "x")], others: [] };
  const a2: AtlasDtb = {
    ...a,
    nodes: [node("fe043e00", "x", "disabled"), node("fdea0800", "x")],
  };
  const c: AtlasDtb = { name: "c.dtb", soc: "rk3568", nodes: [], others: [] };
  const ch = atlasChanges(
    { dtbs: [a, b], outcomes: { "a.dtb": { "8": { fe043e00: "OK" } } } },
    { dtbs: [a2, c], outcomes: { "a.dtb": { "8": { fe043e00: "DISABLED" } } } },
  );
  assert.deepEqual(ch.map((x) => [x.dtb, x.kind]), [
    ["c.dtb", "added"],
    ["b.dtb", "removed"],
    ["a.dtb", "changed"],
  ]);
  const changed = ch.find((x) => x.kind === "changed")!;
  assert.deepEqual(changed.nodes, [
    "fe043e00 iommu@fe043e00: x okay → x disabled",
    "fdea0800 iommu@fdea0800 added (x okay)",
  ]);
  assert.deepEqual(changed.outcomes, ["8 GB fe043e00: OK → DISABLED"]);
  const groups = groupDtbs([a, b, c], { "a.dtb": {}, "b.dtb": {}, "c.dtb": {} });
  assert.deepEqual(groups.map((g) => g.dtbs), [["a.dtb", "b.dtb"], ["c.dtb"]]);
});
