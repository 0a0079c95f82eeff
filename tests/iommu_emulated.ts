/**
 * Suite `iommu-emulated`: the real `rockchip-iommu` driver of the running release on emulated
 * Rockchip IOMMUs (issue 15), one boot of its own per scenario of
 * {@linkcode EMU_SCENARIOS} (the ROCK 3B's NPU and VOP2 MMUs as rk356x-base.dtsi binds them;
 * the same with `swiotlb=force`; the Rocket RFC's tree with the NPU MMU as `rockchip,iommu`
 * probing first). Each step loads the emulator module on that boot, has the masters map and
 * access pages, and judges every instance's outcome, table placement and log lines against the
 * oracle (tests/_iommu_emulated.ts). Needs `boot-config`: rkhil chooses the boot's device tree,
 * memory and command line (the QEMU targets).
 *
 * @module
 */
import type { Suite } from "../runner/suite/types.ts";
import { EMU_SCENARIOS, emulatedScenarioStep } from "./_iommu_emulated.ts";

/** The `iommu-emulated` suite. */
export const suite: Suite = {
  name: "iommu-emulated",
  description:
    "the real rk_iommu driver on emulated ROCK 3B IOMMUs, a boot per scenario (dtsi, swiotlb=force, NPU MMU as rockchip,iommu), judged against the oracle",
  requires: ["boot-config"],
  steps: () => EMU_SCENARIOS.map(emulatedScenarioStep),
};
