// Fuzzing of the rkwl output parser (issue 13) beyond rkwl_output_test.ts (any text parses
// without throwing; problems bounded): 10 MB inputs, a real capture repeated and spliced into
// console noise, lists and problems bounded (the RKNN parser's 10 MB test is in
// rknn_output_test.ts).
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseRkwlOutput } from "./rkwl_output.ts";

const MB10 = 10 << 20;
const real = Deno.readTextFileSync(
  new URL("./testdata/rkwl/mobilenet_v1-grace_hopper.txt", import.meta.url),
);

Deno.test("fuzz: rkwl 10 MB: a real run repeated, a 10 MB line, junk: bounded, never thrown", () => {
  const big = real.repeat(Math.ceil(MB10 / real.length));
  const r = parseRkwlOutput(big);
  assert.ok(r.problems.length <= 50);
  assert.ok(r.top.length <= big.split("\n").length);
  for (
    const text of ["rkwl top 1 5 " + "9".repeat(MB10), "rkwl ".repeat(MB10 / 5), "\n".repeat(MB10)]
  ) {
    const x = parseRkwlOutput(text);
    assert.ok(x.problems.length <= 50);
  }
});

Deno.test("fuzz: rkwl a real run with console noise spliced in anywhere still parses its results", () => {
  const clean = parseRkwlOutput(real);
  const lines = real.split("\n");
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(
          fc.nat(lines.length),
          fc.constantFrom("[   12.345678] rknpu: noise", "\x1b[0m", "login: ", "#"),
        ),
        { maxLength: 5 },
      ),
      (inserts) => {
        const ls = lines.slice();
        for (const [at, l] of inserts.sort((a, b) => b[0] - a[0])) ls.splice(at, 0, l);
        const r = parseRkwlOutput(ls.join("\n"));
        assert.deepEqual(r.top, clean.top);
        assert.deepEqual(r.invokes, clean.invokes);
        assert.equal(r.outcome, clean.outcome);
      },
    ),
    { numRuns: 200 },
  );
});
