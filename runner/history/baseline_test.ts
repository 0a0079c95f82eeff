/** baselineSamples: earlier runs' samples of the same target, kernel, release and test only. */
import assert from "node:assert/strict";
import type { TestResult } from "../results/store.ts";
import { baselineSamples } from "./baseline.ts";
import { openHistory } from "./schema.ts";
import { HistoryWriter } from "./writer.ts";
import { historyTest } from "./stores_testutil.ts";

const result = (over: Partial<TestResult>, values: number[]): TestResult => ({
  test: "mobilenet_v1/cpu/latency",
  suite: "npu/mobilenet_v1",
  target: "qemu-virt-8g",
  kernel: "debian:trixie",
  release: "6.12.57+deb13-arm64",
  verdict: "DONE",
  measurements: values.map((value) => ({ name: "invoke", value, unit: "ms" })),
  startedAt: "2026-11-30T03:00:00.000Z",
  durationMs: 1,
  ...over,
});

historyTest(
  "baselineSamples: earlier PASS/DONE runs of this target, kernel, release and test, never the asking run",
  async (store) => {
    const db = openHistory(await store.fresh());
    try {
      const a = HistoryWriter.on(db, "/r/2026-11-30T01-00-00Z-main-aaaa");
      a.record(result({}, [1500, 1510]));
      a.record(result({ release: "6.1.0-40-arm64", kernel: "debian:bookworm" }, [999]));
      a.record(result({ target: "lab-1" }, [998]));
      a.record(result({ test: "yolov5/cpu/latency" }, [997]));
      const b = HistoryWriter.on(db, "/r/2026-11-30T02-00-00Z-main-bbbb");
      b.record(result({ verdict: "MISS", startedAt: "2026-11-30T04:00:00.000Z" }, [996]));
      b.record(result({ startedAt: "2026-11-30T05:00:00.000Z" }, [1600]));
      const q = {
        target: "qemu-virt-8g",
        kernel: "debian:trixie",
        release: "6.12.57+deb13-arm64",
        test: "mobilenet_v1/cpu/latency",
        name: "invoke",
      };
      const asked = { ...q, runId: "2026-11-30T03-00-00Z-main-cccc" };
      assert.deepEqual(baselineSamples(db, asked), [1600, 1500, 1510]);
      // The run that asks never counts itself.
      assert.deepEqual(baselineSamples(db, { ...q, runId: "2026-11-30T02-00-00Z-main-bbbb" }), [
        1500,
        1510,
      ]);
      assert.deepEqual(baselineSamples(db, { ...asked, limit: 1 }), [1600]);
      assert.deepEqual(baselineSamples(db, { ...asked, name: "other" }), []);
    } finally {
      db.close();
    }
  },
);
