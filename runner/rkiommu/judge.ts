/**
 * Judgement of the real rk_iommu driver on emulated IOMMUs (issue 15): the oracle's prediction
 * for the modelled board (its SoC's hardware facts), the guest's own memory banks, the device
 * tree the guest booted (runner/qemu/iommu_dtb.ts) and the running release and command line,
 * held against what the emulated device saw (runner/rkiommu/report.ts) with the oracle's own
 * `compare()`. oracle/ stays pure: this is the runner's side.
 *
 * @module
 */

import { compare, type Comparison, type InstanceObservation } from "../../oracle/compare.ts";
import { predict } from "../../oracle/predict.ts";
import type { Prediction } from "../../oracle/prediction.ts";
import { isKnownRelease, parseRelease, releaseKey } from "../../oracle/releases.ts";
import { type BoardFacts, buildScenario } from "../../oracle/scenario.ts";
import type { PhysRange } from "../../oracle/types.ts";
import { UserInputError } from "../errors.ts";
import { parseFdt } from "../fdt/fdt.ts";
import { iommuNodes, memoryBanks } from "../fdt/iommus.ts";
import { type EmuReport, observationOf } from "./report.ts";

/** Inputs of {@linkcode judgeEmu}. */
export interface JudgeInput {
  /** The module's parsed report. */
  report: EmuReport;
  /** The guest's `dmesg` after the run. */
  dmesg: string;
  /** The guest's `/proc/cmdline`. */
  cmdline: string;
  /** The DTB the guest booted (`rkiommu.dtb` of the run directory). */
  dtb: Uint8Array;
  /** The modelled board's facts (`rock-3b-8g`): its SoC decides the hardware revisions. */
  board: BoardFacts;
  /** Units rk_iommu is bound to (`/sys/bus/platform/drivers/rk_iommu/<unit>.iommu`). */
  bound: ReadonlySet<string>;
}

/** The prediction, what was observed per instance, and the comparison. */
export interface Judgement {
  /** The running kernel's release (`uname -r`). */
  release: string;
  /** The oracle's prediction for the board as booted. */
  prediction: Prediction;
  /** What the emulated device showed, per instance. */
  observations: InstanceObservation[];
  /** The oracle's `compare()` of the two. */
  comparison: Comparison;
}

/**
 * Predict for the board as booted (the DTB's IOMMU nodes, the guest's RAM banks from its
 * `/memory` node, the running release and command line) and compare each emulated instance.
 *
 * @throws {UserInputError} when the running release is not in the driver knowledge base.
 */
export function judgeEmu(input: JudgeInput): Judgement {
  const rel = parseRelease(input.report.release);
  if (!rel || !isKnownRelease(rel)) {
    throw new UserInputError(
      `release ${input.report.release} is not in the driver knowledge base`,
      "boot a kernel whose release oracle/releases.ts knows",
    );
  }
  const tree = parseFdt(input.dtb);
  const banks: PhysRange[] = memoryBanks(tree).map((b) => ({
    start: Number(b.address),
    end: Number(b.address + b.size),
  }));
  const board: BoardFacts = {
    ...input.board,
    banks: banks.length ? banks : input.board.banks,
    ramSource: "the guest's boot DTB /memory",
    ramConfidence: "verified",
  };
  const nodes = iommuNodes(tree, "rkiommu.dtb");
  const prediction = predict(buildScenario({
    board,
    kernel: releaseKey(rel),
    devicetree: nodes,
    bootargs: input.cmdline.trim(),
  }));
  const observations = input.report.instances.map((i) =>
    observationOf(input.report, i.unit, input.dmesg, input.bound.has(i.unit))
  );
  return {
    release: input.report.release,
    prediction,
    observations,
    comparison: compare(prediction, { instances: observations }),
  };
}
