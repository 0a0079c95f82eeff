import assert from "node:assert/strict";
import fc from "fast-check";
import { compareRelease, mainlineFacts, parseRelease, RELEASES } from "./releases.ts";

Deno.test("RELEASES runs 5.14 … 7.3 in order", () => {
  assert.equal(RELEASES[0], "5.14");
  assert.equal(RELEASES.at(-1), "7.3");
  assert.ok(RELEASES.includes("6.19") && RELEASES.includes("7.0"));
  for (let i = 1; i < RELEASES.length; i++) {
    assert.ok(compareRelease(parseRelease(RELEASES[i - 1])!, parseRelease(RELEASES[i])!) < 0);
  }
});

Deno.test("parseRelease reads release strings as uname and Debian write them", () => {
  assert.deepEqual(parseRelease("6.12"), { major: 6, minor: 12 });
  assert.deepEqual(parseRelease("v6.1.158"), { major: 6, minor: 1 });
  assert.deepEqual(parseRelease("6.12.57+deb13-arm64"), { major: 6, minor: 12 });
  assert.deepEqual(parseRelease("7.1-rc6"), { major: 7, minor: 1 });
  for (const bad of ["", "6", "six.one", "6.x", "../6.1", "6.1 ; rm -rf /"]) {
    assert.equal(parseRelease(bad), undefined, bad);
  }
  fc.assert(fc.property(fc.string(), (s) => {
    const r = parseRelease(s);
    return r === undefined || (Number.isInteger(r.major) && Number.isInteger(r.minor));
  }));
});

Deno.test("release gates follow research §1.9", () => {
  const f = (r: string) => mainlineFacts(parseRelease(r)!);
  // 2a7e6400f72b (v6.6): v2 tables from all memory
  assert.equal(f("6.5").compatibles["rockchip,rk3568-iommu"].gfpZone.value, "GFP_DMA32");
  assert.equal(f("6.6").compatibles["rockchip,rk3568-iommu"].gfpZone.value, "none");
  assert.equal(f("6.6").compatibles["rockchip,iommu"].gfpZone.value, "GFP_DMA32");
  // 7eb99841f340 (v6.2, backported to 6.1.y)
  assert.equal(f("6.0").v2PermSwapped.value, true);
  assert.equal(f("6.1").v2PermSwapped.value, false);
  assert.equal(f("6.1").v2PermSwapped.provenance.confidence, "reported");
  // dcde1c4aa7ce (v6.15): per-domain dma_dev
  assert.equal(f("6.14").dmaDev.value, "global-first-probed");
  assert.equal(f("6.15").dmaDev.value, "per-domain");
  // 414cb6f3ac62: per-device ops, release not confirmed
  assert.equal(f("7.2").perDeviceOps.value, false);
  assert.equal(f("7.3").perDeviceOps.value, true);
  // research left the release open; Debian's 7.3 kernel shows it (rkhil facts, BTF)
  assert.equal(f("7.3").perDeviceOps.provenance.confidence, "measured");
  // allocation call
  assert.equal(f("6.9").allocCall.value, "get_zeroed_page");
  assert.equal(f("6.10").allocCall.value, "iommu_alloc_page");
  assert.equal(f("6.16").allocCall.value, "iommu_alloc_pages_sz");
  // masks never change in mainline
  for (const r of RELEASES) {
    assert.equal(f(r).compatibles["rockchip,iommu"].dmaMaskBits.value, 32);
    assert.equal(f(r).compatibles["rockchip,rk3568-iommu"].dmaMaskBits.value, 40);
  }
});
