import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BootArgsError,
  COMMAND_LINE_MAX_BYTES,
  kstrtobool,
  parseBootArgs,
  parseSize,
} from "./bootargs.ts";

const MiB = 1024 * 1024;

Deno.test("Debian QEMU command line: nothing memory-related, everything kept verbatim", () => {
  const a = parseBootArgs("console=ttyAMA0 root=/dev/vda rw");
  assert.equal(a.mem, undefined);
  assert.equal(a.swiotlb, undefined);
  assert.deepEqual(a.others, [
    { name: "console", value: "ttyAMA0" },
    { name: "root", value: "/dev/vda" },
    { name: "rw", value: null },
  ]);
  assert.deepEqual(a.initArgs, []);
  assert.deepEqual(a.warnings, []);
});

Deno.test("ROCK 3B command line with mem=3840M", () => {
  const a = parseBootArgs("console=ttyS2,1500000n8 mem=3840M");
  assert.equal(a.mem?.limit, 3840 * MiB);
  assert.equal(a.mem?.limit, 0xf000_0000);
  assert.deepEqual(a.others, [{ name: "console", value: "ttyS2,1500000n8" }]);
});

Deno.test("memparse: suffixes, hex, octal, page rounding", () => {
  assert.equal(parseSize("mem", "1K").bytes, 1024);
  assert.equal(parseSize("mem", "2g").bytes, 2 * 1024 * MiB);
  assert.equal(parseSize("mem", "1T").bytes, 2 ** 40);
  assert.equal(parseSize("mem", "1P").bytes, 2 ** 50);
  assert.equal(parseSize("mem", "1E").exact, 1n << 60n);
  assert.equal(parseSize("mem", "0x1000").bytes, 4096);
  assert.equal(parseSize("mem", "0x1000M").bytes, 0x1000 * MiB);
  // 'E' after 0x is a hex digit, not the exa suffix, exactly as in simple_strtoull.
  assert.equal(parseSize("mem", "0x10E").bytes, 0x10e);
  assert.equal(parseSize("mem", "010").bytes, 8); // leading 0: octal
  assert.equal(parseSize("mem", "0").bytes, 0);
  assert.equal(parseBootArgs("mem=5000").mem?.limit, 4096); // & PAGE_MASK
  const zero = parseBootArgs("mem=100");
  assert.equal(zero.mem?.limit, 0);
  assert.match(zero.warnings[0], /no limit/);
});

Deno.test("malformed sizes raise BootArgsError naming parameter, value and the expected form", () => {
  for (
    const [line, param] of [
      ["mem=abc", "mem"],
      ["mem=3840MB", "mem"],
      ["mem=08", "mem"],
      ["mem=0x", "mem"],
      ["mem=", "mem"],
      ["mem", "mem"],
      ["mem=-1", "mem"],
      ["cma=12Q", "cma"],
      ["cma=64M@x", "cma"],
      ["cma=64M@1G-", "cma"],
      ["swiotlb=force,xyz", "swiotlb"],
      ["swiotlb=65536,4,force,more", "swiotlb"],
      ["swiotlb=dynamic", "swiotlb"],
      ["iommu.passthrough=maybe", "iommu.passthrough"],
    ] as const
  ) {
    assert.throws(() => parseBootArgs(`console=ttyS2 ${line}`), (e: unknown) => {
      assert.ok(e instanceof BootArgsError, line);
      assert.equal(e.param, param);
      assert.ok(e.message.includes("Expected"), e.message);
      return true;
    });
  }
  const e = (() => {
    try {
      parseBootArgs("cma=12Q");
    } catch (err) {
      return err;
    }
  })();
  assert.ok(e instanceof BootArgsError);
  assert.equal(e.value, "12Q");
  assert.match(e.message, /12 bytes/);
  assert.match(e.message, /nn\[KMG\]@/);
});

Deno.test("lenient mode reads what the kernel reads and warns", () => {
  const a = parseBootArgs("mem=3840MB cma=12Q swiotlb=force,xyz", { lenient: true });
  assert.equal(a.mem?.limit, 3840 * MiB);
  assert.equal(a.cma?.size.bytes, 12);
  assert.equal(a.swiotlb?.force, false);
  assert.equal(a.warnings.length, 3);
});

Deno.test("values beyond 2^64 are rejected; lenient wraps like the kernel", () => {
  assert.throws(() => parseBootArgs("mem=18446744073709551616"), BootArgsError);
  assert.throws(() => parseBootArgs("mem=16E"), BootArgsError);
  assert.equal(parseBootArgs("mem=18446744073709551615").mem?.requested.exact, (1n << 64n) - 1n);
  const w = parseBootArgs("mem=18446744073709551617", { lenient: true });
  assert.equal(w.mem?.requested.exact, 1n);
});

Deno.test("swiotlb grammar: slabs, areas, force/noforce, accumulation", () => {
  assert.deepEqual(parseBootArgs("swiotlb=65536").swiotlb?.slabs, 65536);
  assert.equal(parseBootArgs("swiotlb=1000").swiotlb?.slabs, 1024); // ALIGN(n, 128)
  const b = parseBootArgs("swiotlb=65536,3,force").swiotlb;
  assert.equal(b?.slabs, 65536);
  assert.equal(b?.areasRequested, 3);
  assert.equal(b?.areas, 4);
  assert.equal(b?.force, true);
  assert.equal(parseBootArgs("swiotlb=65536,force").swiotlb?.force, true);
  assert.equal(parseBootArgs("swiotlb=,force").swiotlb?.force, true);
  assert.equal(parseBootArgs("swiotlb=noforce").swiotlb?.noforce, true);
  assert.equal(parseBootArgs("swiotlb=0x100").swiotlb?.slabs, 256);
  const acc = parseBootArgs("swiotlb=force swiotlb=8192").swiotlb;
  assert.equal(acc?.force, true);
  assert.equal(acc?.slabs, 8192);
  assert.deepEqual(acc?.raw, ["force", "8192"]);
});

Deno.test("cma grammar", () => {
  assert.equal(parseBootArgs("cma=64M").cma?.size.bytes, 64 * MiB);
  const c = parseBootArgs("cma=64M@0x40000000").cma;
  assert.equal(c?.base?.bytes, 0x4000_0000);
  assert.equal(c?.limit, 0x4000_0000 + 64 * MiB);
  const d = parseBootArgs("cma=256M@1G-3G").cma;
  assert.equal(d?.limit, 3 * 1024 * MiB);
  assert.equal(parseBootArgs("cma=32M cma=64M").cma?.size.bytes, 64 * MiB); // last wins
});

Deno.test("iommu.passthrough uses kstrtobool", () => {
  assert.equal(parseBootArgs("iommu.passthrough=1").iommuPassthrough, true);
  assert.equal(parseBootArgs("iommu.passthrough=off").iommuPassthrough, false);
  assert.equal(parseBootArgs("iommu.passthrough=Yes").iommuPassthrough, true);
  assert.equal(kstrtobool("o"), undefined);
  assert.equal(kstrtobool(null), undefined);
});

Deno.test("next_arg quoting, -- and whitespace", () => {
  const a = parseBootArgs(
    '  dyndbg="file drivers/iommu/* +p"   "quoted word" x="" -- single init arg ',
  );
  assert.deepEqual(a.others, [
    { name: "dyndbg", value: "file drivers/iommu/* +p" },
    { name: "quoted word", value: null },
    { name: "x", value: "" },
  ]);
  assert.deepEqual(a.initArgs, ["single", "init", "arg"]);
  // Parameters after -- are not kernel parameters.
  assert.equal(parseBootArgs("-- mem=1G").mem, undefined);
  // Tabs and newlines separate words like spaces.
  assert.equal(parseBootArgs("rw\tmem=1G\n").mem?.limit, 1024 * MiB);
  // An unterminated quote swallows the rest of the line.
  assert.deepEqual(parseBootArgs('a="b c').others, [{ name: "a", value: "b c" }]);
});

Deno.test("unicode: byte 0xA0 is a kernel space, other text survives", () => {
  // U+00A0 is C2 A0 in UTF-8: the kernel splits at A0 and keeps a stray C2 byte.
  const a = parseBootArgs("root=/dev/vda\u00a0mem=1G");
  assert.equal(a.mem?.limit, 1024 * MiB);
  assert.equal(a.others.length, 1);
  const b = parseBootArgs("label=größe mem=2G");
  assert.deepEqual(b.others, [{ name: "label", value: "größe" }]);
  assert.equal(b.mem?.limit, 2048 * MiB);
});

Deno.test("hostile: empty, NUL, thousands of parameters", () => {
  assert.deepEqual(parseBootArgs("").params, []);
  assert.deepEqual(parseBootArgs("   ").params, []);
  const nul = parseBootArgs("rw\u0000mem=1G");
  assert.equal(nul.mem, undefined);
  assert.match(nul.warnings[0], /NUL/);
  // Past 2047 bytes the kernel sees nothing: the mem=1G at the end is not applied.
  const many = Array.from({ length: 5000 }, (_, i) => `p${i}=${i}`).join(" ") + " mem=1G";
  const m = parseBootArgs(many);
  assert.ok(m.params.length < 400, String(m.params.length));
  assert.equal(m.mem, undefined);
  assert.ok(m.truncated && m.truncated.dropped.at(-1) === "mem=1G");
  assert.ok(m.warnings.some((w) => /COMMAND_LINE_SIZE/.test(w)));
});

Deno.test("COMMAND_LINE_SIZE: 2047 bytes are seen, an argument past them is not", () => {
  const pad = (n: number) => `x=${"a".repeat(n - 2)}`;
  // Exactly 2047 bytes: all seen, nothing truncated.
  const fits = parseBootArgs(`${pad(2047 - " mem=3G".length)} mem=3G`);
  assert.equal(fits.raw.length, COMMAND_LINE_MAX_BYTES);
  assert.equal(fits.mem?.limit, 3 * 1024 * MiB);
  assert.equal(fits.truncated, undefined);
  assert.deepEqual(fits.warnings, []);
  // One byte more: the last character of mem=3G is cut, the kernel reads mem=3 (3 bytes, below
  // one page: no limit), in strict mode too, and says why.
  const cut = parseBootArgs(`${pad(2048 - " mem=3G".length)} mem=3G`);
  assert.equal(cut.mem?.requested.bytes, 3);
  assert.equal(cut.mem?.limit, 0);
  assert.deepEqual(cut.truncated?.cut, { written: "mem=3G", seen: "mem=3" });
  assert.match(cut.warnings.join("\n"), /2048 bytes; an arm64 kernel keeps only the first 2047/);
  assert.match(cut.warnings.join("\n"), /"mem=3G" is cut to "mem=3"/);
  // Wholly past the limit: not seen; an earlier mem= stays in force (the last one seen wins).
  const past = parseBootArgs(`mem=2G ${pad(2100)} mem=3G swiotlb=force`);
  assert.equal(past.mem?.limit, 2 * 1024 * MiB);
  assert.equal(past.swiotlb, undefined);
  assert.deepEqual(past.truncated?.dropped, ["mem=3G", "swiotlb=force"]);
  assert.match(past.warnings.join("\n"), /2 arguments past the limit are ignored/);
  // A malformed value past the limit is no error: the kernel never reads it.
  assert.equal(parseBootArgs(`${pad(2100)} mem=lots`).mem, undefined);
  // Multi-byte characters count as their UTF-8 bytes.
  const wide = parseBootArgs(`label=${"ä".repeat(1020)} mem=1G`);
  assert.equal(wide.mem, undefined);
  assert.ok(wide.truncated);
});

Deno.test("property: parseBootArgs never throws anything but BootArgsError", () => {
  const piece = fc.oneof(
    fc.string(),
    fc.string({ unit: "grapheme" }),
    fc.constantFrom(
      "mem=",
      "swiotlb=",
      "cma=",
      "iommu.passthrough=",
      '"',
      "=",
      " ",
      "--",
      "\u00a0",
      "0x",
      "E",
      ",",
      "@",
      "-",
    ),
    fc.bigInt({ min: 0n, max: 1n << 80n }).map(String),
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 12 }), fc.boolean(), (parts, lenient) => {
      try {
        const r = parseBootArgs(parts.join(""), { lenient });
        if (lenient) assert.ok(r.params.length >= 0);
      } catch (e) {
        if (!(e instanceof BootArgsError)) throw e;
        assert.ok(!lenient, "lenient mode must not throw");
      }
    }),
    { numRuns: 2000 },
  );
});
