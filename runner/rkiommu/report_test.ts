/**
 * The emulated IOMMU's report and its judgement on real captures (testdata/: /proc/rkiommu_emu,
 * dmesg and the boot DTB of 8 GiB QEMU guests with the NPU MMU (v1.0) and VOP2's MMU (v2.0),
 * captured with runner/rkiommu/emu_qemu_test.ts's procedure): the seed's story in the real
 * driver, held against the oracle; and hostile reports.
 */
import assert from "node:assert/strict";
import { findBoard } from "../../boards/load.ts";
import { boardFacts } from "../../boards/facts.ts";
import { InfraError, UserInputError } from "../errors.ts";
import { judgeEmu } from "./judge.ts";
import { outcomeOf, parseEmuReport, swiotlbWindow } from "./report.ts";

const dir = new URL("./testdata/", import.meta.url);
const read = (f: string) => Deno.readTextFile(new URL(f, dir));
const board = await findBoard("rock-3b-8g");
const facts = boardFacts(board.board, board.path);
const BOTH = new Set(["fde4b000", "fe043e00"]);

async function capture(tag: string) {
  const proc = await read(`${tag}.proc`);
  const dmesg = await read(`${tag}.dmesg`);
  const dtb = await Deno.readFile(new URL(`${tag}.dtb`, dir));
  const cmdline = dmesg.match(/Kernel command line: (.*)/)![1];
  return { report: parseEmuReport(proc), dmesg, dtb, cmdline };
}

Deno.test("6.1.0-57, 8 GiB: the NPU MMU works (directory below 4 GiB), VOP2 too; the oracle agrees", async () => {
  const c = await capture("6.1-8g");
  assert.equal(c.report.release, "6.1.0-57-arm64");
  assert.deepEqual(c.report.instances.map((i) => [i.unit, i.revision, i.dtReach]), [
    ["fde4b000", "1.0", 32],
    ["fe043e00", "2.0", 40],
  ]);
  assert.equal(c.report.accesses.length, 16);
  assert.ok(c.report.accesses.every((a) => a.result === "ok" && a.data === "match"));
  // Data pages above 4 GiB (the v1.0 block maps 40-bit pages), tables below.
  assert.ok(c.report.mappings.every((m) => m.phys >= 2 ** 32));
  assert.ok(c.report.accesses.every((a) => a.dt < 2 ** 32 && a.pt < 2 ** 32));
  assert.equal(outcomeOf(c.report, "fde4b000"), "OK");
  const j = judgeEmu({ ...c, board: facts, bound: BOTH });
  assert.equal(j.comparison.verdict, "agree", JSON.stringify(j.comparison));
  assert.deepEqual(j.prediction.instances.map((i) => i.outcome), ["OK", "OK"]);
  assert.ok(!c.dmesg.includes("BUS_ERROR"));
});

for (
  const [tag, release] of [["6.12-8g", "6.12.118+deb13-arm64"], ["7.3-8g", "7.3.4+deb13-arm64"]]
) {
  Deno.test(`${release}, 8 GiB: the real driver puts the NPU directory above 4 GiB and prints BUS_ERROR; VOP2 works; the oracle agrees`, async () => {
    const c = await capture(tag);
    assert.equal(c.report.release, release);
    const npu = c.report.accesses.filter((a) => a.dev === "rkhil-npu-master");
    assert.equal(npu.length, 8);
    for (const a of npu) {
      assert.equal(a.result, "bus_error");
      assert.equal(a.irq, "handled");
      assert.ok(a.dt >= 2 ** 32, `directory 0x${a.dt.toString(16)}`);
      // The driver's own line, from its IRQ handler, for each IOVA the device used.
      const iova = a.iova.toString(16).padStart(16, "0");
      assert.match(
        c.dmesg,
        new RegExp(`rk_iommu fde4b000\\.iommu: BUS_ERROR occurred at 0x${iova}`),
      );
    }
    assert.equal(outcomeOf(c.report, "fde4b000"), "BUS_ERROR");
    assert.equal(outcomeOf(c.report, "fe043e00"), "OK");
    const j = judgeEmu({ ...c, board: facts, bound: BOTH });
    assert.equal(j.comparison.verdict, "agree", JSON.stringify(j.comparison));
    const npuObs = j.observations.find((o) => o.unit === "fde4b000")!;
    assert.ok(npuObs.dtPhys! >= 2 ** 32);
    assert.equal(npuObs.dtBounced, false);
  });
}

Deno.test("6.12.118 with swiotlb=force: tables bounced, the walker reads zeroed PTEs, the driver prints page faults on both; the oracle agrees", async () => {
  const c = await capture("6.12-swiotlb-force");
  assert.match(c.cmdline, /swiotlb=force/);
  const win = swiotlbWindow(c.dmesg)!;
  assert.deepEqual(win, { start: 0xf5e00000, end: 0xf9e00001 });
  for (const a of c.report.accesses) {
    assert.equal(a.result, "page_fault");
    assert.equal(a.level, 2);
    assert.equal(a.pte, 0);
    assert.ok(a.dt >= win.start && a.dt < win.end);
  }
  assert.match(
    c.dmesg,
    /rk_iommu fde4b000\.iommu: mmu_dte_addr: 0x00000000f7e00000 dte@0x00000000f7e00ffc: 0xf7e01001 valid: 1 pte@0x00000000f7e01ffc: 0x000000 valid: 0/,
  );
  const j = judgeEmu({ ...c, board: facts, bound: BOTH });
  assert.equal(j.comparison.verdict, "agree", JSON.stringify(j.comparison));
  assert.deepEqual(j.observations.map((o) => [o.outcome, o.dtBounced]), [
    ["PAGE_FAULT", true],
    ["PAGE_FAULT", true],
  ]);
});

Deno.test("a report where the NPU worked on 6.12 is a disagreement that names the outcome", async () => {
  const c = await capture("6.12-8g");
  const proc = (await read("6.12-8g.proc")).replaceAll("result=bus_error", "result=ok")
    .replaceAll(/(dev=rkhil-npu-master.*)data=-/g, "$1data=match");
  const dmesg = c.dmesg.split("\n").filter((l) => !l.includes("BUS_ERROR")).join("\n");
  const j = judgeEmu({ ...c, report: parseEmuReport(proc), dmesg, board: facts, bound: BOTH });
  assert.equal(j.comparison.verdict, "disagree");
  assert.deepEqual(j.comparison.difference, {
    unit: "fde4b000",
    fact: "outcome",
    predicted: "BUS_ERROR",
    observed: "OK",
  });
});

Deno.test("an IOMMU rk_iommu did not bind is PROBE_FAILED; a failed emulation is no outcome", async () => {
  const c = await capture("6.1-8g");
  assert.equal(outcomeOf(c.report, "fde4b000", false), "PROBE_FAILED");
  const stalled = parseEmuReport(
    (await read("6.1-8g.proc")).replace("result=ok", "result=stalled"),
  );
  assert.equal(outcomeOf(stalled, "fde4b000"), undefined);
  assert.equal(outcomeOf(c.report, "00000000"), undefined);
  assert.throws(
    () =>
      judgeEmu({
        ...c,
        report: { ...c.report, release: "5.4.0-1-arm64" },
        board: facts,
        bound: BOTH,
      }),
    UserInputError,
  );
});

Deno.test("hostile reports are refused with the line", async () => {
  const good = await read("6.1-8g.proc");
  const cases: [string, RegExp][] = [
    ["", /empty report/],
    ["hello\n", /not an rkiommu_emu report/],
    [good.replace("rkiommu-emu 1 ", "rkiommu-emu 2 "), /format version 2/],
    [good.replace(/\nend status=ok[^\n]*/, ""), /no end line/],
    [good.replace("end status=ok", "end status=fail"), /end status=fail/],
    [good + "bogus x=1\n", /unknown line kind "bogus"/],
    [good.replace("iova=0xfffff040", "iova=0xzz"), /iova=0xzz is not a hex number/],
    [good.replace("iova=0xfffff040", "iova=0x10000000000000000"), /iova=.* is not a hex number/],
    [good.replace("result=ok", "result=$(reboot)"), /result= has an unexpected value/],
    [good.replace("result=ok", "result=exploded"), /result=exploded is unknown/],
    [good.replace("level=3", "level3"), /"level3" is not key=value/],
    [good.replace("name=fde4b000.iommu", "name=../../x"), /name= has an unexpected value/],
    [good.replace("name=fde4b000.iommu", "name=fde4b000.mmu"), /is not <unit>\.iommu/],
    [good.replace("release=6.1.0-57-arm64", "release=6.1 0"), /"0" is not key=value/],
    [good + "error dev=x\n", /error line without what=/],
    ["rkiommu-emu 1 " + "x".repeat(300_000), /too long/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseEmuReport(text), (e: Error) => {
      assert.ok(e instanceof InfraError, e.message);
      assert.match(e.message, re);
      return true;
    });
  }
  const withError = parseEmuReport(
    good.replace(/\nend /, "\nerror dev=rkhil-npu-master what=pm_runtime ret=-110\nend "),
  );
  assert.deepEqual(
    withError.errors.map((e) => [e.dev, e.what, e.ret]),
    [["rkhil-npu-master", "pm_runtime", -110]],
  );
});

Deno.test("6.12.118 with the NPU MMU bound as rockchip,iommu (v1 ops, probes first): VOP2's probe fails on the global rk_ops (PROBE_FAILED); the NPU's v1 PTEs truncate its pages above 4 GiB, the walk succeeds and the master's transfer goes to the alias (WRONG_PAGE, the MMU silent); both agree with the oracle", async () => {
  const c = await capture("6.12-v1npu");
  assert.equal(c.report.params.page_bus_error, 0);
  assert.match(
    c.dmesg,
    /WARNING: CPU: \d+ PID: \d+ at drivers\/iommu\/rockchip-iommu\.c:\d+ rk_iommu_probe/,
  );
  assert.match(
    c.dmesg,
    /rk_iommu fe043e00\.iommu: probe with driver rk_iommu failed with error -22/,
  );
  const npu = c.report.accesses.filter((a) => a.dev === "rkhil-npu-master");
  assert.equal(npu.length, 8);
  for (const a of npu) {
    // v1 mk_pte keeps bits 31:12 of a page above 4 GiB: the page's address mod 4 GiB.
    const mapped = c.report.mappings.find((m) => m.iova === a.iova - (a.iova % 4096))!;
    assert.ok(mapped.phys >= 2 ** 32);
    assert.equal(a.page, mapped.phys % 2 ** 32);
    assert.ok(a.dt < 2 ** 32, "v1 ops: GFP_DMA32 tables");
    // The alias lies below QEMU's RAM (1 GiB base): the master's transfer, no MMU interrupt.
    assert.ok(a.page < 0x4000_0000);
    assert.deepEqual([a.result, a.irq, a.level], ["master_error", "none", 3]);
  }
  assert.ok(!c.dmesg.includes("BUS_ERROR"));
  assert.equal(outcomeOf(c.report, "fde4b000"), "WRONG_PAGE");
  // VOP2's master waits for an IOMMU that never probed (deferred: no master line this time; the
  // earlier capture's bound with no domain): either way no access of it reached a walk.
  assert.ok(
    c.report.masters.filter((m) => m.iommu === "fe043e00").every((m) => m.domain === "none"),
  );
  assert.ok(!c.report.accesses.some((a) => a.dev === "rkhil-vop-master" && a.level > 0));
  const j = judgeEmu({ ...c, board: facts, bound: new Set(["fde4b000"]) });
  assert.equal(j.comparison.verdict, "agree", JSON.stringify(j.comparison));
  assert.deepEqual(j.observations.map((o) => o.outcome), ["WRONG_PAGE", "PROBE_FAILED"]);
});

Deno.test("the same tree with the emulator raising the MMU's BUS_ERROR for a translated page that is not memory (page_bus_error=1, the earlier capture): the disagreement names the outcome", async () => {
  const c = await capture("6.12-v1npu-page-bus-error");
  // Captured before the parameter existed: such reports read as page_bus_error=1.
  assert.equal(c.report.params.page_bus_error, 1);
  const npu = c.report.accesses.filter((a) => a.dev === "rkhil-npu-master");
  for (const a of npu) {
    assert.deepEqual([a.result, a.level], ["bus_error", 3]);
    assert.ok(a.page < 0x4000_0000, "the alias is below QEMU's RAM");
  }
  const j = judgeEmu({ ...c, board: facts, bound: new Set(["fde4b000"]) });
  const vop = j.comparison.instances.find((i) => i.unit === "fe043e00")!;
  assert.equal(vop.verdict, "agree", JSON.stringify(vop));
  assert.deepEqual(j.comparison.difference, {
    unit: "fde4b000",
    fact: "outcome",
    predicted: "WRONG_PAGE",
    observed: "BUS_ERROR",
  });
});

Deno.test("master_error is an access result the parser knows; a page_bus_error that is not a number is refused", async () => {
  const good = await read("6.12-v1npu.proc");
  assert.throws(
    () => parseEmuReport(good.replace("page_bus_error=0", "page_bus_error=yes")),
    /page_bus_error=yes is not a decimal number/,
  );
  const asOk = parseEmuReport(good.replaceAll("result=master_error", "result=ok"));
  assert.equal(outcomeOf(asOk, "fde4b000"), "OK");
});
