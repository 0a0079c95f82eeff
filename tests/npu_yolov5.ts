/**
 * Suite `npu/yolov5`: YOLOv5 detection on bus.jpg on every backend the target has (cpu, rknn,
 * rocket; tests/_npu.ts). cpu and rocket run YOLOv5n int8 (vendored) through rkwl and the one
 * host decode (runner/workload/yolo.ts: letterbox undone, NMS); rknn runs the operator's
 * yolov5s-640-640.rknn with the SDK's `rknn_yolov5_demo`. Judged: the RKNN demo's three people
 * and the bus (class and IoU ≥ 0.5), NPU detections against the cpu's, the oracle's workload
 * verdict for this board and kernel against what happened, latency against the oracle's band
 * (YOLOv5s on rknn) and the target's own baseline. Needs nothing.
 *
 * @module
 */
import type { Suite } from "../runner/suite/types.ts";
import { YOLOV5N } from "../runner/workload/models.ts";
import { YOLOV5_BUS_REFERENCE } from "../runner/workload/references.ts";
import { npuSteps, type NpuSuiteSpec } from "./_npu.ts";

/** The suite's definition (model, reference, passes per backend, the RKNN SDK's files). */
export const YOLOV5_SPEC: NpuSuiteSpec = {
  prefix: "yolov5",
  model: YOLOV5N,
  // The oracle's latency band is YOLOv5s's (the rknn backend's model); rkwl runs YOLOv5n.
  oracleName: (backend) => backend === "rknn" ? "yolov5s" : "yolov5n",
  references: [YOLOV5_BUS_REFERENCE],
  // The cpu under TCG takes 7-12 s a pass: 1 warm-up + 1 sample.
  passes: {
    cpu: { warmup: 1, loops: 1 },
    rocket: { warmup: 2, loops: 10 },
    rknn: { warmup: 2, loops: 10 },
  },
  rknn: {
    demo: "rknn_yolov5_demo",
    model: "yolov5s-640-640.rknn",
    // The demo reads its labels from ./model/ (it runs in firmware_dir).
    files: ["model/coco_80_labels_list.txt"],
  },
};

/** The `npu/yolov5` suite. */
export const suite: Suite = {
  name: "npu/yolov5",
  description:
    "YOLOv5 on bus.jpg per backend (cpu, rknn, rocket): expected objects, cpu, oracle verdict, latency",
  requires: [],
  steps: (ctx) => npuSteps(YOLOV5_SPEC, ctx),
};
