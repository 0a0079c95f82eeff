// Fuzzing of the console line splitter (issue 13) beyond console_lines_test.ts (any chunking
// gives the same lines): any bytes never throw and give lines within the cap with clean text;
// valid UTF-8 is reconstructed byte for byte from the lines' offsets, raw text and ends; 10 MB.
import assert from "node:assert/strict";
import fc from "fast-check";
import { ConsoleLineSplitter, DEFAULT_MAX_LINE_BYTES, splitConsoleText } from "./console_lines.ts";

const enc = new TextEncoder();
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;

Deno.test("fuzz: any bytes in any chunks: no throw, lines within the cap, text without controls", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }),
      fc.integer({ min: 4, max: 64 }),
      (chunks, cap) => {
        const s = new ConsoleLineSplitter({ maxLineBytes: cap });
        const lines = [...chunks.flatMap((c, i) => s.push(c, i)), ...s.flush(99)];
        let last = -1;
        lines.forEach((l, i) => {
          assert.equal(l.seq, i);
          assert.ok(l.offset >= last, "offsets never go back");
          last = l.offset;
          // Each byte decodes to at most one UTF-16 unit (U+FFFD for an invalid one).
          assert.ok(l.raw.length <= cap);
          assert.ok(!CONTROL.test(l.text), JSON.stringify(l.text));
        });
        assert.equal(s.pendingBytes, 0);
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("fuzz: valid UTF-8 is given back byte for byte by the lines (round trip)", () => {
  const text = fc.array(
    fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 12 }),
      fc.constantFrom("\n", "\r\n", "\r", "\r\r\n", "\x1b[0m", "\t", "€"),
    ),
    { maxLength: 40 },
  ).map((a) => a.join(""));
  fc.assert(
    fc.property(text, fc.integer({ min: 4, max: 40 }), (t, cap) => {
      const data = enc.encode(t);
      const lines = splitConsoleText(data, 0, { maxLineBytes: cap });
      let pos = 0;
      for (const l of lines) {
        // Between lines only line ends (an empty line's ends included).
        const gap = data.subarray(pos, l.offset);
        assert.ok(/^[\r\n]*$/.test(String.fromCharCode(...gap)), `gap ${JSON.stringify(gap)}`);
        const body = enc.encode(l.raw);
        assert.ok(body.length <= cap);
        assert.deepEqual(data.subarray(l.offset, l.offset + body.length), body);
        pos = l.offset + body.length;
      }
      assert.ok(/^[\r\n]*$/.test(String.fromCharCode(...data.subarray(pos))));
    }),
    { numRuns: 1000 },
  );
});

Deno.test("fuzz: 10 MB: one line without an end, random bytes, a flood of CRs", () => {
  const MB10 = 10 << 20;
  const one = splitConsoleText(new Uint8Array(MB10).fill(0x61));
  assert.equal(one.length, Math.ceil(MB10 / DEFAULT_MAX_LINE_BYTES));
  assert.ok(one.every((l) => l.raw.length <= DEFAULT_MAX_LINE_BYTES));
  const rnd = new Uint8Array(MB10);
  for (let i = 0; i < rnd.length; i += 65536) crypto.getRandomValues(rnd.subarray(i, i + 65536));
  const s = new ConsoleLineSplitter();
  let n = 0;
  for (let i = 0; i < rnd.length; i += 4096) n += s.push(rnd.subarray(i, i + 4096), i).length;
  n += s.flush().length;
  assert.ok(n > 0 && n <= MB10);
  assert.equal(splitConsoleText(new Uint8Array(MB10).fill(0x0d)).length, 1);
});
