import assert from "node:assert/strict";
import fc from "fast-check";
import { parseRkwlOutput, type RkwlBox, type RkwlFit } from "./rkwl_output.ts";
import { type Box, decodeYolo, iou, matchDetections } from "./yolo.ts";

const FIT640: RkwlFit = {
  mode: "letterbox",
  inputWidth: 640,
  inputHeight: 640,
  scale: 1,
  padX: 0,
  padY: 0,
  range: "unit",
};

function row(cx: number, cy: number, w: number, h: number, obj: number, cls: number, cs: number) {
  return { row: 0, cx, cy, w, h, objectness: obj, classIndex: cls, classScore: cs } as RkwlBox;
}

Deno.test("iou: identical, disjoint, half and degenerate boxes", () => {
  assert.equal(iou([0, 0, 10, 10], [0, 0, 10, 10]), 1);
  assert.equal(iou([0, 0, 10, 10], [20, 20, 30, 30]), 0);
  assert.equal(iou([0, 0, 10, 10], [5, 0, 15, 10]), 50 / 150);
  assert.equal(iou([0, 0, 0, 10], [0, 0, 0, 10]), 0);
});

Deno.test("YOLOv5 decode of the real YOLOv5n output on bus.jpg: three people and the bus", async () => {
  const r = parseRkwlOutput(
    await Deno.readTextFile(new URL("./testdata/rkwl/yolov5n-bus.txt", import.meta.url)),
  );
  const dets = decodeYolo(r.boxes, r.fit!, { imageWidth: 640, imageHeight: 640 });
  assert.deepEqual(dets.map((d) => d.classIndex), [0, 0, 0, 5]);
  const bus = dets.find((d) => d.classIndex === 5)!;
  assert.ok(iou(bus.box, [91, 129, 555, 464]) > 0.85, `bus at ${bus.box}`);
  for (const d of dets) assert.ok(d.score >= 0.25 && d.score <= 1);
  // 33 raw rows, 4 after NMS: the duplicates of each object are gone.
  assert.equal(r.boxes.length, 33);
});

Deno.test("YOLOv5 decode: letterbox undone, boxes clipped, pixel coordinates kept", () => {
  // A 1280x640 image letterboxed into 640x640: scale 0.5, pad 0,160.
  const fit = { ...FIT640, scale: 0.5, padX: 0, padY: 160 };
  const opts = { imageWidth: 1280, imageHeight: 640 };
  const [d] = decodeYolo([row(0.5, 0.5, 0.25, 0.25, 0.9, 2, 0.9)], fit, opts);
  assert.deepEqual(d.box, [480, 160, 800, 480]);
  assert.equal(d.score, 0.81);
  const [edge] = decodeYolo([row(0.05, 0.3, 0.2, 0.2, 0.9, 2, 0.9)], fit, opts);
  assert.deepEqual(edge.box.map((v) => Math.round(v)), [0, 0, 192, 192]); // x1, y1 below 0
  // Input pixels (a coordinate above 1.5): not scaled by the input size.
  const [px] = decodeYolo([row(320, 320, 160, 160, 0.9, 2, 0.9)], FIT640, {
    imageWidth: 640,
    imageHeight: 640,
  });
  assert.deepEqual(px.box, [240, 240, 400, 400]);
});

Deno.test("YOLOv5 decode: score filter, NMS per class, highest score kept", () => {
  const opts = { imageWidth: 640, imageHeight: 640 };
  const rows = [
    row(0.5, 0.5, 0.2, 0.2, 0.9, 0, 0.9), // 0.81
    row(0.51, 0.5, 0.2, 0.2, 0.95, 0, 0.95), // 0.9025: wins
    row(0.5, 0.5, 0.2, 0.2, 0.9, 1, 0.9), // other class: kept
    row(0.9, 0.9, 0.1, 0.1, 0.4, 0, 0.5), // 0.2 < 0.25: dropped
    row(0.1, 0.1, 0, 0.1, 0.9, 0, 0.9), // zero width: dropped
  ];
  const dets = decodeYolo(rows, FIT640, opts);
  assert.deepEqual(dets.map((d) => [d.classIndex, +d.score.toFixed(4)]), [[0, 0.9025], [
    1,
    0.81,
  ]]);
  assert.equal(decodeYolo(rows, FIT640, { ...opts, iou: 0.99 }).length, 3);
  assert.equal(decodeYolo(rows, FIT640, { ...opts, maxDetections: 1 }).length, 1);
});

Deno.test("matchDetections: class and IoU >= 0.5, each detection once, best first", () => {
  const a: Box = [0, 0, 100, 100];
  const expected = [
    { classIndex: 0, box: a, required: true },
    { classIndex: 0, box: [5, 0, 105, 100] as Box, required: true },
    { classIndex: 5, box: [200, 200, 300, 300] as Box, required: false },
  ];
  const dets = [
    { classIndex: 0, score: 0.9, box: [0, 0, 100, 100] as Box },
    { classIndex: 5, score: 0.9, box: [0, 0, 100, 100] as Box }, // wrong class at a
    { classIndex: 5, score: 0.8, box: [260, 260, 360, 360] as Box }, // IoU 0.22
  ];
  const m = matchDetections(expected, dets);
  assert.equal(m.matched.length, 1);
  assert.equal(m.matched[0].expected, expected[0]);
  assert.deepEqual(m.missing, [expected[1], expected[2]]);
  assert.equal(m.extra.length, 2);
});

Deno.test("YOLOv5 decode: any rows give finite, clipped boxes (fast-check)", () => {
  const num = fc.double({ min: -10, max: 1000, noNaN: true });
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(num, num, num, num, fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(79)),
        { maxLength: 60 },
      ),
      (rs) => {
        const dets = decodeYolo(rs.map(([a, b, c, d, o, k]) => row(a, b, c, d, o, k, o)), FIT640, {
          imageWidth: 640,
          imageHeight: 480,
        });
        for (const d of dets) {
          assert.ok(d.box.every(Number.isFinite));
          assert.ok(d.box[0] >= 0 && d.box[2] <= 640 && d.box[1] >= 0 && d.box[3] <= 480);
        }
      },
    ),
    { numRuns: 500 },
  );
});
