// Fuzzing of the kernel facts parsers (issue 13) beyond parsers_test.ts (no parser throws on
// hostile lines; iomem round trip): 10 MB inputs, real captures repeated to 10 MB and one
// 10 MB line, with results and problem lists bounded by the input (time: bench/parsers.ts).
import assert from "node:assert/strict";
import {
  iomemFlat,
  parseCmdline,
  parseDmesg,
  parseIomem,
  parseKernelConfig,
  parseMeminfo,
  parseUnameA,
  parseUnameR,
  parseZoneinfo,
} from "./parsers.ts";

const MB10 = 10 << 20;
const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`./testdata/${name}`, import.meta.url));
const to10MB = (s: string) => s.repeat(Math.ceil(MB10 / s.length));

/** Every parser on `text`; returns how many lines `text` has. */
function all(text: string): number {
  const n = text.split("\n").length;
  const io = parseIomem(text);
  assert.ok(io.count <= n && io.problems.length <= n);
  for (const r of iomemFlat(io)) assert.ok(r.range.end > r.range.start);
  const z = parseZoneinfo(text);
  assert.ok(z.problems.length <= n);
  assert.ok(parseMeminfo(text).problems.length <= n);
  assert.ok(parseKernelConfig(text).problems.length <= n);
  parseCmdline(text);
  parseUnameR(text);
  parseUnameA(text);
  const d = parseDmesg(text);
  assert.ok(d.cma.length <= n);
  return n;
}

Deno.test("fuzz: 10 MB of real captures, each through its parser", () => {
  const dmesg = to10MB(fixture("dmesg-arm64-rock3b-8g-6.12-written.txt"));
  assert.ok(dmesg.length >= MB10);
  const d = parseDmesg(dmesg);
  assert.equal(d.lineCount, dmesg.split("\n").length);
  assert.ok(d.cma.length >= 1 && d.cma.length <= d.lineCount);
  const io = parseIomem(to10MB(fixture("iomem-arm64-rock3b-8g-written.txt")));
  assert.ok(io.count > 100_000);
  const z = parseZoneinfo(to10MB(fixture("zoneinfo-arm64-rock3b-8g-written.txt")));
  assert.ok(z.problems.length < MB10 / 10);
  const cfg = parseKernelConfig(to10MB(fixture("config-6.12.118+deb13-arm64.subset")));
  assert.ok(Object.keys(cfg.values).length > 10);
  assert.ok(parseMeminfo("MemTotal: 8000000 kB\n".repeat(MB10 / 21)).problems.length <= MB10);
});

Deno.test("fuzz: every parser on one 10 MB line, 10 MB of NUL, 1 MB of line ends: never thrown", () => {
  // Ten million empty lines cost every parser about a microsecond each (parseDmesg 12 s):
  // bench/parsers.ts measures that; here 1 MB of them is enough to show nothing throws.
  for (
    const text of [
      "x".repeat(MB10),
      "[    0.000000] " + "Memory: ".repeat(MB10 / 8),
      "\0".repeat(MB10),
      "\n".repeat(1 << 20),
      "\r".repeat(1 << 20),
      "  ".repeat(1 << 19) + "00000000-ffffffff : System RAM",
    ]
  ) {
    all(text);
    assert.deepEqual(iomemFlat(parseIomem(text)).length, 0);
  }
});
