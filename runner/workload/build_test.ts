/**
 * The workload bundle, built for real (Debian sid arm64 TFLite through the private apt, the
 * host's aarch64 cross compiler) and run on this host under user-mode QEMU (`qemu-aarch64`):
 * proves the bundle is complete and the program right; invoke times here are user-mode QEMU's.
 */
import assert from "node:assert/strict";
import { judgeClassification, judgeDetection } from "./judge.ts";
import { buildWorkload, BUNDLE_LOADER, bundleCommand, copyClosure, runUserMode } from "./build.ts";
import { InfraError } from "../errors.ts";
import { EM_AARCH64, readElfDynamic } from "./elf.ts";
import { MOBILENET_V1, modelFile, modelFiles, MODELS_DIR, YOLOV5N } from "./models.ts";
import { MOBILENET_V1_REFERENCES, YOLOV5_BUS_REFERENCE } from "./references.ts";
import { noDeviceReason, parseRkwlOutput, runTimes } from "./rkwl_output.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const bundle = () => buildWorkload();

Deno.test({
  name: "workload bundle: built once by its inputs, complete closure, arm64 only",
  ...opts,
  fn: async () => {
    const b = await bundle();
    const again = await bundle();
    assert.equal(again.cached, true);
    assert.equal(again.key, b.key);
    assert.equal(again.dir, b.dir);
    const names = b.files.map((f) => f.path);
    for (const f of ["rkwl", `lib/${BUNDLE_LOADER}`, "teflon/libteflon.so"]) {
      assert.ok(names.includes(f), `${f} in the bundle`);
    }
    assert.ok(names.some((n) => /^lib\/libtensorflow-lite\.so\./.test(n)));
    assert.ok(names.some((n) => /^lib\/libstdc\+\+\.so\.6$/.test(n)));
    assert.ok(b.packages.some((p) => p.pkg === "libtensorflow-lite2.14.1"));
    // Every DT_NEEDED of every bundled object is in lib/: nothing comes from the target.
    const libs = new Set(names.filter((n) => n.startsWith("lib/")).map((n) => n.slice(4)));
    for (const n of names) {
      const info = readElfDynamic(await Deno.readFile(`${b.dir}/${n}`));
      assert.equal(info.machine, EM_AARCH64, n);
      for (const need of info.needed) assert.ok(libs.has(need), `${n} needs ${need}`);
    }
    assert.deepEqual(bundleCommand("/tmp/w", ["--x"]), [
      "/tmp/w/lib/ld-linux-aarch64.so.1",
      "--library-path",
      "/tmp/w/lib",
      "/tmp/w/rkwl",
      "--x",
    ]);
  },
});

Deno.test({
  name: "workload bundle: MobileNetV1 (31 chained slices) classifies the dog as 156",
  ...opts,
  fn: async () => {
    const b = await bundle();
    const models = (await modelFiles(MOBILENET_V1)).flatMap((m) => ["--model", m]);
    const ref = MOBILENET_V1_REFERENCES.find((r) => r.image.endsWith("dog_224x224.jpg"))!;
    const res = await runUserMode(b, [
      ...models,
      "--image",
      await modelFile(ref.image),
      "--loops",
      "2",
    ]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const run = parseRkwlOutput(res.stdout);
    assert.deepEqual(run.problems, []);
    assert.equal(run.models.length, 31);
    assert.equal(runTimes(run).length, 2);
    const j = judgeClassification(run, ref);
    assert.equal(j.verdict, "PASS", j.reason);
  },
});

Deno.test({
  name: "workload bundle: YOLOv5n detects the people and the bus on bus.jpg",
  ...opts,
  fn: async () => {
    const b = await bundle();
    const [model] = await modelFiles(YOLOV5N);
    const res = await runUserMode(b, [
      "--model",
      model,
      "--image",
      await modelFile(YOLOV5_BUS_REFERENCE.image),
      "--task",
      "detect",
    ]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const run = parseRkwlOutput(res.stdout);
    assert.deepEqual(run.problems, []);
    const j = judgeDetection(run, YOLOV5_BUS_REFERENCE);
    assert.equal(j.verdict, "PASS", j.reason);
  },
});

Deno.test({
  name: "workload bundle: Teflon with no NPU is exit 3 with 'Couldn't open kernel device'",
  ...opts,
  fn: async () => {
    const b = await bundle();
    const [model] = await modelFiles(YOLOV5N);
    const res = await runUserMode(b, [
      "--model",
      model,
      "--image",
      await modelFile("images/bus.jpg"),
      "--delegate",
      `${b.dir}/${b.teflon}`,
    ]);
    assert.equal(res.code, 3, res.stdout + res.stderr);
    const run = parseRkwlOutput(res.stdout);
    assert.equal(run.outcome, "no-device");
    assert.equal(noDeviceReason(run), "Couldn't open kernel device (libteflon.so)");
    assert.equal(run.invokes.length, 0);
  },
});

Deno.test({
  name: "workload bundle: bad arguments are exit 2 with the stage, before any invoke",
  ...opts,
  fn: async () => {
    const b = await bundle();
    const [model] = await modelFiles(YOLOV5N);
    const bus = await modelFile("images/bus.jpg");
    const mb = (i: number) => `${MODELS_DIR}/mobilenet_v1_1.0_224_quant/mb${i}.tflite`;
    // The first 100 kB of a real model: not a valid FlatBuffer.
    const junk = `${await Deno.makeTempDir({ prefix: "rkhil-rkwl-" })}/junk.tflite`;
    await Deno.writeFile(junk, (await Deno.readFile(model)).subarray(0, 100_000));
    const cases: [string[], RegExp][] = [
      [["--model", model, "--image", "/nonexistent.jpg"], /^image: \/nonexistent\.jpg: /],
      [["--model", model], /^usage: --model and --image are required$/],
      [["--model", model, "--image", "x", "--top", "0"], /^usage: --top is 1\.\.100$/],
      [["--bogus", "1"], /^usage: unknown option --bogus$/],
      [["--model", junk, "--image", bus], /^model: cannot load .*junk\.tflite$/],
      [
        ["--model", mb(0), "--model", mb(5), "--image", bus],
        /^chain: output uint8 1x112x112x32 of .*mb0\.tflite does not fit the input uint8 1x56x56x128 of .*mb5\.tflite$/,
      ],
    ];
    for (const [args, re] of cases) {
      const res = await runUserMode(b, args);
      assert.equal(res.code, 2, args.join(" "));
      const run = parseRkwlOutput(res.stdout);
      assert.equal(run.outcome, "bad-input");
      assert.match(`${run.errors[0].stage}: ${run.errors[0].message}`, re);
      assert.equal(run.invokes.length, 0);
    }
    await Deno.remove(junk.slice(0, junk.lastIndexOf("/")), { recursive: true });
  },
});

Deno.test({
  name: "workload bundle: a library in no package, or a host binary, stops the bundling",
  ...opts,
  fn: async () => {
    const b = await bundle();
    const tmp = await Deno.makeTempDir({ prefix: "rkhil-closure-" });
    try {
      await Deno.mkdir(`${tmp}/sysroot/usr/lib/aarch64-linux-gnu`, { recursive: true });
      await Deno.mkdir(`${tmp}/out`);
      await assert.rejects(
        copyClosure(`${tmp}/sysroot`, [`${b.dir}/rkwl`], `${tmp}/out`),
        (e: unknown) => {
          assert.ok(e instanceof InfraError);
          assert.match(
            e.message,
            /^libtensorflow-lite\.so\.2\.14\.1 \(needed by .*rkwl\) is in no package/,
          );
          return true;
        },
      );
      await assert.rejects(
        copyClosure(`${tmp}/sysroot`, [await Deno.realPath("/bin/ls")], `${tmp}/out`),
        /is not an AArch64 object \(e_machine \d+\)/,
      );
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
