/** Issue 12 §1–§2: damaged, older and differently captured rk_iommu lines still count. */
import assert from "node:assert/strict";
import { isFaultLike, parseLine, parseLog, renderLine } from "./klog.ts";

const logs = new URL("./testdata/logs/", import.meta.url);
const read = (name: string) => Deno.readTextFileSync(new URL(name, logs));

Deno.test("a walk line cut by a pager attaches to the open fault, marked truncated", () => {
  const text = [
    "rk_iommu 27920f00.iommu: Page fault at 0x0000000002010040 of type read",
    "rk_iommu 27920f00.iommu: iova = 0x0000000002010040: dte_index: 0x8 pte_index: 0x10 page_offset: 0x40",
    "rk_iommu 27920f00.iommu: mmu_dte_addr: 0x00000000434c3000 dte@0x00000000434c3020: 0x000000 valid: 0>",
  ].join("\n");
  const log = parseLog(text, { format: "v1" });
  assert.equal(log.faults.length, 1);
  const f = log.faults[0];
  assert.equal(f.truncated, true);
  assert.equal(f.complete, false);
  assert.equal(f.walk?.mmuDteAddr, 0x434c3000);
  assert.equal(f.walk?.dteAddr, 0x434c3020);
  assert.equal(f.walk?.dte, 0);
  assert.equal(f.walk?.dteValid, false);
  assert.equal(f.walk?.truncated, true);
  assert.deepEqual(f.walk?.missing, ["pteAddr", "pte", "pteValid", "pageAddr", "flags"]);
  assert.equal(f.decoded?.invalidAt, "dte");
  assert.equal(f.decoded?.dteIndex, 8);
  assert.ok(f.decoded?.consistent);
  // The cut line still renders exactly as captured.
  const line = text.split("\n")[2];
  assert.equal(renderLine(parseLine(line)!), line);
});

Deno.test("the real RK3576 pager capture (mpp PR #736): three faults, all walks cut", () => {
  const log = parseLog(read("rk3576-rga-mpp736.log"), { format: "v1" });
  assert.deepEqual(log.faults.map((f) => f.iova), [0x02010040, 0x02020080, 0xf960c830]);
  assert.ok(log.faults.every((f) => f.truncated && f.walk?.dteValid === false));
  assert.deepEqual(log.faults.map((f) => f.decoded?.invalidAt), ["dte", "dte", "dte"]);
  // The third report's iova line is cut inside page_offset: the rest is still read.
  const split = log.faults[2].split;
  assert.equal(split?.dteIndex, 0x3e5);
  assert.equal(split?.pteIndex, 0x20c);
  assert.deepEqual(split?.missing, ["pageOffset"]);
  assert.equal(log.faults[2].decoded?.dteIndex, 0x3e5);
});

Deno.test("32-bit kernels print 8-digit addresses: still a page fault (mpp issue #206)", () => {
  const p = parseLine(
    "[  734.335297] rk_iommu ff9a0800.iommu: Page fault at 0x00000ee0 of type read",
  );
  assert.deepEqual(p?.event, {
    kind: "page_fault",
    device: "ff9a0800.iommu",
    iova: 0xee0,
    access: "read",
    addr32: true,
  });
  const log = parseLog(read("rk3288-vpu-mpp206.log"), { format: "v1" });
  assert.equal(log.faults.length, 1);
  const f = log.faults[0];
  assert.ok(f.complete);
  assert.equal(f.walk?.mmuDteAddr, 0x2d17b000);
  assert.equal(f.decoded?.invalidAt, "dte");
  assert.ok(f.decoded?.consistent);
  for (const l of read("rk3288-vpu-mpp206.log").split("\n")) {
    const q = parseLine(l);
    if (q) assert.equal(renderLine(q), l);
  }
});

Deno.test("RFC 3339 kern.log line gives the page fault", () => {
  const p = parseLine(
    "2024-12-27T10:26:06.694018+08:00 host kernel: [   42.213800] rk_iommu ff650800.iommu: Page fault at 0x0000000004382010 of type write",
  );
  assert.deepEqual(p?.event, {
    kind: "page_fault",
    device: "ff650800.iommu",
    iova: 0x4382010,
    access: "write",
  });
});

Deno.test("a fault-looking line whose format drifted is never information", () => {
  const drift = [
    "rk_iommu ff650800.iommu: Page fault at 0x0000000004382010 of type exec",
    "rk_iommu ff650800.iommu: Page fault at 4382010 (read)",
    "rk_iommu ff650800.iommu: BUS ERROR at 0x4382010",
    "rk_iommu ff650800.iommu: Enable stall request timed out",
  ];
  for (const l of drift) {
    const p = parseLine(l);
    assert.ok(p, l);
    assert.ok(isFaultLike(p.event), l);
  }
  const info = parseLine("rk_iommu ff650800.iommu: resuming with 2 clocks");
  assert.equal(info?.event.kind, "unknown");
  assert.equal(isFaultLike(info!.event), false);
});

Deno.test("drift and damage are told apart: a cut is only a cut at the end of the line", () => {
  // The wording changes before the end: not a truncated walk.
  const p = parseLine(
    "rk_iommu 27920f00.iommu: mmu_dte_addr: 0x00000000434c3000 dte@0x00000000434c3020: 0x000000 okay: 0",
  );
  assert.equal(p?.event.kind, "unknown");
  // More digits than %pad prints: not a cut-off address.
  const q = parseLine("rk_iommu 27920f00.iommu: Page fault at 0x00000000020100400 of type read");
  assert.equal(q?.event.kind, "unknown");
});
