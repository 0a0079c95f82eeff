import assert from "node:assert/strict";
import fc from "fast-check";
import type { PhysRange } from "./types.ts";
import { parseBootArgs } from "./bootargs.ts";
import {
  applyMemLimit,
  computeZones,
  FOUR_GIB,
  parseZoneRanges,
  placeAllocation,
  renderNodeRanges,
  renderZoneRanges,
  type ZoneLayout,
  zoneOf,
  type ZoneRule,
  zoneRuleForRelease,
} from "./memory.ts";

const MiB = 1024 * 1024;
const ALL_RULES: ZoneRule[] = [
  "dt-bits-offset",
  "dt-bits-mask",
  "limit-clamp-in-max-zone-phys",
  "limit-clamped",
];

// research/rockchip-iommu.md §4.1. Bank 0 starts at 0x200000 (BL31 keeps the first 2 MiB).
const RK_2G: PhysRange[] = [{ start: 0x20_0000, end: 0x8000_0000 }];
const RK_4G: PhysRange[] = [
  { start: 0x20_0000, end: 0xf000_0000 },
  { start: 0x1_f000_0000, end: 0x2_0000_0000 },
];
// The top of DRAM on 8 GB boards is not verified (§4.1 [?]); 0x2_0000_0000 assumed.
const RK_8G: PhysRange[] = [
  { start: 0x20_0000, end: 0xf000_0000 },
  { start: 0x1_0000_0000, end: 0x2_0000_0000 },
];
const QEMU_2G: PhysRange[] = [{ start: 0x4000_0000, end: 0xc000_0000 }];
const QEMU_8G: PhysRange[] = [{ start: 0x4000_0000, end: 0x2_4000_0000 }];

function spans(l: ZoneLayout): (string | null)[] {
  return l.zones.map((z) =>
    z.span ? `${z.span.start.toString(16)}-${z.span.end.toString(16)}` : null
  );
}

Deno.test("RK3568 2 GB: everything in ZONE_DMA, below 2 GiB", () => {
  const l = computeZones(RK_2G);
  assert.deepEqual(spans(l), ["200000-80000000", null, null]);
  assert.equal(l.dmaPhysLimit, 0x8000_0000);
  assert.deepEqual(renderZoneRanges(l.zones), [
    "Zone ranges:",
    "  DMA      [mem 0x0000000000200000-0x000000007fffffff]",
    "  DMA32    empty",
    "  Normal   empty",
  ]);
  for (const g of ["none", "GFP_DMA32", "GFP_DMA"] as const) {
    const p = placeAllocation(l, g);
    assert.equal(p.preferred?.name, "DMA");
    assert.equal(p.certainlyBelow4G, true);
    assert.equal(p.possiblyAbove4G, false);
  }
});

Deno.test("RK3568 4 GB: ZONE_NORMAL is the 256 MiB behind the MMIO hole at 0x1_f000_0000", () => {
  const l = computeZones(RK_4G);
  assert.deepEqual(spans(l), ["200000-100000000", null, "100000000-200000000"]);
  assert.deepEqual(renderZoneRanges(l.zones), [
    "Zone ranges:",
    "  DMA      [mem 0x0000000000200000-0x00000000ffffffff]",
    "  DMA32    empty",
    "  Normal   [mem 0x0000000100000000-0x00000001ffffffff]",
  ]);
  const normal = zoneOf(l, "Normal");
  assert.deepEqual(normal?.present, [{ start: 0x1_f000_0000, end: 0x2_0000_0000 }]);
  assert.equal(normal?.presentBytes, 256 * MiB);
  const none = placeAllocation(l, "none");
  assert.equal(none.preferred?.name, "Normal");
  assert.deepEqual(none.fallbacks.map((f) => f.name), ["DMA"]);
  assert.deepEqual(none.skippedEmpty, ["DMA32"]);
  assert.equal(none.possiblyAbove4G, true);
  assert.equal(none.certainlyAbove4G, false);
  assert.equal(none.likely?.zone, "Normal");
  assert.equal(none.likely?.side, "above");
  assert.match(none.condition, /256 MiB at 0x1f0000000-0x200000000/);
  const dma32 = placeAllocation(l, "GFP_DMA32");
  assert.equal(dma32.highestZone, "DMA32");
  assert.deepEqual(dma32.skippedEmpty, ["DMA32"]);
  assert.equal(dma32.preferred?.name, "DMA");
  assert.equal(dma32.certainlyBelow4G, true);
});

Deno.test("RK3568 8 GB: gfp none prefers ZONE_NORMAL above 4 GiB, GFP_DMA32 falls back to ZONE_DMA", () => {
  const l = computeZones(RK_8G);
  assert.deepEqual(spans(l), ["200000-100000000", null, "100000000-200000000"]);
  const none = placeAllocation(l, "none");
  assert.equal(none.preferred?.name, "Normal");
  assert.equal(none.preferred?.side, "above");
  assert.equal(none.likely?.zone, "Normal");
  assert.equal(none.possiblyAbove4G, true);
  const dma32 = placeAllocation(l, "GFP_DMA32");
  assert.equal(dma32.preferred?.name, "DMA");
  assert.deepEqual(dma32.fallbacks, []);
  assert.equal(dma32.certainlyBelow4G, true);
  assert.ok(none.facts.every((f) => f.provenance.source.length > 0));
});

Deno.test("mem=3840M on 8 GB leaves exactly 2 MiB of ZONE_NORMAL above 4 GiB", () => {
  const args = parseBootArgs("console=ttyS2,1500000n8 mem=3840M");
  const cut = applyMemLimit(RK_8G, args.mem?.limit);
  // Bank 0 holds 0xf000_0000 - 0x20_0000 = 3838 MiB; 3840 MiB leaves 2 MiB for bank 1.
  assert.equal(0xf000_0000 - 0x20_0000, 3838 * MiB);
  assert.equal(cut.cutAt, 0x1_0020_0000);
  assert.deepEqual(cut.banks, [
    { start: 0x20_0000, end: 0xf000_0000 },
    { start: 0x1_0000_0000, end: 0x1_0020_0000 },
  ]);
  const l = computeZones(cut.banks);
  assert.deepEqual(renderZoneRanges(l.zones), [
    "Zone ranges:",
    "  DMA      [mem 0x0000000000200000-0x00000000ffffffff]",
    "  DMA32    empty",
    "  Normal   [mem 0x0000000100000000-0x00000001001fffff]",
  ]);
  assert.equal(zoneOf(l, "Normal")?.presentBytes, 2 * MiB);
  const p = placeAllocation(l, "none");
  assert.equal(p.preferred?.name, "Normal");
  assert.equal(p.possiblyAbove4G, true);
  assert.equal(p.likely?.zone, "DMA");
  assert.equal(p.likely?.side, "below");
  assert.match(p.likely?.rule ?? "", /only 2 MiB/);
  assert.match(p.condition, /ZONE_NORMAL is small \(2 MiB\)/);
});

Deno.test("mem=3838M on 8 GB removes everything above 4 GiB", () => {
  const cut = applyMemLimit(RK_8G, parseBootArgs("mem=3838M").mem?.limit);
  assert.equal(cut.cutAt, 0xf000_0000);
  assert.deepEqual(cut.banks, [{ start: 0x20_0000, end: 0xf000_0000 }]);
  const l = computeZones(cut.banks);
  assert.deepEqual(renderZoneRanges(l.zones).slice(1), [
    "  DMA      [mem 0x0000000000200000-0x00000000efffffff]",
    "  DMA32    empty",
    "  Normal   empty",
  ]);
  const p = placeAllocation(l, "none");
  assert.equal(p.preferred?.name, "DMA");
  assert.equal(p.certainlyBelow4G, true);
});

Deno.test("applyMemLimit edge cases", () => {
  assert.equal(applyMemLimit(RK_8G).cutAt, null);
  assert.equal(applyMemLimit(RK_8G, 0).cutAt, null); // mem=0: no limit
  assert.equal(applyMemLimit(RK_8G, 64 * 1024 * MiB).cutAt, null); // above total
  // Page-masked like early_mem, and unsorted banks are sorted first.
  const r = applyMemLimit([...RK_8G].reverse(), 1 * MiB + 100);
  assert.deepEqual(r.banks, [{ start: 0x20_0000, end: 0x30_0000 }]);
  // The kernel image is added back when it lies above the limit.
  const k = applyMemLimit(RK_8G, 1 * MiB, { start: 0x1_0000_0000, end: 0x1_0200_0000 });
  assert.deepEqual(k.banks, [
    { start: 0x20_0000, end: 0x30_0000 },
    { start: 0x1_0000_0000, end: 0x1_0200_0000 },
  ]);
});

Deno.test("QEMU virt, RAM at 0x40000000: 2 GiB and 8 GiB, same in every rule since v5.11", () => {
  for (const rule of ALL_RULES) {
    const a = computeZones(QEMU_2G, { rule });
    assert.deepEqual(spans(a), ["40000000-c0000000", null, null], rule);
    const b = computeZones(QEMU_8G, { rule });
    assert.deepEqual(spans(b), ["40000000-100000000", null, "100000000-240000000"], rule);
    assert.equal(b.dmaPhysLimit, FOUR_GIB);
  }
  assert.deepEqual(renderZoneRanges(computeZones(QEMU_8G).zones), [
    "Zone ranges:",
    "  DMA      [mem 0x0000000040000000-0x00000000ffffffff]",
    "  DMA32    empty",
    "  Normal   [mem 0x0000000100000000-0x000000023fffffff]",
  ]);
});

Deno.test("v5.5-v5.10 as released: ZONE_DMA is the first GiB (empty on QEMU virt)", () => {
  const q = computeZones(QEMU_8G, { rule: "bits30-offset" });
  assert.deepEqual(spans(q), [null, "40000000-100000000", "100000000-240000000"]);
  const r = computeZones(RK_8G, { rule: "bits30-offset" });
  assert.deepEqual(spans(r), ["200000-40000000", "40000000-100000000", "100000000-200000000"]);
  assert.equal(placeAllocation(r, "GFP_DMA32").preferred?.name, "DMA32");
  assert.equal(zoneRuleForRelease(5, 10), "bits30-offset");
  assert.equal(zoneRuleForRelease(6, 1), "dt-bits-mask");
  assert.equal(zoneRuleForRelease(6, 12), "limit-clamp-in-max-zone-phys");
  assert.equal(zoneRuleForRelease(7, 1), "limit-clamped");
});

Deno.test("rules differ for DRAM above 4 GiB and for narrow dma-ranges", () => {
  const high: PhysRange[] = [{ start: 0x8_0000_0000, end: 0xa_0000_0000 }];
  // v5.11-v5.14: ZONE_DMA is the 4 GiB window above the start ("32-bit devices use a DMA offset").
  assert.deepEqual(spans(computeZones(high, { rule: "dt-bits-offset" })), [
    "800000000-900000000",
    null,
    "900000000-a00000000",
  ]);
  // v5.15 on: DRAM starting above 4 GiB puts all of it in ZONE_DMA.
  for (const rule of ["dt-bits-mask", "limit-clamp-in-max-zone-phys", "limit-clamped"] as const) {
    assert.deepEqual(
      spans(computeZones(high, { rule })),
      ["800000000-a00000000", null, null],
      rule,
    );
  }
  // A Raspberry Pi 4 style 30-bit dma-ranges limit.
  const rpi = computeZones([{ start: 0, end: 0x2_0000_0000 }], { dmaMaxCpuAddress: 0x3fff_ffff });
  assert.deepEqual(spans(rpi), ["0-40000000", "40000000-100000000", "100000000-200000000"]);
});

Deno.test("ROCK 3A 2 GB real log (§5.1) round-trips", () => {
  const log = [
    "[    0.000000] Zone ranges:",
    "[    0.000000]   DMA      [mem 0x0000000000a00000-0x000000007fffffff]",
    "[    0.000000]   DMA32    empty",
    "[    0.000000]   Normal   empty",
    "[    0.000000] Movable zone start for each node",
    "[    0.000000] Early memory node ranges",
    "[    0.000000]   node   0: [mem 0x0000000000a00000-0x000000007fffffff]",
    "[    0.000000] Initmem setup node 0 [mem 0x0000000000a00000-0x000000007fffffff]",
  ].join("\n");
  const parsed = parseZoneRanges(log);
  assert.deepEqual(parsed.zones, [
    { name: "DMA", span: { start: 0xa0_0000, end: 0x8000_0000 } },
    { name: "DMA32", span: null },
    { name: "Normal", span: null },
  ]);
  assert.deepEqual(parsed.nodes, [{ node: 0, range: { start: 0xa0_0000, end: 0x8000_0000 } }]);
  const l = computeZones(parsed.nodes.map((n) => n.range));
  const rendered = [...renderZoneRanges(l.zones), ...renderNodeRanges(l.banks)];
  const expected = log.split("\n").map((s) => s.slice("[    0.000000] ".length));
  assert.deepEqual(rendered, [...expected.slice(0, 4), ...expected.slice(5, 7)]);
});

Deno.test("render -> parse round trip for every modelled layout", () => {
  for (const banks of [RK_2G, RK_4G, RK_8G, QEMU_2G, QEMU_8G]) {
    const l = computeZones(banks);
    const text = [...renderZoneRanges(l.zones), ...renderNodeRanges(l.banks)].join("\n");
    const p = parseZoneRanges(text);
    assert.deepEqual(p.zones, l.zones.map((z) => ({ name: z.name, span: z.span })));
    assert.deepEqual(p.nodes.map((n) => n.range), l.banks);
  }
});

Deno.test("hostile log text never throws", () => {
  const weird = [
    "",
    "Zone ranges:",
    "Zone ranges:\n  DMA      [mem 0xffffffffffffffff-0x0000000000000000]",
    "Zone ranges:\n  DMA      [mem 0x00000000ffffffff-0xffffffffffffffff]",
    "  node 99999: [mem 0x1-0x0]",
    "x".repeat(100_000),
    "Zone ranges:\n" + "  DMA32    empty\n".repeat(10_000),
  ];
  for (const w of weird) parseZoneRanges(w);
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.string(),
          fc.constantFrom(
            "Zone ranges:",
            "  DMA      [mem ",
            "0x",
            "-",
            "]",
            "empty",
            "node   0: ",
            "\n",
          ),
          fc.bigInt({ min: 0n, max: 1n << 70n }).map((b) => "0x" + b.toString(16)),
        ),
      ),
      (parts) => {
        const r = parseZoneRanges(parts.join(""));
        for (const z of r.zones) if (z.span) assert.ok(z.span.end > z.span.start);
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("property: zones tile [start of DRAM, end of DRAM) and present memory is conserved", () => {
  const bank = fc.tuple(fc.integer({ min: 0, max: 2 ** 36 }), fc.integer({ min: 1, max: 2 ** 34 }))
    .map(([s, n]) => ({ start: s * 4096, end: (s + n) * 4096 }));
  fc.assert(
    fc.property(
      fc.array(bank, { minLength: 1, maxLength: 5 }),
      fc.constantFrom(...ALL_RULES),
      (banks, rule) => {
        const l = computeZones(banks, { rule });
        const present = l.zones.reduce((s, z) => s + z.presentBytes, 0);
        assert.equal(present, l.totalBytes);
        let at = l.banks[0].start;
        for (const z of l.zones) {
          if (z.span) {
            assert.equal(z.span.start, at);
            at = z.span.end;
          }
        }
        assert.equal(at, l.maxPfnAddr);
      },
    ),
    { numRuns: 300 },
  );
});
