import assert from "node:assert/strict";
import fc from "fast-check";
import {
  parseNpuDriverInit,
  parseRknnApiFail,
  parseRknnLog,
  parseRknpuMessage,
} from "./npu_lines.ts";

const sample = async (name: string) =>
  (await Deno.readTextFile(new URL(`../workload/testdata/${name}`, import.meta.url)))
    .split("\n").filter((l) => l !== "");

Deno.test("npu lines: the RK3568 timeout report (research samples), every line classified", async () => {
  const kinds = (await sample("rknpu_rk3568_timeout.txt")).map((l) => parseRknpuMessage(l)?.kind);
  assert.deepEqual(kinds, ["job-wait-info", "wait-failed", "job-timeout", "timeout-core"]);
  const [info, wait, timeout, core] = (await sample("rknpu_rk3568_timeout.txt")).map((l) =>
    parseRknpuMessage(l)!
  );
  assert.equal(info.fields.timeoutUs, 6000000);
  assert.deepEqual(wait.fields, { taskCounter: 0, flags: "0x5", ret: 0, elapsedUs: 6252728 });
  assert.equal(timeout.continued, true);
  assert.deepEqual(core.fields, {
    core: 0,
    irqStatus: "0x0",
    rawStatus: "0x0",
    requireMask: "0x300",
    taskCounter: "0x0",
    elapsedUs: 6359758,
  });
});

Deno.test("npu lines: old one-line timeout, soft reset, abort, probe lines", async () => {
  const old = (await sample("rknpu_old_timeout.txt")).map((l) => parseRknpuMessage(l)!);
  assert.equal(old[0].kind, "job-timeout");
  assert.equal(old[0].continued, true); // its elapsed time is elided (`...`) in the sample
  assert.deepEqual(old[1].fields, {});
  const oneLine = parseRknpuMessage(
    "RKNPU: job timeout, flags: 0x0, irq status: 0x0, raw status: 0x0, require mask: 0x300, " +
      "task counter: 0x0, elapsed time: 6359758us",
  )!;
  assert.equal(oneLine.continued, undefined);
  assert.equal(oneLine.fields.elapsedUs, 6359758);
  assert.deepEqual(parseRknpuMessage("RKNPU: soft reset, num: 0")?.fields, { num: 0 });
  const abort = (await sample("rknpu_rk3588_abort.txt")).map((l) => parseRknpuMessage(l)!);
  assert.deepEqual(abort[1].fields, { flags: "0x1", ret: 0, elapsedUs: 121694 });
  const probe = await sample("rknpu_probe_rk3568.txt");
  const iommu = parseRknpuMessage(probe[0])!;
  assert.equal(iommu.device, "fde40000.npu");
  assert.deepEqual(iommu.fields, { iommu: "enabled" });
  assert.deepEqual(parseNpuDriverInit(probe[1]), {
    driver: "rknpu",
    version: "0.8.5",
    date: "20230202",
    device: "fde40000.npu",
    minor: 1,
  });
  assert.deepEqual(parseNpuDriverInit("Initialized RKNPU driver: v0.9.8 for 20240828"), {
    driver: "rknpu",
    version: "0.9.8",
    date: "20240828",
  });
  assert.equal(parseRknpuMessage("rk_iommu fde4b000.iommu: Page fault")?.kind, undefined);
  assert.equal(parseRknpuMessage("RKNPU: something new")?.kind, "other");
});

Deno.test("npu lines: librknnrt log lines and API failures", async () => {
  const [submit] = await sample("librknnrt_submit_failed.txt");
  assert.equal(parseRknnLog(submit)?.level, "E");
  assert.match(parseRknnLog(submit)!.message, /^failed to submit!, op id: 1/);
  assert.deepEqual(
    parseRknnLog("I RKNN: [10:21:14.186] RKNN Runtime Information, librknnrt version: 2.3.2"),
    { level: "I", message: "RKNN Runtime Information, librknnrt version: 2.3.2" },
  );
  assert.deepEqual(parseRknnApiFail("rknn_run fail! ret=-1"), { api: "rknn_run", ret: -1 });
  assert.equal(parseRknnApiFail("rknn_run ok"), null);
  assert.equal(parseRknnLog("X RKNN: nope"), null);
});

Deno.test("npu lines: any text is classified or refused without throwing (fast-check)", () => {
  const pre = fc.constantFrom(
    "RKNPU: ",
    "RKNPU fde40000.npu: RKNPU: ",
    "[drm] Initialized ",
    "E RKNN: ",
    "",
  );
  fc.assert(
    fc.property(pre, fc.string(), (p, s) => {
      parseRknpuMessage(p + s);
      parseNpuDriverInit(p + s);
      parseRknnLog(p + s);
      parseRknnApiFail(p + s);
    }),
    { numRuns: 2000 },
  );
});
