/**
 * Correctness of one workload run against a published reference: a classification's top-1 and
 * its score band, a detection's expected objects (class and IoU ≥ 0.5), and an NPU run against
 * the cpu run of the same model and image. Pure: the suites turn a judgement into a result.
 *
 * @module
 */

import type { ClassificationReference, DetectionReference } from "./references.ts";
import type { RkwlRun } from "./rkwl_output.ts";
import { decodeYolo, type Detection, matchDetections, type MatchResult } from "./yolo.ts";

/** The verdict on one run's output. */
export interface Judgement {
  /** PASS: as the reference says; FAIL: the output is wrong. */
  verdict: "PASS" | "FAIL";
  /** One line: what was found against what was expected. */
  reason: string;
}

/** Name of a class for messages: `653 military uniform` (labels optional). */
function className(i: number, labels?: readonly string[]): string {
  const l = labels?.[i];
  return l ? `${i} ${l}` : `${i}`;
}

/**
 * Judge a classification run's top-1 and score against a reference.
 *
 * @throws {Error} the run has no top-k (call it only on an outcome `done` run).
 */
export function judgeClassification(
  run: RkwlRun,
  ref: ClassificationReference,
  labels?: readonly string[],
): Judgement & { top1: number; score: number } {
  const top = run.top[0];
  if (!top) throw new Error("judgeClassification: the run printed no top-k");
  const got = `top-1 ${className(top.classIndex, labels)} (${top.score.toFixed(3)})`;
  const want = ref.top1.map((c) => className(c, labels)).join(" or ");
  if (!ref.top1.includes(top.classIndex)) {
    return {
      verdict: "FAIL",
      reason: `${got}, expected ${want}`,
      top1: top.classIndex,
      score: top.score,
    };
  }
  if (ref.band && (top.score < ref.band[0] || top.score > ref.band[1])) {
    return {
      verdict: "FAIL",
      reason: `${got}: score outside ${ref.band[0]}..${ref.band[1]}`,
      top1: top.classIndex,
      score: top.score,
    };
  }
  return {
    verdict: "PASS",
    reason: `${got}${ref.band ? ` within ${ref.band[0]}..${ref.band[1]}` : ""}`,
    top1: top.classIndex,
    score: top.score,
  };
}

/**
 * Decode a detection run (letterbox undone, NMS) and match it against a reference.
 *
 * @throws {Error} the run has no image or fit line (call it only on an outcome `done` run).
 */
export function judgeDetection(
  run: RkwlRun,
  ref: DetectionReference,
  labels?: readonly string[],
): Judgement & { detections: Detection[]; match: MatchResult } {
  if (!run.image || !run.fit) throw new Error("judgeDetection: the run has no image or fit line");
  const detections = decodeYolo(run.boxes, run.fit, {
    imageWidth: run.image.width,
    imageHeight: run.image.height,
  });
  const match = matchDetections(ref.objects, detections);
  const missing = match.missing.filter((o) => o.required);
  const found = match.matched.map((m) =>
    `${labels?.[m.detection.classIndex] ?? m.detection.classIndex} ${
      m.detection.score.toFixed(2)
    } (IoU ${m.iou.toFixed(2)})`
  );
  const required = ref.objects.filter((o) => o.required).length;
  const summary = `${match.matched.length} of ${ref.objects.length} expected objects found` +
    (found.length ? `: ${found.join(", ")}` : "") +
    (match.extra.length ? `; ${match.extra.length} other detections` : "");
  if (missing.length) {
    return {
      verdict: "FAIL",
      reason: `${summary}; missing ${
        missing.map((o) => `${labels?.[o.classIndex] ?? o.classIndex} at (${o.box.join(" ")})`)
          .join(", ")
      } (${missing.length} of ${required} required)`,
      detections,
      match,
    };
  }
  return { verdict: "PASS", reason: summary, detections, match };
}

/**
 * Hold an NPU run's classification against the cpu run of the same model and image: the same
 * top-1, and its score within `tolerance` (default 0.1) of the cpu's.
 */
export function judgeAgainstCpu(
  npu: RkwlRun,
  cpu: RkwlRun,
  tolerance = 0.1,
  labels?: readonly string[],
): Judgement {
  const a = npu.top[0], b = cpu.top[0];
  if (!a || !b) return { verdict: "FAIL", reason: "a run printed no top-k" };
  if (a.classIndex !== b.classIndex) {
    return {
      verdict: "FAIL",
      reason: `top-1 ${className(a.classIndex, labels)}, the cpu gives ${
        className(b.classIndex, labels)
      }`,
    };
  }
  const d = Math.abs(a.score - b.score);
  return d > tolerance
    ? {
      verdict: "FAIL",
      reason: `top-1 score ${a.score.toFixed(3)}, the cpu gives ${
        b.score.toFixed(3)
      } (more than ${tolerance} apart)`,
    }
    : { verdict: "PASS", reason: `same top-1 as the cpu, scores ${d.toFixed(3)} apart` };
}
