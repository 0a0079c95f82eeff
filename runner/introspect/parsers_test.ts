import assert from "node:assert/strict";
import fc from "fast-check";
import { mainlineFacts } from "../../oracle/releases.ts";
import { fact } from "../../oracle/types.ts";
import {
  compareDriverWithKb,
  type DriverIntrospection,
  type IntrospectedOps,
  maskBits,
} from "./driver.ts";
import { decodeGfp, evalGfpExpr, gfpTableFromTraceFormat } from "./gfp.ts";
import { formatSym, KallsymsError, parseKallsyms } from "./kallsyms.ts";

const TD = new URL("./testdata/", import.meta.url).pathname;
const R61 = "6.1.0-56-arm64", R612 = "6.12.118+deb13-arm64", R73 = "7.3.4+deb13-arm64";

Deno.test("kallsyms: real excerpts (6.1 text only, 6.12/7.3 with data symbols)", async () => {
  const k61 = parseKallsyms(await Deno.readTextFile(`${TD}kallsyms-${R61}.excerpt`));
  assert.equal(k61.hasDataSymbols, false, "_etext is the only D symbol on 6.1");
  assert.equal(k61.lookup("rk_iommu_dt_ids"), undefined);
  const pt = k61.lookup("rk_dte_pt_address")!;
  assert.equal(pt.type, "t");
  assert.equal(formatSym(k61.symbolize(pt.addr)), "rk_dte_pt_address");
  assert.equal(formatSym(k61.symbolize(pt.addr + 4n)), "rk_dte_pt_address+0x4");
  assert.equal(k61.lookup("virtrng_scan")?.module, "virtio_rng");
  // Mapping symbols ($x, $d) of modules never name an address.
  for (const s of k61.symbols.filter((s) => s.module)) {
    assert.ok(!formatSym(k61.symbolize(s.addr)).startsWith("$"));
  }
  for (const rel of [R612, R73]) {
    const k = parseKallsyms(await Deno.readTextFile(`${TD}kallsyms-${rel}.excerpt`));
    assert.equal(k.hasDataSymbols, true, rel);
    const t = k.lookup("rk_iommu_dt_ids")!;
    assert.equal(t.type, "d");
    assert.equal(k.symbolize(k.lookup("iommu_data_ops_v2")!.addr)?.sym.name, "iommu_data_ops_v2");
  }
  assert.equal(k61.symbolize(0x1000n), undefined);
});

Deno.test("kallsyms: hidden addresses and garbage", () => {
  assert.throws(() => parseKallsyms(""), KallsymsError);
  assert.throws(() => parseKallsyms("garbage\n\x00\x01"), KallsymsError);
  assert.throws(
    () => parseKallsyms("0000000000000000 T _stext\n0000000000000000 t rk_mk_pte\n"),
    /hidden/,
  );
  const k = parseKallsyms("ffff800010000000 T a\nnot a line\nffff800010000010 t b\t[m]\n");
  assert.equal(k.skipped, 1);
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (s) => {
      try {
        const r = parseKallsyms(s);
        r.symbolize(0xffff800010000008n);
      } catch (e) {
        if (!(e instanceof KallsymsError)) throw e;
      }
    }),
    { numRuns: 1000 },
  );
});

Deno.test("gfp: show_gfp_flags tables of real 6.1, 6.12 and 7.3 tracefs formats", async () => {
  const t61 = gfpTableFromTraceFormat(
    await Deno.readTextFile(`${TD}mm_page_alloc-format-${R61}.txt`),
  );
  // 6.1: #define ___GFP_DMA32 0x04u etc. (literal hex in the format)
  assert.equal(t61.GFP_DMA32, 0x04);
  assert.equal(t61.GFP_DMA, 0x01);
  assert.equal(t61.__GFP_HIGHMEM, 0x02);
  assert.equal(t61.__GFP_MOVABLE, 0x08);
  assert.equal(t61.__GFP_ZERO, 0x100);
  assert.equal(t61.GFP_KERNEL, 0x400 | 0x800 | 0x40 | 0x80);
  assert.equal(t61.GFP_TRANSHUGE !== undefined, true, "expressions with & and ~ evaluate");
  for (const rel of [R612, R73]) {
    // 6.10+: BIT(___GFP_*_BIT), printed as ((1UL)) << (n).
    const t = gfpTableFromTraceFormat(
      await Deno.readTextFile(`${TD}mm_page_alloc-format-${rel}.txt`),
    );
    assert.equal(t.GFP_DMA32, 4, rel);
    assert.equal(t.GFP_DMA, 1, rel);
  }
  assert.deepEqual(decodeGfp(4, t61), { raw: 4, zone: "GFP_DMA32", names: ["GFP_DMA32"] });
  assert.deepEqual(decodeGfp(0, t61), { raw: 0, zone: "none", names: [] });
  assert.equal(decodeGfp(1, t61).zone, "GFP_DMA");
  assert.equal(decodeGfp(2, t61).zone, "other");
  assert.deepEqual(decodeGfp(0x104 | 0x80000000, t61).names, [
    "GFP_DMA32",
    "__GFP_ZERO",
    "0x80000000",
  ]);
  assert.deepEqual(gfpTableFromTraceFormat("no flags here"), {});
  assert.equal(evalGfpExpr("((1UL)) << (2)"), 4);
  assert.equal(evalGfpExpr("( gfp_t)(0x400u|0x800u)"), 0xc00);
  assert.equal(evalGfpExpr("1 <<"), undefined);
  assert.equal(evalGfpExpr("sizeof(struct page)"), undefined);
  assert.equal(evalGfpExpr("1 << 99"), undefined);
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (s) => {
      evalGfpExpr(s);
      gfpTableFromTraceFormat(`__print_flags(x, "|", {${s}, "X"}, {${s}`);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("maskBits: u64 masks", () => {
  assert.equal(maskBits(0xffffffffn), 32);
  assert.equal(maskBits(0xffffffffffn), 40);
  assert.equal(maskBits(0xffffffffffffffffn), 64);
  assert.equal(maskBits(0n), 0);
  assert.equal(maskBits(0xfff0n), -1);
});

function ops(
  compatible: string,
  format: "v1" | "v2",
  bits: number,
  gfp: number | null,
  zone: IntrospectedOps["gfpZone"]["value"],
): IntrospectedOps {
  const s = "test kernel: kcore";
  return {
    compatible,
    opsAddress: fact("ops address", "0xffff0000", s, "measured"),
    fields: fact("fields", ["pt_address"], s, "measured"),
    dmaMaskBits: fact("dma_bit_mask", bits, s, "measured"),
    dmaMask: fact("dma_bit_mask", "0x", s, "measured"),
    gfpFlags: fact("gfp_flags", gfp, s, "measured"),
    gfpZone: fact("table gfp zone", zone, s, "measured"),
    gfpNames: [],
    functions: {},
    format: fact("entry format", format, s, "measured"),
  };
}

function intro(
  compatibles: IntrospectedOps[],
  extra: Partial<DriverIntrospection> = {},
): DriverIntrospection {
  const s = "test kernel: BTF";
  return {
    release: "test",
    opsLayout: fact(
      "struct rk_iommu_ops",
      { name: "rk_iommu_ops", size: 32, members: [] },
      s,
      "measured",
    ),
    ofDeviceIdLayout: fact(
      "struct of_device_id",
      { name: "of_device_id", size: 200, members: [] },
      s,
      "measured",
    ),
    dteAddrLayout: fact("DTE_ADDR layout", "dte", s, "measured"),
    table: fact(
      "of_device_id table",
      { address: "0x1", entries: compatibles.length, foundBy: "kcore-scan" },
      s,
      "measured",
    ),
    compatibles,
    kallsymsAll: false,
    kcoreReads: 4,
    problems: [],
    ...extra,
  };
}

Deno.test("compareDriverWithKb: what the three Debian kernels showed agrees with the knowledge base", () => {
  const k61 = intro([
    ops("rockchip,iommu", "v1", 32, null, "hard-coded"),
    ops("rockchip,rk3568-iommu", "v2", 40, null, "hard-coded"),
  ], {
    perDeviceOps: fact("per-device ops", false, "BTF", "measured"),
    dmaDev: fact("table dma_dev", "global-first-probed", "BTF", "measured"),
  });
  const c61 = compareDriverWithKb(k61, mainlineFacts({ major: 6, minor: 1 }));
  assert.deepEqual(c61.findings, []);
  assert.equal(c61.agreed.length, 9);
  const k612 = intro([
    ops("rockchip,iommu", "v1", 32, 4, "GFP_DMA32"),
    ops("rockchip,rk3568-iommu", "v2", 40, 0, "none"),
  ]);
  assert.deepEqual(compareDriverWithKb(k612, mainlineFacts({ major: 6, minor: 12 })).findings, []);
  const k73 = intro(k612.compatibles, {
    perDeviceOps: fact("per-device ops", true, "BTF", "measured"),
    dmaDev: fact("table dma_dev", "per-domain", "BTF", "measured"),
  });
  assert.deepEqual(compareDriverWithKb(k73, mainlineFacts({ major: 7, minor: 3 })).findings, []);
});

Deno.test("compareDriverWithKb: each disagreement is a finding with both values and sources", () => {
  // A 6.12 kernel carrying a local patch like S-618L / Armbian #10366: v2 with a 32-bit mask and
  // GFP_DMA32, and an extra compatible the knowledge base does not know.
  const k = intro([
    ops("rockchip,iommu", "v1", 32, 4, "GFP_DMA32"),
    ops("rockchip,rk3568-iommu", "v2", 32, 4, "GFP_DMA32"),
    ops("vendor,iommu", "v2", 40, 0, "none"),
  ], { dteAddrLayout: fact("DTE_ADDR layout", "vendor", "BTF", "measured") });
  const c = compareDriverWithKb(k, mainlineFacts({ major: 6, minor: 12 }));
  const by = (f: string, comp?: string) =>
    c.findings.find((x) => x.fact === f && x.compatible === comp);
  assert.deepEqual(
    [
      by("dma_bit_mask", "rockchip,rk3568-iommu")?.measured,
      by("dma_bit_mask", "rockchip,rk3568-iommu")?.kb,
    ],
    [32, 40],
  );
  const g = by("table gfp zone", "rockchip,rk3568-iommu")!;
  assert.equal(g.measured, "GFP_DMA32");
  assert.equal(g.kb, "none");
  assert.match(g.kbSource, /2a7e6400f72b/);
  assert.match(g.measuredSource, /kcore/);
  assert.ok(by("compatible", "vendor,iommu"));
  assert.equal(by("DTE_ADDR layout")?.measured, "vendor");
  // The same kernel without gfp_flags against a 6.12 KB: the field is expected.
  const noField = intro([ops("rockchip,iommu", "v1", 32, null, "hard-coded")]);
  const c2 = compareDriverWithKb(noField, mainlineFacts({ major: 6, minor: 12 }));
  assert.match(c2.findings.find((x) => x.fact === "table gfp zone")!.note!, /expects one/);
  assert.ok(
    c2.findings.find((x) => x.fact === "compatible" && x.compatible === "rockchip,rk3568-iommu"),
  );
  // A 6.1 KB (hard-coded) against a kernel that has the field.
  const c3 = compareDriverWithKb(
    intro([ops("rockchip,iommu", "v1", 32, 4, "GFP_DMA32")]),
    mainlineFacts({ major: 6, minor: 1 }),
  );
  assert.match(c3.findings.find((x) => x.fact === "table gfp zone")!.note!, /hard-coded/);
});
