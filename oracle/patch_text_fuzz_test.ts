// Fuzzing of the patch text reader (issue 13) beyond patch_text_test.ts (any text parses or is
// a PatchTextError; oversized text refused): inputs at the size bound (a mailbox of real
// patches just under MAX_PATCH_CHARS, 10 MB refused at once) and real patches cut anywhere.
import assert from "node:assert/strict";
import fc from "fast-check";
import { MAX_PATCH_CHARS, parsePatchText, PatchTextError } from "./patch_text.ts";

const patch = Deno.readTextFileSync(
  new URL("./testdata/patches/0001-rk3568-iommu-v1-compatible.patch", import.meta.url),
);

Deno.test("fuzz: a mailbox of real patches just under the bound parses, one per mail; 10 MB is refused", () => {
  const one = parsePatchText(patch, "one");
  assert.equal(one.length, 1);
  const reps = Math.floor(MAX_PATCH_CHARS / (patch.length + 1)) - 1;
  const box = (patch.endsWith("\n") ? patch : patch + "\n").repeat(reps);
  assert.ok(box.length < MAX_PATCH_CHARS);
  const all = parsePatchText(box, "mailbox");
  assert.equal(all.length, reps);
  assert.deepEqual(all.at(-1)!.files.map((f) => f.path), one[0].files.map((f) => f.path));
  assert.throws(() => parsePatchText("+".repeat(10 << 20), "10 MB"), PatchTextError);
});

Deno.test("fuzz: a real patch cut or spliced anywhere parses or is a PatchTextError", () => {
  fc.assert(
    fc.property(
      fc.nat(patch.length),
      fc.nat(patch.length),
      fc.string({ unit: "binary", maxLength: 8 }),
      (a, b, ins) => {
        const text = patch.slice(0, Math.min(a, b)) + ins + patch.slice(Math.max(a, b));
        try {
          for (const p of parsePatchText(text, "cut")) assert.ok(p.files.length >= 1);
        } catch (e) {
          if (!(e instanceof PatchTextError)) throw e;
        }
      },
    ),
    { numRuns: 500 },
  );
});
