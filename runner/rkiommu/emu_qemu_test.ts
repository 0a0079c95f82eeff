/**
 * The real rockchip-iommu driver of Debian 6.1 and 6.12 on emulated IOMMUs (issue 15): 8 GiB
 * QEMU guests booted with QEMU's own virt tree plus the ROCK 3B's NPU MMU (v1.0 hardware, bound
 * as `rockchip,rk3568-iommu`) and VOP2's MMU (v2.0), the emulator module loaded, a master per
 * IOMMU mapping pages through the DMA API. Two boots: 6.1 directly (runEmu), 6.12 through the
 * `iommu` suite on a QemuTarget with `iommus` (capability `rk-iommu`, step `iommu/emulated`);
 * 7.3 and swiotlb=force are held as captures in report_test.ts.
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
import { QemuTarget } from "../qemu/target.ts";
import { shutdownQemu } from "../suite/plans.ts";
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
  "debian:trixie: the iommu suite on a QEMU target with emulated IOMMUs (rk-iommu): iommu/emulated PASS with the real driver's BUS_ERROR on the NPU MMU, VOP2 OK",
  opts,
  async () => {
    const kernel = "debian:trixie";
    const root = `${runRoot}/suite`;
    const job = await runJob({
      plans: [{
        name: "qemu-virt-8g",
        kernel,
        bootDetails: { memory: "8G", iommus: "npu,vop" },
        open: (dir) =>
          QemuTarget.prepare({ kernel, runDir: dir, memory: "8G", iommus: ["npu", "vop"] }),
      }],
      suites: selectSuites(["boot", "iommu"]),
      predictBoards: ["rock-3b-8g"],
      runsRoot: root,
      shutdown: shutdownQemu,
      log: () => {},
    });
    const by = new Map(job.results.map((r) => [r.test, r]));
    // No rk_iommu line at boot: the fresh tree's IOMMUs probe quietly (fixed clocks given).
    assert.equal(by.get("iommu/log")?.verdict, "PASS", JSON.stringify(by.get("iommu/log")));
    const emu = by.get("iommu/emulated")!;
    assert.equal(emu.verdict, "PASS", JSON.stringify(emu));
    assert.match(emu.reason ?? "", /agree with the oracle \(fde4b000 BUS_ERROR, fe043e00 OK\)/);
    const inst = (emu.details as { instances: { unit: string; dt: string; lines: string[] }[] })
      .instances;
    assert.ok(BigInt(inst[0].dt) >= BigInt(FOUR_GIB), inst[0].dt);
    assert.ok(
      inst[0].lines.some((l) =>
        l.includes("rk_iommu fde4b000.iommu: BUS_ERROR occurred at 0x00000000fffff040")
      ),
      inst[0].lines.join("\n"),
    );
    assert.deepEqual(inst[1].lines, []);
    assert.equal(
      job.exitCode,
      0,
      JSON.stringify(job.results.filter((r) => r.verdict !== "PASS" && r.verdict !== "DONE")),
    );
    assert.deepEqual(await waitNoneUnder(root), []);
  },
);
