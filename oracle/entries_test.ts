import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeDte,
  decodeDteAddrRegister,
  decodePte,
  dteAddrRegister,
  encodedAddress,
  forceResetProbe,
  invalidate,
  IOMMU_READ,
  IOMMU_WRITE,
  isValid,
  mkDte,
  mkPte,
  ptAddress,
  truncatedBy,
} from "./entries.ts";

const RW = IOMMU_READ | IOMMU_WRITE;
const GiB4 = 0x1_0000_0000;

/** 4 KiB-aligned addresses below 2^bits. */
const pageBelow = (bits: number) =>
  fc.integer({ min: 0, max: 2 ** (bits - 12) - 1 }).map((p) => p * 4096);

Deno.test("worked vectors of research §1.4", () => {
  assert.equal(mkDte("v2", 0x1_0172_2000), 0x01722101);
  assert.equal(mkPte("v2", 0x1_02c0_1000, RW), 0x02c01107);
  assert.equal(ptAddress("v2", 0x02c01107), 0x1_02c0_1000);
  assert.equal(mkDte("v2", 0xab_cdef_1000), 0xcdef1ba1);
  assert.equal(mkPte("v1", 0x1_02c0_1000, RW), 0x02c01007);
  assert.equal(ptAddress("v1", 0x02c01007), 0x0_02c0_1000);
});

Deno.test("v1 encodings", () => {
  assert.equal(mkDte("v1", 0xff80_1000), 0xff801001);
  assert.equal(mkPte("v1", 0x1234_5000, IOMMU_READ), 0x12345003);
  assert.equal(mkPte("v1", 0x1234_5000, IOMMU_WRITE), 0x12345005);
  assert.equal(mkPte("v1", 0x1234_5000, 0), 0x12345001);
  // v1 ignores the v2 permission quirk.
  assert.equal(mkPte("v1", 0x1234_5000, IOMMU_READ, { v2PermSwapped: true }), 0x12345003);
});

Deno.test("v2 permission bits before v6.2 (7eb99841f340) were swapped", () => {
  assert.equal(mkPte("v2", 0x1000, IOMMU_READ, { v2PermSwapped: true }), 0x1005);
  assert.equal(mkPte("v2", 0x1000, IOMMU_WRITE, { v2PermSwapped: true }), 0x1003);
  assert.equal(mkPte("v2", 0x1000, IOMMU_READ), 0x1003);
  const old = decodePte("v2", 0x1005, { v2PermSwapped: true });
  assert.equal(old.read, true);
  assert.equal(old.write, false);
  const now = decodePte("v2", 0x1005);
  assert.equal(now.read, false);
  assert.equal(now.write, true);
});

Deno.test("decodePte reports the driver's log flags (pte & 0x1fe)", () => {
  const d = decodePte("v2", 0x02c01107);
  assert.deepEqual(d, {
    address: 0x1_02c0_1000,
    valid: true,
    read: true,
    write: true,
    flags: 0x106,
  });
  const d1 = decodePte("v1", 0x02c01007);
  assert.deepEqual(d1, { address: 0x02c0_1000, valid: true, read: true, write: true, flags: 0x6 });
  assert.deepEqual(decodeDte("v2", 0x01722101), { address: 0x1_0172_2000, valid: true });
});

Deno.test("invalidate clears only bit 0", () => {
  assert.equal(invalidate(0x02c01107), 0x02c01106);
  assert.equal(invalidate(0x02c01106), 0x02c01106);
  assert.equal(isValid(invalidate(0xffffffff)), false);
  assert.equal(invalidate(0xffffffff), 0xfffffffe);
});

Deno.test("truncatedBy and encodedAddress", () => {
  assert.equal(truncatedBy("v1", GiB4 - 4096), false);
  assert.equal(truncatedBy("v1", GiB4), true);
  assert.equal(truncatedBy("v2", GiB4), false);
  assert.equal(truncatedBy("v2", 2 ** 40 - 4096), false);
  assert.equal(truncatedBy("v2", 2 ** 40), true);
  assert.equal(encodedAddress("v1", 0x1_02c0_1000), 0x02c0_1000);
  assert.equal(encodedAddress("v2", 0x1_02c0_1000), 0x1_02c0_1000);
  assert.equal(encodedAddress("v2", 2 ** 40 + 0x5000), 0x5000);
});

Deno.test("v2 round trip for every 4 KiB-aligned address below 2^40", () => {
  fc.assert(
    fc.property(pageBelow(40), fc.integer({ min: 0, max: 3 }), (a, prot) => {
      assert.equal(ptAddress("v2", mkDte("v2", a)), a);
      const pte = mkPte("v2", a, prot);
      const d = decodePte("v2", pte);
      assert.equal(d.address, a);
      assert.equal(d.valid, true);
      assert.equal(d.read, (prot & IOMMU_READ) !== 0);
      assert.equal(d.write, (prot & IOMMU_WRITE) !== 0);
      const old = decodePte("v2", mkPte("v2", a, prot, { v2PermSwapped: true }), {
        v2PermSwapped: true,
      });
      assert.equal(old.read, d.read);
      assert.equal(old.write, d.write);
      assert.equal(truncatedBy("v2", a), false);
    }),
  );
});

Deno.test("v2 matches a BigInt transcription of the C macros", () => {
  fc.assert(
    fc.property(fc.maxSafeNat(), fc.integer({ min: 0, max: 0xffffffff }), (a, e) => {
      const A = BigInt(a);
      const dte =
        ((A & 0xfffff000n) | ((A & 0xf_0000_0000n) >> 24n) | ((A & 0xf0_0000_0000n) >> 32n)) &
          0xfffffff0n | 1n;
      assert.equal(BigInt(mkDte("v2", a)), dte);
      const E = BigInt(e);
      const pa = ((E & 0xf0n) << 32n) | ((E & 0xf00n) << 24n) | (E & 0xfffff000n);
      assert.equal(BigInt(ptAddress("v2", e)), pa);
    }),
  );
});

Deno.test("v1 round trip below 4 GiB and aliasing mod 4 GiB above", () => {
  fc.assert(
    fc.property(pageBelow(32), (a) => {
      assert.equal(ptAddress("v1", mkDte("v1", a)), a);
      assert.equal(decodePte("v1", mkPte("v1", a, RW)).address, a);
      assert.equal(truncatedBy("v1", a), false);
    }),
  );
  fc.assert(
    fc.property(pageBelow(40).filter((a) => a >= GiB4), (a) => {
      assert.equal(ptAddress("v1", mkDte("v1", a)), a % GiB4);
      assert.equal(decodePte("v1", mkPte("v1", a, RW)).address, a % GiB4);
      assert.equal(truncatedBy("v1", a), true);
    }),
  );
});

Deno.test("DTE_ADDR register, layout 'dte' (6df63b7ebdaf and later)", () => {
  assert.equal(dteAddrRegister("v2", 0x1_0172_2000, "dte"), 0x01722101);
  assert.equal(decodeDteAddrRegister("v2", 0x01722101, "dte"), 0x1_0172_2000);
  assert.equal(dteAddrRegister("v1", 0xff80_1000, "dte"), 0xff801001);
  assert.equal(decodeDteAddrRegister("v1", 0xff801001, "dte"), 0xff80_1000);
});

Deno.test("DTE_ADDR register, vendor layout (before 6df63b7ebdaf)", () => {
  // v2: phys 39:32 in bits 11:4, no valid bit.
  assert.equal(dteAddrRegister("v2", 0x1_0172_2000, "vendor"), 0x01722010);
  assert.equal(dteAddrRegister("v2", 0xab_cdef_1000, "vendor"), 0xcdef1ab0);
  assert.equal(decodeDteAddrRegister("v2", 0xcdef1ab0, "vendor"), 0xab_cdef_1000);
  // The hardware reads the register as a DTE (per the 6df63b7ebdaf commit message): a vendor
  // value for a table above 4 GiB points somewhere else entirely.
  assert.equal(ptAddress("v2", 0x01722010), 0x10_0172_2000);
  // Below 4 GiB both layouts agree on the address.
  assert.equal(dteAddrRegister("v2", 0xff80_1000, "vendor"), 0xff801000);
  // v1: (u32)dt_dma and (phys_addr_t)addr.
  assert.equal(dteAddrRegister("v1", 0x1_ff80_1000, "vendor"), 0xff801000);
  assert.equal(decodeDteAddrRegister("v1", 0xff801abc, "vendor"), 0xff801abc);
  fc.assert(
    fc.property(pageBelow(40), (a) => {
      assert.equal(decodeDteAddrRegister("v2", dteAddrRegister("v2", a, "vendor"), "vendor"), a);
      assert.equal(decodeDteAddrRegister("v2", dteAddrRegister("v2", a, "dte"), "dte"), a);
    }),
  );
});

Deno.test("force reset probe value is 0xCAFEB000 for both formats", () => {
  assert.equal(forceResetProbe("v1"), 0xcafeb000);
  assert.equal(forceResetProbe("v2"), 0xcafeb000);
  assert.equal(ptAddress("v2", 0xcafebabe), 0xba_cafe_b000);
});
