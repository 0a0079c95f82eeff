import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeWalk,
  type FaultLinePattern,
  logIova,
  matchesPattern,
  parseLine,
  parseLog,
  patternMismatch,
  renderEvent,
  renderLine,
  type RkIommuEvent,
  type WalkEvent,
} from "./klog.ts";
import { IOMMU_READ, IOMMU_WRITE, mkDte, mkPte } from "./entries.ts";

const DEV = "fde4b000.iommu";
const P = `rk_iommu ${DEV}: `;

/** Real and research-derived example lines, one per format. */
const EXAMPLES: string[] = [
  // Real line: RGA on RK3576, rockchip-linux/mpp PR #736 (research/npu-workloads.md §4).
  "rk_iommu 27920f00.iommu: Page fault at 0x0000000002010040 of type read",
  `${P}Page fault at 0x00000000ffffe000 of type write`,
  `${P}iova = 0x0000000002010040: dte_index: 0x8 pte_index: 0x10 page_offset: 0x40`,
  `${P}iova = 0x0000000000000000: dte_index: 0x0 pte_index: 0x0 page_offset: 0x0`,
  `${P}mmu_dte_addr: 0x0000000100000000 dte@0x0000000100000020: 0x1722101 valid: 1 pte@0x0000000101722040: 0x2c01107 valid: 1 page@0x0000000102c01040 flags: 0x106`,
  `${P}mmu_dte_addr: 0x00000000ff800000 dte@0x00000000ff800020: 0x000000 valid: 0 pte@0x0000000000000000: 0x000000 valid: 0 page@0x0000000000000000 flags: 0x0`,
  `${P}BUS_ERROR occurred at 0x0000000002010040`,
  `${P}Page fault while iommu not attached to domain?`,
  `${P}unexpected int_status: 0x000004`,
  `${P}Enable stall request timed out, status: 0x000019`,
  `${P}Disable stall request timed out, status: 0x000005`,
  `${P}Enable paging request timed out, status: 0x000000`,
  `${P}Disable paging request timed out, status: 0x80000018`,
  `${P}Error during raw reset. MMU_DTE_ADDR is not functioning`,
  `${P}FORCE_RESET command timed out`,
  `${P}DMA map error for DT`,
  `${P}DMA mapping error while allocating page table`,
  "iova: 0x0000000000100000 already mapped to 0x0000000102c01000 cannot remap to phys: 0x0000000100400000 prot: 0x3",
];

const PREFIXES = [
  "",
  "[   12.345678] ",
  "[ 1234.000001] ",
  "<3>",
  "<3>[    1.000000] ",
  "kern  :err   : ",
  "kern  :err   : [   12.345678] ",
  "Nov 24 20:28:01 rock3b kernel: ",
  "Nov  4 01:02:03 rock-3b kernel: [   12.345678] ",
  "[   12.345678][    T1] ",
  "[Mon Nov 24 20:28:01 2025] ",
];

Deno.test("every example line parses to a known event and re-renders byte-identically", () => {
  for (const line of EXAMPLES) {
    for (const prefix of PREFIXES) {
      for (const eol of ["", "\r"]) {
        const full = prefix + line + eol;
        const p = parseLine(full);
        assert.ok(p, `not parsed: ${full}`);
        assert.notEqual(p.event.kind, "unknown", `unknown: ${full}`);
        assert.equal(p.prefix.raw, prefix);
        assert.equal(renderLine(p), full);
        assert.equal(renderEvent(p.event), line);
      }
    }
  }
});

Deno.test("the real RK3576 example decodes to the expected event", () => {
  const p = parseLine(
    "[  101.5] rk_iommu 27920f00.iommu: Page fault at 0x0000000002010040 of type read",
  );
  assert.deepEqual(p?.event, {
    kind: "page_fault",
    device: "27920f00.iommu",
    iova: 0x02010040,
    access: "read",
  });
  assert.equal(p?.prefix.timestampSec, 101.5);
});

Deno.test("prefix fields are decoded", () => {
  const a = parseLine(`Nov  4 01:02:03 rock-3b kernel: [   12.345678] ${EXAMPLES[0]}`);
  assert.equal(a?.prefix.wallClock, "Nov  4 01:02:03");
  assert.equal(a?.prefix.host, "rock-3b");
  assert.equal(a?.prefix.timestampSec, 12.345678);
  const b = parseLine(`kern  :err   : ${EXAMPLES[0]}`);
  assert.equal(b?.prefix.facility, "kern");
  assert.equal(b?.prefix.level, "err");
  const c = parseLine(`<3>${EXAMPLES[0]}`);
  assert.equal(c?.prefix.priority, 3);
  const d = parseLine(`[   12.345678][    T1] ${EXAMPLES[0]}`);
  assert.equal(d?.prefix.caller, "T1");
  const e = parseLine(`[Mon Nov 24 20:28:01 2025] ${EXAMPLES[0]}`);
  assert.equal(e?.prefix.humanTime, "Mon Nov 24 20:28:01 2025");
});

Deno.test("walk line decodes with the v2 flags quirk", () => {
  const p = parseLine(EXAMPLES[4]);
  assert.equal(p?.event.kind, "walk");
  const walk = p?.event as WalkEvent;
  const d = decodeWalk("v2", walk);
  assert.equal(d.invalidAt, "none");
  assert.equal(d.dteIndex, 8);
  assert.equal(d.ptAddress, 0x1_0172_2000);
  assert.equal(d.pteIndex, 0x10);
  assert.equal(d.pageBase, 0x1_02c0_1000);
  assert.equal(d.pageOffset, 0x40);
  assert.equal(d.read, true);
  assert.equal(d.write, true);
  assert.equal(d.flagsAddressBits, 0x100);
  assert.equal(d.flagsAttributeBits, 0x6);
  assert.ok(d.consistent, d.problems.join("; "));
  // Read as v1 the same numbers do not add up: the PT would be at 0x01722000.
  const v1 = decodeWalk("v1", walk);
  assert.equal(v1.ptAddress, 0x0172_2000);
  assert.equal(v1.consistent, false);
  // Before v6.2 the v2 permission bits were swapped; R|W is symmetric, R alone is not.
  const rOnly = { ...walk, pte: 0x02c01103, flags: 0x102 };
  assert.equal(decodeWalk("v2", rOnly).read, true);
  assert.equal(decodeWalk("v2", rOnly, { v2PermSwapped: true }).read, false);
  assert.equal(decodeWalk("v2", rOnly, { v2PermSwapped: true }).write, true);
});

Deno.test("decodeWalk reports an invalid DTE and checks the zeros", () => {
  const walk = parseLine(EXAMPLES[5])?.event as WalkEvent;
  const d = decodeWalk("v2", walk);
  assert.equal(d.invalidAt, "dte");
  assert.equal(d.ptAddress, null);
  assert.ok(d.consistent);
  assert.equal(decodeWalk("v2", { ...walk, pte: 5 }).consistent, false);
});

/** A sparse physical memory for logIova. */
function memory(words: Record<number, number>): (phys: number) => number {
  return (phys) => words[phys] ?? 0;
}

Deno.test("logIova prints what the driver prints (v2, tables above 4 GiB)", () => {
  const read = memory({
    0x1_0000_0020: mkDte("v2", 0x1_0172_2000),
    0x1_0172_2040: mkPte("v2", 0x1_02c0_1000, IOMMU_READ | IOMMU_WRITE),
  });
  const reg = mkDte("v2", 0x1_0000_0000);
  const lines = logIova("v2", DEV, 0x02010040, reg, read).map(renderEvent);
  assert.deepEqual(lines, [EXAMPLES[2], EXAMPLES[4]]);
});

Deno.test("logIova: fields after the first invalid level stay 0", () => {
  const reg = mkDte("v1", 0xff80_0000);
  const [, walk] = logIova("v1", DEV, 0x02010040, reg, memory({}));
  assert.equal(renderEvent(walk), EXAMPLES[5]);
  // DTE valid, PTE erased (the SWIOTLB bounce failure of the seed thread).
  const read = memory({ 0xff80_0020: mkDte("v1", 0x0172_2000) });
  const [, w2] = logIova("v1", DEV, 0x02010040, reg, read);
  assert.equal(
    renderEvent(w2),
    `${P}mmu_dte_addr: 0x00000000ff800000 dte@0x00000000ff800020: 0x1722001 valid: 1 pte@0x0000000001722040: 0x000000 valid: 0 page@0x0000000000000000 flags: 0x0`,
  );
  assert.equal(decodeWalk("v1", w2).invalidAt, "pte");
});

Deno.test("logIova with the pre-6df63b7ebdaf vendor register layout", () => {
  // v2 vendor layout: phys 39:32 in register bits 11:4, decoded by dte_addr_phys.
  const read = memory({ 0x1_0000_0020: 0x01722101 });
  const [, walk] = logIova("v2", DEV, 0x02010040, 0x00000010, read, { layout: "vendor" });
  assert.equal(walk.mmuDteAddr, 0x1_0000_0000);
  assert.equal(walk.dte, 0x01722101);
});

Deno.test("parseLog groups the three fault lines and decodes them", () => {
  const text = [
    "[    5.000000] random other line",
    `[   12.000001] ${P}Page fault at 0x0000000002010040 of type write`,
    "[   12.000002] some interleaved line",
    `[   12.000003] ${EXAMPLES[2]}`,
    `[   12.000004] ${EXAMPLES[4]}`,
    `[   12.000005] ${P}Page fault while iommu not attached to domain?`,
    `[   12.000006] rk_iommu ${DEV}: something new in 7.9`,
    `[   12.000007] ${P}Page fault at 0x00000000deadb000 of type read`,
    "",
  ].join("\r\n");
  const log = parseLog(text, { format: "v2" });
  assert.equal(log.entries.length, 6);
  assert.deepEqual(log.entries.map((e) => e.line), [2, 4, 5, 6, 7, 8]);
  assert.equal(log.entries[4].parsed.event.kind, "unknown");
  assert.equal(log.faults.length, 2);
  const [f, g] = log.faults;
  assert.equal(f.access, "write");
  assert.equal(f.iova, 0x02010040);
  assert.equal(f.timestampSec, 12.000001);
  assert.deepEqual(f.lines, { pageFault: 2, split: 4, walk: 5, notAttached: 6 });
  assert.ok(f.complete);
  assert.ok(f.notAttached);
  assert.equal(f.decoded?.pageBase, 0x1_02c0_1000);
  assert.equal(f.decoded?.flagsAddressBits, 0x100);
  assert.ok(f.decoded?.consistent);
  assert.equal(g.complete, false);
  assert.equal(g.iova, 0xdeadb000);
  // Every line re-renders exactly.
  const all = text.split("\n");
  for (const e of log.entries) assert.equal(renderLine(e.parsed), all[e.line - 1]);
});

Deno.test("patterns: fixed values, any, ranges", () => {
  const walk = parseLine(EXAMPLES[4])?.event as RkIommuEvent;
  const pat: FaultLinePattern = {
    kind: "walk",
    device: DEV,
    mmuDteAddr: { start: 0x1_0000_0000, end: 0x2_0000_0000 },
    dte: "any",
    dteValid: true,
    pteValid: true,
    flags: 0x106,
  };
  assert.ok(matchesPattern(pat, walk));
  assert.equal(patternMismatch(pat, walk), null);
  const below4g: FaultLinePattern = { kind: "walk", mmuDteAddr: { start: 0, end: 0x1_0000_0000 } };
  assert.equal(matchesPattern(below4g, walk), false);
  assert.match(patternMismatch(below4g, walk) ?? "", /^mmuDteAddr/);
  assert.match(patternMismatch({ kind: "page_fault" }, walk) ?? "", /^kind/);
  const pf: FaultLinePattern = { kind: "page_fault", access: "write", iova: "any" };
  assert.equal(matchesPattern(pf, parseLine(EXAMPLES[1])!.event), true);
  assert.equal(matchesPattern(pf, parseLine(EXAMPLES[0])!.event), false);
});

// ---- property tests -------------------------------------------------------------------------

const addr = fc.integer({ min: 0, max: 2 ** 41 });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const device = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }).map((a) => `${a.toString(16).padStart(8, "0")}.iommu`),
  fc.stringMatching(/^[0-9A-Za-z._:@+-]{1,24}$/),
);
const idx = fc.integer({ min: 0, max: 1023 });

const eventArb: fc.Arbitrary<RkIommuEvent> = fc.oneof(
  fc.record({
    kind: fc.constant("page_fault" as const),
    device,
    iova: addr,
    access: fc.constantFrom("read" as const, "write" as const),
  }),
  fc.record({
    kind: fc.constant("iova_split" as const),
    device,
    iova: addr,
    dteIndex: idx,
    pteIndex: idx,
    pageOffset: fc.integer({ min: 0, max: 4095 }),
  }),
  fc.record({
    kind: fc.constant("walk" as const),
    device,
    mmuDteAddr: addr,
    dteAddr: addr,
    dte: u32,
    dteValid: fc.boolean(),
    pteAddr: addr,
    pte: u32,
    pteValid: fc.boolean(),
    pageAddr: addr,
    flags: fc.integer({ min: 0, max: 0x1fe }),
  }),
  fc.record({ kind: fc.constant("bus_error" as const), device, iova: addr }),
  fc.record({ kind: fc.constant("unexpected_int_status" as const), device, intStatus: u32 }),
  fc.record({
    kind: fc.constantFrom(
      "enable_stall_timeout" as const,
      "disable_stall_timeout" as const,
      "enable_paging_timeout" as const,
      "disable_paging_timeout" as const,
    ),
    device,
    status: u32,
  }),
  fc.record({
    kind: fc.constantFrom(
      "not_attached" as const,
      "raw_reset_error" as const,
      "force_reset_timeout" as const,
      "dt_map_error" as const,
      "pt_map_error" as const,
    ),
    device,
  }),
  fc.record({
    kind: fc.constant("already_mapped" as const),
    iova: addr,
    existingPhys: addr,
    phys: addr,
    prot: fc.integer({ min: 0, max: 0xffff }),
  }),
);

Deno.test("property: render -> parse -> render is byte-identical for every format", () => {
  fc.assert(
    fc.property(eventArb, fc.constantFrom(...PREFIXES), fc.boolean(), (ev, prefix, cr) => {
      const line = prefix + renderEvent(ev) + (cr ? "\r" : "");
      const p = parseLine(line);
      assert.ok(p);
      assert.deepEqual(p.event, { ...ev });
      assert.equal(renderLine(p), line);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("property: logIova output always parses back and decodes consistently", () => {
  fc.assert(
    fc.property(
      fc.constantFrom("v1" as const, "v2" as const),
      u32,
      fc.integer({ min: 0, max: 2 ** 28 - 1 }).map((p) => p * 4096),
      fc.integer({ min: 0, max: 2 ** 28 - 1 }).map((p) => p * 4096),
      fc.integer({ min: 0, max: 2 ** 28 - 1 }).map((p) => p * 4096),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 2 }),
      (format, iova, dt, pt, page, prot, depth) => {
        const reg = mkDte(format, dt);
        const read = (phys: number) => {
          if (depth >= 1 && phys % 4096 === (iova >>> 22) * 4) return mkDte(format, pt);
          if (depth >= 2 && phys % 4096 === ((iova >>> 12) & 0x3ff) * 4) {
            return mkPte(format, page, prot);
          }
          return 0;
        };
        const [split, walk] = logIova(format, DEV, iova, reg, read);
        for (const ev of [split, walk]) {
          const p = parseLine(renderEvent(ev));
          assert.deepEqual(p?.event, ev);
        }
        const d = decodeWalk(format, walk, { split });
        // Whatever memory holds, the numbers log_iova prints are self-consistent.
        assert.ok(d.consistent, d.problems.join("; "));
      },
    ),
  );
});

Deno.test("hostile input: parseLine never throws and round-trips whatever it accepts", () => {
  const prefixed = (
    s: string,
  ) => [s, `rk_iommu ${DEV}: ${s}`, `[    1.000000] rk_iommu ${s}`, `iova: ${s}`];
  const check = (line: string) => {
    const p = parseLine(line);
    if (p) assert.equal(renderLine(p), line);
  };
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), (s) => {
      for (const l of prefixed(s)) check(l);
    }),
    { numRuns: 1000 },
  );
  // Mutations of real lines: truncate, insert characters.
  fc.assert(
    fc.property(
      fc.constantFrom(...EXAMPLES),
      fc.nat(),
      fc.string({ unit: "binary", maxLength: 4 }),
      (line, at, ins) => {
        const k = at % (line.length + 1);
        check(line.slice(0, k));
        check(line.slice(0, k) + ins + line.slice(k));
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("hostile input: specific nasty lines", () => {
  const nasty = [
    "",
    "\r",
    "\0",
    "rk_iommu",
    "rk_iommu ",
    "rk_iommu :",
    "rk_iommu : Page fault at 0x0000000002010040 of type read",
    `${P}Page fault at 0x00000000020100400 of type read`, // 17 hex digits
    `${P}Page fault at 0x0000000002010040 of type exec`,
    `${P}Page fault at 0xffffffffffffffff of type read`, // beyond 2^53
    `${P}Page fault at -0x000000002010040 of type read`,
    `${P}Page fault at 0x0000000002010040 of type read\0`,
    `${P}Page fault at 0x0000000002010040`,
    `${P}iova = 0x0000000002010040: dte_index: 0x8 pte_index: 0x10 page_offset:`,
    `${P}unexpected int_status: 0x1000000000`,
    `${P}unexpected int_status: 0x4`,
    `${P}unexpected int_status: -4`,
    `${P}mmu_dte_addr: 0x0000000100000000 dte@0x0000000100000020: 0x1722101 valid: 2 pte@0x0000000101722040: 0x2c01107 valid: 1 page@0x0000000102c01040 flags: 0x106`,
    `rk_iommu fde4b000.iommu\u00e9: Page fault at 0x0000000002010040 of type read`,
    `rk_iommu 🙂.iommu: Page fault at 0x0000000002010040 of type 🙂`,
    "iova: 0x0000000000100000 already mapped to nowhere",
    `[   12.345678] ${P}DMA map error for DT\r\n`,
    `${P}DMA map error for DT `,
    "[   12.34] rk_iommu",
  ];
  for (const line of nasty) {
    const p = parseLine(line);
    if (p) assert.equal(renderLine(p), line);
  }
  assert.equal(parseLine("")?.event, undefined);
  assert.deepEqual(parseLine(nasty[7])?.event, {
    kind: "unknown",
    device: DEV,
    text: "Page fault at 0x00000000020100400 of type read",
  });
  assert.equal(parseLine(nasty[9])?.event.kind, "unknown");
  assert.equal(parseLine(nasty[14])?.event.kind, "unknown");
  // Shorter than `%#08x` prints: the end of the line cut the number (issue 12 §2).
  assert.deepEqual(parseLine(nasty[15])?.event, {
    kind: "unexpected_int_status",
    device: DEV,
    intStatus: 0,
    missing: ["intStatus"],
    truncated: true,
    cutText: "unexpected int_status: 0x4",
  });
  assert.equal(parseLine(nasty[17])?.event.kind, "unknown");
  assert.deepEqual(parseLine(nasty[5])?.event, {
    kind: "unknown",
    device: null,
    text: "rk_iommu :",
  });
  assert.equal(parseLine(nasty[18])?.event.kind, "page_fault");
  assert.equal(parseLine(nasty[19])?.event.kind, "unknown");
  assert.equal(parseLine(nasty[20])?.event.kind, "unknown");
  assert.equal(parseLine("some other driver: Page fault at 0x0"), null);
});

Deno.test("hostile input: 1 MB lines parse quickly", () => {
  const big = "a".repeat(1 << 20);
  const lines = [
    big,
    `rk_iommu ${big}`,
    `${P}${big}`,
    `${P}Page fault at 0x0000000002010040 of type ${big}`,
    `${P}Page fault at 0x${"0".repeat(1 << 20)} of type read`,
    `[ ${"1".repeat(1 << 20)}.0] ${P}`,
    `iova: ${"0".repeat(1 << 20)}`,
  ];
  const t0 = performance.now();
  for (const line of lines) {
    const p = parseLine(line);
    if (p) assert.equal(renderLine(p), line);
  }
  const log = parseLog(lines.join("\n"));
  assert.ok(log.entries.length >= 4);
  assert.ok(performance.now() - t0 < 5000, "parsing 1 MB lines took too long");
});
