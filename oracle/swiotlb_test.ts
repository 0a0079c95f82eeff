import assert from "node:assert/strict";
import fc from "fast-check";
import type { PhysRange } from "./types.ts";
import { parseBootArgs } from "./bootargs.ts";
import {
  applyMemLimit,
  computeZones,
  dmaMapSingle,
  parseSwiotlbLine,
  renderSwiotlbLine,
  swiotlbWindow,
} from "./memory.ts";

const MiB = 1024 * 1024;
const MASK32 = 2 ** 32 - 1;
const MASK40 = 2 ** 40 - 1;
const RK_2G: PhysRange[] = [{ start: 0x20_0000, end: 0x8000_0000 }];
const RK_4G: PhysRange[] = [
  { start: 0x20_0000, end: 0xf000_0000 },
  { start: 0x1_f000_0000, end: 0x2_0000_0000 },
];
const RK_8G: PhysRange[] = [
  { start: 0x20_0000, end: 0xf000_0000 },
  { start: 0x1_0000_0000, end: 0x2_0000_0000 },
];
const QEMU_2G: PhysRange[] = [{ start: 0x4000_0000, end: 0xc000_0000 }];
const QEMU_8G: PhysRange[] = [{ start: 0x4000_0000, end: 0x2_4000_0000 }];
const NO_ARGS = parseBootArgs("");
const K61 = { bounceUnalignedKmalloc: false, possibleCpus: 4 };
const K612 = { bounceUnalignedKmalloc: true, possibleCpus: 4 };

Deno.test("RK3568 2 GB: no default SWIOTLB; 6.5+ sets up the reduced 2 MiB buffer", () => {
  const l = computeZones(RK_2G);
  const off = swiotlbWindow(l, NO_ARGS, K61);
  assert.equal(off.enabled, false);
  assert.equal(off.placement.kind, "none");
  const red = swiotlbWindow(l, NO_ARGS, K612);
  assert.equal(red.enabled, true);
  assert.equal(red.reduced, true);
  // 2046 MiB of RAM -> 2046 KiB -> 1023 slabs -> ALIGN(128) = 1024 slabs = 2 MiB.
  assert.equal(red.nslabs, 1024);
  assert.equal(red.sizeBytes, 2 * MiB);
  assert.equal(red.placement.kind, "bounded");
  if (red.placement.kind === "bounded") {
    // memblock_alloc_low uses ARCH_LOW_ADDRESS_LIMIT (0x7fffffff) as an exclusive end.
    assert.deepEqual(red.placement.highest, { start: 0x7fdf_f000, end: 0x7fff_f000 });
  }
});

Deno.test("RK3568 4 GB and 8 GB: 64 MiB SWIOTLB below the MMIO hole, exact address unknown", () => {
  for (const banks of [RK_4G, RK_8G]) {
    const w = swiotlbWindow(computeZones(banks), NO_ARGS, K61);
    assert.equal(w.enabled, true);
    assert.equal(w.forced, false);
    assert.equal(w.reason, "RAM above the DMA limit");
    assert.equal(w.sizeBytes, 64 * MiB);
    assert.equal(w.logLine, null);
    assert.equal(w.placement.kind, "bounded");
    if (w.placement.kind === "bounded") {
      assert.deepEqual(w.placement.highest, { start: 0xec00_0000, end: 0xf000_0000 });
      assert.deepEqual(w.placement.within, { start: 0x20_0000, end: 0xf000_0000 });
    }
    const f = w.facts.find((x) => x.name === "swiotlb.placement");
    assert.equal(f?.provenance.confidence, "unknown");
    assert.match(f?.provenance.note ?? "", /somewhere below 0x00000000f0000000/);
  }
});

Deno.test("with reservations supplied the address is exact (CMA 32 MiB just below 0xf0000000)", () => {
  const l = computeZones(RK_8G);
  const cma = { start: 0xee00_0000, end: 0xf000_0000 };
  const w = swiotlbWindow(l, NO_ARGS, { ...K61, reservations: [cma] });
  assert.equal(w.placement.kind, "exact");
  assert.equal(
    w.logLine,
    "software IO TLB: mapped [mem 0x00000000ea000000-0x00000000ee000000] (64MB)",
  );
});

Deno.test("QEMU virt 8 GiB: the textbook 0xfbfff000-0xfffff000 window; 2 GiB: none without force", () => {
  const w = swiotlbWindow(computeZones(QEMU_8G), NO_ARGS, { ...K61, reservations: [] });
  assert.equal(
    w.logLine,
    "software IO TLB: mapped [mem 0x00000000fbfff000-0x00000000fffff000] (64MB)",
  );
  assert.equal(swiotlbWindow(computeZones(QEMU_2G), NO_ARGS, K61).enabled, false);
});

Deno.test("mem=3840M on 8 GB: SWIOTLB still set up (2 MiB above 4 GiB); mem=3838M: not", () => {
  const a = applyMemLimit(RK_8G, parseBootArgs("mem=3840M").mem?.limit);
  assert.equal(swiotlbWindow(computeZones(a.banks), NO_ARGS, K61).enabled, true);
  const b = applyMemLimit(RK_8G, parseBootArgs("mem=3838M").mem?.limit);
  assert.equal(swiotlbWindow(computeZones(b.banks), NO_ARGS, K61).enabled, false);
  // With the kmalloc bounce buffer: 3838 MiB -> 1919 slabs -> 1920 -> power of two 2048 = 4 MiB.
  const r = swiotlbWindow(computeZones(b.banks), NO_ARGS, K612);
  assert.equal(r.reduced, true);
  assert.equal(r.sizeBytes, 4 * MiB);
});

Deno.test("swiotlb=force on 2 GB: forced; 64 MiB before 6.5, the reduced 2 MiB with kmalloc bouncing", () => {
  const l = computeZones(RK_2G);
  const args = parseBootArgs("swiotlb=force");
  const old = swiotlbWindow(l, args, K61);
  assert.equal(old.enabled, true);
  assert.equal(old.forced, true);
  assert.equal(old.sizeBytes, 64 * MiB);
  const neu = swiotlbWindow(l, args, K612);
  assert.equal(neu.forced, true);
  assert.equal(neu.sizeBytes, 2 * MiB);
  // Forced: even a capable 4 KiB page is bounced.
  const m = dmaMapSingle(0x1000_0000, 4096, MASK32, old);
  assert.equal(m.kind, "bounced");
  if (m.kind === "bounced") {
    assert.equal(m.forced, true);
    assert.equal(m.alignment, 4096);
    assert.equal(m.capable, true);
  }
});

Deno.test("swiotlb=<slabs>, areas and noforce", () => {
  const l = computeZones(RK_8G);
  assert.equal(swiotlbWindow(l, parseBootArgs("swiotlb=65536"), K61).sizeBytes, 128 * MiB);
  // 3000 slabs -> ALIGN 3072 -> 4 areas -> power of two 4096 slabs = 8 MiB.
  assert.equal(swiotlbWindow(l, parseBootArgs("swiotlb=3000"), K61).nslabs, 4096);
  // swiotlb=0 with 4 CPUs: 0 < 128 * 4 -> 512 slabs (1 MiB).
  assert.equal(swiotlbWindow(l, parseBootArgs("swiotlb=0"), K61).nslabs, 512);
  assert.equal(swiotlbWindow(l, parseBootArgs("swiotlb=noforce"), K61).enabled, false);
  // An explicit size is not reduced by the kmalloc-bounce path.
  const small = swiotlbWindow(computeZones(RK_2G), parseBootArgs("swiotlb=8192"), K612);
  assert.equal(small.reduced, false);
  assert.equal(small.sizeBytes, 16 * MiB);
});

Deno.test("dma_map_single: direct, bounced, overflow failure", () => {
  const l8 = computeZones(RK_8G);
  const sw = swiotlbWindow(l8, NO_ARGS, K61);
  // Jonas's DT at 0x1_0189_a000 with the v2 40-bit mask: direct.
  const d = dmaMapSingle(0x1_0189_a000, 4096, MASK40, sw);
  assert.deepEqual(d.kind === "direct" && d.dma, 0x1_0189_a000);
  // The same page with a 32-bit mask: bounced below 4 GiB (poisoning mode 2 of §2).
  const b = dmaMapSingle(0x1_0189_a000, 4096, MASK32, sw);
  assert.equal(b.kind, "bounced");
  if (b.kind === "bounced") {
    assert.equal(b.capable, true);
    assert.ok(b.slotRange.end <= 0xf000_0000);
  }
  // No SWIOTLB (2 GB, old kernel) and a 30-bit mask: the overflow warning.
  const sw2 = swiotlbWindow(computeZones(RK_2G), NO_ARGS, K61);
  const f = dmaMapSingle(0x7000_0000, 4096, 0x3fff_ffff, sw2, {
    device: "rk_iommu fde4b000.iommu",
  });
  assert.equal(f.kind, "failed");
  if (f.kind === "failed") {
    assert.equal(
      f.message,
      "rk_iommu fde4b000.iommu: DMA addr 0x0000000070000000+4096 overflow (mask 3fffffff, bus limit 0).",
    );
  }
  // Capable and not forced: direct even without SWIOTLB.
  assert.equal(dmaMapSingle(0x7000_0000, 4096, MASK32, sw2).kind, "direct");
  // A page whose last byte crosses the mask is not capable.
  assert.equal(dmaMapSingle(0xffff_f001, 4096, MASK32, sw).kind, "bounced");
  assert.throws(() => dmaMapSingle(-1, 4096, MASK32, sw), RangeError);
});

Deno.test("SWIOTLB line: render/parse round trip and real-log parsing", () => {
  const w = { start: 0xfbff_f000, end: 0xffff_f000 };
  const line = renderSwiotlbLine(w);
  assert.equal(line, "software IO TLB: mapped [mem 0x00000000fbfff000-0x00000000fffff000] (64MB)");
  assert.deepEqual(parseSwiotlbLine(`[    0.000000] ${line}`), {
    kind: "mapped",
    window: w,
    mb: 64,
  });
  assert.deepEqual(parseSwiotlbLine("<4>[ 0.0] software IO TLB: No low mem"), {
    kind: "no-low-mem",
  });
  assert.equal(parseSwiotlbLine("random text"), null);
  assert.equal(parseSwiotlbLine(""), null);
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.string(),
          fc.constantFrom("software IO TLB: mapped [mem ", "0x", "-", "] (", "MB)"),
        ),
      ),
      (p) => {
        parseSwiotlbLine(p.join(""));
      },
    ),
    { numRuns: 500 },
  );
});
