/**
 * Suite `npu/mobilenet_v1`: MobileNetV1 1.0/224 uint8 (Mesa's 31 single-operator slices,
 * chained: the network the seed timed at 5.8 ms on a ROCK 3B's NPU) on grace_hopper.bmp,
 * dog_224x224.jpg, cat_224x224.jpg and bus.jpg, on every backend the target has (cpu, rknn,
 * rocket; tests/_npu.ts): top-1 and score band against the published references
 * (runner/workload/references.ts), NPU results against the cpu's, the oracle's workload verdict
 * for this board and kernel against what happened, latency against the oracle's band and the
 * target's own baseline. Needs nothing: a backend the target lacks is one SKIP with its reason.
 *
 * @module
 */
import type { Suite } from "../runner/suite/types.ts";
import { MOBILENET_V1 } from "../runner/workload/models.ts";
import { MOBILENET_V1_REFERENCES } from "../runner/workload/references.ts";
import { npuSteps, type NpuSuiteSpec } from "./_npu.ts";

/** The suite's definition (model, references, passes per backend, the RKNN SDK's files). */
export const MOBILENET_V1_SPEC: NpuSuiteSpec = {
  prefix: "mobilenet_v1",
  model: MOBILENET_V1,
  oracleName: () => "mobilenet_v1",
  references: MOBILENET_V1_REFERENCES,
  // The cpu under TCG takes about 1.5 s a pass: 1 warm-up + 3 samples per image (12 in all).
  passes: {
    cpu: { warmup: 1, loops: 3 },
    rocket: { warmup: 5, loops: 20 },
    rknn: { warmup: 5, loops: 20 },
  },
  rknn: { demo: "rknn_mobilenet_demo", model: "mobilenet_v1.rknn" },
};

/** The `npu/mobilenet_v1` suite. */
export const suite: Suite = {
  name: "npu/mobilenet_v1",
  description:
    "MobileNetV1 1.0/224 on four images per backend (cpu, rknn, rocket): references, cpu, oracle verdict, latency",
  requires: [],
  steps: (ctx) => npuSteps(MOBILENET_V1_SPEC, ctx),
};
