/**
 * The real rockchip-iommu driver of Debian 6.1 and 6.12 on emulated IOMMUs (issue 15): 8 GiB
 * QEMU guests booted with QEMU's own virt tree plus the ROCK 3B's NPU MMU (v1.0 hardware, bound
 * as `rockchip,rk3568-iommu`) and VOP2's MMU (v2.0), the emulator module loaded, a master per
 * IOMMU mapping pages through the DMA API. 6.1 directly (runEmu, one boot); 6.12 as `rkhil run`
 * plans it: the `iommu-emulated` suite on the embedded target, each scenario a boot of its own
 * (dtsi, swiotlb=force, the NPU MMU as rockchip,iommu probing first; four boots with the base);
 * 7.3 and the other releases' scenarios are held as captures in report_test.ts.
 */
import assert from "node:assert/strict";
import { findBoard } from "../../boards/load.ts";
import { boardFacts } from "../../boards/facts.ts";
import { withQemuTarget } from "../qemu/target.ts";
import { probeShellOf } from "../suite/target_io.ts";
import { testRunRoot } from "../test_dirs.ts";
import { buildEmuModule } from "./build.ts";
import { judgeEmu } from "./judge.ts";
import { runEmu } from "./run.ts";
import { selectSuites } from "../../tests/mod.ts";
import { qemuPlans, shutdownQemu } from "../suite/plans.ts";
import { runJob } from "../suite/run_job.ts";
import { waitNoneUnder } from "../jobs/_qemu_procs.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const runRoot = await testRunRoot("rkhil-rkiommu-test-");
const board = await findBoard("rock-3b-8g");
const facts = boardFacts(board.board, board.path);
const FOUR_GIB = 2 ** 32;

for (const [spec, npuOutcome] of [["debian:bookworm", "OK"]] as const) {
  Deno.test(
    `${spec}: the real rk_iommu on emulated NPU and VOP2 MMUs, 8 GiB: NPU ${npuOutcome}, VOP2 OK, as the oracle predicts`,
    opts,
    async () => {
      const mod = await buildEmuModule(spec);
      const runDir = `${runRoot}/${spec.replace(":", "_")}`;
      await withQemuTarget(
        { kernel: spec, runDir, memory: "8G", iommus: ["npu", "vop"] },
        async (g) => {
          assert.equal(g.release, mod.release);
          const run = await runEmu(probeShellOf(g, 120_000), await Deno.readFile(mod.ko));
          // The built-in driver bound both nodes, its registers are the reserved RAM, its IRQs
          // are the boards' SPIs (151 + 32, 148 + 32).
          assert.deepEqual([...run.bound].sort(), ["fde4b000", "fe043e00"]);
          assert.ok(
            run.iomem.includes("fde4b000-fde4b0ff : fde4b000.iommu iommu@fde4b000"),
            run.iomem.join("\n"),
          );
          assert.ok(run.iomem.includes("fe043f00-fe043fff : fe043e00.iommu iommu@fe043e00"));
          assert.match(run.interrupts.join("\n"), /GIC-0 183 Level\s+fde4b000\.iommu/);
          assert.match(run.interrupts.join("\n"), /GIC-0 180 Level\s+fe043e00\.iommu/);
          const r = run.report;
          assert.deepEqual(r.errors, []);
          assert.equal(r.accesses.length, 16);
          const npu = r.accesses.filter((a) => a.dev === "rkhil-npu-master");
          const vop = r.accesses.filter((a) => a.dev === "rkhil-vop-master");
          // VOP2 (v2.0, 40-bit walker) works on every release.
          assert.ok(vop.every((a) => a.result === "ok" && a.data === "match"), run.raw);
          if (npuOutcome === "OK") {
            assert.ok(npu.every((a) => a.result === "ok" && a.data === "match"), run.raw);
            assert.ok(npu.every((a) => a.dt < FOUR_GIB), "6.1: GFP_DMA32 directory");
            assert.ok(!run.dmesg.includes("BUS_ERROR"));
          } else {
            for (const a of npu) {
              assert.equal(a.result, "bus_error", run.raw);
              assert.equal(a.irq, "handled");
              assert.ok(a.dt >= FOUR_GIB, `directory 0x${a.dt.toString(16)} above 4 GiB`);
              const iova = a.iova.toString(16).padStart(16, "0");
              assert.ok(
                run.dmesg.includes(`rk_iommu fde4b000.iommu: BUS_ERROR occurred at 0x${iova}`),
                `the driver's own line for 0x${iova}`,
              );
            }
          }
          // Data pages above 4 GiB on both (the v1.0 block maps 40-bit pages).
          assert.ok(r.mappings.every((m) => m.phys >= FOUR_GIB));
          const j = judgeEmu({
            report: r,
            dmesg: run.dmesg,
            cmdline: run.cmdline,
            dtb: await Deno.readFile(`${runDir}/rkiommu.dtb`),
            board: facts,
            bound: run.bound,
          });
          assert.equal(j.comparison.verdict, "agree", JSON.stringify(j.comparison));
          assert.deepEqual(j.observations.map((o) => o.outcome), [npuOutcome, "OK"]);
          console.log(
            `${mod.release}: ` +
              j.observations.map((o) =>
                `${o.unit} ${o.outcome} dt=${
                  o.dtPhys?.toString(16) ?? "bounced"
                } (${o.logLines?.length} lines)`
              ).join("; "),
          );
          const alive = await probeShellOf(g).exec(
            "echo alive; dmesg | grep -c -E 'Oops|BUG:' || true",
          );
          assert.match(alive.stdout, /^alive\n0$/m);
        },
      );
    },
  );
}

Deno.test(
  "debian:trixie: rkhil run's iommu-emulated suite, a boot per scenario: the NPU MMU's BUS_ERROR (dtsi), page faults on bounced tables (swiotlb=force), VOP2's failed probe and the NPU's wrong pages (rockchip,iommu first); every instance agrees with the oracle; report.md's table",
  opts,
  async () => {
    const root = `${runRoot}/suite`;
    // The main job's own planning (rkhil run): the plain embedded target, each scenario a
    // variant boot with its emulated IOMMUs.
    const job = await runJob({
      plans: qemuPlans(["debian:trixie"]),
      suites: selectSuites(["boot", "iommu-emulated"]),
      predictBoards: ["rock-3b-8g"],
      runsRoot: root,
      shutdown: shutdownQemu,
      log: () => {},
    });
    const by = new Map(job.results.map((r) => [r.test, r]));
    type Inst = {
      unit: string;
      observed: string;
      predicted: string;
      dt: string | null;
      dtBounced: boolean | null;
      lines: string[];
    };
    const inst = (test: string) => {
      const r = by.get(test)!;
      assert.equal(r?.verdict, "PASS", JSON.stringify(r));
      return (r.details as { instances: Inst[] }).instances;
    };
    const dtsi = inst("iommu/emulated/dtsi");
    assert.deepEqual(dtsi.map((i) => [i.unit, i.observed]), [
      ["fde4b000", "BUS_ERROR"],
      ["fe043e00", "OK"],
    ]);
    assert.ok(BigInt(dtsi[0].dt!) >= BigInt(FOUR_GIB), dtsi[0].dt!);
    assert.ok(
      dtsi[0].lines.some((l) =>
        l.includes("rk_iommu fde4b000.iommu: BUS_ERROR occurred at 0x00000000fffff040")
      ),
      dtsi[0].lines.join("\n"),
    );
    assert.deepEqual(dtsi[1].lines, []);
    const bounced = inst("iommu/emulated/swiotlb-force");
    assert.deepEqual(bounced.map((i) => [i.observed, i.dtBounced]), [
      ["PAGE_FAULT", true],
      ["PAGE_FAULT", true],
    ]);
    assert.ok(bounced[0].lines.some((l) => /rk_iommu fde4b000\.iommu: Page fault at/.test(l)));
    const rfc = inst("iommu/emulated/npu-rockchip-iommu");
    assert.deepEqual(rfc.map((i) => [i.unit, i.observed, i.predicted]), [
      ["fde4b000", "WRONG_PAGE", "WRONG_PAGE"],
      ["fe043e00", "PROBE_FAILED", "PROBE_FAILED"],
    ]);
    assert.ok(!rfc[0].lines.some((l) => l.includes("BUS_ERROR")), rfc[0].lines.join("\n"));
    assert.ok(
      rfc[1].lines.some((l) => l.includes("probe with driver rk_iommu failed with error -22")),
    );
    const report = await Deno.readTextFile(`${job.dir}/report.md`);
    assert.match(report, /## The real rk_iommu driver on emulated IOMMUs/);
    assert.match(report, /\| npu-rockchip-iommu \| fe043e00 \| PROBE_FAILED \|.*\| agree \|/);
    assert.equal(
      job.exitCode,
      0,
      JSON.stringify(job.results.filter((r) => r.verdict !== "PASS" && r.verdict !== "DONE")),
    );
    assert.deepEqual(await waitNoneUnder(root), []);
  },
);
