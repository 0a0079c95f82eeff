import assert from "node:assert/strict";
import fc from "fast-check";
import {
  DTE_ADDR_DUMMY,
  isSupportedPageSize,
  joinIova,
  NUM_DT_ENTRIES,
  RK_IOMMU_PGSIZE_BITMAP,
  SPAGE_SIZE,
  splitIova,
} from "./iova.ts";

Deno.test("splitIova splits 10/10/12", () => {
  assert.deepEqual(splitIova(0x02010040), { dteIndex: 0x8, pteIndex: 0x10, pageOffset: 0x40 });
  assert.deepEqual(splitIova(0xffffffff), { dteIndex: 1023, pteIndex: 1023, pageOffset: 4095 });
  assert.deepEqual(splitIova(0), { dteIndex: 0, pteIndex: 0, pageOffset: 0 });
});

Deno.test("splitIova casts the dma_addr_t to u32", () => {
  assert.deepEqual(splitIova(0x1_0000_1234), splitIova(0x1234));
});

Deno.test("joinIova inverts splitIova for every 32-bit IOVA", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (iova) => {
      assert.equal(joinIova(splitIova(iova)), iova);
    }),
  );
  assert.throws(() => joinIova({ dteIndex: NUM_DT_ENTRIES, pteIndex: 0, pageOffset: 0 }));
  assert.throws(() => joinIova({ dteIndex: 0, pteIndex: 0, pageOffset: SPAGE_SIZE }));
});

Deno.test("constants match the driver", () => {
  assert.equal(DTE_ADDR_DUMMY, 0xcafebabe);
  assert.equal(RK_IOMMU_PGSIZE_BITMAP, 0x7ff000);
  for (let s = 4096; s <= 4 << 20; s *= 2) {
    assert.ok(isSupportedPageSize(s));
    assert.ok((RK_IOMMU_PGSIZE_BITMAP & s) !== 0);
  }
  assert.ok(!isSupportedPageSize(8 << 20));
  assert.ok(!isSupportedPageSize(12288));
});
