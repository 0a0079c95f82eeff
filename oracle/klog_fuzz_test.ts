// Fuzzing of the printk/klog parsers (issue 13) beyond the properties of kline_test.ts and
// klog_test.ts: whole logs (fault reports decoded in both entry formats), any walk numbers
// through decodeWalk, and 10 MB inputs (size-bounded results; the time is bench/parsers.ts's).
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeWalk, parseLine, parseLog, renderLine, type WalkEvent } from "./klog.ts";
import { findConsoleStamp, splitPrintkPrefix } from "./kline.ts";

const DEV = "fde4b000.iommu";
const P = `rk_iommu ${DEV}: `;
/** One real-format fault report (v2 tables above 4 GiB) and lines around it. */
const REPORT = [
  `[   12.345678] ${P}Page fault at 0x0000000002010040 of type read`,
  `[   12.345679] ${P}iova = 0x0000000002010040: dte_index: 0x8 pte_index: 0x10 page_offset: 0x40`,
  `[   12.345680] ${P}mmu_dte_addr: 0x0000000100000000 dte@0x0000000100000020: 0x1722101 valid: 1 pte@0x0000000101722040: 0x2c01107 valid: 1 page@0x0000000102c01040 flags: 0x106`,
  `[   12.345681] ${P}BUS_ERROR occurred at 0x0000000002010040`,
  "[   12.345682] rknpu fde40000.npu: RKNPU: job timeout",
  `<3>[   12.5] ${P}Page fault while iommu not attached to domain?`,
];

/** Lines: real ones, real ones cut or spliced, and arbitrary text. */
const line = fc.oneof(
  fc.constantFrom(...REPORT),
  fc.tuple(fc.constantFrom(...REPORT), fc.nat(), fc.string({ unit: "binary", maxLength: 6 }))
    .map(([l, at, ins]) => {
      const k = at % (l.length + 1);
      return l.slice(0, k) + ins + l.slice(k);
    }),
  fc.string({ unit: "binary", maxLength: 120 }),
);

Deno.test("fuzz: parseLog on any log never throws; entries round-trip; decodings in both formats", () => {
  fc.assert(
    fc.property(
      fc.array(line, { maxLength: 30 }),
      fc.constantFrom("v1" as const, "v2" as const),
      fc.boolean(),
      fc.constantFrom("\n", "\r\n"),
      (lines, format, v2PermSwapped, eol) => {
        const text = lines.join(eol);
        const log = parseLog(text, { format, v2PermSwapped });
        const n = text.split("\n").length;
        for (const e of log.entries) {
          assert.ok(e.line >= 1 && e.line <= n);
          assert.equal(renderLine(e.parsed), text.split("\n")[e.line - 1]);
        }
        for (const f of log.faults) {
          if (f.decoded) assert.equal(f.decoded.consistent, f.decoded.problems.length === 0);
        }
      },
    ),
    { numRuns: 400 },
  );
});

Deno.test("fuzz: decodeWalk on any numbers never throws and says why it is inconsistent", () => {
  const u64 = fc.oneof(fc.nat({ max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 2 ** 40 }));
  const walk = fc.record({
    mmuDteAddr: u64,
    dteAddr: u64,
    dte: fc.nat({ max: 2 ** 32 - 1 }),
    dteValid: fc.boolean(),
    pteAddr: u64,
    pte: fc.nat({ max: 2 ** 32 - 1 }),
    pteValid: fc.boolean(),
    pageAddr: u64,
    flags: fc.nat({ max: 0xfff }),
    missing: fc.option(fc.subarray(["dteAddr", "mmuDteAddr", "dte", "pte", "pageAddr", "flags"]), {
      nil: undefined,
    }),
  }).map((w): WalkEvent => ({
    kind: "walk",
    device: DEV,
    ...w,
    ...(w.missing ? { truncated: true as const } : { missing: undefined }),
  }));
  fc.assert(
    fc.property(walk, fc.constantFrom("v1" as const, "v2" as const), fc.boolean(), (w, f, sw) => {
      const d = decodeWalk(f, w, { v2PermSwapped: sw });
      assert.equal(d.format, f);
      assert.equal(d.consistent, d.problems.length === 0);
      for (const k of ["dteIndex", "pteIndex"] as const) {
        const v = d[k];
        assert.ok(v === null || (Number.isInteger(v) && v >= 0 && v < 1024), `${k} ${v}`);
      }
    }),
    { numRuns: 1000 },
  );
});

Deno.test("fuzz: 10 MB inputs: a 10 MB log, a 10 MB line, a 10 MB prefix", () => {
  const MB10 = 10 << 20;
  const block = REPORT.join("\n") + "\n";
  const reps = Math.ceil(MB10 / block.length);
  const log = parseLog(block.repeat(reps), { format: "v2" });
  assert.equal(log.faults.length, reps);
  assert.equal(log.entries.length, reps * 5);
  assert.ok(log.faults.every((f) => f.complete));
  const long = `[   12.345678] ${P}Page fault at 0x${"0".repeat(MB10)} of type read`;
  const p = parseLine(long);
  assert.equal(p?.event.kind, "unknown");
  assert.equal(renderLine(p!), long);
  const bracket = "[" + " ".repeat(MB10) + "1.0] x";
  assert.equal(splitPrintkPrefix(bracket).rest.length <= bracket.length, true);
  assert.equal(findConsoleStamp("x".repeat(MB10)), null);
  assert.equal(parseLog("\n".repeat(MB10)).entries.length, 0);
});
