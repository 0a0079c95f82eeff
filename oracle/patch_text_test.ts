import assert from "node:assert/strict";
import fc from "fast-check";
import {
  MAX_PATCH_CHARS,
  normalisePatchText,
  parsePatchText,
  PatchTextError,
} from "./patch_text.ts";

const T = new URL("./testdata/patches/", import.meta.url);
const read = (name: string) => Deno.readTextFileSync(new URL(name, T));

Deno.test("the seed thread's quoted copy of the withdrawn patch is read back as a diff", () => {
  const [p, ...rest] = parsePatchText(read("seed-thread.txt"), "seed");
  assert.equal(rest.length, 0);
  assert.equal(p.files.length, 1);
  const f = p.files[0];
  assert.equal(f.path, "drivers/iommu/rockchip-iommu.c");
  assert.equal(f.hunks.length, 1);
  const h = f.hunks[0];
  assert.equal(h.context, "static struct rk_iommu_ops iommu_data_ops_v2 = {");
  assert.equal(h.oldStart, 1358);
  const del = h.lines.filter((l) => l.kind === "del").map((l) => l.text.trim());
  const add = h.lines.filter((l) => l.kind === "add").map((l) => l.text.trim());
  assert.deepEqual(del, [".dma_bit_mask = DMA_BIT_MASK(40),", ".gfp_flags = 0,"]);
  assert.deepEqual(add, [".dma_bit_mask = DMA_BIT_MASK(32),", ".gfp_flags = GFP_DMA32,"]);
  // Context lines lost their leading space in the quote; they come back as context.
  assert.equal(h.lines[0].kind, "context");
  assert.equal(h.lines[0].text, ".pt_address = &rk_dte_pt_address_v2,");
  assert.ok(p.notes.some((n) => /quoted 5 level/.test(n)), p.notes.join("\n"));
  assert.ok(p.notes.some((n) => /wrapped/.test(n)));
  // The quote dropped the blank context line: the hunk is read as far as it goes, and said so.
  assert.ok(p.notes.some((n) => /7 of 8 old lines/.test(n)));
});

Deno.test("git format-patch mails: subject, files, hunks; the '-- ' signature is not a line", () => {
  const [p] = parsePatchText(read("0001-rk3568-iommu-v1-compatible.patch"), "0001");
  assert.equal(p.subject, '[PATCH 1/2] iommu/rockchip: Add "rockchip,rk3568-iommu-v1" compatible');
  assert.deepEqual(p.notes, []);
  assert.equal(p.files[0].hunks.length, 2);
  const last = p.files[0].hunks[1].lines.at(-1)!;
  assert.equal(last.kind, "context");
  assert.equal(last.text, "");
  const [dt] = parsePatchText(read("0002-rk356x-dts-iommu-v1.patch"), "0002");
  assert.equal(dt.files[0].path, "arch/arm64/boot/dts/rockchip/rk356x-base.dtsi");
  assert.equal(dt.files[0].hunks[0].context, "npu: npu@fde40000 {");
});

Deno.test("a mailbox of a series gives one patch per mail, in order", () => {
  const mbox = [
    read("0000-per-device-ops.patch"),
    read("0001-rk3568-iommu-v1-compatible.patch"),
    read("0002-rk356x-dts-iommu-v1.patch"),
  ].join("\n");
  const ps = parsePatchText(mbox, "series.mbox");
  assert.deepEqual(
    ps.map((p) => p.subject.replace(/\].*/, "]")),
    ["[PATCH]", "[PATCH 1/2]", "[PATCH 2/2]"],
  );
  assert.deepEqual(ps.map((p) => p.files.length), [1, 1, 1]);
});

Deno.test("a plain diff without mail headers, with CRLF line ends and a new file", () => {
  const text = [
    "--- a/drivers/iommu/rockchip-iommu.c",
    "+++ b/drivers/iommu/rockchip-iommu.c",
    "@@ -1 +1 @@",
    "-a",
    "+b",
    "diff --git a/x.txt b/x.txt",
    "new file mode 100644",
    "--- /dev/null",
    "+++ b/x.txt",
    "@@ -0,0 +1,1 @@",
    "+hello",
    "",
  ].join("\r\n");
  const [p] = parsePatchText(text, "plain");
  assert.equal(p.subject, "(no subject)");
  assert.deepEqual(p.files.map((f) => [f.path, f.isNew]), [
    ["drivers/iommu/rockchip-iommu.c", false],
    ["x.txt", true],
  ]);
  assert.deepEqual(p.files[0].hunks[0].lines.map((l) => l.kind), ["del", "add"]);
});

Deno.test("hostile input: no diff, hunks with absurd counts, oversized text", () => {
  for (const text of ["", "hello\nworld\n", "From: x\nSubject: y\n\nno diff here\n"]) {
    assert.throws(() => parsePatchText(text, "t"), PatchTextError);
  }
  // A header that claims a million lines reads what is there and says the hunk is incomplete.
  const { segments, notes } = normalisePatchText(
    "--- a/f\n+++ b/f\n@@ -1,1000000 +1,1000000 @@\n x\n-y\n+z\n",
  );
  assert.equal(segments.length, 1);
  assert.ok(notes.some((n) => /incomplete/.test(n)));
  assert.throws(() => parsePatchText("x".repeat(MAX_PATCH_CHARS + 1), "big"), PatchTextError);
  // A hunk without file names.
  assert.throws(() => parsePatchText("@@ -1 +1 @@\n-a\n+b\n", "nameless"), PatchTextError);
});

Deno.test("any text either parses or fails with PatchTextError", () => {
  const line = fc.oneof(
    fc.constantFrom("--- a/f", "+++ b/f", "@@ -1,2 +1,2 @@", "diff --git a/f b/f", "-- ", "> "),
    fc.string({ maxLength: 20 }),
    fc.string({ maxLength: 20 }).map((s) => `+${s}`),
    fc.string({ maxLength: 20 }).map((s) => `-${s}`),
  );
  fc.assert(
    fc.property(fc.array(line, { maxLength: 30 }), (lines) => {
      try {
        const ps = parsePatchText(lines.join("\n"), "fuzz");
        for (const p of ps) assert.ok(p.files.length > 0);
      } catch (err) {
        if (!(err instanceof PatchTextError)) throw err;
      }
    }),
    { numRuns: 500 },
  );
});
