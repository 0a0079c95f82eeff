import assert from "node:assert/strict";
import fc from "fast-check";
import { escapeControls, MAX_LINE_CHARS, shown, terminalJson, terminalSafe } from "./safe_text.ts";

/** Anything a terminal acts on (C0 but newline and tab, DEL, C1, separators, bidi controls). */
// deno-lint-ignore no-control-regex
const ACTIVE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

Deno.test("escapeControls: terminal escapes, CR, NUL, C1 CSI and bidi overrides become visible", () => {
  assert.equal(escapeControls("a\x1b[2Jb"), "a\\e[2Jb");
  assert.equal(escapeControls("x\ry\0z"), "x\\ry\\0z");
  assert.equal(escapeControls("\x9b31m"), "\\x9b31m");
  assert.equal(escapeControls("\u202eevil"), "\\u202eevil");
  assert.equal(escapeControls("\x07\x7f"), "\\x07\\x7f");
  assert.equal(escapeControls("two\nlines\tand tab"), "two\nlines\tand tab");
  assert.equal(escapeControls("two\nlines\t", false), "two\\nlines\\t");
  assert.equal(escapeControls("Radxa ROCK 3B — 8 GB ✓"), "Radxa ROCK 3B — 8 GB ✓");
});

Deno.test("shown: one quoted line, cut with the full length", () => {
  assert.equal(shown("abc"), '"abc"');
  assert.equal(shown('say "hi"\n'), '"say \\"hi\\"\\n"');
  const long = "x".repeat(10_000);
  const s = shown(long);
  assert.ok(s.length < 100, s);
  assert.match(s, /^"x{60}…" \(10000 characters\)$/);
  // Cut by characters, never inside a surrogate pair.
  assert.equal(shown("😀".repeat(70), 2), '"😀😀…" (70 characters)');
});

Deno.test("terminalSafe: long lines cut, newlines kept", () => {
  const out = terminalSafe(`ok\n${"y".repeat(MAX_LINE_CHARS + 50)}\x1b]0;title\x07`);
  const [a, b] = out.split("\n");
  assert.equal(a, "ok");
  assert.match(b, /^y{400}… \(\d+ more characters\)$/);
});

Deno.test("terminalJson: still JSON of the same value, nothing active for a terminal", () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.string({ unit: "binary" }), (v, s) => {
      const value = { v, s };
      const text = terminalJson(value);
      assert.doesNotMatch(text, ACTIVE);
      assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(value)));
    }),
  );
});

Deno.test("escapeControls, shown, terminalSafe leave nothing active on any input", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 600 }), (s) => {
      assert.doesNotMatch(escapeControls(s), ACTIVE);
      assert.doesNotMatch(shown(s), ACTIVE);
      assert.doesNotMatch(shown(s), /\n/);
      assert.doesNotMatch(terminalSafe(s), ACTIVE);
    }),
  );
});
