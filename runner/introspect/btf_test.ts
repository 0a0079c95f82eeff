import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BtfError,
  findEnumerator,
  parseBtf,
  resolveModifiers,
  structLayout,
  typeName,
  typeSize,
} from "./btf.ts";
import { blobWithStrings, K } from "./testutil.ts";

// ---------------------------------------------------------------------------------------------
// A small BTF writer for tests: every kind, both endiannesses.

/** A model of `struct rk_iommu_ops` (6.12 layout) plus one of every other kind. */
function sample(bigEndian = false): Uint8Array {
  const names = [
    "u32",
    "long unsigned int",
    "u64",
    "phys_addr_t",
    "dma_addr_t",
    "gfp_t",
    "int",
    "rk_iommu_ops",
    "pt_address",
    "mk_dtentries",
    "mk_ptentries",
    "dma_bit_mask",
    "gfp_flags",
    "flags",
    "bits",
    "E",
    "A",
    "B",
    "E64",
    "C",
    "fwd_s",
    "f",
    "v",
    ".rodata",
    "float",
    "tag",
    "char",
    "of_device_id",
    "name",
    "type",
    "compatible",
    "data",
    "ptag",
    "x",
    "gfpbits",
  ];
  return blobWithStrings(names, (n) => [
    /* 1 */ { name: "u32", kind: K.INT, st: 4, extra: [32] },
    /* 2 */ { name: "long unsigned int", kind: K.INT, st: 8, extra: [64] },
    /* 3 */ { name: "u64", kind: K.TYPEDEF, st: 2 },
    /* 4 */ { name: "phys_addr_t", kind: K.TYPEDEF, st: 3 },
    /* 5 */ { name: "dma_addr_t", kind: K.TYPEDEF, st: 3 },
    /* 6 */ { name: "gfp_t", kind: K.TYPEDEF, st: 1 },
    /* 7 */ { name: "int", kind: K.INT, st: 4, extra: [(1 << 24) | 32] },
    /* 8 */ { kind: K.FUNC_PROTO, vlen: 1, st: 4, extra: [0, 1] }, // phys_addr_t (u32)
    /* 9 */ { kind: K.PTR, st: 8 },
    /* 10 */ { kind: K.FUNC_PROTO, vlen: 1, st: 1, extra: [0, 5] }, // u32 (dma_addr_t)
    /* 11 */ { kind: K.PTR, st: 10 },
    /* 12 */ { kind: K.FUNC_PROTO, vlen: 2, st: 1, extra: [0, 4, 0, 7] },
    /* 13 */ { kind: K.PTR, st: 12 },
    /* 14 */ {
      name: "rk_iommu_ops",
      kind: K.STRUCT,
      vlen: 6,
      kflag: true,
      st: 48,
      extra: [
        n("pt_address"),
        9,
        0,
        n("mk_dtentries"),
        11,
        64,
        n("mk_ptentries"),
        13,
        128,
        n("dma_bit_mask"),
        3,
        192,
        n("gfp_flags"),
        6,
        256,
        n("bits"),
        1,
        (3 << 24) | 293, // 3-bit bitfield at bit 293
      ],
    },
    /* 15 */ {
      name: "E",
      kind: K.ENUM,
      vlen: 2,
      kflag: true,
      st: 4,
      extra: [n("A"), -1, n("B"), 7],
    },
    /* 16 */ {
      name: "E64",
      kind: K.ENUM64,
      vlen: 1,
      st: 8,
      extra: [n("C"), 0x89abcdef, 0x01234567],
    },
    /* 17 */ { name: "fwd_s", kind: K.FWD, st: 0 },
    /* 18 */ { name: "f", kind: K.FUNC, vlen: 1, st: 12 },
    /* 19 */ { name: "v", kind: K.VAR, st: 14, extra: [1] },
    /* 20 */ { name: ".rodata", kind: K.DATASEC, vlen: 1, st: 48, extra: [19, 0, 48] },
    /* 21 */ { name: "float", kind: K.FLOAT, st: 4 },
    /* 22 */ { name: "tag", kind: K.DECL_TAG, st: 14, extra: [2] },
    /* 23 */ { name: "ptag", kind: K.TYPE_TAG, st: 1 },
    /* 24 */ { kind: K.VOLATILE, st: 23 },
    /* 25 */ { kind: K.CONST, st: 24 },
    /* 26 */ { kind: K.RESTRICT, st: 25 },
    /* 27 */ { name: "char", kind: K.INT, st: 1, extra: [(2 << 24) | 8] },
    /* 28 */ { kind: K.ARRAY, st: 0, extra: [27, 1, 128] },
    /* 29 */ { kind: K.CONST, st: 0 },
    /* 30 */ { kind: K.PTR, st: 29 },
    /* 31 */ { kind: K.ARRAY, st: 0, extra: [27, 1, 32] },
    /* 32 */ {
      name: "of_device_id",
      kind: K.STRUCT,
      vlen: 4,
      st: 200,
      extra: [n("name"), 31, 0, n("type"), 31, 256, n("compatible"), 28, 512, n("data"), 30, 1536],
    },
    /* 33 */ { name: "x", kind: K.UNION, vlen: 1, st: 4, extra: [n("flags"), 26, 0] },
    /* 34 */ { kind: K.ENUM, vlen: 1, st: 4, extra: [n("gfpbits"), 2] },
  ], { bigEndian });
}

Deno.test("btf: every kind, little and big endian, layouts through typedefs and modifiers", () => {
  for (const be of [false, true]) {
    const b = parseBtf(sample(be));
    assert.equal(b.header.littleEndian, !be);
    assert.equal(b.types.length, 35);
    assert.deepEqual(
      b.types.slice(1).map((t) => t!.kind),
      [
        "INT",
        "INT",
        "TYPEDEF",
        "TYPEDEF",
        "TYPEDEF",
        "TYPEDEF",
        "INT",
        "FUNC_PROTO",
        "PTR",
        "FUNC_PROTO",
        "PTR",
        "FUNC_PROTO",
        "PTR",
        "STRUCT",
        "ENUM",
        "ENUM64",
        "FWD",
        "FUNC",
        "VAR",
        "DATASEC",
        "FLOAT",
        "DECL_TAG",
        "TYPE_TAG",
        "VOLATILE",
        "CONST",
        "RESTRICT",
        "INT",
        "ARRAY",
        "CONST",
        "PTR",
        "ARRAY",
        "STRUCT",
        "UNION",
        "ENUM",
      ],
    );
    assert.equal(b.pointerSize, 8);
    const l = structLayout(b, "rk_iommu_ops");
    assert.equal(l.size, 48);
    assert.deepEqual(
      l.members.map((m) => [m.name, m.offset, m.size, m.bitfieldSize, m.type, m.kind]),
      [
        ["pt_address", 0, 8, 0, "phys_addr_t (*)(u32)", "PTR"],
        ["mk_dtentries", 8, 8, 0, "u32 (*)(dma_addr_t)", "PTR"],
        ["mk_ptentries", 16, 8, 0, "u32 (*)(phys_addr_t, int)", "PTR"],
        ["dma_bit_mask", 24, 8, 0, "u64", "INT"],
        ["gfp_flags", 32, 4, 0, "gfp_t", "INT"],
        ["bits", 36, 4, 3, "u32", "INT"],
      ],
    );
    assert.equal(l.members[5].bitOffset, 293);
    const od = structLayout(b, "of_device_id");
    assert.deepEqual(od.members.map((m) => [m.name, m.offset, m.size]), [
      ["name", 0, 32],
      ["type", 32, 32],
      ["compatible", 64, 128],
      ["data", 192, 8],
    ]);
    assert.equal(od.members[3].type, "const void *");
    const e = b.byName("E", "ENUM")[0];
    assert.ok(e.kind === "ENUM");
    assert.deepEqual(e.values, [{ name: "A", value: -1n }, { name: "B", value: 7n }]);
    const e64 = b.byName("E64")[0];
    assert.ok(e64.kind === "ENUM64");
    assert.equal(e64.values[0].value, 0x0123456789abcdefn);
    assert.deepEqual(findEnumerator(b, "gfpbits"), [{ enumId: 34, enumName: "", value: 2n }]);
    assert.equal(resolveModifiers(b, 26)?.kind, "INT"); // restrict const volatile tag u32
    assert.equal(typeSize(b, 26), 4);
    assert.equal(typeSize(b, 20), 48);
    assert.equal(typeSize(b, 19), 48);
    assert.equal(typeName(b, 26), "restrict const volatile u32");
    assert.equal(structLayout(b, "x", "UNION").members[0].size, 4);
    const d = b.get(22);
    assert.ok(d.kind === "DECL_TAG" && d.componentIdx === 2);
    const fw = b.get(17);
    assert.ok(fw.kind === "FWD" && !fw.union);
    assert.throws(() => typeSize(b, 17), BtfError);
    assert.throws(() => typeSize(b, 0), BtfError);
    assert.throws(() => b.get(999), BtfError);
    assert.throws(() => structLayout(b, "nope"), BtfError);
  }
});

Deno.test("btf: hostile input is a BtfError, never a crash or a hang", () => {
  const good = sample();
  const bad: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["short", good.slice(0, 10)],
    ["bad magic", Uint8Array.from([1, 2, ...good.slice(2)])],
    ["truncated types", good.slice(0, 24 + 20)],
  ];
  const withWord = (off: number, v: number) => {
    const c = good.slice();
    new DataView(c.buffer).setUint32(off, v, true);
    return c;
  };
  bad.push([
    "version 2",
    (() => {
      const c = good.slice();
      c[2] = 2;
      return c;
    })(),
  ]);
  bad.push(["hdr_len huge", withWord(4, 0xffffffff)]);
  bad.push(["type_len huge", withWord(12, 0xfffffff0)]);
  bad.push(["str_off past end", withWord(16, 0x7fffffff)]);
  bad.push(["name off past strings", withWord(24, 0x00ffffff)]);
  bad.push(["unknown kind", withWord(28, 31 << 24)]);
  bad.push(["vlen past end", withWord(28, (K.STRUCT << 24) | 0xffff)]);
  for (const [what, blob] of bad) {
    assert.throws(() => parseBtf(blob), BtfError, what);
  }
  // A typedef cycle parses but does not resolve.
  const cyc = blobWithStrings(["a", "b"], () => [
    { name: "a", kind: K.TYPEDEF, st: 2 },
    { name: "b", kind: K.TYPEDEF, st: 1 },
  ]);
  const b = parseBtf(cyc);
  assert.throws(() => resolveModifiers(b, 1), BtfError);
  assert.throws(() => typeSize(b, 1), BtfError);
  assert.equal(typeName(b, 1), "a");
  // An array cycle through itself.
  const arr = blobWithStrings(["s", "m"], (n) => [
    { kind: K.ARRAY, st: 0, extra: [1, 1, 2] },
    { name: "s", kind: K.STRUCT, vlen: 1, st: 8, extra: [n("m"), 1, 0] },
  ]);
  const ba = parseBtf(arr);
  assert.throws(() => typeSize(ba, 1), BtfError);
  assert.equal(structLayout(ba, "s").members[0].size, 0);
});

Deno.test("btf: random corruption of a valid blob is parsed or refused with BtfError", () => {
  const good = sample();
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), {
        maxLength: 8,
      }),
      fc.nat(good.length),
      (edits, cut) => {
        const c = good.slice(0, Math.max(cut, 0));
        for (const [i, v] of edits) if (i < c.length) c[i] = v;
        try {
          const b = parseBtf(c);
          for (const t of b.types) {
            if (!t) continue;
            typeName(b, t.id);
            try {
              typeSize(b, t.id);
              if (t.kind === "STRUCT" || t.kind === "UNION") structLayout(b, t.name, t.kind);
            } catch (e) {
              if (!(e instanceof BtfError)) throw e;
            }
          }
        } catch (e) {
          if (!(e instanceof BtfError)) throw e;
        }
      },
    ),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      try {
        parseBtf(bytes);
      } catch (e) {
        if (!(e instanceof BtfError)) throw e;
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test({
  name: "btf: this host's real /sys/kernel/btf/vmlinux",
  ignore: !(() => {
    try {
      return Deno.statSync("/sys/kernel/btf/vmlinux").isFile;
    } catch {
      return false;
    }
  })(),
  fn: async () => {
    const bytes = await Deno.readFile("/sys/kernel/btf/vmlinux");
    const b = parseBtf(bytes);
    assert.ok(b.types.length > 10_000, `${b.types.length} types`);
    assert.equal(b.pointerSize, 8);
    // Layouts that have been stable for a decade (include/linux/mod_devicetable.h, list.h).
    const od = structLayout(b, "of_device_id");
    assert.deepEqual(od.members.map((m) => [m.name, m.offset, m.size]), [
      ["name", 0, 32],
      ["type", 32, 32],
      ["compatible", 64, 128],
      ["data", 192, 8],
    ]);
    assert.equal(od.size, 200);
    const lh = structLayout(b, "list_head");
    assert.deepEqual(lh.members.map((m) => [m.name, m.offset, m.size, m.type]), [
      ["next", 0, 8, "struct list_head *"],
      ["prev", 8, 8, "struct list_head *"],
    ]);
    // Real bitfields: struct page_flags-like members exist in every kernel's sk_buff.
    const skb = structLayout(b, "sk_buff");
    assert.ok(skb.members.length > 10);
    // Every type's name, size and layout resolve or refuse cleanly.
    let bitfields = 0;
    for (const t of b.types) {
      if (!t) continue;
      typeName(b, t.id);
      if (t.kind === "STRUCT" && t.members.some((m) => m.bitfieldSize > 0)) bitfields++;
    }
    assert.ok(bitfields > 100, `${bitfields} structs with bitfields`);
    const kinds = new Set(b.types.filter(Boolean).map((t) => t!.kind));
    for (const k of ["INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM", "FWD", "TYPEDEF", "CONST"]) {
      assert.ok(kinds.has(k as never), k);
    }
  },
});
