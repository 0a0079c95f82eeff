/**
 * Issue 12 §1: one capture, written in every format labs capture kernel logs in, gives the same
 * events to every reader of kernel lines (oracle/klog.ts, runner/facts/parsers.ts, the console
 * watchers, the framed shell's kernel-line splitter), because all of them use oracle/kline.ts.
 */
import assert from "node:assert/strict";
import { parseLog } from "../oracle/klog.ts";
import { splitPrintkPrefix } from "../oracle/kline.ts";
import { parseDmesg } from "./facts/parsers.ts";
import { splitConsoleText } from "./watch/console_lines.ts";
import { ConsoleWatcher } from "./watch/watchers.ts";
import { KernelLineSplitter } from "./shell/framed.ts";

/** [seconds since boot, syslog level, message]: the capture in its plain content. */
const CAPTURE: [number, number, string][] = [
  [0, 6, "Booting Linux on physical CPU 0x0000000000 [0x412fd050]"],
  [0, 5, "Linux version 6.12.38+deb13-arm64 (debian-kernel@lists.debian.org) #1 SMP Debian"],
  [0, 6, "Machine model: Radxa ROCK 3 Model B"],
  [0, 6, "cma: Reserved 64 MiB at 0x00000000ec000000 on node -1"],
  [0, 5, "Kernel command line: console=ttyS2,1500000n8 root=/dev/mmcblk0p2 rw"],
  // Real fault lines: RK3399 VEPU, JeffyCN/rockchip_mirrors issue #12.
  [42.2138, 3, "rk_iommu ff650800.iommu: Page fault at 0x0000000004382010 of type write"],
  [
    42.214509,
    3,
    "rk_iommu ff650800.iommu: iova = 0x0000000004382010: dte_index: 0x10 pte_index: 0x382 page_offset: 0x10",
  ],
  [
    42.215438,
    3,
    "rk_iommu ff650800.iommu: mmu_dte_addr: 0x000000003da7c000 dte@0x000000003da7c040: 0x000000 valid: 0 pte@0x0000000000000000: 0x000000 valid: 0 page@0x0000000000000000 flags: 0x0",
  ],
  // Real line: airockchip/rknn-toolkit2 issue #536 (research/npu-workloads.md §4).
  [
    50.1,
    3,
    "RKNPU: failed to wait job, task counter: 74, flags: 0x1, ret = -512, elapsed time: 13624us",
  ],
];

const LEVEL = ["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"];
const stamp = (t: number) => {
  const [s, us] = t.toFixed(6).split(".");
  return `[${s.padStart(5)}.${us}]`;
};

/** Every format: a function from one capture line to its text. */
const FORMATS: Record<string, (t: number, l: number, m: string) => string> = {
  plain: (t, _l, m) => `${stamp(t)} ${m}`,
  priority: (t, l, m) => `<${l}>${stamp(t)} ${m}`,
  caller: (t, _l, m) => `${stamp(t)}[    T1] ${m}`,
  dmesgT: (_t, _l, m) => `[Wed Apr  1 10:09:24 2026] ${m}`,
  dmesgIso: (_t, _l, m) => `2026-04-01T10:09:24,123456+00:00 ${m}`,
  dmesgX: (t, l, m) => `kern  :${LEVEL[l].padEnd(6)}: ${stamp(t)} ${m}`,
  syslog: (t, _l, m) => `Jan 12 22:21:22 rock3b kernel: ${stamp(t)} ${m}`,
  journald: (_t, _l, m) => `Jan 12 22:21:22 rock3b kernel: ${m}`,
  rfc3339: (t, _l, m) => `2024-12-27T10:26:06.694018+08:00 rock3b kernel: ${stamp(t)} ${m}`,
  hostStamp: (t, _l, m) => `[2022-11-11 12:08:08] ${stamp(t)} ${m}`,
  kmsg: (t, l, m) => `${l},${Math.round(t * 1e6)},${Math.round(t * 1e6)},-;${m}`,
  crlfAnsi: (t, _l, m) => `\x1b[32m${stamp(t)}\x1b[0m ${m}\r`,
  android: (t, _l, m) => `${stamp(t)}[    T1] [0:    kworker/0:1:   23] ${m}`,
};

const capture = (f: (t: number, l: number, m: string) => string) =>
  CAPTURE.map(([t, l, m]) => f(t, l, m)).join("\n") + "\n";

for (const [name, f] of Object.entries(FORMATS)) {
  Deno.test(`format ${name}: klog, facts parsers and console watchers read the same events`, () => {
    const text = capture(f);
    // oracle/klog.ts
    const log = parseLog(text, { format: "v1" });
    assert.equal(log.faults.length, 1);
    const fault = log.faults[0];
    assert.equal(fault.device, "ff650800.iommu");
    assert.equal(fault.iova, 0x4382010);
    assert.equal(fault.access, "write");
    assert.ok(fault.complete);
    assert.equal(fault.walk?.mmuDteAddr, 0x3da7c000);
    assert.equal(fault.decoded?.invalidAt, "dte");
    // runner/facts/parsers.ts
    const facts = parseDmesg(text);
    assert.equal(facts.linuxVersion?.release, "6.12.38+deb13-arm64");
    assert.equal(facts.machineModel, "Radxa ROCK 3 Model B");
    assert.equal(facts.bootCommandLine, "console=ttyS2,1500000n8 root=/dev/mmcblk0p2 rw");
    assert.equal(facts.cma.length, 1);
    assert.equal(facts.rkIommu.faults.length, 1);
    // runner/watch/watchers.ts
    const w = new ConsoleWatcher();
    w.feedLines(splitConsoleText(text, 1000));
    w.flush();
    const kinds = w.events.map((e) => e.kind);
    assert.deepEqual(kinds, ["boot_banner", "boot_banner", "rk_iommu_fault", "npu"], name);
    const iommu = w.events[2].detail;
    assert.equal(iommu.kind === "rk_iommu_fault" && iommu.report?.iova, 0x4382010);
    const npu = w.events[3].detail;
    assert.ok(npu.kind === "npu");
    assert.equal(npu.what, "wait_failed");
    assert.deepEqual(npu.fields, { taskCounter: 74, flags: "0x1", ret: -512, elapsedUs: 13624 });
  });
}

Deno.test("framed shell splitter: every console form of a kernel line is cut out of output", () => {
  const consoleForms = ["plain", "priority", "caller", "android"];
  for (const name of consoleForms) {
    const f = FORMATS[name];
    const got: string[] = [];
    const sp = new KernelLineSplitter((l) => got.push(l));
    const stream = "root@rock:~# echo hi\nhi\n" +
      CAPTURE.map(([t, l, m], i) => (i === 5 ? "partial output" : "") + f(t, l, m) + "\r\n")
        .join("") +
      "done\n";
    // Feed in small chunks so prefixes are split across chunk boundaries.
    let out = "";
    for (let i = 0; i < stream.length; i += 7) out += sp.push(stream.slice(i, i + 7));
    out += sp.flush();
    assert.equal(out, "root@rock:~# echo hi\nhi\npartial outputdone\n", name);
    assert.deepEqual(got.map((l) => splitPrintkPrefix(l).rest), CAPTURE.map(([, , m]) => m), name);
  }
});

Deno.test("console watcher: a drifting fault line is an error event, never information", () => {
  const w = new ConsoleWatcher();
  w.feedLines(
    splitConsoleText(
      "[   10.000000] rk_iommu ff650800.iommu: Page fault at 4382010 (read)\n" +
        "[   11.000000] rk_iommu ff650800.iommu: resuming with 2 clocks\n",
      1000,
    ),
  );
  w.flush();
  assert.deepEqual(w.events.map((e) => [e.kind, e.severity]), [
    ["rk_iommu", "error"],
    ["rk_iommu", "info"],
  ]);
});
