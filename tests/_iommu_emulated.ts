/**
 * Step `iommu/emulated` of the `iommu` suite, on a target with the `rk-iommu` capability whose
 * IOMMUs are emulated (issue 15): the emulator module (target/rkiommu-emu/), built for the
 * running kernel, lets the real rk_iommu driver run its masters' DMA; each instance's outcome,
 * table placement and log lines are judged against the oracle's prediction for the first
 * `--predict-board` board with a Rockchip SoC (the board whose IOMMUs are emulated), with the
 * target's live device tree (`/sys/firmware/fdt`), RAM, release and command line.
 *
 * On a target that can boot them (`boot-config`: the QEMU targets of `rkhil run`) the suite runs
 * the {@linkcode EMU_SCENARIOS}, each on a boot of its own with the scenario's emulated IOMMUs,
 * memory and command line; the result's details carry the scenario, so the run's report shows
 * release × instance × scenario (runner/rkiommu/table.ts).
 *
 * @module
 */

import { boardFacts } from "../boards/facts.ts";
import { findBoard } from "../boards/load.ts";
import type { Difference } from "../oracle/compare.ts";
import { isKnownRelease, parseRelease } from "../oracle/releases.ts";
import { InfraError } from "../runner/errors.ts";
import { parseFdt } from "../runner/fdt/fdt.ts";
import { buildEmuModule } from "../runner/rkiommu/build.ts";
import { judgeEmu, type Judgement } from "../runner/rkiommu/judge.ts";
import { runEmu } from "../runner/rkiommu/run.ts";
import { debianSpecOf } from "../runner/suite/debian_kernel.ts";
import { probeShellOf } from "../runner/suite/target_io.ts";
import type { StepContext, StepOutcome, SuiteStep, Variant } from "../runner/suite/types.ts";

/** One emulated-IOMMU scenario of the main job: a boot of its own (a {@linkcode Variant}). */
export interface EmuScenario {
  /** Short id, as the report's scenario column shows it (`dtsi`, `swiotlb-force`). */
  id: string;
  /** The step's test id (`iommu/emulated/<id>`). */
  step: string;
  /** What the scenario is, one line. */
  description: string;
  /** The boot: emulated IOMMUs (in probe order), memory, command line. */
  variant: Variant;
}

/**
 * The scenarios `rkhil run` gives every kernel (issue 15): the ROCK 3B's NPU MMU (v1.0) and
 * VOP2's MMU (v2.0) as rk356x-base.dtsi binds them; the same with `swiotlb=force` (every table
 * bounced); and the Rocket RFC's tree, the NPU MMU bound as `rockchip,iommu` (v1 ops) probing
 * before VOP2's. Each is one boot per kernel of the base target's memory.
 */
export const EMU_SCENARIOS: readonly EmuScenario[] = [
  {
    id: "dtsi",
    step: "iommu/emulated/dtsi",
    description: "NPU MMU and VOP2 MMU as rockchip,rk3568-iommu (rk356x-base.dtsi)",
    variant: { iommus: ["npu", "vop"] },
  },
  {
    id: "swiotlb-force",
    step: "iommu/emulated/swiotlb-force",
    description: "the same with swiotlb=force: every table is bounced",
    variant: { append: "swiotlb=force", iommus: ["npu", "vop"] },
  },
  {
    id: "npu-rockchip-iommu",
    step: "iommu/emulated/npu-rockchip-iommu",
    description: "the Rocket RFC's tree: the NPU MMU as rockchip,iommu, probing before VOP2's",
    variant: { iommus: ["npu-rfc", "vop"] },
  },
];

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

async function run(ctx: StepContext, scenario?: EmuScenario): Promise<StepOutcome> {
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
  const dtb = await liveFdt(ctx);
  // Only IOMMUs rkhil put into the boot tree are emulated: never load the emulator beside real
  // ones (a board's `rk-iommu`).
  if (!parseFdt(dtb).nodes.some((n) => n.prop("rkhil,revision"))) {
    return {
      verdict: "SKIP",
      reason: "no emulated IOMMU in the target's device tree (no node with rkhil,revision): " +
        "real IOMMUs are exercised by the workload suites",
    };
  }
  const spec = await debianSpecOf(ctx);
  const ko = await ctx.once(
    `rkiommu_emu module ${spec}`,
    async () => await Deno.readFile((await buildEmuModule(spec)).ko),
  );
  const emu = await runEmu(probeShellOf(ctx.target, 120_000), ko);
  await Deno.mkdir(`${ctx.dir}/rkiommu`, { recursive: true });
  await Deno.writeTextFile(`${ctx.dir}/rkiommu/rkiommu_emu.txt`, emu.raw);
  await Deno.writeTextFile(`${ctx.dir}/rkiommu/dmesg.txt`, emu.dmesg);
  await Deno.writeFile(`${ctx.dir}/rkiommu/live.dtb`, dtb);
  const j = judgeEmu({
    report: emu.report,
    dmesg: emu.dmesg,
    cmdline: emu.cmdline,
    dtb,
    board: boardFacts(modelled.board, modelled.path),
    bound: emu.bound,
  });
  return emulatedOutcome(j, {
    board: modelled.board.id,
    scenario: scenario?.id ?? "target",
    errors: emu.report.errors.map((e) => e.line),
  });
}

/** `<fact>: predicted <x>, observed <y>`, as the step's reason and the report name a difference. */
function differenceText(d: Difference): string {
  return `${d.fact}: predicted ${d.predicted}, observed ${d.observed}`;
}

/**
 * The step's outcome for a judgement: PASS when the oracle's comparison agrees, FAIL naming the
 * first difference, ERROR when the emulation gave no outcome. `details.instances[]` carries, per
 * observed instance, the outcome observed and predicted, the directory (`0x…` or `null`), whether
 * it was bounced, the driver's lines, and the instance's own comparison: `verdict` (`agree`,
 * `disagree`, `inconclusive`, or `null` when the prediction has no such instance), `difference`
 * (`<fact>: predicted <x>, observed <y>` with `disagree`, else `null`) and `missing` (what was
 * missing to decide). The report's table (runner/rkiommu/table.ts) shows these per instance.
 *
 * @param j the judgement (runner/rkiommu/judge.ts)
 * @param meta the modelled board's id, the scenario id (`target` on a target's own), and the
 *   emulator's own error lines
 */
export function emulatedOutcome(
  j: Judgement,
  meta: { board: string; scenario: string; errors: string[] },
): StepOutcome {
  const details = {
    board: meta.board,
    scenario: meta.scenario,
    release: j.release,
    instances: j.observations.map((o) => {
      const ic = j.comparison.instances.find((i) => i.unit === o.unit.toLowerCase());
      return {
        unit: o.unit,
        observed: o.outcome ?? null,
        predicted: j.prediction.instances.find((i) => i.unit === o.unit)?.outcome ?? null,
        dt: o.dtPhys === undefined ? null : `0x${o.dtPhys.toString(16)}`,
        dtBounced: o.dtBounced ?? null,
        lines: o.logLines ?? [],
        verdict: ic?.verdict ?? null,
        difference: ic?.difference ? differenceText(ic.difference) : null,
        missing: ic?.missing ?? [],
      };
    }),
    errors: meta.errors,
  };
  const summary = details.instances.map((i) => `${i.unit} ${i.observed ?? "?"}`).join(", ");
  const c = j.comparison;
  if (c.verdict === "agree") {
    return { verdict: "PASS", reason: `agree with the oracle (${summary})`, details };
  }
  if (c.verdict === "disagree") {
    const d = c.difference!;
    return { verdict: "FAIL", reason: `${d.unit}: ${differenceText(d)}`, details };
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
export const emulatedStep: SuiteStep = { name: "iommu/emulated", run: (ctx) => run(ctx) };

/** The step of one scenario, on a boot of its own (added on targets with `boot-config`). */
export function emulatedScenarioStep(scenario: EmuScenario): SuiteStep {
  return { name: scenario.step, variant: scenario.variant, run: (ctx) => run(ctx, scenario) };
}
