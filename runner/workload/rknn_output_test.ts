import assert, { deepStrictEqual as assertEquals } from "node:assert/strict";
import fc from "fast-check";
import { parseRknnOutput, RKNN_MAX_ITEMS, type RknnOutput } from "./rknn_output.ts";

const dir = new URL("./testdata/", import.meta.url);
const sample = (name: string) => Deno.readTextFileSync(new URL(name, dir));
const parse = (name: string) => parseRknnOutput(sample(name));
const kinds = (o: RknnOutput) => o.errors.map((e) => `${e.source}:${e.kind}`);

Deno.test("rknn_benchmark SDK >= 1.5: versions, warm-up and perf runs, Avg Time, Top5", () => {
  const o = parse("format_benchmark_sdk15.txt");
  assertEquals(o.status, "result");
  assertEquals(o.runtimeVersion, {
    raw: "1.5.2 (c6b7b351a@2023-08-23T15:28:22)",
    version: "1.5.2",
    build: "c6b7b351a@2023-08-23T15:28:22",
  });
  assertEquals(o.driverVersion, "0.8.2");
  assertEquals([o.inputCount, o.outputCount], [1, 1]);
  assertEquals(o.warmupRuns.map((r) => r.elapsedMs), [5.12, 4.95, 4.9, 4.88, 4.86]);
  assertEquals(o.perfRuns.map((r) => [r.index, r.elapsedMs, r.fps]), [
    [0, 4.79, 208.77],
    [1, 4.95, 202.02],
    [2, 4.81, 207.9],
  ]);
  assertEquals(o.perfRuns[0].line, 12);
  assertEquals([o.avgTimeMs, o.avgFps], [4.85, 206.186]);
  assertEquals(o.topK.length, 1);
  assertEquals(o.topK[0].style, "benchmark");
  assertEquals(o.topK[0].headerK, 5);
  assertEquals(o.topK[0].classes.slice(0, 2), [
    { classIndex: 156, score: 0.947754 },
    { classIndex: 155, score: 0.04718 },
  ]);
  assertEquals(o.topK[0].classes.length, 5);
  assertEquals(o.errors, []);
});

Deno.test("rknn_benchmark SDK 1.4: Avg FPS without Avg Time", () => {
  const o = parse("format_benchmark_sdk14.txt");
  assertEquals(o.avgTimeMs, undefined);
  assertEquals(o.avgFps, 205.376);
  assertEquals(o.perfRuns.map((r) => r.elapsedMs), [4.79, 4.95]);
  assertEquals(o.warmupRuns, []);
});

Deno.test("rknn_common_test: runs and Top5, no warm-up, no average", () => {
  const o = parse("format_common_test.txt");
  assertEquals(o.status, "result");
  assertEquals(o.perfRuns.length, 2);
  assertEquals([o.avgTimeMs, o.avgFps], [undefined, undefined]);
  assertEquals(o.topK[0].classes.map((c) => c.classIndex), [156, 155]);
});

Deno.test("rknn_mobilenet_demo: header block and the real RV1126 lines without header", () => {
  const o = parse("format_mobilenet_demo.txt");
  assertEquals(o.topK.length, 1);
  assertEquals(o.topK[0].style, "demo");
  assertEquals(o.topK[0].headerK, 5);
  assertEquals(o.topK[0].classes.map((c) => [c.classIndex, c.score]), [
    [156, 0.947754],
    [155, 0.04718],
    [0, 0],
    [1, 0],
    [2, 0],
  ]);
  const real = parse("mobilenet_demo_rv1126.txt");
  assertEquals(real.status, "result");
  assertEquals(real.topK.length, 1);
  assertEquals(real.topK[0].headerK, undefined);
  assertEquals(real.topK[0].classes, [
    { classIndex: 156, score: 0.947754 },
    { classIndex: 155, score: 0.04718 },
  ]);
});

Deno.test("the blog's flattened, elided top-5 line is not read as classes (layout unknown)", () => {
  const o = parse("mobilenet_demo_rock5b_blog.txt");
  assertEquals(o.status, "nothing");
  assertEquals(o.topK, []);
});

Deno.test("rknn_model_zoo mobilenet: [index] score= class= with the label", () => {
  const o = parse("model_zoo_mobilenet_readme.txt");
  assertEquals(o.topK[0].style, "model-zoo");
  assertEquals(o.topK[0].classes, [
    { classIndex: 494, score: 0.990035, label: "n03017168 chime, bell, gong" },
  ]);
  const py = parseRknnOutput(
    '-----TOP 5-----\n[494] score=0.99 class="n03017168 chime, bell, gong"\n',
  );
  assertEquals(py.topK[0].headerK, 5);
  assertEquals(py.topK[0].classes[0].label, "n03017168 chime, bell, gong");
});

Deno.test("rknn_yolov5_demo: once run, detections with spaces and negatives, loop average", () => {
  const o = parse("format_yolov5_demo.txt");
  assertEquals(o.status, "result");
  assertEquals(o.runtimeVersion?.version, "1.5.2");
  assertEquals(o.driverVersion, "0.8.2");
  assertEquals(o.onceRunMs, 57.123);
  assertEquals(o.loop, { count: 10, averageMs: 58.456 });
  assertEquals(
    o.detections.map((d) => [d.className, d.leftPx, d.topPx, d.rightPx, d.bottomPx, d.score]),
    [
      ["person", 209, 243, 286, 510, 0.879299],
      ["traffic light", -3, 10, 40, 90, 0.301],
      ["bus", 91, 136, 554, 440, 0.705],
    ],
  );
  // `post process config: ... = 0.25` and `model input height=640` are not results.
  assertEquals(o.topK, []);
});

Deno.test("librknnrt I/W lines: versions and the old-driver warning (not an error)", () => {
  const o = parse("librknnrt_lines.txt");
  assertEquals(o.runtimeVersion, {
    raw: "2.3.2 (429f97ae6b@2025-04-09T09:09:27)",
    version: "2.3.2",
    build: "429f97ae6b@2025-04-09T09:09:27",
  });
  assertEquals(o.driverVersion, "0.9.8");
  assertEquals(o.status, "nothing");
  assertEquals(o.errors.length, 1);
  assertEquals(o.errors[0].kind, "driver-outdated");
  assertEquals(o.errors[0].severity, "warning");
  assertEquals(o.errors[0].fields, { driverVersion: "0.8.2", recommended: "0.8.8" });
  const old = parse("librknnrt_152_info.txt");
  assertEquals(old.runtimeVersion, { raw: "1.5.2 (...)", version: "1.5.2", build: "..." });
  assertEquals(old.driverVersion, "0.8.2");
});

Deno.test("librknnrt error lines: driver missing, device, submit, malloc", () => {
  const nd = parse("librknnrt_no_driver.txt");
  assertEquals(nd.status, "error");
  assertEquals(kinds(nd), ["librknnrt:driver-missing", "program:device-open-failed"]);
  const sub = parse("librknnrt_submit_failed.txt");
  assertEquals(kinds(sub), ["librknnrt:submit-failed"]);
  assertEquals(sub.errors[0].fields, {
    opId: 1,
    opName: "Conv:...",
    flags: 1,
    taskStart: 0,
    taskNumber: 30,
    runTaskCounter: 0,
    intStatus: 0,
  });
  // The `[...]` of the samples is librknnrt's `[HH:MM:SS.mmm]` (research §1.5).
  const stamped = parseRknnOutput(
    "E RKNN: [10:23:45.123] failed to submit!, op id: 2, flags: 0x1\n",
  );
  assertEquals(stamped.errors[0].fields, { opId: 2, flags: 1 });
  const mal = parse("librknnrt_malloc_failed.txt");
  assertEquals(kinds(mal), ["librknnrt:npu-malloc-failed"]);
  assertEquals(mal.errors[0].fields, { flags: 2 }); // size elided in the sample: absent, not 0
  const arm = parse("armbian_rk3568_8gb_submit.txt");
  assertEquals(kinds(arm), ["librknnrt:submit-failed", "program:api-call-failed"]);
  assertEquals(arm.errors[0].fields, { opId: 1 });
  assertEquals(arm.errors[1].fields, { call: "rknn_run", ret: -1 });
  assertEquals(arm.errors[1].line, 2);
});

Deno.test("rknpu kernel lines: RK3568 timeout with its core line folded in", () => {
  const o = parse("rknpu_rk3568_timeout.txt");
  assertEquals(o.status, "error");
  assertEquals(kinds(o), ["kernel:wait-failed", "kernel:job-timeout"]);
  assertEquals(o.errors[0].fields, { taskCounter: 0, flags: 5, ret: 0, elapsedTimeUs: 6252728 });
  assertEquals(o.errors[1].fields, {
    flags: 0,
    core: 0,
    irqStatus: 0,
    rawStatus: 0,
    requireMask: 0x300,
    taskCounter: 0,
    elapsedTimeUs: 6359758,
  });
});

Deno.test("rknpu kernel lines: abort, old one-line timeout, soft reset", () => {
  const a = parse("rknpu_rk3588_abort.txt");
  assertEquals(kinds(a), ["kernel:wait-failed", "kernel:job-abort"]);
  assertEquals(a.errors[0].fields.ret, -512);
  assertEquals(a.errors[1].fields, { flags: 1, ret: 0, elapsedTimeUs: 121694 });
  const old = parse("rknpu_old_timeout.txt");
  assertEquals(kinds(old), ["kernel:job-timeout", "kernel:soft-reset"]);
  assertEquals(old.errors[0].fields.requireMask, 0x300);
  assertEquals(old.errors[0].fields.elapsedTimeUs, undefined);
  assertEquals(old.errors[1].severity, "warning");
  assertEquals(parseRknnOutput("RKNPU: soft reset, num: 3\n").errors[0].fields, { num: 3 });
});

Deno.test("rknpu probe lines: iommu mode, driver version, devfreq", () => {
  assertEquals(parse("rknpu_probe_rk3568.txt").probe, { mode: "iommu", driverVersion: "0.8.5" });
  const m = parse("rknpu_probe_mainline_dkms.txt");
  assertEquals(m.probe, {
    driverVersion: "0.9.8",
    initialFreqHz: 594000000,
    initialVoltUv: 900000,
  });
  assertEquals(m.status, "nothing");
  const non = parseRknnOutput(
    "[    2.000000] RKNPU fde40000.npu: RKNPU: rknpu iommu device-tree entry not found!, using non-iommu mode\n",
  );
  assertEquals(non.probe.mode, "non-iommu");
});

Deno.test("interleaved: printk-prefixed kernel lines, mid-line kernel text, CRLF and ANSI", () => {
  const text = [
    "Begin perf ...",
    "\x1b[32m   0: Elapse Time = 4.79ms, FPS = 208.77\x1b[0m",
    "<3>[  123.456789] RKNPU: job abort, flags: 0x1, ret: 0, elapsed time: 121694us",
    "   1: Elapse Time = 4.95ms, FPS = 202.02[  124.000001] RKNPU: soft reset, num: 1",
    "[2026-01-01 10:00:00] Avg Time 4.87ms, Avg FPS = 205.000",
    "Jan 12 22:21:22 rock3b kernel: [  125.0] RKNPU: failed to wait job, task counter: 1, flags: 0x1, ret = -512, elapsed time: 9us",
  ].join("\r\n");
  const o = parseRknnOutput(text);
  assertEquals(o.status, "both");
  assertEquals(o.perfRuns.map((r) => r.elapsedMs), [4.79, 4.95]);
  assertEquals(o.avgTimeMs, 4.87);
  assertEquals(kinds(o), ["kernel:job-abort", "kernel:soft-reset", "kernel:wait-failed"]);
  assertEquals(o.errors.map((e) => e.line), [3, 4, 6]);
});

Deno.test("top-k: header style without classes; kernel lines inside a block; host-stamped output", () => {
  assertEquals(parseRknnOutput(" --- Top5 ---\n").topK[0].style, "demo");
  assertEquals(parseRknnOutput("---- Top5 ----\n").topK[0].style, "benchmark");
  assertEquals(parseRknnOutput("-----TOP 5-----\n").topK[0].style, "model-zoo");
  assertEquals(parseRknnOutput("---- Top5 ----\n").status, "nothing");
  const o = parseRknnOutput(
    [
      "---- Top5 ----",
      "0.947754 - 156",
      "[  10.000000] usb 1-1: new high-speed USB device number 2",
      "RKNPU: soft reset, num: 1",
      "0.047180 - 155",
      "[12:08:08.123] 0.000100 - 7",
      "done",
      "1: 2",
    ].join("\n"),
  );
  assertEquals(o.topK.length, 1);
  assertEquals(o.topK[0].classes.map((c) => c.classIndex), [156, 155, 7]);
  assertEquals(kinds(o), ["kernel:soft-reset"]);
  assertEquals(o.status, "result");
});

Deno.test("hostile input: empty, binary, truncated lines, long lines, unrelated text", () => {
  for (
    const t of [
      "",
      "\n",
      "\r\n\r\n",
      "\0\x01\xff\ufffd",
      "   0: Elapse Time = ",
      "Avg Time 4.8",
      "bus @ (1 2 3",
      "E RKNN",
    ]
  ) {
    const o = parseRknnOutput(t);
    assertEquals(o.status, "nothing", JSON.stringify(t));
    assertEquals(o.errors, []);
  }
  const long = parseRknnOutput(
    "x".repeat(10_000) + "\n   0: Elapse Time = 1.00ms, FPS = 1000.00\n",
  );
  assertEquals(long.skippedLongLines, 1);
  assertEquals(long.perfRuns.length, 1);
  assertEquals(long.perfRuns[0].line, 2);
  // @ts-expect-error: a non-string from an untyped caller gives an empty result, no throw
  assertEquals(parseRknnOutput(undefined).status, "nothing");
});

Deno.test("10 MB inputs parse in bounded time and bounded lists", () => {
  const runs = "   1: Elapse Time = 4.79ms, FPS = 208.77\n".repeat(260_000); // ~10.4 MB
  let t0 = performance.now();
  const o = parseRknnOutput(runs);
  assert(performance.now() - t0 < 20_000);
  assertEquals(o.perfRuns.length, RKNN_MAX_ITEMS);
  assertEquals(o.droppedItems, 260_000 - RKNN_MAX_ITEMS);
  for (
    const t of ["@".repeat(10_000_000), "a @ (".repeat(2_000_000), "[ 1.0] ".repeat(1_500_000)]
  ) {
    t0 = performance.now();
    const h = parseRknnOutput(t);
    assert(performance.now() - t0 < 20_000);
    assertEquals(h.status, "nothing");
  }
  // Many short hostile lines: every regex runs on each.
  const lines = "x @ (1 2 3 4 ".concat("9".repeat(50), "\nE RKNN: [", "[".repeat(30), "\n").repeat(
    150_000,
  );
  t0 = performance.now();
  parseRknnOutput(lines);
  assert(performance.now() - t0 < 30_000);
});

Deno.test("property: never throws, lists bounded by twice the line count", () => {
  const piece = fc.oneof(
    fc.string(),
    fc.constantFrom(
      "Begin perf ...",
      "Warmup ...",
      "   0: Elapse Time = 4.79ms, FPS = 208.77",
      "---- Top5 ----",
      "0.5 - 3",
      "12: 0.5",
      "bus @ (1 2 3 4) 0.5",
      "E RKNN: [x] failed to submit, op id: 1",
      "RKNPU: job timeout, flags: 0x0:",
      "RKNPU: \\tcore 0 irq status: 0x0",
      "[    1.000000] ",
      "\x1b[31m",
      "\r",
    ),
  );
  fc.assert(
    fc.property(
      fc.array(piece, { maxLength: 40 }),
      fc.constantFrom("\n", "\r\n", "", " "),
      (ps, sep) => {
        const text = ps.join(sep);
        const o = parseRknnOutput(text);
        const lines = text.split(/\r\n|\n|\r/).length;
        const items = o.perfRuns.length + o.warmupRuns.length + o.detections.length +
          o.errors.length +
          o.topK.reduce((n, t) => n + Math.max(1, t.classes.length), 0);
        // A line holds at most one program item and one kernel line that starts mid-line.
        assert(items <= 2 * lines, `${items} items from ${lines} lines`);
        assert(["result", "error", "both", "nothing"].includes(o.status));
        for (const r of o.perfRuns) {
          assert(
            Number.isFinite(r.elapsedMs) && r.line >= 1 && r.line <= lines,
          );
        }
      },
    ),
    { numRuns: 2000 },
  );
});
