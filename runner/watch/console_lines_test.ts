// Tests of the console byte stream to line splitter.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  cleanText,
  type ConsoleLine,
  ConsoleLineSplitter,
  splitConsoleText,
  stripAnsi,
} from "./console_lines.ts";

const enc = new TextEncoder();
const bytes = (...parts: (string | number[])[]) => {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "string") out.push(...enc.encode(p));
    else out.push(...p);
  }
  return new Uint8Array(out);
};

Deno.test("LF, CRLF, CR and CR CR LF endings", () => {
  const lines = splitConsoleText("a\nb\r\nc\rd\r\r\ne");
  assert.deepEqual(lines.map((l) => [l.text, l.end]), [
    ["a", "lf"],
    ["b", "crlf"],
    ["c", "cr"],
    ["d", "crlf"],
    ["e", "eof"],
  ]);
  assert.deepEqual(lines.map((l) => l.offset), [0, 2, 5, 7, 11]);
});

Deno.test("a CRLF split across chunks is one line end; a trailing CR waits for the next byte", () => {
  const s = new ConsoleLineSplitter();
  assert.deepEqual(s.push(bytes("boot\r"), 1), []);
  const l = s.push(bytes("\nnext\r"), 2);
  assert.deepEqual(l.map((x) => [x.text, x.end, x.atMs]), [["boot", "crlf", 1]]);
  const m = s.push(bytes("x"), 3);
  assert.deepEqual(m.map((x) => [x.text, x.end, x.atMs]), [["next", "cr", 2]]);
  assert.deepEqual(s.flush(4).map((x) => [x.text, x.end, x.atMs]), [["x", "eof", 3]]);
  assert.deepEqual(s.flush(5), []);
});

Deno.test("timestamp is the arrival time of the line's first byte", () => {
  const s = new ConsoleLineSplitter();
  const out: ConsoleLine[] = [];
  out.push(...s.push(bytes("[    1.000000] Boot"), 100));
  out.push(...s.push(bytes("ing Linux\r\n[    1.1"), 200));
  out.push(...s.push(bytes("00000] next\r\n"), 300));
  assert.deepEqual(out.map((l) => [l.text, l.atMs]), [
    ["[    1.000000] Booting Linux", 100],
    ["[    1.100000] next", 200],
  ]);
});

Deno.test("ANSI escapes are stripped for matching and kept in raw", () => {
  const raw = "\x1b[0;32m[  OK  ]\x1b[0m Started \x1b]0;title\x07ssh\x1b(B.\x1b=";
  const [l] = splitConsoleText(raw + "\r\n");
  assert.equal(l.raw, raw);
  assert.equal(l.text, "[  OK  ] Started ssh.");
  assert.equal(stripAnsi("\x1b[?2004hroot@rock-3b:~# \x1b[?2004l"), "root@rock-3b:~# ");
  assert.equal(cleanText("\x1b[K\x1b[1;31mE RKNN\x1b[0m: x"), "E RKNN: x");
});

Deno.test("NUL, other control bytes and invalid UTF-8 are survivable", () => {
  const data = bytes(
    [0, 0, 0xff, 0xfe],
    "Rest",
    [0xe9],
    "DDR Version V1.13 20220218",
    [7, 0x7f],
    "\r\n",
  );
  const [l] = splitConsoleText(data);
  assert.equal(l.text, "\ufffd\ufffdRest\ufffdDDR Version V1.13 20220218");
  assert.ok(l.raw.startsWith("\0\0\ufffd"));
  assert.equal(l.end, "crlf");
  // Tabs stay (the RKNPU core line has one).
  assert.equal(splitConsoleText("RKNPU: \tcore 0\n")[0].text, "RKNPU: \tcore 0");
  // A multi-byte character cut across chunks decodes whole.
  const s = new ConsoleLineSplitter();
  const euro = enc.encode("€ ok\n");
  s.push(euro.subarray(0, 1), 1);
  s.push(euro.subarray(1, 2), 2);
  assert.equal(s.push(euro.subarray(2), 3)[0].text, "€ ok");
});

Deno.test("long lines are split at the cap, never inside a UTF-8 sequence, and flagged", () => {
  const s = new ConsoleLineSplitter({ maxLineBytes: 8 });
  const lines = [...s.push(bytes("abcdefgh€ijklmnopq\n"), 1), ...s.flush()];
  assert.deepEqual(lines.map((l) => [l.text, l.end, l.continued]), [
    ["abcdefgh", "split", false],
    ["€ijklm", "split", true],
    ["nopq", "lf", true],
  ]);
  // The € (3 bytes) would straddle the cut at 8: the piece ends before it.
  const t = splitConsoleText("abcdef€gh\n", 0, { maxLineBytes: 8 });
  assert.deepEqual(t.map((l) => [l.text, l.end]), [["abcdef", "split"], ["€gh", "lf"]]);
  assert.throws(() => new ConsoleLineSplitter({ maxLineBytes: 2 }), RangeError);
});

Deno.test("flush returns the final partial line", () => {
  const s = new ConsoleLineSplitter();
  s.push(bytes("rock-3b login: "), 7);
  assert.equal(s.pendingBytes, 15);
  const [l] = s.flush(9);
  assert.deepEqual([l.text, l.end, l.atMs], ["rock-3b login: ", "eof", 7]);
});

Deno.test("property: any chunking gives the same lines (timestamps aside)", () => {
  const alphabet = [..."ab €\x1b[0m\r\n\0\t"].map((c) => enc.encode(c));
  const byteArb = fc.oneof(
    fc.constantFrom(...alphabet),
    fc.integer({ min: 0, max: 255 }).map((b) => new Uint8Array([b])),
  );
  fc.assert(
    fc.property(
      fc.array(byteArb, { maxLength: 300 }),
      fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 50 }),
      fc.integer({ min: 4, max: 40 }),
      (pieces, sizes, cap) => {
        const data = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of pieces) {
          data.set(p, o);
          o += p.length;
        }
        const whole = splitConsoleText(data, 0, { maxLineBytes: cap });
        const s = new ConsoleLineSplitter({ maxLineBytes: cap });
        const got: ConsoleLine[] = [];
        let off = 0;
        let i = 0;
        while (off < data.length) {
          const n = sizes[i++ % sizes.length];
          got.push(...s.push(data.slice(off, off + n), 0));
          off += n;
        }
        got.push(...s.flush(0));
        assert.deepEqual(got, whole);
        // Every byte is accounted for: the raw lines re-encode to at most the input's length.
        for (const l of got) assert.ok(enc.encode(l.raw).length <= cap * 3);
      },
    ),
    { numRuns: 300 },
  );
});
