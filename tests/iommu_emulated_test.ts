/**
 * The `iommu/emulated` step on a target whose device tree has real Rockchip IOMMUs (a ROCK 3B's
 * own DTB from Debian 7.3's package, runner/fdt/testdata): SKIP with the reason after reading the
 * live tree, and nothing is built, uploaded or loaded; the step's outcome and per-instance
 * verdicts on a real 6.12 capture (runner/rkiommu/testdata). The scenarios' variants are in
 * runner/suite/plans_test.ts; the step on emulated IOMMUs in runner/rkiommu/emu_qemu_test.ts.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { boardFacts } from "../boards/facts.ts";
import { findBoard } from "../boards/load.ts";
import type { TestResult } from "../runner/results/store.ts";
import { judgeEmu } from "../runner/rkiommu/judge.ts";
import { parseEmuReport } from "../runner/rkiommu/report.ts";
import { emulatedRows } from "../runner/rkiommu/table.ts";
import type { StepContext, StepOutcome } from "../runner/suite/types.ts";
import {
  EMU_SCENARIOS,
  emulatedOutcome,
  emulatedScenarioStep,
  emulatedStep,
} from "./_iommu_emulated.ts";

const realTree = await Deno.readFile(
  new URL("../runner/fdt/testdata/7.3.4+deb13-arm64/rk3568-rock-3b.dtb", import.meta.url),
);

function boardCtx(commands: string[]): StepContext {
  const target = {
    command: {
      run: (cmd: string) => {
        commands.push(cmd);
        if (cmd !== "base64 /sys/firmware/fdt") throw new Error(`unexpected command ${cmd}`);
        return Promise.resolve({
          stdout: Buffer.from(realTree).toString("base64"),
          stderr: "",
          exitStatus: 0,
        });
      },
    },
  };
  return {
    target,
    kernel: "7.3.4+deb13-arm64",
    release: "7.3.4+deb13-arm64",
    dir: "/nonexistent",
    variant: {},
    predictBoards: ["rock-3b-8g"],
    facts: () => Promise.reject(new Error("not asked")),
    once: () => Promise.reject(new Error("nothing is built")),
    log: () => {},
  } as unknown as StepContext;
}

Deno.test("iommu/emulated beside real IOMMUs (a ROCK 3B's tree): SKIP with the reason, no module built or loaded", async () => {
  for (const step of [emulatedStep, emulatedScenarioStep(EMU_SCENARIOS[0])]) {
    const commands: string[] = [];
    const out = await step.run(boardCtx(commands));
    assert.equal(out.verdict, "SKIP");
    assert.match(out.reason!, /no emulated IOMMU in the target's device tree/);
    assert.deepEqual(commands, ["base64 /sys/firmware/fdt"]);
  }
});

const captures = new URL("../runner/rkiommu/testdata/", import.meta.url);
const rock3b = await findBoard("rock-3b-8g");

/** The 6.12 capture (8 GiB: NPU MMU BUS_ERROR, VOP2 OK) judged with its dmesg edited by `edit`. */
async function judged612(edit: (dmesg: string) => string) {
  const read = (f: string) => Deno.readTextFile(new URL(f, captures));
  const dmesg = edit(await read("6.12-8g.dmesg"));
  return judgeEmu({
    report: parseEmuReport(await read("6.12-8g.proc")),
    dmesg,
    cmdline: dmesg.match(/Kernel command line: (.*)/)![1],
    dtb: await Deno.readFile(new URL("6.12-8g.dtb", captures)),
    board: boardFacts(rock3b.board, rock3b.path),
    bound: new Set(["fde4b000", "fe043e00"]),
  });
}

function asResult(out: StepOutcome): TestResult {
  return {
    test: "iommu/emulated/dtsi",
    suite: "iommu-emulated",
    target: "qemu-virt-8g",
    kernel: "debian:trixie",
    verdict: out.verdict,
    reason: out.reason,
    details: out.details,
    startedAt: "2026-11-30T00:00:00Z",
    durationMs: 1,
  } as TestResult;
}

const META = { board: "rock-3b-8g", scenario: "dtsi", errors: [] };

Deno.test("emulatedOutcome on a real 6.12 capture: PASS, each instance recorded as agreeing, the table says so", async () => {
  const out = emulatedOutcome(await judged612((d) => d), META);
  assert.equal(out.verdict, "PASS", out.reason);
  const instances = out.details!.instances as Record<string, unknown>[];
  assert.deepEqual(instances.map((i) => [i.unit, i.verdict, i.difference]), [
    ["fde4b000", "agree", null],
    ["fe043e00", "agree", null],
  ]);
  assert.deepEqual(emulatedRows([asResult(out)]).map((r) => [r.unit, r.observed, r.verdict]), [
    ["fde4b000", "BUS_ERROR", "agree"],
    ["fe043e00", "OK", "agree"],
  ]);
});

Deno.test("emulatedOutcome: two instances disagree on log lines though observed = predicted; each row names its own difference, none says agree", async () => {
  // The NPU MMU's BUS_ERROR lines gone; a fault line on VOP2's MMU, whose outcome stays OK.
  const j = await judged612((d) =>
    d.split("\n").filter((l) => !l.includes("fde4b000.iommu: BUS_ERROR")).join("\n") +
    "\n[    7.000000] rk_iommu fe043e00.iommu: Page fault at 0x0000000000001000 of type read\n"
  );
  const out = emulatedOutcome(j, META);
  assert.equal(out.verdict, "FAIL");
  assert.match(out.reason!, /^fde4b000: kernel log line: predicted /);
  const rows = emulatedRows([asResult(out)]);
  assert.deepEqual(rows.map((r) => [r.unit, r.observed, r.predicted]), [
    ["fde4b000", "BUS_ERROR", "BUS_ERROR"],
    ["fe043e00", "OK", "OK"],
  ]);
  assert.match(rows[0].verdict, /^disagree: kernel log line: predicted .*BUS_ERROR/);
  assert.equal(
    rows[1].verdict,
    "disagree: kernel log line: predicted no fault line, observed " +
      "rk_iommu fe043e00.iommu: Page fault at 0x0000000000001000 of type read",
  );
});
