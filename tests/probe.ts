/**
 * Suite `probe`: the probe-module scenarios that run on the target as it booted (`v1`,
 * `v2-6.1`, `v2-6.6`, `v2-6.6-vop`, `bounce`): the module, built for the running kernel,
 * replays the rockchip-iommu driver's table allocation, DMA mapping and flush on the real
 * allocator, DMA API and SWIOTLB, and the oracle's prediction for the kernel's measured memory
 * is held against what it reports. The same records on the embedded target and on a board.
 * Needs `probe-module`.
 *
 * @module
 */
import { SCENARIOS } from "../runner/probe/scenarios.ts";
import type { Suite } from "../runner/suite/types.ts";
import { predictScenarios, scenarioStep } from "./_probe_steps.ts";

const AS_BOOTED = SCENARIOS.filter((s) => !s.boot.memory && !s.boot.append);

/** The `probe` suite. */
export const suite: Suite = {
  name: "probe",
  description:
    "the probe module replays the driver's table sequence on the running kernel; the oracle predicts each scenario",
  requires: ["probe-module"],
  predict: (ctx) => predictScenarios(AS_BOOTED, ctx),
  steps: () => AS_BOOTED.map(scenarioStep),
};
