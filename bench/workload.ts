/**
 * Workload benchmark: the build time of the workload program (a fresh compile and bundle with
 * the arm64 packages already cached: resolve, compile, DT_NEEDED closure) and the invoke time
 * per model on the cpu backend, run on this host under user-mode QEMU (`qemu-aarch64`, one
 * thread). User-mode QEMU runs no guest kernel; its invoke times are of the same order as a
 * TCG guest's (the guest test, runner/workload/guest_qemu_test.ts, prints those) and far from
 * a board's. Written to `bench/results/workload.json`.
 *
 * Run: deno run -A bench/workload.ts [loops=5]
 */
import { stats } from "./stats.ts";
import { buildWorkload, runUserMode } from "../runner/workload/build.ts";
import { MOBILENET_V1, modelFile, modelFiles, YOLOV5N } from "../runner/workload/models.ts";
import { parseRkwlOutput, runTimes } from "../runner/workload/rkwl_output.ts";

const loops = Number(Deno.args[0] ?? 5);
if (!Number.isInteger(loops) || loops < 1 || loops > 100) {
  console.error("bench/workload.ts: loops must be a whole number from 1 to 100");
  Deno.exit(2);
}

const bundle = await buildWorkload(); // fetch and cache what the fresh builds reuse
const buildSeconds: number[] = [];
for (let i = 0; i < 2; i++) {
  const b = await buildWorkload({ fresh: true });
  buildSeconds.push(b.buildMs / 1000);
  await Deno.remove(b.dir.replace(/\/bundle$/, ""), { recursive: true });
}

async function invokes(args: string[], n: number): Promise<{ ms: number[]; top: string }> {
  const res = await runUserMode(bundle, [...args, "--warmup", "1", "--loops", String(n)], 900_000);
  const run = parseRkwlOutput(res.stdout);
  if (res.code !== 0 || run.outcome !== "done") {
    throw new Error(`rkwl failed (${res.code}): ${res.stdout.slice(-500)}${res.stderr}`);
  }
  const top = run.top[0]
    ? `top-1 ${run.top[0].classIndex} ${run.top[0].score}`
    : `${run.boxes.length} rows`;
  return { ms: runTimes(run), top };
}

const mobilenet = await invokes([
  ...(await modelFiles(MOBILENET_V1)).flatMap((m) => ["--model", m]),
  "--image",
  await modelFile("images/dog_224x224.jpg"),
], loops);
const yolo = await invokes([
  "--model",
  (await modelFiles(YOLOV5N))[0],
  "--image",
  await modelFile("images/bus.jpg"),
  "--task",
  "detect",
], Math.max(1, Math.ceil(loops / 2)));

const out = {
  date: new Date().toISOString(),
  host: { cpus: navigator.hardwareConcurrency, loadavg: Deno.loadavg() },
  where: "qemu-aarch64 user mode on this host, 1 thread, warm-up pass discarded",
  bundle: {
    key: bundle.key,
    sizeBytes: bundle.size,
    files: bundle.files.length,
    compiler: bundle.ccVersion,
    tflite: bundle.packages.find((p) => p.pkg.startsWith("libtensorflow-lite2"))?.version,
  },
  buildSeconds: stats(buildSeconds),
  invokeMs: {
    "mobilenet_v1_1.0_224_quant (31 slices), dog_224x224.jpg": {
      ...stats(mobilenet.ms, 1),
      result: mobilenet.top,
    },
    "yolov5n-int8, bus.jpg": { ...stats(yolo.ms, 1), result: yolo.top },
  },
};
await Deno.mkdir("bench/results", { recursive: true });
await Deno.writeTextFile("bench/results/workload.json", JSON.stringify(out, null, 2) + "\n");
console.log(JSON.stringify(out, null, 2));
