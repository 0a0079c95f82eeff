/**
 * The YOLOv5 decode, once for every backend: the raw rows rkwl printed (`rkwl box`) become
 * detections in image pixels (score = objectness × class score, the letterbox undone, NMS per
 * class), and detections are matched against an expected set by class and IoU.
 *
 * @module
 */

import type { RkwlBox, RkwlFit } from "./rkwl_output.ts";

/** A box in image pixels: left, top, right, bottom. */
export type Box = [number, number, number, number];

/** One decoded detection. */
export interface Detection {
  /** COCO class index (0 = person, 5 = bus). */
  classIndex: number;
  /** objectness × class score, 0..1. */
  score: number;
  /** The box in the original image's pixels. */
  box: Box;
}

/** Options of {@linkcode decodeYolo}. */
export interface DecodeOptions {
  /** Minimum objectness × class score (YOLOv5's default 0.25). */
  conf?: number;
  /** NMS IoU threshold (YOLOv5's default 0.45). */
  iou?: number;
  /** At most this many detections (YOLOv5's default 300). */
  maxDetections?: number;
  /** The original image size, to clip boxes (from `rkwl image`). */
  imageWidth: number;
  /** Image height in pixels. */
  imageHeight: number;
}

/** Intersection over union of two boxes (0 when either is empty). */
export function iou(a: Box, b: Box): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const area = (x: Box) => Math.max(0, x[2] - x[0]) * Math.max(0, x[3] - x[1]);
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Decode raw YOLOv5 rows into detections in image pixels. Coordinates are taken as fractions
 * of the input when every one of them is within [-0.5, 1.5] (the TFLite export), as input
 * pixels otherwise.
 */
export function decodeYolo(boxes: RkwlBox[], fit: RkwlFit, opts: DecodeOptions): Detection[] {
  const conf = opts.conf ?? 0.25;
  const iouMax = opts.iou ?? 0.45;
  const maxDet = opts.maxDetections ?? 300;
  const normalized = boxes.every((b) => [b.cx, b.cy, b.w, b.h].every((v) => v >= -0.5 && v <= 1.5));
  const sx = normalized ? fit.inputWidth : 1;
  const sy = normalized ? fit.inputHeight : 1;
  const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  const cands: Detection[] = [];
  for (const b of boxes) {
    const score = b.objectness * b.classScore;
    if (!(score >= conf) || !(b.w > 0) || !(b.h > 0)) continue;
    const x1 = (b.cx - b.w / 2) * sx, y1 = (b.cy - b.h / 2) * sy;
    const x2 = (b.cx + b.w / 2) * sx, y2 = (b.cy + b.h / 2) * sy;
    const un = (v: number, pad: number) => (v - pad) / fit.scale;
    cands.push({
      classIndex: b.classIndex,
      score,
      box: [
        clip(un(x1, fit.padX), opts.imageWidth),
        clip(un(y1, fit.padY), opts.imageHeight),
        clip(un(x2, fit.padX), opts.imageWidth),
        clip(un(y2, fit.padY), opts.imageHeight),
      ],
    });
  }
  cands.sort((a, b) => b.score - a.score || a.classIndex - b.classIndex);
  const kept: Detection[] = [];
  for (const c of cands) {
    if (kept.length >= maxDet) break;
    if (kept.some((k) => k.classIndex === c.classIndex && iou(k.box, c.box) > iouMax)) continue;
    kept.push(c);
  }
  return kept;
}

/** An object the detector is expected to find. */
export interface ExpectedObject {
  /** COCO class index. */
  classIndex: number;
  /** Where it is, image pixels. */
  box: Box;
  /** A miss of a required object fails the check; others are reported only. */
  required: boolean;
}

/** Result of {@linkcode matchDetections}. */
export interface MatchResult {
  /** Expected objects found, with the detection and the IoU. */
  matched: { expected: ExpectedObject; detection: Detection; iou: number }[];
  /** Expected objects not found. */
  missing: ExpectedObject[];
  /** Detections that match no expected object. */
  extra: Detection[];
}

/**
 * Match detections to expected objects: same class and IoU ≥ `minIou` (0.5), each detection
 * used once, best IoU first.
 */
export function matchDetections(
  expected: ExpectedObject[],
  detections: Detection[],
  minIou = 0.5,
): MatchResult {
  const pairs: { e: number; d: number; iou: number }[] = [];
  expected.forEach((e, ei) =>
    detections.forEach((d, di) => {
      if (d.classIndex !== e.classIndex) return;
      const v = iou(e.box, d.box);
      if (v >= minIou) pairs.push({ e: ei, d: di, iou: v });
    })
  );
  pairs.sort((a, b) => b.iou - a.iou);
  const usedE = new Set<number>(), usedD = new Set<number>();
  const matched: MatchResult["matched"] = [];
  for (const p of pairs) {
    if (usedE.has(p.e) || usedD.has(p.d)) continue;
    usedE.add(p.e);
    usedD.add(p.d);
    matched.push({ expected: expected[p.e], detection: detections[p.d], iou: p.iou });
  }
  return {
    matched,
    missing: expected.filter((_, i) => !usedE.has(i)),
    extra: detections.filter((_, i) => !usedD.has(i)),
  };
}
