import assert from "node:assert/strict";
import fc from "fast-check";
import { CONSOLE_PREFIX_SOURCE, findConsoleStamp, splitPrintkPrefix, stripAnsi } from "./kline.ts";

const MSG = "rk_iommu ff650800.iommu: Page fault at 0x0000000004382010 of type write";

Deno.test("every capture format of one line gives the same message and its fields", () => {
  const cases: [string, Record<string, unknown>][] = [
    ["[   42.213800] ", { timestampSec: 42.2138 }],
    ["<3>[   42.213800] ", { priority: 3, timestampSec: 42.2138 }],
    ["[   42.213800][    T1] ", { timestampSec: 42.2138, caller: "T1" }],
    ["[   42.213800][     C3] ", { caller: "C3" }],
    ["[   42.213800][ T123:C1] ", { caller: "T123:C1" }],
    ["[    T1] ", { caller: "T1" }],
    ["[   42.213800][    T1] [0:    kworker/0:1:   23] ", {
      process: " [0:    kworker/0:1:   23]",
    }],
    ["[Wed Apr  1 10:09:24 2026] ", { humanTime: "Wed Apr  1 10:09:24 2026" }],
    ["2026-04-01T10:09:24,123456+00:00 ", { humanTime: "2026-04-01T10:09:24,123456+00:00" }],
    ["[   42.213800 <    0.000709>] ", { timestampSec: 42.2138 }],
    ["kern  :err   : [   42.213800] ", { facility: "kern", level: "err" }],
    ["Jan 12 22:21:22 rock3b kernel: [   42.213800] ", { wallClock: "Jan 12 22:21:22" }],
    ["Jan  2 22:21:22.123456 rock3b kernel: ", { host: "rock3b" }],
    [
      "2024-12-27T10:26:06.694018+08:00 host kernel: [   42.213800] ",
      { wallClock: "2024-12-27T10:26:06.694018+08:00", host: "host", timestampSec: 42.2138 },
    ],
    ["[2022-11-11 12:08:08] [   42.213800] ", { hostStamp: "2022-11-11 12:08:08" }],
    ["[2022-11-11 12:08:08.123] ", { hostStamp: "2022-11-11 12:08:08.123" }],
    ["[12:08:08.123] <3>[   42.213800] ", { hostStamp: "12:08:08.123", priority: 3 }],
    ["3,1234,42213800,-;", { priority: 3, kmsgSeq: 1234, timestampSec: 42.2138 }],
    ["3,1234,42213800,-,caller=T88;", { caller: "T88" }],
  ];
  for (const [pfx, want] of cases) {
    for (const eol of ["", "\r"]) {
      const { prefix, rest } = splitPrintkPrefix(pfx + MSG + eol);
      assert.equal(rest, MSG, JSON.stringify(pfx));
      assert.equal(prefix.raw, pfx);
      for (const [k, v] of Object.entries(want)) {
        assert.deepEqual((prefix as unknown as Record<string, unknown>)[k], v, `${pfx} ${k}`);
      }
    }
  }
});

Deno.test("ANSI colours of dmesg --color and terminal captures are removed", () => {
  const line = "\x1b[32m[   42.213800] \x1b[0m\x1b[33mrk_iommu ff650800.iommu: \x1b[0mPage fault " +
    "at 0x0000000004382010 of type write\r";
  const { prefix, rest } = splitPrintkPrefix(line);
  assert.equal(rest, MSG);
  assert.equal(prefix.timestampSec, 42.2138);
  assert.equal(stripAnsi("\x1b[?2004hroot@rock-3b:~# \x1b[?2004l"), "root@rock-3b:~# ");
});

Deno.test("text that only resembles a prefix stays in the message", () => {
  for (
    const line of [
      "[drm] Initialized rknpu 0.9.8 20240828 for fde40000.npu on minor 1",
      "[ 12.x] not a stamp",
      "<abc> not a priority",
      "Jan 12 22:21:22 host sshd[12]: not the kernel",
      "1,2,3;no flags field",
    ]
  ) {
    assert.equal(splitPrintkPrefix(line).rest, line, line);
  }
});

Deno.test("findConsoleStamp: at the start, mid-line after command output, or none", () => {
  const a = findConsoleStamp(`root@rock:~# <3>[   42.213800][    T1] ${MSG}`);
  assert.equal(a?.index, 13);
  assert.equal(a?.rest, MSG);
  assert.equal(a?.prefix.caller, "T1");
  assert.equal(a?.text, `<3>[   42.213800][    T1] ${MSG}`);
  assert.equal(findConsoleStamp(`Jan 12 22:21:22 h kernel: ${MSG}`)?.rest, MSG);
  assert.equal(findConsoleStamp("plain command output"), null);
  assert.ok(new RegExp(CONSOLE_PREFIX_SOURCE).test("<6>[    1.000000][    T1] x"));
});

Deno.test("hostile input: never throws, prefix + rest is the cleaned line, stays fast", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 200 }), (s) => {
      for (const l of [s, `[   1.0] ${s}`, `Jan 12 22:21:22 h kernel: ${s}`, `6,1,2,-;${s}`]) {
        const { prefix, rest } = splitPrintkPrefix(l);
        const clean = stripAnsi(l.endsWith("\r") ? l.slice(0, -1) : l);
        assert.equal(prefix.raw + rest, clean);
      }
    }),
    { numRuns: 1000 },
  );
  const big = "[" + " ".repeat(1 << 20);
  const t0 = performance.now();
  splitPrintkPrefix(big);
  splitPrintkPrefix(`[${"1".repeat(1 << 20)}.0] x`);
  findConsoleStamp("<".repeat(1 << 18));
  assert.ok(performance.now() - t0 < 2000);
});
