/**
 * The workload suites' judgement on real outputs: rkwl in a QEMU guest (testdata/rkwl, captured
 * from guest_qemu_test runs), the RKNN SDK's lines and RKNPU kernel lines from the research
 * (testdata/), the oracle's workload verdicts for real board files, latency against band and
 * baseline; and hostile input.
 */
import assert from "node:assert/strict";
import { findBoard } from "../../boards/load.ts";
import {
  assessLatency,
  compareWithOracle,
  failureEvidence,
  judgeDetectionsAgainstCpu,
  observeRknn,
  observeRkwl,
  oracleExpectation,
  rknnDetections,
  rknnTop,
  type WorkloadScene,
} from "./assess.ts";
import { judgeAgainstCpu, judgeClassification, judgeDetection } from "./judge.ts";
import { readLabels, YOLOV5N } from "./models.ts";
import { MOBILENET_V1_REFERENCES, YOLOV5_BUS_REFERENCE } from "./references.ts";
import { parseRknnOutput } from "./rknn_output.ts";
import { parseRkwlOutput } from "./rkwl_output.ts";

const data = (name: string) =>
  Deno.readTextFileSync(new URL(`./testdata/${name}`, import.meta.url));
const rkwl = (name: string) => parseRkwlOutput(data(`rkwl/${name}`));
const ref = (image: string) => MOBILENET_V1_REFERENCES.find((r) => r.image.includes(image))!;

async function scene(board: string, release: string): Promise<WorkloadScene> {
  const b = await findBoard(board);
  return { board: b.board, boardPath: b.path, release, bootargs: "" };
}

Deno.test("oracleExpectation: cpu anywhere, no NPU on qemu-virt, ROCK 3B 8 GB OK on 6.1 and BUS_ERROR on 6.12", async () => {
  const qemu = await scene("qemu-virt-8g", "6.12.57+deb13-arm64");
  assert.equal(oracleExpectation(qemu, "mobilenet_v1", "cpu").verdict, "correct-output");
  const rocket = oracleExpectation(qemu, "mobilenet_v1", "rocket");
  assert.equal(rocket.verdict, "no-device");
  assert.match(rocket.why, /no NPU MMU on qemu-virt/);
  const old = oracleExpectation(
    await scene("rock-3b-8g", "6.1.0-40-arm64"),
    "mobilenet_v1",
    "rknn",
  );
  assert.equal(old.verdict, "correct-output", old.why);
  assert.match(old.why, /^fde4b000 .*OK on 6\.1/);
  // The seed's 5.8 ms is inside the oracle's band for MobileNetV1 on RK3568.
  assert.ok(old.latency && old.latency.lowMs < 5.8 && 5.8 < old.latency.highMs);
  const broken = oracleExpectation(
    await scene("rock-3b-8g", "6.12.57+deb13-arm64"),
    "yolov5s",
    "rocket",
  );
  assert.equal(broken.verdict, "submit-failure-or-timeout", broken.why);
  assert.match(broken.why, /fde4b000.*BUS_ERROR/);
  assert.equal(broken.latency, undefined);
  const unknown = oracleExpectation({ ...qemu, release: "2.6.32" }, "mobilenet_v1", "rknn");
  assert.equal(unknown.verdict, "unknown");
  assert.match(unknown.why, /not in the driver knowledge base/);
});

Deno.test("observeRkwl on real guest captures: correct, wrong, no-device, and a kernel fault meanwhile", () => {
  const dog = rkwl("guest-6.12-mobilenet_v1-dog.txt");
  const ok = judgeClassification(dog, ref("dog"));
  assert.equal(observeRkwl(dog, ok, []).verdict, "correct-output");
  // The dog's output judged as the cat's reference: the output is wrong.
  const wrong = judgeClassification(dog, ref("cat"));
  assert.equal(wrong.verdict, "FAIL");
  assert.equal(observeRkwl(dog, wrong, []).verdict, "wrong-output");
  const teflon = rkwl("guest-6.12-teflon-no-device.txt");
  const nd = observeRkwl(teflon, undefined, []);
  assert.deepEqual([nd.verdict, nd.why], ["no-device", "Couldn't open kernel device"]);
  // The same good output while the kernel printed an RKNPU timeout: the run failed.
  const timeout = data("rknpu_rk3568_timeout.txt").split("\n");
  const failed = observeRkwl(dog, ok, timeout);
  assert.equal(failed.verdict, "submit-failure-or-timeout");
  assert.ok(
    failed.evidence.some((l) => l.startsWith("RKNPU: job timeout")),
    failed.evidence.join("\n"),
  );
  assert.equal(observeRkwl(dog, ok, [], true).verdict, "submit-failure-or-timeout");
  // Bad input says nothing about the workload.
  const bad = observeRkwl(rkwl("missing-model.txt"), undefined, []);
  assert.equal(bad.verdict, undefined);
});

Deno.test("failureEvidence: rk_iommu faults and RKNPU failures, printk prefixes removed, each once; nothing else", () => {
  const lines = [
    "[  812.345678] rk_iommu fde4b000.iommu: Page fault at 0x00000000ffb00000 of type read",
    "<3>[  812.345678] rk_iommu fde4b000.iommu: Page fault at 0x00000000ffb00000 of type read",
    "[   13.1] rk_iommu fde4b000.iommu: Adding to iommu group 0",
    "[   14.2] RKNPU fde40000.npu: RKNPU: rknpu iommu is enabled, using iommu mode",
    ...data("rknpu_rk3588_abort.txt").split("\n"),
    "E RKNN: failed to submit!, op id: 1, op name: Conv",
    "rkwl top 1 156 0.98",
  ];
  const ev = failureEvidence(lines);
  assert.equal(ev.filter((l) => l.includes("Page fault")).length, 1);
  assert.ok(!ev.some((l) => l.includes("Adding to iommu group") || l.includes("iommu mode")));
  assert.ok(ev.some((l) => l.includes("failed to submit")));
  assert.ok(ev.some((l) => /RKNPU: job abort|RKNPU: failed to wait job/.test(l)), ev.join("\n"));
  assert.deepEqual(failureEvidence(["", "\u0000\u001b[31m", "x".repeat(100_000)]), []);
});

Deno.test("observeRknn on the SDK's lines: the demo's top-5 judged, a failed submit, no driver", () => {
  const demo = parseRknnOutput(data("format_mobilenet_demo.txt"));
  const run = { ...parseRkwlOutput(""), ...rknnTop(demo) };
  const j = judgeClassification(run, ref("dog"));
  assert.equal(j.verdict, "PASS", j.reason);
  assert.equal(observeRknn(demo, j, []).verdict, "correct-output");
  // Against the cpu's result of the same image in the guest: same top-1, scores 0.04 apart.
  const vsCpu = judgeAgainstCpu(run, rkwl("guest-6.12-mobilenet_v1-dog.txt"));
  assert.equal(vsCpu.verdict, "PASS", vsCpu.reason);
  const submit = observeRknn(parseRknnOutput(data("armbian_rk3568_8gb_submit.txt")), undefined, []);
  assert.equal(submit.verdict, "submit-failure-or-timeout");
  assert.match(submit.why, /failed to submit/);
  const none = observeRknn(parseRknnOutput(data("librknnrt_no_driver.txt")), undefined, []);
  assert.equal(none.verdict, "no-device");
  assert.match(none.why, /insmod rknpu/);
  const nothing = observeRknn(parseRknnOutput("segmentation fault\n"), undefined, []);
  assert.equal(nothing.verdict, undefined);
});

Deno.test("compareWithOracle: a passing NPU run where the oracle predicts BUS_ERROR DISAGREES and says so", async () => {
  const e = oracleExpectation(
    await scene("rock-3b-8g", "6.12.57+deb13-arm64"),
    "mobilenet_v1",
    "rknn",
  );
  const dog = rkwl("guest-6.12-mobilenet_v1-dog.txt");
  const o = observeRkwl(dog, judgeClassification(dog, ref("dog")), []);
  const c = compareWithOracle(e, o);
  assert.equal(c.verdict, "DISAGREE");
  assert.match(
    c.summary,
    /^disagree: the oracle predicts submit-failure-or-timeout \(fde4b000.*BUS_ERROR/,
  );
  assert.match(c.summary, /the run gave correct-output$/);
  const failed = observeRknn(parseRknnOutput(data("armbian_rk3568_8gb_submit.txt")), undefined, []);
  assert.equal(compareWithOracle(e, failed).verdict, "AGREE");
  assert.equal(
    compareWithOracle({ verdict: "unknown", why: "x" }, o).verdict,
    "UNCERTAIN",
  );
});

Deno.test("rknnDetections and judgeDetectionsAgainstCpu: the demo's lines against the guest's YOLOv5n run", async () => {
  const labels = await readLabels(YOLOV5N.labels);
  const cpuRun = rkwl("guest-6.12-yolov5n-bus.txt");
  const cpu = judgeDetection(cpuRun, YOLOV5_BUS_REFERENCE, labels);
  assert.equal(cpu.verdict, "PASS", cpu.reason);
  const demo = parseRknnOutput(
    data("format_yolov5_demo.txt") + "\nunicorn @ (1 2 3 4) 0.9\n",
  );
  const { detections, unknownClasses } = rknnDetections(demo, labels);
  assert.equal(unknownClasses, 1);
  assert.deepEqual(detections.map((d) => labels[d.classIndex]), ["person", "traffic light", "bus"]);
  // One person and the bus: the cpu's other people at ≥ 0.5 are missing.
  const j = judgeDetectionsAgainstCpu(detections, cpu.detections, 0.5, labels);
  assert.equal(j.verdict, "FAIL");
  assert.match(j.reason, /of the cpu's \d+ detections at ≥ 0.5 not found: person/);
  // The cpu against itself finds everything.
  assert.equal(judgeDetectionsAgainstCpu(cpu.detections, cpu.detections).verdict, "PASS");
});

Deno.test("assessLatency: the band, the baseline (rank test and effect floor), too few samples", () => {
  const band = { baselineMs: 5.8, lowMs: 4.31, highMs: 6.38, source: "seed" };
  const within = assessLatency([5.7, 5.8, 5.9, 6.0, 5.6], { band });
  assert.equal(within.expectation?.judgement, "within");
  assert.match(
    within.summary,
    /^median 5\.80 ms \[\d\.\d\d, \d\.\d\d\]; within the expected 4\.31–6\.38 ms$/,
  );
  const slow = assessLatency([9.1, 9.3, 9.0, 9.4, 9.2], { band });
  assert.equal(slow.expectation?.judgement, "slower");
  // Samples from the guest: 1.3–1.7 s a pass; the same machine's earlier baseline.
  const base = [1410, 1450, 1390, 1500, 1430, 1470, 1420, 1440];
  const same = assessLatency([1400, 1460, 1445, 1425], { baseline: base });
  assert.equal(same.baseline?.judgement, "same");
  assert.match(same.summary, /same as the baseline 1435 ms/);
  const slower = assessLatency([2100, 2150, 2080, 2200, 2120], { baseline: base });
  assert.equal(slower.baseline?.judgement, "slower");
  assert.ok(slower.baseline!.test!.p < 0.05);
  assert.match(slower.summary, /slower than the baseline 1435 ms \(\+4\d %, 8 samples, p=/);
  // Significant but under the effect floor: the same.
  const tiny = assessLatency([1460, 1462, 1461, 1463, 1464], {
    baseline: [1450, 1451, 1452, 1453, 1454],
  });
  assert.equal(tiny.baseline?.judgement, "same");
  const few = assessLatency([12300], { baseline: [11000] });
  assert.equal(few.baseline?.judgement, "too few samples");
  assert.equal(few.interval.median, 12300);
  assert.throws(() => assessLatency([]), RangeError);
});
