/**
 * The HIL suites users run against targets (`rkhil run --suite NAME`), in the order a run takes
 * them. Each is one module of this folder exporting `suite` (runner/suite/types.ts): a name, a
 * one-line description, the capabilities it needs, and steps written once for every target.
 *
 * @module
 */
import { UserInputError } from "../runner/errors.ts";
import { escapeControls } from "../runner/safe_text.ts";
import type { Suite } from "../runner/suite/types.ts";
import { suite as boot } from "./boot.ts";
import { suite as driver } from "./driver.ts";
import { suite as iommu } from "./iommu.ts";
import { suite as iommuEmulated } from "./iommu_emulated.ts";
import { suite as npuMobilenetV1 } from "./npu_mobilenet_v1.ts";
import { suite as npuYolov5 } from "./npu_yolov5.ts";
import { suite as probe } from "./probe.ts";
import { suite as probeBoot } from "./probe_boot.ts";

/** Every suite, in run order. */
export const SUITES: readonly Suite[] = [
  boot,
  driver,
  iommu,
  iommuEmulated,
  probe,
  probeBoot,
  npuMobilenetV1,
  npuYolov5,
];

/**
 * The suites named, in run order (all of them when `names` is empty).
 *
 * @throws {UserInputError} for an unknown name, with the known ones (exit 2 before any work).
 */
export function selectSuites(names: readonly string[]): Suite[] {
  const unknown = names.filter((n) => !SUITES.some((s) => s.name === n));
  if (unknown.length) {
    throw new UserInputError(
      `unknown suite ${
        unknown.map((n) => JSON.stringify(escapeControls(n.slice(0, 60)))).join(", ")
      }`,
      `use one of: ${SUITES.map((s) => s.name).join(", ")}`,
    );
  }
  return SUITES.filter((s) => !names.length || names.includes(s.name));
}
