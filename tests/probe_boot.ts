/**
 * Suite `probe-boot`: the probe-module scenarios that need a boot of their own
 * (`swiotlb-force`: every mapping bounces; `mem-below-4g`: `mem=3G`; `2g`: a 2 GiB target),
 * each on a target the runner boots with that memory and command line. Needs `probe-module`
 * and `boot-config` (rkhil chooses RAM and command line per boot: QEMU targets, and boards once
 * kernel deployment comes).
 *
 * @module
 */
import { SCENARIOS } from "../runner/probe/scenarios.ts";
import type { Suite } from "../runner/suite/types.ts";
import { predictScenarios, scenarioStep } from "./_probe_steps.ts";

const OWN_BOOT = SCENARIOS.filter((s) => s.boot.memory || s.boot.append);

/** The `probe-boot` suite. */
export const suite: Suite = {
  name: "probe-boot",
  description: "the probe scenarios that need their own boot (swiotlb=force, mem=3G, 2 GiB)",
  requires: ["probe-module", "boot-config"],
  predict: (ctx) => predictScenarios(OWN_BOOT, ctx),
  steps: () => OWN_BOOT.map(scenarioStep),
};
