// Fuzzing of the BTF and /proc/kcore parsers (issue 13) beyond btf_test.ts and kcore_test.ts
// (random blobs, corrupted blobs and headers): 10 MB blobs, valid and garbage, and the base64
// reader of kcore ranges (any text: bytes or KcoreError; any bytes: a round trip).
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { BtfError, parseBtf } from "./btf.ts";
import { decodeBase64Lines, KcoreError, parseKcoreHeader } from "./kcore.ts";
import { blobWithStrings, buildCore, K } from "./testutil.ts";

const MB10 = 10 << 20;

/** `fn()`, or the parser's own error class; anything else fails the test. */
function classified<T>(fn: () => T, cls: new (...a: never[]) => Error): T | Error {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof cls)) throw e;
    return e;
  }
}

Deno.test("fuzz: BTF of 10 MB: 650 000 types parse; the same size of garbage types is a BtfError", () => {
  // 16 bytes an INT: 655 360 of them make 10 MB of type section.
  const count = MB10 / 16;
  const blob = blobWithStrings(
    ["u32"],
    () => Array.from({ length: count }, () => ({ name: "u32", kind: K.INT, st: 4, extra: [32] })),
  );
  assert.ok(blob.length > MB10);
  const b = parseBtf(blob);
  assert.equal(b.types.length, count + 1); // type 0 is void
  // The same header over random type bytes: refused or parsed, never anything else.
  const garbage = blob.slice();
  crypto.getRandomValues(garbage.subarray(24, 24 + 65536));
  for (let i = 24 + 65536; i < 24 + MB10; i += 65536) {
    garbage.copyWithin(i, 24, 24 + Math.min(65536, 24 + MB10 - i));
  }
  classified(() => parseBtf(garbage), BtfError);
});

Deno.test("fuzz: kcore header in front of 10 MB of anything: a header or a KcoreError", () => {
  const core = buildCore([{ vaddr: 0xffff800080000000n, data: new Uint8Array(4096) }]);
  const big = new Uint8Array(MB10);
  big.set(core);
  const h = parseKcoreHeader(big);
  assert.ok(!(h instanceof Error));
  assert.ok(h.segments.length >= 1);
  fc.assert(
    fc.property(fc.nat(core.length), fc.uint8Array({ minLength: 1, maxLength: 8 }), (at, b) => {
      const c = big.slice(0, 1 << 16);
      c.set(b.subarray(0, Math.max(0, c.length - at)), at);
      classified(() => parseKcoreHeader(c), KcoreError);
    }),
    { numRuns: 300 },
  );
});

Deno.test("fuzz: base64 reader: any text gives bytes or a KcoreError; any bytes round-trip", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), (text) => {
      const r = classified(() => decodeBase64Lines(text), KcoreError);
      if (r instanceof Uint8Array) {
        assert.equal(Buffer.from(r).toString("base64"), text.replace(/\s+/g, ""));
      }
    }),
    { numRuns: 1000 },
  );
  const wrapped = (bytes: Uint8Array, width: number, eol: string) => {
    const b64 = Buffer.from(bytes).toString("base64");
    const lines: string[] = [];
    for (let i = 0; i < b64.length; i += width) lines.push(b64.slice(i, i + width));
    return lines.join(eol) + eol;
  };
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 2000 }),
      fc.integer({ min: 4, max: 120 }),
      fc.constantFrom("\n", "\r\n"),
      (bytes, width, eol) => {
        assert.deepEqual(decodeBase64Lines(wrapped(bytes, width, eol)), bytes);
      },
    ),
    { numRuns: 300 },
  );
  // 10 MB of output from `base64` (76 columns), as sshKcoreReader reads a batch.
  const big = new Uint8Array(MB10);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  assert.deepEqual(decodeBase64Lines(wrapped(big, 76, "\n")), big);
  assert.throws(() => decodeBase64Lines("A".repeat(MB10 - 1)), KcoreError);
});
