import assert from "node:assert/strict";
import { explainFaults, inferFormat, socOfDevice, unitOf } from "./explain.ts";
import { parseLog } from "./klog.ts";

Deno.test("socOfDevice: catalogued, uncatalogued SoCs named with their source, unknown said so", () => {
  assert.deepEqual(
    [socOfDevice("fde4b000.iommu").soc, socOfDevice("fde4b000.iommu").label],
    ["rk3568", "rknpu_mmu"],
  );
  assert.equal(socOfDevice("fdab9000.iommu").soc, "rk3588");
  for (
    const [dev, soc] of [["27920f00.iommu", "rk3576"], ["ff9a0800.iommu", "rk3288"], [
      "ff350800.iommu",
      "rk3328",
    ], ["ff650800.iommu", "rk3399"]]
  ) {
    const m = socOfDevice(dev);
    assert.equal(m.soc, soc, dev);
    assert.equal(m.catalogued, false);
    assert.ok(m.source.length > 10);
  }
  const u = socOfDevice("12345000.iommu");
  assert.equal(u.soc, null);
  assert.match(u.name, /unknown SoC \(no catalogued IOMMU at 12345000\)/);
  assert.equal(unitOf("not a device"), null);
});

const P = "rk_iommu fe043e00.iommu: ";
const V2 = [
  `${P}Page fault at 0x0000000002010040 of type write`,
  `${P}iova = 0x0000000002010040: dte_index: 0x8 pte_index: 0x10 page_offset: 0x40`,
  `${P}mmu_dte_addr: 0x0000000100000000 dte@0x0000000100000020: 0x1722101 valid: 1 pte@0x0000000101722040: 0x2c01107 valid: 1 page@0x0000000102c01040 flags: 0x106`,
];

Deno.test("inferFormat: a given format whose reading is inconsistent says so", () => {
  const r = parseLog(V2.join("\n")).faults[0];
  const inf = inferFormat(r, "v1");
  assert.equal(inf.format, "v1");
  assert.equal(inf.given, true);
  assert.match(inf.why, /but the v1 reading is inconsistent/);
  // mmu_dte_addr above 4 GiB rules v1 out on its own.
  assert.ok(
    inf.readings.find((x) => x.format === "v1")!.problems.some((p) => /cannot hold/.test(p)),
  );
});

Deno.test("inferFormat: numbers neither format reads are reported, nothing is decoded past them", () => {
  const bad = V2.slice(0, 2).concat(
    `${P}mmu_dte_addr: 0x0000000000100000 dte@0x0000000000100024: 0x000000 valid: 0 pte@0x0000000000000000: 0x000000 valid: 0 page@0x0000000000000000 flags: 0x0`,
  );
  const [f] = explainFaults(parseLog(bad.join("\n")));
  assert.equal(f.format.format, null);
  assert.match(f.format.why, /neither format reads these numbers consistently/);
  assert.deepEqual(f.tables.directory, { address: 0x100000, above4G: false });
});

Deno.test("a page fault without its walk lines is still explained", () => {
  const [f] = explainFaults(parseLog(V2[0]));
  assert.equal(f.format.format, null);
  assert.match(f.reached, /no walk line/);
  assert.deepEqual(f.tables, {});
});
