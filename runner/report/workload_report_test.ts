/** The report's NPU workloads section from results as the npu suites record them. */
import assert from "node:assert/strict";
import type { TestResult } from "../results/store.ts";
import { renderRunReport } from "./run_report.ts";
import { renderWorkloadSection, workloadRows } from "./workload_report.ts";

const at = "2026-11-30T03:00:00.000Z";
function r(
  test: string,
  verdict: TestResult["verdict"],
  more: Partial<TestResult> = {},
): TestResult {
  return {
    test,
    suite: test.startsWith("yolov5") ? "npu/yolov5" : "npu/mobilenet_v1",
    target: "qemu-virt-8g",
    kernel: "debian:trixie",
    release: "6.12.57+deb13-arm64",
    verdict,
    startedAt: at,
    durationMs: 1,
    ...more,
  };
}
const agree = (
  summary: string,
  predicted = "correct-output",
  verdict = "AGREE",
  observed = predicted,
) => ({
  details: { summary: `${summary}; oracle ${verdict.toLowerCase()}`, predicted, observed, verdict },
});

const RESULTS: TestResult[] = [
  r("boot", "PASS", { suite: "boot", details: { release: "6.12.57+deb13-arm64" } }),
  r("mobilenet_v1/cpu/grace_hopper", "PASS", agree("653 military uniform 0.87")),
  r("mobilenet_v1/cpu/dog_224x224", "PASS", agree("156 Shih-Tzu 0.99")),
  r("mobilenet_v1/cpu/latency", "DONE", {
    details: { summary: "median 1432 ms [1390, 1500]" },
    measurements: [{ name: "invoke", value: 1432, unit: "ms" }],
  }),
  r("mobilenet_v1/rknn", "SKIP", {
    reason: "needs capability rknn (this target has: cpu-workload)",
    details: { expectation: { verdict: "no-device", why: "no NPU MMU" } },
  }),
  r("mobilenet_v1/rocket/grace_hopper", "SKIP", {
    reason: "Couldn't open kernel device (libteflon.so)",
    ...agree("no-device", "no-device"),
  }),
  r("mobilenet_v1/rocket/latency", "SKIP", { reason: "Couldn't open kernel device" }),
  r("yolov5/rknn/bus", "FAIL", {
    reason: "disagree: ...",
    ...agree("3 person, bus", "submit-failure-or-timeout", "DISAGREE", "correct-output"),
  }),
  r("yolov5/rknn/latency", "FAIL", {
    details: { summary: "median 90 ms [88, 95]; slower than the expected 38.16–62.7 ms" },
  }),
];

Deno.test("workloadRows: result, latency and oracle per kernel, workload and backend", () => {
  const rows = workloadRows(RESULTS);
  assert.deepEqual(rows.map((x) => [x.workload, x.backend, x.result, x.latency, x.oracle]), [
    [
      "mobilenet_v1",
      "cpu",
      "2/2 PASS: grace_hopper 653 military uniform 0.87, dog_224x224 156 Shih-Tzu 0.99",
      "median 1432 ms [1390, 1500]",
      "AGREE (correct-output)",
    ],
    [
      "mobilenet_v1",
      "rknn",
      "SKIP: needs capability rknn (this target has: cpu-workload)",
      "-",
      "predicts no-device",
    ],
    [
      "mobilenet_v1",
      "rocket",
      "SKIP: Couldn't open kernel device (libteflon.so)",
      "SKIP",
      "AGREE (no-device)",
    ],
    [
      "yolov5",
      "rknn",
      "0/1 PASS: bus FAIL",
      "FAIL: median 90 ms [88, 95]; slower than the expected 38.16–62.7 ms",
      "DISAGREE: predicted submit-failure-or-timeout, happened correct-output",
    ],
  ]);
  assert.deepEqual(workloadRows(RESULTS.slice(0, 1)), []);
});

Deno.test("report.md carries the NPU workloads table; hostile text stays in its cell", () => {
  const hostile = r("mobilenet_v1/cpu/cat_224x224", "PASS", agree("283 a|b\nc 0.4"));
  const report = renderRunReport({ results: [...RESULTS, hostile], damagedLines: 0 });
  assert.match(report, /\n## NPU workloads\n\n\| kernel \| release \| workload \| backend \|/);
  assert.match(
    report,
    /\n\| debian:trixie \| 6\.12\.57\+deb13-arm64 \| mobilenet_v1 \| cpu \| 3\/3 PASS: .*cat_224x224 283 a\\\|b c 0\.4 \| median 1432 ms/,
  );
  assert.deepEqual(renderWorkloadSection([]), []);
  // Several targets: a target column.
  const two = renderWorkloadSection([...RESULTS, { ...RESULTS[1], target: "lab-1" }]);
  assert.match(two[2], /^\| target \| kernel \|/);
});
