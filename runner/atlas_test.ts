import assert from "node:assert/strict";
import { atlasChanges, atlasLayout, predictDtb } from "../oracle/atlas.ts";
import { type Atlas, buildAtlas, readAtlasDtbs, referenceLayouts } from "./atlas.ts";
import { UserInputError } from "./errors.ts";
import { renderAtlasHtml, renderAtlasMarkdown } from "./report/atlas_report.ts";

const TESTDATA = new URL("./fdt/testdata/", import.meta.url).pathname;

/** A kernel-package-like DTB directory (`<dir>/rockchip/*.dtb`) from the parser's test data. */
async function dtbDir(release: string, extra: Record<string, Uint8Array> = {}): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-atlas-test-" });
  await Deno.mkdir(`${dir}/rockchip`);
  for await (const e of Deno.readDir(`${TESTDATA}${release}`)) {
    await Deno.copyFile(`${TESTDATA}${release}/${e.name}`, `${dir}/rockchip/${e.name}`);
  }
  for (const [name, bytes] of Object.entries(extra)) {
    await Deno.writeFile(`${dir}/rockchip/${name}`, bytes);
  }
  return dir;
}

Deno.test("Debian DTBs are read with their IOMMU nodes; a broken blob is listed, not fatal", async () => {
  const dir = await dtbDir("6.12.118+deb13-arm64", {
    "rk3568-broken.dtb": new TextEncoder().encode("not a device tree"),
    "rk3399-other.dtb": new Uint8Array([1, 2, 3]),
  });
  try {
    const r = await readAtlasDtbs(dir);
    assert.deepEqual(r.dtbs.map((d) => [d.name, d.soc]), [
      ["rk3566-rock-3c.dtb", "rk3566"],
      ["rk3568-rock-3b.dtb", "rk3568"],
      ["rk3588-rock-5b.dtb", "rk3588"],
    ]);
    assert.deepEqual(r.unreadable.map((u) => u.dtb), ["rk3568-broken.dtb"]);
    const rock3b = r.dtbs[1];
    assert.equal(rock3b.model, "Radxa ROCK 3B");
    assert.deepEqual(
      rock3b.nodes.map((n) => [n.unit, n.label, n.status]),
      [["fdea0800", "vdpu_mmu", "okay"], ["fdee0800", "vepu_mmu", "okay"], [
        "fe043e00",
        "vop_mmu",
        "okay",
      ]],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("atlas of test DTBs: 6.1 → 6.12 changes, Markdown and self-contained HTML", async () => {
  const refs = await referenceLayouts();
  assert.deepEqual(
    refs.map((r) => `${r.family} ${r.sizeGb}`).sort(),
    ["rk356x 2", "rk356x 4", "rk356x 8", "rk3588 16"],
  );
  const layouts = ["rk356x", "rk3588"].flatMap((f) =>
    [2, 4, 8, 16, 32].map((g) => atlasLayout(f, g, refs))
  );
  const rel = async (suite: string, dir: string, kb: string, version: string) => {
    const d = await dtbDir(dir);
    try {
      const { dtbs, unreadable } = await readAtlasDtbs(d);
      const outcomes = Object.fromEntries(dtbs.map((x) => [x.name, predictDtb(x, kb, layouts)]));
      return {
        suite,
        package: `linux-image-${dir}`,
        version,
        kernelRelease: dir,
        kb,
        dtbs,
        outcomes,
        unreadable,
        previous: null as string | null,
        changes: [] as ReturnType<typeof atlasChanges>,
      };
    } finally {
      await Deno.remove(d, { recursive: true });
    }
  };
  const r61 = await rel("bookworm", "6.1.0-56-arm64", "6.1", "6.1.1");
  const r612 = await rel("trixie", "6.12.118+deb13-arm64", "6.12", "6.12.118-1");
  r612.previous = "bookworm";
  r612.changes = atlasChanges(r61, r612);
  const a: Atlas = {
    schema: 1,
    sizesGb: [2, 4, 8, 16, 32],
    layouts,
    releases: [r61, r612],
    missing: [{ suite: "sid", why: "the mirror does not serve sid" }],
  };
  assert.equal(r61.outcomes["rk3568-rock-3a.dtb"]["8"]["fdea0800"], "OK");
  assert.ok(
    r612.changes.some((c) => c.dtb === "rk3588-rock-5b.dtb" && c.kind === "added"),
  );
  const md = renderAtlasMarkdown(a);
  assert.match(md, /\| debian:trixie \| linux-image-6\.12\.118\+deb13-arm64 /);
  assert.match(md, /16 GB \(generalised\)/);
  assert.match(md, /debian:sid: the mirror does not serve sid/);
  assert.match(md, /\| fe043e00 vop_mmu \| rockchip,rk3568-iommu \| okay \| OK \| OK \| OK/);
  const html = renderAtlasHtml(a);
  assert.match(html, /^<!DOCTYPE html>/);
  assert.doesNotMatch(html, /<script|<link|src=|https?:/);
  assert.match(html, /<td class="UNCERTAIN">UNCERTAIN<\/td>/);
});

Deno.test("an unknown suite is refused before any download", async () => {
  await assert.rejects(buildAtlas({ suites: ["buster"] }), UserInputError);
});
