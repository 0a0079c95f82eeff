import assert from "node:assert/strict";
import fc from "fast-check";
import {
  and64,
  bitsField,
  hex,
  hi,
  isU32,
  join64,
  lo32,
  maskBits,
  or64,
  toU32,
  TWO_POW_32,
} from "./bits.ts";

Deno.test("hi/lo32/join64 split 40-bit values exactly", () => {
  assert.equal(hi(0xab_cdef_1000), 0xab);
  assert.equal(lo32(0xab_cdef_1000), 0xcdef1000);
  assert.equal(join64(0xab, 0xcdef1000), 0xab_cdef_1000);
  assert.equal(hi(0xffffffff), 0);
  assert.equal(lo32(TWO_POW_32), 0);
});

Deno.test("bitsField and maskBits act like GENMASK_ULL on wide values", () => {
  assert.equal(bitsField(0xab_cdef_1000, 39, 36), 0xa);
  assert.equal(bitsField(0xab_cdef_1000, 35, 32), 0xb);
  assert.equal(bitsField(0xab_cdef_1000, 31, 12), 0xcdef1);
  assert.equal(maskBits(0xab_cdef_1fff, 31, 12), 0xcdef1000);
  assert.equal(maskBits(0xab_cdef_1fff, 39, 32), 0xab_0000_0000);
  assert.throws(() => bitsField(1, 3, 4), RangeError);
  assert.throws(() => bitsField(1, 60, 0), RangeError);
});

Deno.test("toU32 wraps like a C cast", () => {
  assert.equal(toU32(-1), 0xffffffff);
  assert.equal(toU32(0x1_0000_0005), 5);
  assert.equal(toU32(-TWO_POW_32), 0);
  assert.throws(() => toU32(1.5), RangeError);
  assert.ok(isU32(0xffffffff));
  assert.ok(!isU32(TWO_POW_32));
  assert.ok(!isU32(-1));
});

Deno.test("hex pads lower-case digits", () => {
  assert.equal(hex(0xabc, 6), "000abc");
  assert.equal(hex(0x1_0172_2000), "101722000");
  assert.throws(() => hex(-1), RangeError);
});

Deno.test("and64/or64 agree with BigInt for 53-bit values", () => {
  const wide = fc.maxSafeNat();
  fc.assert(
    fc.property(wide, wide, (a, b) => {
      assert.equal(BigInt(and64(a, b)), BigInt(a) & BigInt(b));
      assert.equal(BigInt(or64(a, b)), BigInt(a) | BigInt(b));
      assert.equal(join64(hi(a), lo32(a)), a);
      assert.equal(BigInt(bitsField(a, 39, 12)), (BigInt(a) >> 12n) & 0xfffffffn);
    }),
  );
});
