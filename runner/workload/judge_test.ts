import assert from "node:assert/strict";
import { judgeAgainstCpu, judgeClassification, judgeDetection } from "./judge.ts";
import { readLabels } from "./models.ts";
import { MOBILENET_V1_REFERENCES, YOLOV5_BUS_REFERENCE } from "./references.ts";
import { parseRkwlOutput, type RkwlRun } from "./rkwl_output.ts";

const sample = async (name: string): Promise<RkwlRun> =>
  parseRkwlOutput(
    await Deno.readTextFile(new URL(`./testdata/rkwl/${name}`, import.meta.url)),
  );
const ref = (image: string) => MOBILENET_V1_REFERENCES.find((r) => r.image.endsWith(image))!;

Deno.test("judge: the cpu's MobileNetV1 on the four images passes the published references", async () => {
  const labels = await readLabels("labels/imagenet_labels.txt");
  const cases = [
    ["grace_hopper", "grace_hopper.bmp", "653 military uniform"],
    ["dog", "dog_224x224.jpg", "156 Shih-Tzu"],
    ["cat", "cat_224x224.jpg", "283 tiger cat"],
    ["bus", "bus.jpg", "655 minibus"],
  ] as const;
  for (const [name, image, label] of cases) {
    const j = judgeClassification(await sample(`mobilenet_v1-${name}.txt`), ref(image), labels);
    assert.equal(j.verdict, "PASS", `${name}: ${j.reason}`);
    assert.ok(j.reason.includes(label), j.reason);
  }
});

Deno.test("judge: a wrong top-1 or a score outside the band fails and says so", async () => {
  const labels = await readLabels("labels/imagenet_labels.txt");
  const cat = await sample("mobilenet_v1-cat.txt");
  const wrong = judgeClassification(cat, ref("dog_224x224.jpg"), labels);
  assert.equal(wrong.verdict, "FAIL");
  assert.equal(wrong.reason, "top-1 283 tiger cat (0.418), expected 156 Shih-Tzu");
  const band = judgeClassification(cat, { ...ref("cat_224x224.jpg"), band: [0.5, 0.7] });
  assert.equal(band.verdict, "FAIL");
  assert.match(band.reason, /score outside 0.5..0.7/);
  assert.throws(() => judgeClassification(parseRkwlOutput(""), ref("dog_224x224.jpg")), /no top-k/);
});

Deno.test("judge: YOLOv5n on bus.jpg finds the required people and the bus", async () => {
  const labels = await readLabels("labels/coco_80_labels_list.txt");
  const j = judgeDetection(await sample("yolov5n-bus.txt"), YOLOV5_BUS_REFERENCE, labels);
  assert.equal(j.verdict, "PASS", j.reason);
  assert.equal(j.match.matched.length, 4);
  assert.deepEqual(j.match.missing.map((o) => o.required), [false]); // the small 0.30 person
  assert.match(j.reason, /^4 of 5 expected objects found: /);
  assert.match(j.reason, /bus 0\.\d\d \(IoU 0\.\d\d\)/);
});

Deno.test("judge: detections that miss a required object fail, naming it", async () => {
  const run = await sample("yolov5n-bus.txt");
  const noBus = { ...run, boxes: run.boxes.filter((b) => b.classIndex !== 5) };
  const j = judgeDetection(noBus, YOLOV5_BUS_REFERENCE, ["person", "", "", "", "", "bus"]);
  assert.equal(j.verdict, "FAIL");
  assert.match(j.reason, /missing bus at \(91 129 555 464\) \(1 of 4 required\)/);
  assert.throws(() => judgeDetection(parseRkwlOutput(""), YOLOV5_BUS_REFERENCE), /no image/);
});

Deno.test("judge: an NPU run is held against the cpu run", async () => {
  const dog = await sample("mobilenet_v1-dog.txt");
  const cat = await sample("mobilenet_v1-cat.txt");
  assert.equal(judgeAgainstCpu(dog, dog).verdict, "PASS");
  assert.match(judgeAgainstCpu(cat, dog).reason, /^top-1 283, the cpu gives 156$/);
  const lower = { ...dog, top: [{ ...dog.top[0], score: 0.7 }] };
  assert.match(judgeAgainstCpu(lower, dog).reason, /more than 0.1 apart/);
});
