/**
 * The atlas on real Debian kernel packages. Downloads (once, then cached) the bookworm and trixie
 * arm64 kernels, as the QEMU tests already do.
 */
import assert from "node:assert/strict";
import { buildAtlas } from "./atlas.ts";

Deno.test("atlas of bookworm and trixie: every RK356x/RK3588 DTB, 6.1 → 6.12 changes", async () => {
  const a = await buildAtlas({ suites: ["trixie", "bookworm"] });
  assert.deepEqual(a.missing, []);
  assert.deepEqual(a.releases.map((r) => [r.suite, r.kb, r.previous]), [
    ["bookworm", "6.1", null],
    ["trixie", "6.12", "bookworm"],
  ]);
  const [b, t] = a.releases;
  assert.ok(b.dtbs.length >= 10, `${b.dtbs.length} DTBs in bookworm`);
  assert.ok(t.dtbs.length > b.dtbs.length);
  assert.deepEqual(b.unreadable, []);
  for (const d of [...b.dtbs, ...t.dtbs]) {
    assert.match(d.soc, /^rk(3566|3568|3588s?)$/, d.name);
    assert.deepEqual(Object.keys(b.outcomes[d.name] ?? t.outcomes[d.name]), [
      "2",
      "4",
      "8",
      "16",
      "32",
    ]);
  }
  // 6.1: every enabled RK3568 IOMMU is OK at every size (GFP_DMA32 tables).
  for (const s of ["2", "4", "8", "16", "32"]) {
    assert.equal(b.outcomes["rk3568-rock-3a.dtb"][s]["fe043e00"], "OK");
  }
  // 6.12 lifts the v2 table allocation (2a7e6400f72b): the decoder MMU of unknown revision is
  // UNCERTAIN from 4 GB on, and the atlas says so as a change from 6.1.
  const rock3a = t.changes.find((c) => c.dtb === "rk3568-rock-3a.dtb");
  assert.ok(rock3a?.outcomes.includes("8 GB fdea0800: OK → UNCERTAIN"), JSON.stringify(rock3a));
});
