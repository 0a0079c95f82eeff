/**
 * The `iommu` suite's log check on real kernel logs (runner/watch/testdata) against real
 * predictions for the ROCK 3B 8 GB board file, and on hostile lines.
 */
import assert from "node:assert/strict";
import { boardFacts } from "../boards/facts.ts";
import { findBoard } from "../boards/load.ts";
import { predict } from "../oracle/predict.ts";
import { buildScenario } from "../oracle/scenario.ts";
import { checkInstanceLog, rkIommuLines } from "./iommu.ts";

const log = (name: string) =>
  Deno.readTextFileSync(new URL(`../runner/watch/testdata/${name}`, import.meta.url)).split("\n");

async function instance(kernel: string, unit: string) {
  const l = await findBoard("rock-3b-8g");
  const p = predict(buildScenario({ board: boardFacts(l.board, l.path), kernel }));
  const i = p.instances.find((x) => x.unit === unit);
  assert.ok(i, unit);
  return i;
}

Deno.test("rkIommuLines: the rk_iommu lines of a real log, prefixes removed, nothing else", () => {
  const lines = rkIommuLines(log("rk_iommu_warning.log"));
  assert.equal(lines.length, 3);
  assert.ok(lines.every((l) => l.startsWith("rk_iommu fde4b000.iommu: ")), lines.join("\n"));
  assert.match(
    lines[0],
    /^rk_iommu fde4b000\.iommu: Page fault at 0x00000000fff00000 of type read$/,
  );
  // The WARNING's call trace names rk_iommu_map, which is no driver line.
  assert.deepEqual(rkIommuLines(["[   33.110300]  rk_iommu_map+0x1f4/0x2a0"]), []);
  // CRLF, ANSI colours, a console host stamp and junk: read or skipped, never thrown.
  assert.deepEqual(
    rkIommuLines([
      "\x1b[31m[    3.2] rk_iommu fde4b000.iommu: supply vdd not found\x1b[0m\r",
      "[2026-11-30 12:00:00] [    4.0] rk_iommu fe043e00.iommu: BUS_ERROR occurred at 0x0000000000001000",
      "\0\xff",
      "",
    ]).length,
    2,
  );
});

Deno.test("checkInstanceLog: a quiet IOMMU with its own fault line disagrees; others' lines do not count", async () => {
  const lines = rkIommuLines(log("rk_iommu_warning.log"));
  // 6.1: the NPU's IOMMU works (tables below 4 GiB), so its page fault contradicts the oracle.
  const ok = checkInstanceLog(await instance("6.1", "fde4b000"), lines);
  assert.equal(ok.outcome, "OK");
  assert.equal(ok.seen.length, 3);
  assert.match(
    ok.problem ?? "",
    /^fde4b000: predicted OK, the log shows "rk_iommu fde4b000\.iommu: Page fault/,
  );
  // The VOP's IOMMU is not named by those lines.
  const vop = checkInstanceLog(await instance("6.1", "fe043e00"), lines);
  assert.deepEqual([vop.seen, vop.problem], [[], undefined]);
  // A driver line that is no fault (a real ROCK 3B boot) is no contradiction.
  const boot = checkInstanceLog(
    await instance("6.1", "fde4b000"),
    rkIommuLines(log("rock3b_boot.log")),
  );
  assert.equal(boot.seen.length, 1);
  assert.equal(boot.problem, undefined);
});

Deno.test("checkInstanceLog: a faulting IOMMU's lines must be the ones the oracle expects", async () => {
  const bus = await instance("6.12", "fde4b000");
  assert.equal(bus.outcome, "BUS_ERROR");
  assert.deepEqual(checkInstanceLog(bus, []).expected, [
    "rk_iommu fde4b000.iommu: BUS_ERROR occurred at 0x<iova, 16 hex digits>",
  ]);
  // Not seen yet: the expected lines come with the first DMA (a workload), no contradiction.
  assert.equal(checkInstanceLog(bus, []).problem, undefined);
  assert.equal(
    checkInstanceLog(bus, ["rk_iommu fde4b000.iommu: BUS_ERROR occurred at 0x00000000fff00000"])
      .problem,
    undefined,
  );
  // A page fault where a bus error is predicted is another failure mode.
  assert.match(
    checkInstanceLog(bus, rkIommuLines(log("rk_iommu_warning.log"))).problem ?? "",
    /^fde4b000: predicted BUS_ERROR, the log shows an unexpected line "rk_iommu fde4b000\.iommu: Page fault/,
  );
  // UNCERTAIN: any of the possible outcomes may show.
  const unsure = await instance("6.12", "fdea0800");
  assert.equal(unsure.outcome, "UNCERTAIN");
  assert.equal(
    checkInstanceLog(unsure, [
      "rk_iommu fdea0800.iommu: Page fault at 0x0000000000001000 of type read",
    ])
      .problem,
    undefined,
  );
});
