/**
 * The workload suites `npu/mobilenet_v1` and `npu/yolov5` as `rkhil run` runs them, on the
 * embedded target booting a real Debian arm64 kernel (trixie, 6.12), through the Target
 * protocols only: the bundle and the models are uploaded (SHA-256 checked in the guest) and rkwl
 * runs with the bundle's own loader. The cpu backend classifies all four images with
 * MobileNetV1 1.0/224 (31 chained slices) and detects on bus.jpg with YOLOv5n, each judged
 * against the published references and the oracle's workload verdict; rknn SKIPs for its
 * missing capability; the target is given the `rocket` capability here (a qemu-virt board file
 * cannot claim it) so the rocket backend runs Mesa Teflon, which finds no NPU and says why (a
 * SKIP, as the oracle predicts: no NPU MMU on qemu-virt). Results go to the history as they are
 * recorded. Few invokes (1 warm-up + 3 for MobileNetV1, 1 + 1 for YOLOv5n): under TCG a
 * MobileNetV1 pass takes about 1.5 s, a YOLOv5n pass 7-12 s.
 */
import assert from "node:assert/strict";
import type { Target } from "../protocol/target.ts";
import { openHistory } from "../history/schema.ts";
import { queryResults } from "../history/query.ts";
import { parseResults } from "../results/store.ts";
import { qemuPlans, shutdownQemu } from "../suite/plans.ts";
import { runJob } from "../suite/run_job.ts";
import type { TargetPlan } from "../suite/runner.ts";
import { testRunRoot } from "../test_dirs.ts";
import { selectSuites } from "../../tests/mod.ts";
import { waitNoneUnder } from "../jobs/_qemu_procs.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The plan's target with `rocket` added to its capabilities (everything else the target's). */
function withRocket(plan: TargetPlan): TargetPlan {
  return {
    ...plan,
    open: async (dir, variant) => {
      const t = await plan.open(dir, variant);
      const caps = new Set([...t.capabilities, "rocket" as const]);
      return new Proxy(t, {
        get(o, k) {
          if (k === "capabilities") return caps;
          const v = Reflect.get(o, k, o);
          return typeof v === "function" ? v.bind(o) : v;
        },
      }) as Target;
    },
  };
}

Deno.test({
  name:
    "npu suites on debian:trixie: MobileNetV1 on four images and YOLOv5n on bus.jpg on the cpu; rknn and rocket SKIP with their reasons",
  ...opts,
  fn: async () => {
    const root = await testRunRoot("rkhil-workload-test-");
    const db = `${root}/history.sqlite`;
    const lines: string[] = [];
    const r = await runJob({
      plans: qemuPlans(["debian:trixie"]).map(withRocket),
      suites: selectSuites(["npu/mobilenet_v1", "npu/yolov5"]),
      predictBoards: [],
      runsRoot: root,
      shutdown: shutdownQemu,
      history: db,
      log: (l) => lines.push(l),
    });
    const by = new Map(r.results.map((x) => [x.test, x]));
    const images = ["grace_hopper", "dog_224x224", "cat_224x224", "bus"];
    assert.deepEqual(r.results.map((x) => x.test), [
      "boot",
      ...images.map((i) => `mobilenet_v1/cpu/${i}`),
      "mobilenet_v1/cpu/latency",
      "mobilenet_v1/rknn",
      ...images.map((i) => `mobilenet_v1/rocket/${i}`),
      "mobilenet_v1/rocket/latency",
      "yolov5/cpu/bus",
      "yolov5/cpu/latency",
      "yolov5/rknn",
      "yolov5/rocket/bus",
      "yolov5/rocket/latency",
    ], lines.join("\n"));
    for (const x of r.results) {
      const [, backend, what] = x.test.split("/");
      const want = x.test === "boot"
        ? "PASS"
        : backend !== "cpu"
        ? "SKIP"
        : what === "latency"
        ? "DONE"
        : "PASS";
      assert.equal(x.verdict, want, `${x.test}: ${x.reason}\n${lines.join("\n")}`);
      assert.equal(x.kernel, "debian:trixie");
    }
    // Correctness and the oracle's verdict on the cpu: the four images and the bus's objects.
    for (const i of images) {
      const d = by.get(`mobilenet_v1/cpu/${i}`)!.details!;
      assert.deepEqual([d.predicted, d.observed, d.verdict], [
        "correct-output",
        "correct-output",
        "AGREE",
      ]);
      assert.equal((d.runMs as number[]).length, 3);
      assert.equal((d.warmupMs as number[]).length, 1);
    }
    assert.match(
      String(by.get("mobilenet_v1/cpu/dog_224x224")!.details!.summary),
      /^156 Shih-Tzu 0\.\d\d; oracle agree$/,
    );
    const bus = by.get("yolov5/cpu/bus")!.details!;
    assert.equal(bus.verdict, "AGREE");
    assert.match(String(bus.summary), /person.*bus|bus.*person/);
    // Latency: every timed pass a measurement, warm-ups apart.
    const lat = by.get("mobilenet_v1/cpu/latency")!;
    assert.equal(lat.measurements?.length, 12);
    assert.ok(
      lat.measurements!.every((m) => m.name === "invoke" && m.unit === "ms" && m.value > 50),
    );
    assert.equal((lat.details!.warmupMs as number[]).length, 4);
    assert.match(String(lat.details!.summary), /^median \d+ ms \[\d+, \d+\]$/);
    assert.equal(by.get("yolov5/cpu/latency")!.measurements?.length, 1);
    // rknn: the capability is missing; rocket: Teflon's own no-device, as the oracle predicts.
    assert.match(
      by.get("mobilenet_v1/rknn")!.reason ?? "",
      /^needs capability rknn \(this target has: .*rocket/,
    );
    const rocket = by.get("mobilenet_v1/rocket/grace_hopper")!;
    assert.equal(rocket.reason, "Couldn't open kernel device (libteflon.so)");
    assert.deepEqual(
      [rocket.details!.predicted, rocket.details!.observed, rocket.details!.verdict],
      [
        "no-device",
        "no-device",
        "AGREE",
      ],
    );
    // Later rocket steps SKIP with the same reason without running it again.
    assert.equal(by.get("mobilenet_v1/rocket/dog_224x224")!.details!.command, undefined);
    assert.equal(by.get("yolov5/rocket/bus")!.reason, "Couldn't open kernel device (libteflon.so)");
    // The history has every result, written as the run went; the report shows the workloads.
    const h = openHistory(db);
    try {
      assert.equal(queryResults(h).length, r.results.length);
    } finally {
      h.close();
    }
    const record = parseResults(await Deno.readTextFile(`${r.dir}/results.jsonl`));
    assert.equal(record.results.length, r.results.length);
    const report = await Deno.readTextFile(`${r.dir}/report.md`);
    assert.match(report, /## NPU workloads/);
    assert.match(report, /\| debian:trixie \| 6\.12\.[^|]+\| mobilenet_v1 \| cpu \| 4\/4 PASS: /);
    assert.equal(r.exitCode, 0);
    console.log(`  ${lines.filter((l) => /latency/.test(l)).join("\n  ")}`);
    console.log(`  ${lat.details!.summary}`);
    assert.deepEqual(await waitNoneUnder(root), []);
  },
});
