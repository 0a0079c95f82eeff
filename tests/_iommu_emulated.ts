/**
 * Step `iommu/emulated` of the `iommu` suite, on a target with the `rk-iommu` capability whose
 * IOMMUs are emulated (issue 15): the emulator module (target/rkiommu-emu/), built for the
 * running kernel, lets the real rk_iommu driver run its masters' DMA; each instance's outcome,
 * table placement and log lines are judged against the oracle's prediction for the first
 * `--predict-board` board with a Rockchip SoC (the board whose IOMMUs are emulated), with the
 * target's live device tree (`/sys/firmware/fdt`), RAM, release and command line.
 *
 * @module
 */

import { boardFacts } from "../boards/facts.ts";
import { findBoard } from "../boards/load.ts";
import { isKnownRelease, parseRelease } from "../oracle/releases.ts";
import { InfraError } from "../runner/errors.ts";
import { buildEmuModule } from "../runner/rkiommu/build.ts";
import { judgeEmu } from "../runner/rkiommu/judge.ts";
import { runEmu } from "../runner/rkiommu/run.ts";
import { debianSpecOf } from "../runner/suite/debian_kernel.ts";
import { probeShellOf } from "../runner/suite/target_io.ts";
import type { StepContext, StepOutcome, SuiteStep } from "../runner/suite/types.ts";

async function liveFdt(ctx: StepContext): Promise<Uint8Array> {
  const r = await ctx.target.command.run("base64 /sys/firmware/fdt", { timeoutMs: 30_000 });
  if (r.exitStatus !== 0) {
    throw new InfraError(
      `cannot read /sys/firmware/fdt (status ${r.exitStatus})`,
      "the target's kernel must expose its device tree",
    );
  }
  const bin = atob(r.stdout.replace(/\s+/g, ""));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

async function run(ctx: StepContext): Promise<StepOutcome> {
  const rel = parseRelease(ctx.release);
  if (!rel || !isKnownRelease(rel)) {
    return {
      verdict: "SKIP",
      reason: `release ${ctx.release} is not in the driver knowledge base`,
    };
  }
  let modelled;
  for (const id of ctx.predictBoards) {
    const b = await findBoard(id);
    if (b.board.soc !== "qemu-virt") {
      modelled = b;
      break;
    }
  }
  if (!modelled) {
    return { verdict: "SKIP", reason: "no --predict-board board with a Rockchip SoC to judge by" };
  }
  const spec = await debianSpecOf(ctx);
  const ko = await ctx.once(
    `rkiommu_emu module ${spec}`,
    async () => await Deno.readFile((await buildEmuModule(spec)).ko),
  );
  const dtb = await liveFdt(ctx);
  const emu = await runEmu(probeShellOf(ctx.target, 120_000), ko);
  await Deno.mkdir(`${ctx.dir}/rkiommu`, { recursive: true });
  await Deno.writeTextFile(`${ctx.dir}/rkiommu/rkiommu_emu.txt`, emu.raw);
  const j = judgeEmu({
    report: emu.report,
    dmesg: emu.dmesg,
    cmdline: emu.cmdline,
    dtb,
    board: boardFacts(modelled.board, modelled.path),
    bound: emu.bound,
  });
  const details = {
    board: modelled.board.id,
    instances: j.observations.map((o) => ({
      unit: o.unit,
      observed: o.outcome ?? null,
      predicted: j.prediction.instances.find((i) => i.unit === o.unit)?.outcome ?? null,
      dt: o.dtPhys === undefined ? null : `0x${o.dtPhys.toString(16)}`,
      dtBounced: o.dtBounced ?? null,
      lines: o.logLines ?? [],
    })),
    errors: emu.report.errors.map((e) => e.line),
  };
  const summary = details.instances.map((i) => `${i.unit} ${i.observed ?? "?"}`).join(", ");
  const c = j.comparison;
  if (c.verdict === "agree") {
    return { verdict: "PASS", reason: `agree with the oracle (${summary})`, details };
  }
  if (c.verdict === "disagree") {
    const d = c.difference!;
    return {
      verdict: "FAIL",
      reason: `${d.unit}: ${d.fact}: predicted ${d.predicted}, observed ${d.observed}`,
      details,
    };
  }
  return {
    verdict: "ERROR",
    reason: `the emulation gave no outcome: ${c.missing.join("; ")}${
      details.errors.length ? ` (${details.errors.join("; ")})` : ""
    }`,
    details,
  };
}

/** The step (added by the `iommu` suite when the target has `rk-iommu`). */
export const emulatedStep: SuiteStep = { name: "iommu/emulated", run };
