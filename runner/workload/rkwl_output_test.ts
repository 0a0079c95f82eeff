import assert from "node:assert/strict";
import fc from "fast-check";
import { noDeviceReason, parseRkwlOutput, runTimes } from "./rkwl_output.ts";

const dir = new URL("./testdata/rkwl/", import.meta.url);
const sample = (name: string) => Deno.readTextFile(new URL(name, dir));

Deno.test("rkwl output: MobileNetV1 chain on grace_hopper (captured under qemu-aarch64)", async () => {
  const r = parseRkwlOutput(await sample("mobilenet_v1-grace_hopper.txt"));
  assert.deepEqual(r.problems, []);
  assert.equal(r.outcome, "done");
  assert.equal(r.exitStatus, 0);
  assert.equal(r.format, 1);
  assert.equal(r.tflite, "2.14.1");
  assert.equal(r.delegate, null);
  assert.equal(r.models.length, 31);
  assert.match(r.models[30], /mb30\.tflite$/);
  const in0 = r.tensors.find((t) => t.model === 0 && t.kind === "input")!;
  assert.deepEqual(in0, {
    model: 0,
    kind: "input",
    type: "uint8",
    dims: [1, 224, 224, 3],
    scale: 0.0078125,
    zeroPoint: 128,
  });
  const out30 = r.tensors.find((t) => t.model === 30 && t.kind === "output")!;
  assert.deepEqual(out30.dims, [1, 1001]);
  assert.deepEqual(r.image, {
    path: "models/images/grace_hopper.bmp",
    width: 512,
    height: 600,
    channels: 3,
  });
  assert.equal(r.fit?.mode, "resize");
  assert.equal(r.fit?.range, "raw");
  assert.deepEqual(r.invokes.map((v) => v.phase), ["warmup", "run", "run", "run"]);
  assert.equal(runTimes(r).length, 3);
  assert.ok(runTimes(r).every((ms) => ms > 100 && ms < 5000));
  assert.equal(r.top.length, 5);
  assert.deepEqual(r.top[0], { rank: 1, classIndex: 653, score: 0.898438 });
});

Deno.test("rkwl output: every captured classification is done with five ranks", async () => {
  for (const [name, top1] of [["dog", 156], ["cat", 283], ["bus", 655]] as const) {
    const r = parseRkwlOutput(await sample(`mobilenet_v1-${name}.txt`));
    assert.deepEqual(r.problems, [], name);
    assert.equal(r.outcome, "done", name);
    assert.equal(r.top[0].classIndex, top1, name);
    assert.equal(r.top.length, 5, name);
  }
});

Deno.test("rkwl output: YOLOv5n on bus.jpg gives raw rows and the boxes summary", async () => {
  const r = parseRkwlOutput(await sample("yolov5n-bus.txt"));
  assert.deepEqual(r.problems, []);
  assert.equal(r.outcome, "done");
  assert.deepEqual(r.boxesSummary, { printed: 33, rows: 25200, conf: 0.25, dropped: 0 });
  assert.equal(r.boxes.length, 33);
  assert.deepEqual(r.fit, {
    mode: "letterbox",
    inputWidth: 640,
    inputHeight: 640,
    scale: 1,
    padX: 0,
    padY: 0,
    range: "unit",
  });
  assert.deepEqual(r.tensors.find((t) => t.kind === "output")?.dims, [1, 25200, 85]);
  assert.ok(r.boxes.every((b) => b.objectness >= 0.25 && b.classIndex < 80));
});

Deno.test("rkwl output: Teflon without an NPU is no-device with Teflon's own words", async () => {
  const r = parseRkwlOutput(await sample("teflon-no-device.txt"));
  assert.deepEqual(r.problems, []);
  assert.equal(r.outcome, "no-device");
  assert.equal(r.exitStatus, 3);
  assert.equal(r.noDevice?.reason, "Couldn't open kernel device");
  assert.equal(noDeviceReason(r), "Couldn't open kernel device (libteflon.so)");
  assert.equal(r.invokes.length, 0);
});

Deno.test("rkwl output: the failure outcomes and their error stages", async () => {
  const cases = [
    ["bad-image.txt", "bad-input", "image"],
    ["missing-model.txt", "bad-input", "model"],
    ["delegate-load.txt", "delegate-load-failed", "delegate"],
  ] as const;
  for (const [file, outcome, stage] of cases) {
    const r = parseRkwlOutput(await sample(file));
    assert.deepEqual(r.problems, [], file);
    assert.equal(r.outcome, outcome, file);
    assert.equal(r.errors[0]?.stage, stage, file);
    assert.equal(noDeviceReason(r), undefined);
  }
  const missing = parseRkwlOutput(await sample("missing-model.txt"));
  assert.deepEqual(missing.messages.map((m) => m.source), ["tflite", "tflite"]);
});

Deno.test("rkwl output: kernel lines, CRLF and a console's noise around the rkwl lines", async () => {
  const text = (await sample("mobilenet_v1-dog.txt")).split("\n").flatMap((l, i) =>
    i % 7 === 3 ? ["[  123.456789] rk_iommu fde4b000.iommu: Page fault at 0x1000", l] : [l]
  ).join("\r\n");
  const r = parseRkwlOutput(`# rkwl --model ...\n${text}`);
  assert.deepEqual(r.problems, []);
  assert.equal(r.outcome, "done");
  assert.equal(r.top[0].classIndex, 156);
  assert.ok(r.foreignLines >= 5);
});

Deno.test("rkwl output: a torn output is truncated; lines after end, disorder and junk are problems", async () => {
  const dog = await sample("mobilenet_v1-dog.txt");
  const torn = dog.slice(0, dog.indexOf("rkwl top 3"));
  const t = parseRkwlOutput(torn);
  assert.equal(t.outcome, "truncated");
  assert.equal(t.top.length, 2);

  const after = parseRkwlOutput(`${dog}rkwl top 6 1 0.5\n`);
  assert.match(after.problems.join("\n"), /after the end line/);

  const disorder = parseRkwlOutput(
    "rkwl version 1 tflite=2.14.1\nrkwl invoke run 1 5.0\nrkwl top 2 3 0.5\nrkwl end 0\n",
  );
  assert.match(disorder.problems.join("\n"), /run pass 1 out of order/);
  assert.match(disorder.problems.join("\n"), /top rank 2 out of order/);
  assert.match(disorder.problems.join("\n"), /done without a timed pass/);

  const junk = parseRkwlOutput(
    "rkwl version 2 tflite=x\nrkwl invoke run 0 nan\nrkwl top 1 1 1e999\nrkwl fit resize 0 0 " +
      "scale=0 pad=0,0 range=raw\nrkwl frobnicate\nrkwl end 9\n",
  );
  const p = junk.problems.join("\n");
  assert.match(p, /line format 2 is not 1/);
  assert.match(p, /not an rkwl line of format 1: "invoke run 0 nan"/);
  assert.match(p, /top score 1e999/);
  assert.match(p, /fit with a zero size/);
  assert.match(p, /"frobnicate"/);
  assert.match(p, /exit status 9/);
  assert.equal(junk.outcome, "failed");

  const rising = parseRkwlOutput("rkwl top 1 1 0.2\nrkwl top 2 2 0.9\n");
  assert.match(rising.problems.join("\n"), /scores above rank 1/);

  const lying = parseRkwlOutput(
    "rkwl box 1 0.5 0.5 0.1 0.1 0.9 0 0.9\nrkwl boxes 2 rows=5 conf=0.25 dropped=0\n",
  );
  assert.match(lying.problems.join("\n"), /boxes says 2 rows, 1 were read/);

  const three = parseRkwlOutput("rkwl version 1 tflite=2.14.1\nrkwl end 3\n");
  assert.match(three.problems.join("\n"), /exit 3 without no-device/);
});

Deno.test("rkwl output: problems are bounded on a flood of bad lines", () => {
  const r = parseRkwlOutput("rkwl ???\n".repeat(10_000));
  assert.equal(r.problems.length, 50);
  assert.equal(r.outcome, "truncated");
});

Deno.test("rkwl output: any text parses without throwing (fast-check)", () => {
  const piece = fc.oneof(
    fc.string(),
    fc.constantFrom(
      "rkwl top 1 5 0.9",
      "rkwl invoke run 0 1.5",
      "rkwl end 0",
      "rkwl box 1 0.1 0.2 0.3 0.4 0.5 3 0.6",
      "rkwl no-device x: y",
      "rkwl fit letterbox 640 640 scale=1 pad=0,0 range=unit",
      "rkwl ",
      "\r",
    ),
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 40 }), (parts) => {
      const r = parseRkwlOutput(parts.join("\n"));
      assert.ok(r.problems.length <= 50);
      for (let i = 1; i < r.top.length; i++) assert.equal(r.top[i].rank, i + 1);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("rkwl output: in a debian:trixie guest (6.12, TCG) the same results as under user-mode QEMU", async () => {
  const pairs = [
    ["guest-6.12-mobilenet_v1-dog.txt", "mobilenet_v1-dog.txt"],
    ["guest-6.12-yolov5n-bus.txt", "yolov5n-bus.txt"],
  ];
  for (const [guest, user] of pairs) {
    const g = parseRkwlOutput(await sample(guest));
    const u = parseRkwlOutput(await sample(user));
    assert.deepEqual(g.problems, [], guest);
    assert.equal(g.outcome, "done", guest);
    assert.match(g.models[0], /^\/tmp\/rkhil-workload\/models\//);
    assert.deepEqual(g.top, u.top, guest);
    assert.deepEqual(g.boxes, u.boxes, guest);
  }
  // stderr is merged by the Command protocol: Teflon's own line comes before rkwl's.
  const text = await sample("guest-6.12-teflon-no-device.txt");
  const t = parseRkwlOutput(text);
  assert.equal(t.outcome, "no-device");
  assert.equal(noDeviceReason(t), "Couldn't open kernel device (libteflon.so)");
  assert.equal(t.foreignLines, 1);
});
