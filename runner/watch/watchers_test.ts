// Tests of the console watcher on real log formats.
//
// Formats were checked against kernel source (code search of public repositories):
// - kernel/panic.c: `"Kernel panic - not syncing: %s\n"`, `"---[ end Kernel panic - not
//   syncing: %s ]---\n"`, `__warn`: `"WARNING: CPU: %d PID: %d at %s:%d %pS\n"` (to 6.16) and
//   `"WARNING: %s:%d at %pS, CPU#%d: %s/%d\n"` (6.17+), `print_oops_end_marker`:
//   `"---[ end trace %016llx ]---\n"` (with 0ULL since 5.17).
// - arch/arm64/kernel/traps.c `__die`: `"Internal error: %s: %016lx [#%d]" S_PREEMPT S_SMP`
//   (6.16+: `"... [#%d] %s" S_SMP` with preempt_model_str()); `arm64_serror_panic`:
//   `"SError Interrupt on CPU%d, code 0x%016lx -- %s\n"` then panic "Asynchronous SError Interrupt".
// - arch/arm64/mm/fault.c `die_kernel_fault`: `"Unable to handle kernel %s at virtual address %016lx\n"`.
// - drivers/tty/sysrq.c: `panic("sysrq triggered crash\n")` (panic drops the newline),
//   action message "Trigger a crash" printed as `sysrq: Trigger a crash`.
// - kernel/watchdog.c (pr_fmt "watchdog: "): `"BUG: soft lockup - CPU#%d stuck for %us! [%s:%d]\n"`.
// - kernel/sched/core.c: `"BUG: scheduling while atomic: %s/%d/0x%08x\n"`.
// - mm/kasan/report.c: `"BUG: KASAN: %s in %pS\n"`.
// - kernel/hung_task.c: `"INFO: task %s:%d blocked for more than %ld seconds.\n"`.
// - mm/oom_kill.c: `"%s invoked oom-killer: gfp_mask=%#x(%pGg), order=%d, oom_score_adj=%hd\n"`,
//   `"%s: Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, ..."`.
// - kernel/rcu/tree_stall.h: `"INFO: %s detected stalls on CPUs/tasks:"` (pr_fmt "rcu: ").
// - drivers/accel/rocket/rocket_job.c: `dev_err(core->dev, "NPU job timed out")`.
// - RKNPU lines: research/npu-workloads.md §1.6 and §4 (real RK3568 timeout from
//   mtx512/rk3588-npu issue 3; abort from airockchip/rknn-toolkit2 issue 536).
// - rk_iommu lines: oracle/klog.ts formats (research/rockchip-iommu.md §1.7).
// - Bootloader banners: real RK3568/RK3399 U-Boot, TF-A and DDR blob logs (code search).
import assert from "node:assert/strict";
import fc from "fast-check";
import { type ConsoleLine, ConsoleLineSplitter, splitConsoleText } from "./console_lines.ts";
import {
  attachToConsole,
  ConsoleWatcher,
  kernelLineAdapter,
  summarize,
  type WatcherOptions,
  type WatchEvent,
} from "./watchers.ts";
import { InfraError } from "../errors.ts";

const here = new URL("./testdata/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, here));
const BOOT = fixture("rock3b_boot.log");
const OOPS = fixture("arm64_null_oops.log");
const PANIC = fixture("sysrq_panic.log");
const MIXED = fixture("rk_iommu_warning.log");

/** Feed `text` (LF lines turned into CRLF, as a kernel console sends them) at `atMs`. */
function feed(w: ConsoleWatcher, text: string, atMs = 1000, crlf = true): void {
  w.feedLines(splitConsoleText(crlf ? text.replaceAll("\n", "\r\n") : text, atMs));
}

function watch(text: string, opts: WatcherOptions = {}): ConsoleWatcher {
  const w = new ConsoleWatcher(opts);
  feed(w, text);
  w.flush();
  return w;
}

const kinds = (evs: readonly WatchEvent[]) => evs.map((e) => e.kind);

Deno.test("a normal boot: banners are information, probe lines are observations", () => {
  const w = watch(BOOT);
  const banners = w.events.filter((e) => e.kind === "boot_banner");
  assert.deepEqual(
    banners.map((e) => e.detail.kind === "boot_banner" ? e.detail.stage : ""),
    ["ddr", "spl", "spl", "tf-a", "u-boot", "linux", "linux"],
  );
  assert.ok(banners.every((e) => e.verdict === null && e.severity === "info"));
  const npu = w.events.filter((e) => e.kind === "npu");
  assert.equal(npu.length, 2);
  assert.deepEqual(npu[0].detail, {
    kind: "npu",
    driver: "rknpu",
    what: "probe_iommu",
    device: "fde40000.npu",
    fields: { iommu: "enabled" },
  });
  assert.deepEqual(npu[1].detail, {
    kind: "npu",
    driver: "rknpu",
    what: "probe",
    device: "fde40000.npu",
    fields: { version: "0.9.8", minor: 1, date: "20240828" },
  });
  // The rk_iommu regulator line is an rk_iommu line klog does not know: kept, as info.
  const rk = w.events.filter((e) => e.kind === "rk_iommu");
  assert.equal(rk.length, 1);
  assert.equal(rk[0].severity, "info");
  assert.equal(rk[0].detail.kind === "rk_iommu" && rk[0].detail.event.kind, "unknown");
  assert.equal(w.runVerdict().verdict, null);
});

Deno.test("arm64 NULL dereference: one oops event, FAIL, first line is the reason", () => {
  const w = new ConsoleWatcher({ initialBootState: "up" });
  w.beginTest("npu-submit");
  feed(w, OOPS);
  const r = w.endTest();
  assert.deepEqual(kinds(r.events), ["oops"]);
  const ev = r.events[0];
  assert.equal(ev.verdict, "FAIL");
  assert.equal(ev.severity, "fatal");
  assert.equal(
    ev.reason,
    "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000",
  );
  assert.equal(ev.kernelTimeSec, 52.123456);
  assert.equal(ev.complete, true, "closed by the end trace marker");
  assert.equal(ev.lines.length, OOPS.trim().split("\n").length);
  assert.equal(ev.detail.kind, "oops");
  if (ev.detail.kind !== "oops") return;
  assert.deepEqual(ev.detail.fault, {
    what: "NULL pointer dereference",
    address: "0000000000000000",
  });
  assert.deepEqual(ev.detail.internalError, {
    reason: "Oops",
    esr: "0000000096000004",
    dieCounter: 1,
    flags: "PREEMPT SMP",
  });
  assert.equal(ev.detail.callTrace.length, 11);
  assert.equal(ev.detail.callTrace[0], " rknpu_job_commit+0x40/0x1c0 [rknpu]");
  assert.deepEqual([r.verdict, r.reason, r.eventId], ["FAIL", ev.reason, ev.id]);
  assert.equal(ev.test, "npu-submit");
});

Deno.test("6.16+ Internal error line (preempt model string) is recognised alone", () => {
  const w = watch(
    "[    9.100000] Internal error: Oops: 0000000096000045 [#2] PREEMPT(voluntary) SMP\n",
  );
  const [ev] = w.events;
  assert.equal(ev.kind, "oops");
  assert.equal(
    ev.detail.kind === "oops" && ev.detail.internalError?.flags,
    "PREEMPT(voluntary) SMP",
  );
  assert.equal(ev.detail.kind === "oops" && ev.detail.internalError?.dieCounter, 2);
});

Deno.test("sysrq panic: panic event from its first line to the end trailer", () => {
  const w = new ConsoleWatcher({ initialBootState: "up" });
  const seen: [number, string][] = [];
  w.onEvent((e, phase) => seen.push([e.id, phase]));
  w.beginTest("sysrq");
  feed(w, PANIC);
  const r = w.endTest();
  assert.deepEqual(kinds(r.events), ["panic"]);
  const ev = r.events[0];
  assert.equal(ev.reason, "Kernel panic - not syncing: sysrq triggered crash");
  assert.equal(ev.detail.kind === "panic" && ev.detail.message, "sysrq triggered crash");
  assert.equal(ev.verdict, "FAIL");
  assert.equal(ev.complete, true);
  assert.equal(
    ev.lines.at(-1)?.text,
    "[  123.467404] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---",
  );
  assert.equal(ev.lines.length, PANIC.trim().split("\n").length - 1);
  // Reported when it opened (verdict known at once) and when the trailer closed it.
  assert.deepEqual(seen, [[1, "open"], [1, "done"]]);
});

Deno.test("a panic that never finishes printing is open until flush", () => {
  const w = new ConsoleWatcher();
  const cut = PANIC.split("\n").slice(0, 8).join("\n") + "\n";
  feed(w, cut);
  assert.equal(w.events.length, 1);
  assert.equal(w.events[0].complete, false);
  assert.equal(w.events[0].verdict, "FAIL");
  w.flush();
  assert.equal(w.events[0].complete, true);
});

Deno.test("WARNING: recorded with file, line, function and call trace; no verdict by default", () => {
  const w = new ConsoleWatcher({ initialBootState: "up" });
  w.beginTest("map");
  feed(w, MIXED.split("\n").slice(0, 16).join("\n") + "\n");
  const r = w.endTest();
  assert.deepEqual(kinds(r.events), ["warning"]);
  const ev = r.events[0];
  assert.equal(ev.verdict, null);
  assert.equal(ev.severity, "warning");
  assert.equal(ev.lines[0].text, "[   33.100000] ------------[ cut here ]------------");
  assert.equal(ev.lines.length, 16);
  assert.equal(
    ev.reason,
    "WARNING: CPU: 1 PID: 287 at drivers/iommu/rockchip-iommu.c:1012 rk_iommu_map+0x1f4/0x2a0",
  );
  assert.deepEqual(ev.detail, {
    kind: "warning",
    function: "rk_iommu_map+0x1f4/0x2a0",
    cpu: 1,
    pid: 287,
    file: "drivers/iommu/rockchip-iommu.c",
    line: 1012,
    callTrace: [
      " rk_iommu_map+0x1f4/0x2a0",
      " __iommu_map+0x164/0x2b0",
      " iommu_map_sg+0xc8/0x1c0",
      " iommu_dma_map_sg+0x2b4/0x3f0",
      " dma_map_sgtable+0x3c/0x60",
    ],
  });
  assert.equal(r.verdict, null);
  // Configurable: warnings fail.
  const strict = watch(MIXED, { warningsFail: true });
  assert.equal(strict.events[0].verdict, "FAIL");
});

Deno.test("WARNING formats: 6.17+ order, no file, module, condition", () => {
  const w = watch(
    [
      "[    1.000000] WARNING: drivers/iommu/rockchip-iommu.c:1012 at rk_iommu_map+0x1f4/0x2a0 [rockchip_iommu], CPU#1: rknn_benchmark/287",
      "[    2.000000] WARNING: CPU: 0 PID: 1 at rknpu_probe+0x10/0x20 [rknpu]",
      "[    3.000000] WARNING: CPU: 0 PID: 0 at [ptr == 0 && 1] kernel/sched/core.c:8511 sched_init+0x20/0x410",
      "[    4.000000] WARNING: at foo+0x1/0x2, CPU#3: kworker/u8:2/77",
    ].join("\n") + "\n",
  );
  const d = w.events.map((e) => e.detail);
  assert.deepEqual(d[0], {
    kind: "warning",
    function: "rk_iommu_map+0x1f4/0x2a0",
    cpu: 1,
    comm: "rknn_benchmark",
    pid: 287,
    file: "drivers/iommu/rockchip-iommu.c",
    line: 1012,
    module: "rockchip_iommu",
    callTrace: [],
  });
  assert.deepEqual(d[1], {
    kind: "warning",
    function: "rknpu_probe+0x10/0x20",
    cpu: 0,
    pid: 1,
    module: "rknpu",
    callTrace: [],
  });
  assert.equal(d[2].kind === "warning" && d[2].condition, "ptr == 0 && 1");
  assert.equal(d[2].kind === "warning" && d[2].file, "kernel/sched/core.c");
  assert.equal(d[3].kind === "warning" && d[3].comm, "kworker/u8:2");
  assert.equal(d[3].kind === "warning" && d[3].function, "foo+0x1/0x2");
});

Deno.test("BUG family: KASAN, soft lockup, scheduling while atomic, kernel BUG at", () => {
  const w = watch(
    [
      "[   40.000000] ==================================================================",
      "[   40.000100] BUG: KASAN: slab-out-of-bounds in rk_iommu_map+0x1f4/0x2a0",
      "[   40.000200] Write of size 4 at addr ffff000012345678 by task rknn_benchmark/287",
      "[   40.001000] ==================================================================",
      "[   99.000000] watchdog: BUG: soft lockup - CPU#2 stuck for 22s! [rknn_benchmark:287]",
      "[  120.000000] BUG: scheduling while atomic: rknn_benchmark/287/0x00000002",
      "[  130.000000] ------------[ cut here ]------------",
      "[  130.000001] kernel BUG at mm/slub.c:435!",
      "[  130.000002] Internal error: Oops - BUG: 00000000f2000800 [#1] PREEMPT SMP",
      "[  130.000100] ---[ end trace 0000000000000000 ]---",
    ].join("\n") + "\n",
  );
  assert.deepEqual(kinds(w.events), ["bug", "bug", "bug", "bug"]);
  assert.deepEqual(
    w.events.map((e) => e.detail.kind === "bug" ? e.detail.category : ""),
    ["kasan", "soft_lockup", "scheduling_while_atomic", "kernel_bug_at"],
  );
  assert.ok(w.events.every((e) => e.verdict === "FAIL"));
  const last = w.events[3];
  assert.equal(last.lines[0].text, "[  130.000000] ------------[ cut here ]------------");
  assert.equal(last.reason, "kernel BUG at mm/slub.c:435!");
  assert.equal(last.detail.kind === "bug" && last.detail.internalError?.reason, "Oops - BUG");
  assert.equal(last.detail.kind === "bug" && last.detail.file, "mm/slub.c");
});

Deno.test("SError, RCU stall, hung task, OOM", () => {
  const w = watch(
    [
      "[  200.000000] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
      "[  200.000100] rcu: 	2-...0: (1 GPs behind) idle=11e/1/0x4000000000000000 softirq=1175/1177 fqs=2626",
      "[  300.000000] INFO: task kworker/u8:2:123 blocked for more than 120 seconds.",
      "[  300.000100]       Not tainted 6.1.0-13-arm64 #1 Debian 6.1.55-1",
      "[  400.000000] rknn_benchmark invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0",
      "[  400.000100] Mem-Info:",
      "[  400.000200] Out of memory: Killed process 287 (rknn_benchmark) total-vm:8812345kB, anon-rss:7912345kB, file-rss:1234kB, shmem-rss:0kB, UID:0 pgtables:16000kB oom_score_adj:0",
      "[  500.000000] SError Interrupt on CPU0, code 0x00000000bf000002 -- SError",
      "[  500.000100] Kernel panic - not syncing: Asynchronous SError Interrupt",
    ].join("\n") + "\n",
  );
  assert.deepEqual(kinds(w.events), ["rcu_stall", "hung_task", "oom", "serror", "panic"]);
  assert.deepEqual(w.events.map((e) => e.verdict), [null, null, null, "FAIL", "FAIL"]);
  assert.deepEqual(w.events[0].detail, {
    kind: "rcu_stall",
    flavor: "rcu_preempt",
    what: "detected stalls on CPUs/tasks",
  });
  assert.equal(w.events[0].lines.length, 2);
  assert.deepEqual(w.events[1].detail, {
    kind: "hung_task",
    task: "kworker/u8:2",
    pid: 123,
    seconds: 120,
  });
  assert.deepEqual(w.events[2].detail, {
    kind: "oom",
    invoker: "rknn_benchmark",
    victim: { pid: 287, name: "rknn_benchmark" },
  });
  assert.equal(w.events[2].lines.length, 3);
  assert.deepEqual(w.events[3].detail, {
    kind: "serror",
    cpu: 0,
    esr: "0x00000000bf000002",
    description: "SError",
  });
  // failKinds makes an RCU stall fail.
  const strict = watch("rcu: INFO: rcu_sched detected stalls on CPUs/tasks:\n", {
    failKinds: ["rcu_stall", "hung_task"],
  });
  assert.equal(strict.events[0].verdict, "FAIL");
});

Deno.test("rk_iommu fault: three lines grouped by klog's parseLog, with the structured events", () => {
  const w = new ConsoleWatcher({ iommuFormat: "v2" });
  feed(w, MIXED.split("\n").slice(16, 19).join("\n") + "\n");
  w.flush();
  assert.deepEqual(kinds(w.events), ["rk_iommu_fault"]);
  const ev = w.events[0];
  assert.equal(ev.verdict, null);
  assert.equal(ev.lines.length, 3);
  assert.equal(ev.detail.kind, "rk_iommu_fault");
  if (ev.detail.kind !== "rk_iommu_fault") return;
  assert.equal(ev.detail.device, "fde4b000.iommu");
  assert.deepEqual(ev.detail.parsed.map((p) => p.event.kind), ["page_fault", "iova_split", "walk"]);
  const rep = ev.detail.report;
  assert.ok(rep);
  assert.equal(rep.iova, 0xfff00000);
  assert.equal(rep.access, "read");
  assert.equal(rep.complete, true);
  assert.equal(rep.timestampSec, 512.345678);
  assert.equal(rep.walk?.mmuDteAddr, 0x210a4c000);
  assert.equal(rep.decoded?.invalidAt, "dte");
  assert.equal(rep.decoded?.consistent, true);
});

Deno.test("rk_iommu: interleaved devices and other lines, BUS_ERROR closes, stall timeout alone", () => {
  const w = watch(
    [
      "[ 1.0] rk_iommu fde4b000.iommu: Page fault at 0x0000000000001000 of type write",
      "[ 1.0] rk_iommu fdee0800.iommu: Page fault at 0x0000000000002000 of type read",
      "[ 1.0] some unrelated line",
      "[ 1.0] rk_iommu fdee0800.iommu: iova = 0x0000000000002000: dte_index: 0x0 pte_index: 0x2 page_offset: 0x0",
      "[ 1.0] rk_iommu fde4b000.iommu: iova = 0x0000000000001000: dte_index: 0x0 pte_index: 0x1 page_offset: 0x0",
      "[ 1.0] rk_iommu fde4b000.iommu: mmu_dte_addr: 0x0000000001000000 dte@0x0000000001000000: 0x000000 valid: 0 pte@0x0000000000000000: 0x000000 valid: 0 page@0x0000000000000000 flags: 0x0",
      "[ 1.0] rk_iommu fde4b000.iommu: BUS_ERROR occurred at 0x0000000000001000",
      "[ 1.0] rk_iommu fdee0800.iommu: mmu_dte_addr: 0x0000000001000000 dte@0x0000000001000000: 0x000000 valid: 0 pte@0x0000000000000000: 0x000000 valid: 0 page@0x0000000000000000 flags: 0x0",
      "[ 2.0] rk_iommu fde4b000.iommu: Enable stall request timed out, status: 0x000000",
    ].join("\n") + "\n",
  );
  assert.deepEqual(kinds(w.events), ["rk_iommu_fault", "rk_iommu_fault", "rk_iommu"]);
  const [a, b, c] = w.events;
  assert.ok(a.detail.kind === "rk_iommu_fault" && b.detail.kind === "rk_iommu_fault");
  if (a.detail.kind !== "rk_iommu_fault" || b.detail.kind !== "rk_iommu_fault") return;
  assert.equal(a.detail.report?.busError, true);
  assert.equal(a.detail.report?.complete, true);
  assert.equal(a.lines.length, 4);
  assert.equal(b.detail.report?.complete, true);
  assert.equal(b.detail.report?.iova, 0x2000);
  assert.equal(c.detail.kind === "rk_iommu" && c.detail.event.kind, "enable_stall_timeout");
});

Deno.test("RKNPU timeout sequence (real RK3568 lines), Rocket and librknnrt errors", () => {
  const w = watch(MIXED.split("\n").slice(19).join("\n"));
  const npu = w.events.filter((e) => e.kind === "npu");
  assert.deepEqual(
    npu.map((e) => e.detail.kind === "npu" ? e.detail.what : ""),
    ["job_wait_info", "wait_failed", "job_timeout", "soft_reset"],
  );
  assert.ok(npu.every((e) => e.verdict === null && e.severity === "error"));
  const timeout = npu[2];
  assert.equal(timeout.lines.length, 2, "the core line belongs to the timeout");
  assert.deepEqual(timeout.detail.kind === "npu" && timeout.detail.fields, {
    flags: "0x0",
    core0:
      "irq status: 0x0, raw status: 0x0, require mask: 0x300, task counter: 0x0, elapsed time: 6359758us",
  });
  assert.deepEqual(npu[1].detail.kind === "npu" && npu[1].detail.fields, {
    taskCounter: 0,
    flags: "0x5",
    ret: 0,
    elapsedUs: 6252728,
  });
  assert.deepEqual(npu[0].detail.kind === "npu" && npu[0].detail.fields.timeoutUs, 6000000);
  assert.deepEqual(npu[3].detail.kind === "npu" && npu[3].detail.fields, { num: 1 });

  const v = watch(
    [
      "[   10.0] RKNPU: failed to wait job, task counter: 74, flags: 0x1, ret = -512, elapsed time: 13624us",
      "[   10.1] RKNPU: job abort, flags: 0x1, ret: 0, elapsed time: 121694us",
      "[   10.2] RKNPU: job timeout, flags: 0x0, irq status: 0x0, raw status: 0x0, require mask: 0x300, task counter: 0x0, elapsed time: 6000123us",
      "[   10.3] RKNPU: soft reset",
      "[   11.0] RKNPU fde40000.npu: RKNPU: rknpu iommu device-tree entry not found!, using non-iommu mode",
      "[   12.0] rocket fdab0000.npu: Rockchip NPU core 0 version: 1179210309",
      "[   12.1] [drm] Initialized rocket 0.0.0 for rknn on minor 0",
      "[   13.0] rocket fdab0000.npu: NPU job timed out",
      "E RKNN: failed to submit!, op id: 1, op name: Conv:Conv_0, flags: 0x5, task start: 0, task number: 16, run task counter: 0, int status: 0",
      "rknn_run fail! ret=-1",
    ].join("\n") + "\n",
  );
  assert.deepEqual(
    v.events.map((e) => e.detail.kind === "npu" ? `${e.detail.driver}:${e.detail.what}` : e.kind),
    [
      "rknpu:wait_failed",
      "rknpu:job_abort",
      "rknpu:job_timeout",
      "rknpu:soft_reset",
      "rknpu:probe_iommu",
      "rocket:probe",
      "rocket:probe",
      "rocket:job_timeout",
      "librknnrt:submit_failed",
      "librknnrt:run_failed",
    ],
  );
  const d = v.events.map((e) => e.detail);
  assert.equal(d[2].kind === "npu" && d[2].fields.requireMask, "0x300");
  assert.equal(d[4].kind === "npu" && d[4].fields.iommu, "not_found");
  assert.deepEqual(d[5].kind === "npu" && d[5].fields, { core: 0, version: 1179210309 });
  assert.equal(d[8].kind === "npu" && d[8].fields.opId, 1);
  assert.deepEqual(d[9].kind === "npu" && d[9].fields, { ret: -1 });
  assert.equal(v.runVerdict().verdict, null, "NPU errors are observations");
});

Deno.test("second boot: silent reset → MISS; after a panic within the window → FAIL", () => {
  // Boot, declare booted, run a test, the board resets (garbage before the DDR banner).
  const w = new ConsoleWatcher();
  feed(w, BOOT, 1000);
  w.declareBooted();
  w.beginTest("yolov5");
  w.feedLines(
    splitConsoleText("detect ok\r\n\xff\xfeRest\u00e9DDR Version V1.13 20220218\r\nIn\r\n", 60_000),
  );
  w.feedLines(splitConsoleText(BOOT.split("\n").slice(7).join("\r\n"), 61_000));
  const r = w.endTest();
  assert.deepEqual(kinds(r.events).slice(0, 2), ["unexpected_boot", "boot_banner"]);
  assert.equal(r.verdict, "MISS");
  assert.match(r.reason ?? "", /^unexpected boot \(silent reset\): .*DDR Version V1\.13/);
  assert.equal(w.bootState, "lost");
  // Only the first banner of the reset is the event; the rest of the boot is information.
  assert.equal(r.events.filter((e) => e.kind === "unexpected_boot").length, 1);

  // A panic, then (panic=10) the reset 11 s later: the reset is the panic's consequence.
  const p = new ConsoleWatcher({ initialBootState: "up" });
  p.beginTest("sysrq");
  feed(p, PANIC, 100_000);
  feed(p, "[  123.467500] Rebooting in 10 seconds..\n", 100_050);
  feed(p, BOOT.split("\n").slice(0, 3).join("\n") + "\n", 111_000);
  const pr = p.endTest();
  assert.deepEqual(kinds(pr.events), ["panic", "unexpected_boot"]);
  const reset = pr.events[1];
  assert.equal(reset.verdict, "FAIL");
  assert.equal(reset.detail.kind === "unexpected_boot" && reset.detail.causedBy, pr.events[0].id);
  assert.equal(
    reset.reason,
    "target reset 11.0 s after: Kernel panic - not syncing: sysrq triggered crash",
  );
  assert.equal(pr.verdict, "FAIL");
  assert.equal(pr.reason, "Kernel panic - not syncing: sysrq triggered crash");

  // Outside the window the reset is a MISS of its own.
  const q = new ConsoleWatcher({ initialBootState: "up", panicResetWindowMs: 5000 });
  feed(q, PANIC, 100_000);
  feed(q, "U-Boot SPL board init\n", 200_000);
  assert.equal(q.events[1].verdict, "MISS");
});

Deno.test("an expected reboot is not a reset", () => {
  const w = new ConsoleWatcher({ initialBootState: "up" });
  w.beginTest("reboot-test");
  w.expectBoot();
  feed(w, BOOT);
  w.declareBooted();
  const r = w.endTest();
  assert.ok(r.events.every((e) => e.kind !== "unexpected_boot"));
  assert.equal(r.verdict, null);
});

Deno.test("console closing: unexpected → MISS (FAIL after a panic), our close → nothing", () => {
  const w = new ConsoleWatcher({ initialBootState: "up" });
  w.beginTest("t");
  w.consoleClosed(5000, "console /dev/ttyUSB0: device disconnected");
  assert.equal(w.endTest().verdict, "MISS");
  assert.equal(w.bootState, "lost");

  const ours = new ConsoleWatcher({ initialBootState: "up" });
  ours.consoleClosed(5000, null);
  assert.equal(ours.events.length, 0);

  const p = new ConsoleWatcher({ initialBootState: "up" });
  feed(p, PANIC, 1000);
  p.consoleClosed(3000, "EOF");
  assert.equal(p.events[1].kind, "console_lost");
  assert.equal(p.events[1].verdict, "FAIL");
  assert.equal(summarize(p.events).reason, "Kernel panic - not syncing: sysrq triggered crash");
});

Deno.test("events are attached to the running test; between tests they are run-level", () => {
  const w = new ConsoleWatcher({ initialBootState: "up" });
  feed(w, "[    1.0] RKNPU: soft reset, num: 1\n");
  w.beginTest("a");
  feed(w, "[    2.0] RKNPU: soft reset, num: 2\n");
  w.beginTest("b"); // ends "a"
  feed(w, OOPS);
  w.endTest();
  assert.deepEqual(w.runEvents().map((e) => e.id), [1]);
  assert.deepEqual(w.eventsForTest("a").map((e) => e.id), [2]);
  assert.deepEqual(w.eventsForTest("b").map((e) => e.kind), ["oops"]);
  const res = w.testResults();
  assert.deepEqual(res.map((t) => [t.name, t.index, t.verdict]), [["a", 0, null], [
    "b",
    1,
    "FAIL",
  ]]);
  assert.throws(() => w.endTest());
});

Deno.test("interleaving: a kernel line inside command output, and command output kept out", () => {
  // The kernel console writes around the tty's output: a panic starting mid-line.
  const w = new ConsoleWatcher({ initialBootState: "up" });
  feed(w, "loading model... [  600.123456] Kernel panic - not syncing: Oops: Fatal exception\n");
  assert.equal(w.events[0].kind, "panic");
  assert.equal(w.events[0].kernelTimeSec, 600.123456);
  assert.equal(w.events[0].reason, "Kernel panic - not syncing: Oops: Fatal exception");

  // With the framed shell's `stty -opost`, command output ends in a bare LF, kernel lines in
  // CRLF: `dmesg` and `cat /proc/version` output are not events, the same lines from the
  // kernel are.
  const lf = new ConsoleWatcher({ initialBootState: "up", commandOutputLf: true });
  const cmdOut = "Linux version 6.1.0-13-arm64 (debian-kernel@lists.debian.org) #1 SMP\n" +
    PANIC + OOPS;
  feed(lf, cmdOut, 1000, false);
  assert.equal(lf.events.length, 0);
  feed(
    lf,
    "[   52.123456] Unable to handle kernel paging request at virtual address ffff8000deadbeef\n",
  );
  assert.deepEqual(kinds(lf.events), ["oops"]);
  // librknnrt and bootloader lines are matched on command output too.
  feed(lf, "E RKNN: failed to submit!, op id: 3\n", 2000, false);
  assert.equal(lf.events.at(-1)?.kind, "npu");
  // Without the option, a kernel banner after a timestamp above 1 s is not a boot.
  const plain = watch("[  700.000000] Linux version 6.1.0 in a dmesg replay\n", {
    initialBootState: "up",
  });
  assert.equal(plain.events.length, 0);
});

Deno.test("blocks close on silence and on the line limit", () => {
  const w = new ConsoleWatcher({ blockIdleMs: 500, maxBlockLines: 5 });
  feed(w, "[ 1.0] INFO: task sh:1 blocked for more than 120 seconds.\n[ 1.0] trace\n", 1000);
  feed(w, "[ 9.0] later unrelated line\n", 5000);
  assert.equal(w.events[0].complete, true);
  assert.equal(w.events[0].lines.length, 2);
  feed(
    w,
    "[ 10.0] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:\n" + "[ 10.0] x\n".repeat(10),
    6000,
  );
  assert.equal(w.events[1].lines.length, 5);
  assert.equal(w.events[1].complete, true);
});

Deno.test("attachToConsole: stream chunks, unexpected close, detach", () => {
  type DataCb = (chunk: Uint8Array, atMs: number) => void;
  type CloseCb = (err: InfraError | undefined) => void;
  const dataCbs = new Set<DataCb>();
  const closeCbs = new Set<CloseCb>();
  const fake = {
    onData(cb: DataCb) {
      dataCbs.add(cb);
      return () => dataCbs.delete(cb);
    },
    onClose(cb: CloseCb) {
      closeCbs.add(cb);
      return () => closeCbs.delete(cb);
    },
  };
  const w = new ConsoleWatcher({ initialBootState: "up" });
  attachToConsole(w, fake, { now: () => 42 });
  const data = new TextEncoder().encode(PANIC.replaceAll("\n", "\r\n"));
  for (let i = 0; i < data.length; i += 7) {
    for (const cb of dataCbs) cb(data.slice(i, i + 7), 10 + i);
  }
  for (const cb of closeCbs) cb(new InfraError("console ttyUSB0: hangup", "replug"));
  assert.deepEqual(kinds(w.events), ["panic", "console_lost"]);
  // The panic line's first byte is after the sysrq line and its CRLF; chunks are 7 bytes.
  const pos = PANIC.indexOf("\n") + 2;
  assert.equal(w.events[0].atMs, 10 + Math.floor(pos / 7) * 7);
  assert.equal(w.events[1].verdict, "FAIL");

  const w2 = new ConsoleWatcher();
  const detach = attachToConsole(w2, fake);
  detach();
  assert.equal(dataCbs.size, 1, "only the first watcher is still attached");
});

Deno.test("attachToConsole: deliveries after detach are dropped and counted; bugs caught", () => {
  type DataCb = (chunk: Uint8Array, atMs: number) => void;
  type CloseCb = (err: InfraError | undefined) => void;
  let data: DataCb = () => {};
  let close: CloseCb = () => {};
  // A console that already dispatched a chunk and its end when the watcher detaches (the
  // callbacks were taken before the unsubscribe).
  const racing = {
    onData(cb: DataCb) {
      data = cb;
      return () => {};
    },
    onClose(cb: CloseCb) {
      close = cb;
      return () => {};
    },
  };
  const w = new ConsoleWatcher({ initialBootState: "up" });
  const detach = attachToConsole(w, racing);
  detach();
  data(new TextEncoder().encode(PANIC.replaceAll("\n", "\r\n")), 1);
  close(new InfraError("console ttyUSB0: hangup", "replug"));
  assert.deepEqual(kinds(w.events), [], "nothing reaches the watcher after detach");
  assert.equal(detach.droppedAfterClose, 2);

  class Buggy extends ConsoleWatcher {
    override feedLines(): void {
      throw new Error("a watcher's bug");
    }
  }
  const d2 = attachToConsole(new Buggy(), racing);
  data(new TextEncoder().encode("line\r\n"), 2);
  assert.equal(d2.handlerErrors, 1, "caught and counted, not thrown into the console");
  d2();
});

Deno.test("kernelLineAdapter: framed-shell kernel lines (binary strings) are decoded", () => {
  const w = new ConsoleWatcher({ initialBootState: "up" });
  const onKernelLine = kernelLineAdapter(w);
  const utf8 = new TextEncoder().encode(
    "[   12.345678] RKNPU: job abort, flags: 0x1, ret: 0, elapsed time: 121694us ✓",
  );
  onKernelLine(String.fromCharCode(...utf8), 777);
  assert.equal(w.events.length, 1);
  assert.equal(w.events[0].atMs, 777);
  assert.ok(w.events[0].lines[0].text.endsWith("✓"));
});

// ---------------------------------------------------------------------------------------------
// Streaming: a 10 MB log in random chunk sizes gives the same events as in one chunk.
// ---------------------------------------------------------------------------------------------

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bigLog(targetBytes: number): Uint8Array {
  const r = rng(12345);
  const enc = new TextEncoder();
  const pieces: Uint8Array[] = [];
  let n = 0;
  const add = (b: Uint8Array) => {
    pieces.push(b);
    n += b.length;
  };
  const crlf = (s: string) => enc.encode(s.replaceAll("\n", "\r\n"));
  const fixtures = [BOOT, OOPS, PANIC, MIXED].map(crlf);
  let t = 0;
  while (n < targetBytes) {
    const x = r();
    t += 0.001;
    if (x < 0.002) add(fixtures[Math.floor(r() * fixtures.length)]);
    else if (x < 0.004) {
      add(new Uint8Array(Array.from({ length: 40 }, () => Math.floor(r() * 256))));
    } else if (x < 0.005) add(enc.encode("x".repeat(9000) + "€\n"));
    else if (x < 0.2) add(enc.encode(`\x1b[1;32mprogress ${Math.floor(x * 100)}%\x1b[0m\r`));
    else {add(
        crlf(
          `[${t.toFixed(6).padStart(12)}] systemd[1]: line ${n} ${
            "y".repeat(Math.floor(r() * 80))
          }\n`,
        ),
      );}
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of pieces) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function runStream(data: Uint8Array, sizes: () => number): WatchEvent[] {
  const w = new ConsoleWatcher({ initialBootState: "up", iommuFormat: "v2" });
  const s = new ConsoleLineSplitter();
  let testNo = 0;
  const feedLines = (lines: ConsoleLine[]) => {
    for (const l of lines) {
      // Tests switch at fixed line numbers, independent of chunking.
      if (l.seq % 20_000 === 0) w.beginTest(`t${testNo++}`);
      w.feed(l);
      if (l.text.endsWith("login: ")) w.declareBooted();
    }
  };
  for (let off = 0; off < data.length;) {
    const n = sizes();
    feedLines(s.push(data.subarray(off, off + n), 1000));
    off += n;
  }
  feedLines(s.flush(1000));
  w.flush();
  return [...w.events];
}

Deno.test("property: a 10 MB log streamed in random chunk sizes gives the same events", () => {
  const data = bigLog(10 * 1024 * 1024);
  assert.ok(data.length >= 10 * 1024 * 1024);
  const whole = runStream(data, () => data.length);
  const count = (k: string) => whole.filter((e) => e.kind === k).length;
  assert.ok(count("panic") > 5 && count("oops") > 5 && count("rk_iommu_fault") > 5);
  assert.ok(count("unexpected_boot") > 5 && count("warning") > 5 && count("npu") > 5);
  fc.assert(
    fc.property(fc.integer(), fc.integer({ min: 1, max: 65536 }), (seed, maxChunk) => {
      const r = rng(seed);
      const got = runStream(data, () => 1 + Math.floor(r() * maxChunk));
      assert.deepEqual(got, whole);
    }),
    { numRuns: 4 },
  );
});
