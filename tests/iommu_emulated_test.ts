/**
 * The `iommu/emulated` step on a target whose device tree has real Rockchip IOMMUs (a ROCK 3B's
 * own DTB from Debian 7.3's package, runner/fdt/testdata): SKIP with the reason after reading the
 * live tree, and nothing is built, uploaded or loaded. The scenarios' variants are in
 * runner/suite/plans_test.ts; the step on emulated IOMMUs in runner/rkiommu/emu_qemu_test.ts.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { StepContext } from "../runner/suite/types.ts";
import { EMU_SCENARIOS, emulatedScenarioStep, emulatedStep } from "./_iommu_emulated.ts";

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
