import assert from "node:assert/strict";
import fc from "fast-check";
import { fmtD, fmtHex, fmtHexSpecial, fmtPa, fmtU, kscanf, ksprintf } from "./printk.ts";

Deno.test("%pa / %pad: 0x + 16 lower-case digits", () => {
  assert.equal(fmtPa(0xff801000), "0x00000000ff801000");
  assert.equal(fmtPa(0), "0x0000000000000000");
  assert.equal(fmtPa(0xab_cdef_1000), "0x000000abcdef1000");
  assert.equal(fmtPa(-1), "0xffffffffffffffff");
  assert.equal(ksprintf("at %pad of", [0x02010040]), "at 0x0000000002010040 of");
});

Deno.test("%#08x: width includes 0x, zero prints 0x000000", () => {
  assert.equal(fmtHexSpecial(0, 8), "0x000000");
  assert.equal(fmtHexSpecial(0x1722101, 8), "0x1722101");
  assert.equal(fmtHexSpecial(0x01722101, 8), "0x1722101");
  assert.equal(fmtHexSpecial(0x2c01107, 8), "0x2c01107");
  assert.equal(fmtHexSpecial(0xcdef1ba1, 8), "0xcdef1ba1");
  assert.equal(fmtHexSpecial(0x1234, 8), "0x001234");
  // unsigned int argument: wraps like C.
  assert.equal(fmtHexSpecial(-1, 8), "0xffffffff");
  assert.equal(fmtHexSpecial(0x1_0000_0001, 8), "0x000001");
});

Deno.test("%#03x: at least one digit, zero prints 0x0", () => {
  assert.equal(fmtHexSpecial(0, 3), "0x0");
  assert.equal(fmtHexSpecial(0x3fe, 3), "0x3fe");
  assert.equal(fmtHexSpecial(0x106, 3), "0x106");
  assert.equal(fmtHexSpecial(6, 3), "0x6");
});

Deno.test("%#x, %u, %d", () => {
  assert.equal(fmtHex(0), "0x0");
  assert.equal(fmtHex(3), "0x3");
  assert.equal(fmtHex(0xabc), "0xabc");
  assert.equal(fmtU(0), "0");
  assert.equal(fmtU(1), "1");
  assert.equal(fmtU(-1), "4294967295");
  assert.equal(fmtD(-12), "-12");
  assert.equal(fmtD(0xffffffff), "-1");
});

Deno.test("other vsprintf details follow number()", () => {
  assert.equal(ksprintf("%5d|%-5d|%05d|%+d|% d", [42, 42, -42, 7, 7]), "   42|42   |-0042|+7| 7");
  assert.equal(ksprintf("%#8x|%#-8x|%#X", [0x1f, 0x1f, 0x1f]), "    0x1f|0x1f    |0X1F");
  assert.equal(
    ksprintf("%.4x|%llu|%lx", [0xa, 2 ** 40, 2 ** 40]),
    "000a|1099511627776|10000000000",
  );
  assert.equal(ksprintf("100%% %s|%5s|%-3s|", ["ok", "ab", "c"]), "100% ok|   ab|c  |");
  assert.throws(() => ksprintf("%q", [1]), SyntaxError);
  assert.throws(() => ksprintf("%d", []), RangeError);
  assert.throws(() => ksprintf("%d", ["x"]), TypeError);
  assert.throws(() => ksprintf("%s", [1]), TypeError);
});

Deno.test("kscanf inverts ksprintf and rejects non-canonical text", () => {
  const f = "mmu_dte_addr: %pa dte@%pa: %#08x valid: %u flags: %#03x";
  const line = ksprintf(f, [0x1_0000_0000, 0x1_0000_0010, 0x01722101, 1, 0x106]);
  assert.equal(
    line,
    "mmu_dte_addr: 0x0000000100000000 dte@0x0000000100000010: 0x1722101 valid: 1 flags: 0x106",
  );
  assert.deepEqual(kscanf(f, line), [0x1_0000_0000, 0x1_0000_0010, 0x01722101, 1, 0x106]);
  assert.equal(kscanf(f, line.replace("0x1722101", "0x01722101")), null);
  assert.equal(kscanf(f, line.replace("0x1722101", "0x11722101a")), null); // > u32
  assert.equal(kscanf(f, line.replace("0x106", "0X106")), null);
  assert.equal(kscanf(f, line.replace("0x0000000100000000", "0x000000010000000")), null);
  assert.equal(kscanf(f, line.replace("0x0000000100000000", "0xffffffffffffffff")), null); // unsafe
  assert.equal(kscanf(f, line + " "), null);
  assert.deepEqual(kscanf("type %s", "type write"), ["write"]);
  assert.deepEqual(kscanf("%d and %u", "-5 and 7"), [-5, 7]);
});

Deno.test("property: kscanf(ksprintf(x)) === x for the driver's conversions", () => {
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  const addr = fc.integer({ min: 0, max: 2 ** 40 + 4096 });
  fc.assert(
    fc.property(
      addr,
      u32,
      u32,
      u32,
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      (a, x, y, z, d) => {
        const f = "%pad %#08x %#03x %#x %u %d";
        const s = ksprintf(f, [a, x, y, z, x, d]);
        assert.deepEqual(kscanf(f, s), [a, x, y, z, x, d]);
      },
    ),
  );
});
