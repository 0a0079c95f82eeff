/**
 * The workload suites' own logic without a target: which steps a target's capabilities give,
 * and how a judged run on real captures becomes a result (tests/_npu.ts). The suites on a real
 * guest are in runner/workload/guest_qemu_test.ts.
 */
import assert from "node:assert/strict";
import type { Capability } from "../boards/schema.ts";
import { findBoard } from "../boards/load.ts";
import type { StepContext } from "../runner/suite/types.ts";
import {
  compareWithOracle,
  observeRknn,
  observeRkwl,
  oracleExpectation,
} from "../runner/workload/assess.ts";
import { judgeClassification, judgeDetection } from "../runner/workload/judge.ts";
import { readLabels, YOLOV5N } from "../runner/workload/models.ts";
import { MOBILENET_V1_REFERENCES, YOLOV5_BUS_REFERENCE } from "../runner/workload/references.ts";
import { parseRknnOutput } from "../runner/workload/rknn_output.ts";
import { parseRkwlOutput } from "../runner/workload/rkwl_output.ts";
import { detectionSummary, imageName, rknnFiles, workloadOutcome } from "./_npu.ts";
import { MOBILENET_V1_SPEC, suite as mobilenet } from "./npu_mobilenet_v1.ts";
import { suite as yolo, YOLOV5_SPEC } from "./npu_yolov5.ts";

const data = (name: string) =>
  Deno.readTextFileSync(new URL(`../runner/workload/testdata/${name}`, import.meta.url));

/** A step context whose target has only `caps` (npuSteps reads nothing else to plan). */
function planFor(caps: Capability[]): StepContext {
  return { target: { capabilities: new Set(caps) } } as unknown as StepContext;
}

Deno.test("npu suites: one SKIP per backend the target lacks, the cpu first, images then latency", () => {
  const names = (s: typeof mobilenet, caps: Capability[]) =>
    s.steps(planFor(caps)).map((x) => x.name);
  assert.deepEqual(names(mobilenet, ["cpu-workload"]), [
    ...["grace_hopper", "dog_224x224", "cat_224x224", "bus"].map((i) => `mobilenet_v1/cpu/${i}`),
    "mobilenet_v1/cpu/latency",
    "mobilenet_v1/rknn",
    "mobilenet_v1/rocket",
  ]);
  assert.deepEqual(names(yolo, ["rknn", "rocket"]), [
    "yolov5/cpu",
    "yolov5/rknn/bus",
    "yolov5/rknn/latency",
    "yolov5/rocket/bus",
    "yolov5/rocket/latency",
  ]);
  assert.equal(mobilenet.requires.length, 0);
  assert.equal(imageName("images/grace_hopper.bmp"), "grace_hopper");
  assert.deepEqual(rknnFiles(MOBILENET_V1_SPEC), [
    "bin/rknn_mobilenet_demo",
    "bin/rknn_benchmark",
    "lib/librknnrt.so",
    "model/mobilenet_v1.rknn",
  ]);
  assert.equal(rknnFiles(YOLOV5_SPEC).at(-1), "model/coco_80_labels_list.txt");
});

Deno.test("workloadOutcome on real captures: PASS with AGREE, FAIL on a DISAGREE, FAIL on a submit failure", async () => {
  const qemu = await findBoard("qemu-virt-8g");
  const rock = await findBoard("rock-3b-8g");
  const scene = (b: typeof qemu, release: string) => ({
    board: b.board,
    boardPath: b.path,
    release,
    bootargs: "",
  });
  const labels = (await readLabels("labels/imagenet_labels.txt")).map((l) => l.split(",")[0]);
  const dog = parseRkwlOutput(data("rkwl/guest-6.12-mobilenet_v1-dog.txt"));
  const ref = MOBILENET_V1_REFERENCES.find((r) => r.image.includes("dog"))!;
  const j = judgeClassification(dog, ref, labels);
  const v = { correctness: j, summary: "156 Shih-Tzu 0.99", result: { top: dog.top } };
  const cpuE = oracleExpectation(scene(qemu, "6.12.57+deb13-arm64"), "mobilenet_v1", "cpu");
  const ok = workloadOutcome("cpu", cpuE, observeRkwl(dog, j, []), v, { image: ref.image });
  assert.equal(ok.verdict, "PASS");
  assert.equal(ok.details?.summary, "156 Shih-Tzu 0.99; oracle agree");
  assert.deepEqual([ok.details?.predicted, ok.details?.observed, ok.details?.verdict], [
    "correct-output",
    "correct-output",
    "AGREE",
  ]);
  // The same good output from an NPU where the oracle predicts BUS_ERROR: it disagrees.
  const npuE = oracleExpectation(scene(rock, "6.12.57+deb13-arm64"), "mobilenet_v1", "rknn");
  const bad = workloadOutcome("rknn", npuE, observeRkwl(dog, j, []), v, {});
  assert.equal(bad.verdict, "FAIL");
  assert.match(
    bad.reason ?? "",
    /^disagree: the oracle predicts submit-failure-or-timeout .*the run gave correct-output$/,
  );
  // A failed submit there: the oracle agrees, and the workload still failed.
  const submit = observeRknn(parseRknnOutput(data("armbian_rk3568_8gb_submit.txt")), undefined, []);
  const failed = workloadOutcome("rknn", npuE, submit, undefined, {});
  assert.equal(failed.verdict, "FAIL");
  assert.match(failed.reason ?? "", /^submit-failure-or-timeout: .*failed to submit/);
  assert.equal(failed.details?.verdict, "AGREE");
  assert.equal(compareWithOracle(npuE, submit).verdict, "AGREE");
});

Deno.test("detectionSummary: the guest's YOLOv5n run on bus.jpg, and nothing", async () => {
  const labels = await readLabels(YOLOV5N.labels);
  const run = parseRkwlOutput(data("rkwl/guest-6.12-yolov5n-bus.txt"));
  const j = judgeDetection(run, YOLOV5_BUS_REFERENCE, labels);
  assert.match(detectionSummary(j.detections, labels), /^(\d+ )?person, bus$|^bus, (\d+ )?person$/);
  assert.equal(detectionSummary([], labels), "nothing at ≥ 0.5");
});
