/**
 * Published reference results the workload suites judge against, each with its source. The
 * score bands allow for the quantisation and resize differences between backends (the RKNN
 * stack, Teflon, TFLite on the CPU) around the published number.
 *
 * @module
 */

import type { Box, ExpectedObject } from "./yolo.ts";

/** What a classification of one image must give. */
export interface ClassificationReference {
  /** Image, as a path in models/ (`images/dog_224x224.jpg`). */
  image: string;
  /** Accepted top-1 class indices (ImageNet with background: 0 = background). */
  top1: number[];
  /** Band the top-1 score must fall in, inclusive; absent: no published score. */
  band?: [number, number];
  /** The published number and where it comes from. */
  source: string;
}

/** MobileNetV1 1.0/224 uint8 on the four images. */
export const MOBILENET_V1_REFERENCES: readonly ClassificationReference[] = [
  {
    image: "images/grace_hopper.bmp",
    top1: [653], // military uniform
    band: [0.75, 0.98],
    source:
      "Mesa docs/teflon.rst, this quantised MobileNetV1 through Teflon on grace_hopper.bmp: " +
      "`0.870588: military uniform`; TensorFlow label_image's classic result is also 653",
  },
  {
    image: "images/dog_224x224.jpg",
    top1: [156], // Shih-Tzu
    band: [0.85, 1.0],
    source: "rknn_mobilenet_demo (mobilenet_v1.rknn) on dog_224x224.jpg: `156: 0.947754` " +
      "(research/npu-workloads.md §1.3), rknn_common_test on RK356x 0.98 (models MANIFEST)",
  },
  {
    image: "images/cat_224x224.jpg",
    top1: [283, 282, 285], // tiger cat, tabby, Egyptian cat: the published top-2 are 283 then 282
    band: [0.3, 0.65],
    source: "rknn_mobilenet_demo on a Rock 5B, cat_224x224.jpg: `283: 0.468750 282: 0.242188` " +
      "(research/npu-workloads.md §1.3)",
  },
  {
    image: "images/bus.jpg",
    top1: [655, 875, 780, 706, 830, 735], // minibus, trolleybus, school bus, passenger car, streetcar, police van
    source: "no published MobileNetV1 result for bus.jpg: any road vehicle of ImageNet is " +
      "accepted and the score is not judged (NPU backends are held against the cpu result)",
  },
];

/** Where an expected object of the RKNN YOLOv5 demo's output is. */
function person(box: Box, required: boolean): ExpectedObject {
  return { classIndex: 0, box, required };
}

/** What detection on one image must give. */
export interface DetectionReference {
  /** Image, as a path in models/. */
  image: string;
  /** The objects; those with `required` must be found (class and IoU ≥ 0.5). */
  objects: ExpectedObject[];
  /** The published result and where it comes from. */
  source: string;
}

/**
 * bus.jpg: what `rknn_yolov5_demo` with Rockchip's yolov5s-640-640.rknn prints (the same five
 * lines are reproduced on RK3566/RK3568/RK3588/RV1126B boards in board vendors' guides and in
 * go-rknnlite's YOLOv5 example): four people and a bus. The objects scored at least 0.5 there
 * are required; the small person at 0.30 is reported only (YOLOv5n finds fewer small people).
 */
export const YOLOV5_BUS_REFERENCE: DetectionReference = {
  image: "images/bus.jpg",
  objects: [
    person([209, 243, 286, 510], true), // 0.879723
    person([479, 238, 560, 526], true), // 0.870588
    person([109, 238, 231, 534], true), // 0.839831
    { classIndex: 5, box: [91, 129, 555, 464], required: true }, // bus 0.692042
    person([79, 353, 121, 517], false), // 0.300961
  ],
  source:
    "rknn_yolov5_demo, yolov5s-640-640.rknn, bus.jpg: `person @ (209 243 286 510) 0.879723`, " +
    "`person @ (479 238 560 526) 0.870588`, `person @ (109 238 231 534) 0.839831`, " +
    "`bus @ (91 129 555 464) 0.692042`, `person @ (79 353 121 517) 0.300961`",
};
