/**
 * The seed's and research §2's scenarios, predicted from the shipped board files.
 */
import assert from "node:assert/strict";
import { findBoard } from "../boards/load.ts";
import { boardFacts } from "../boards/facts.ts";
import { compare } from "./compare.ts";
import type { InstancePrediction, Prediction } from "./prediction.ts";
import { predict } from "./predict.ts";
import {
  buildScenario,
  type DtIommuNode,
  OracleInputError,
  type ScenarioInput,
} from "./scenario.ts";

const NPU = "fde4b000";
const VOP = "fe043e00";

async function run(
  boardId: string,
  kernel: string,
  extra: Partial<Omit<ScenarioInput, "board" | "kernel">> = {},
): Promise<Prediction> {
  const loaded = await findBoard(boardId);
  return predict(buildScenario({ board: boardFacts(loaded.board, loaded.path), kernel, ...extra }));
}

function inst(p: Prediction, unit: string): InstancePrediction {
  const i = p.instances.find((x) => x.unit === unit);
  assert.ok(i, `no instance ${unit} in ${p.instances.map((x) => x.unit).join(",")}`);
  return i;
}

Deno.test("ROCK 3B 8 GB NPU MMU: OK on 6.1, BUS_ERROR on 6.12 (seed failure mode 1)", async () => {
  const p61 = await run("rock-3b-8g", "6.1");
  const npu61 = inst(p61, NPU);
  assert.equal(npu61.outcome, "OK");
  assert.equal(npu61.dt?.above4G, false);
  assert.equal(npu61.dt?.bounced, false);
  assert.deepEqual(npu61.expectedLines, []);

  const p612 = await run("rock-3b-8g", "6.12");
  const npu = inst(p612, NPU);
  assert.equal(npu.outcome, "BUS_ERROR");
  assert.equal(npu.dt?.above4G, true);
  assert.equal(npu.dt?.reachable, false);
  assert.equal(npu.expectedLines.length, 1);
  const re = new RegExp(npu.expectedLines[0].regex);
  assert.ok(re.test("rk_iommu fde4b000.iommu: BUS_ERROR occurred at 0x0000000000010000"));
  assert.ok(!re.test("rk_iommu fe043e00.iommu: BUS_ERROR occurred at 0x0000000000010000"));
  // Every conclusion names its facts with provenance.
  for (const step of npu.explanation) {
    for (const f of step.facts) assert.ok(f.provenance.source.length > 0, step.rule);
  }
});

Deno.test("ROCK 3B 8 GB VOP2 MMU: OK on 6.1 and on 6.12 (v2.0 walker reaches 40 bits)", async () => {
  for (const k of ["6.1", "6.12"]) {
    const vop = inst(await run("rock-3b-8g", k), VOP);
    assert.equal(vop.outcome, "OK", k);
  }
  const vop = inst(await run("rock-3b-8g", "6.12"), VOP);
  assert.equal(vop.dt?.above4G, true);
  assert.equal(vop.dt?.reachable, true);
});

Deno.test("blocks of unknown revision are UNCERTAIN when their tables go above 4 GiB", async () => {
  const vdpu = inst(await run("rock-3b-8g", "6.12"), "fdea0800");
  assert.equal(vdpu.outcome, "UNCERTAIN");
  assert.deepEqual(new Set(vdpu.possible), new Set(["BUS_ERROR", "OK"]));
  assert.match(vdpu.condition ?? "", /reach is unknown/);
  assert.equal(inst(await run("rock-3b-8g", "6.1"), "fdea0800").outcome, "OK");
});

Deno.test("the withdrawn patch (v2: 32-bit mask, GFP_DMA32) makes the NPU MMU OK", async () => {
  const p = await run("rock-3b-8g", "6.12", { patches: ["v2-dma32-withdrawn"] });
  assert.equal(inst(p, NPU).outcome, "OK");
  assert.equal(inst(p, NPU).dt?.above4G, false);
  assert.deepEqual(p.patches, ["v2-dma32-withdrawn"]);
});

Deno.test("32-bit mask with unrestricted allocation: bounced tables, PTEs zero, PAGE_FAULT", async () => {
  const p = await run("rock-3b-8g", "6.12", { patches: ["v2-mask32-only"] });
  const npu = inst(p, NPU);
  assert.equal(npu.outcome, "PAGE_FAULT");
  assert.equal(npu.pt?.bounced, true);
  assert.equal(npu.dt?.bounced, true);
  assert.ok(npu.dt!.dmaRange.end <= 0x1_0000_0000);
  const walk = npu.expectedLines.find((l) => l.template.includes("mmu_dte_addr"));
  assert.ok(walk);
  const re = new RegExp(walk.regex);
  assert.ok(re.test(
    "rk_iommu fde4b000.iommu: mmu_dte_addr: 0x00000000e8a31000 dte@0x00000000e8a31004: " +
      "0xe8a32001 valid: 1 pte@0x00000000e8a32010: 0x000000 valid: 0 " +
      "page@0x0000000000000000 flags: 0x0",
  ));
  assert.ok(npu.explanation.some((s) => s.rule === "bounce poisoning"));
});

Deno.test("swiotlb=force bounces every table, even on a 2 GB board: PAGE_FAULT", async () => {
  const p = await run("rk3568-2g", "6.12", { bootargs: "swiotlb=force" });
  assert.equal(inst(p, VOP).outcome, "PAGE_FAULT");
  assert.equal(inst(p, VOP).pt?.bounced, true);
});

Deno.test("the proposed rockchip,rk3568-iommu-v1 compatible: NPU OK, VOP2 still OK", async () => {
  const p = await run("rock-3b-8g", "6.12", { patches: ["rk3568-iommu-v1"] });
  // per-device ops are required and added automatically before 7.3
  assert.deepEqual(p.patches, ["per-device-ops", "rk3568-iommu-v1"]);
  const npu = inst(p, NPU);
  assert.equal(npu.outcome, "OK");
  assert.deepEqual(npu.compatible, ["rockchip,rk3568-iommu-v1"]);
  assert.equal(npu.dt?.above4G, false);
  assert.equal(inst(p, VOP).outcome, "OK");
});

Deno.test("Rocket RK3568 RFC (rockchip,iommu): WRONG_PAGE above 4 GiB, no fault line", async () => {
  const p = await run("rock-3b-8g", "7.1", {
    patches: ["rocket-rk3568-rfc"],
    workload: { name: "mobilenet_v1", buffers: "all-memory" },
  });
  const npu = inst(p, NPU);
  assert.equal(npu.outcome, "WRONG_PAGE");
  assert.equal(npu.format, "v1");
  assert.deepEqual(npu.expectedLines, []);
  assert.match(npu.condition ?? "", /at or above 4 GiB/);
  assert.equal(npu.workload?.verdict, "wrong-output");
  // Buffers kept below 4 GiB would translate correctly.
  const low = await run("rock-3b-8g", "7.1", {
    patches: ["rocket-rk3568-rfc"],
    workload: { name: "mobilenet_v1", buffers: "below-4g" },
  });
  assert.equal(inst(low, NPU).outcome, "OK");
  assert.equal(inst(low, NPU).workload?.verdict, "correct-output");
  assert.ok(inst(low, NPU).workload?.latency);
});

Deno.test("2 GB board: OK everywhere", async () => {
  for (const k of ["5.15", "6.1", "6.12", "7.3"]) {
    const p = await run("rk3568-2g", k);
    for (const i of p.instances) {
      if (i.status !== "okay") continue;
      if (k === "5.15") {
        // v2 R/W bits swapped before 6.2 (6.1.y has the backport)
        assert.equal(i.outcome, "PAGE_FAULT", `${k} ${i.unit}`);
        continue;
      }
      assert.equal(i.outcome, "OK", `${k} ${i.unit}`);
    }
  }
});

Deno.test("mem=3840M on the 8 GB board: OK, with the 2 MiB left above 4 GiB named", async () => {
  const p = await run("rock-3b-8g", "6.12", { bootargs: "console=ttyS2,1500000n8 mem=3840M" });
  const npu = inst(p, NPU);
  assert.equal(npu.outcome, "OK");
  assert.match(npu.condition ?? "", /2 MiB/);
  assert.match(npu.condition ?? "", /if the tables come from ZONE_NORMAL instead: BUS_ERROR/);
  const clean = await run("rock-3b-8g", "6.12", { bootargs: "mem=3838M" });
  assert.equal(inst(clean, NPU).outcome, "OK");
  assert.equal(inst(clean, NPU).condition, undefined);
});

Deno.test("mem= past the 2047-byte command line is not applied, and the prediction says so", async () => {
  const pad = `dyndbg=${"x".repeat(2100)}`;
  const p = await run("rock-3b-8g", "6.12", { bootargs: `console=ttyS2 ${pad} mem=3838M` });
  // The kernel never sees mem=3838M: all 8 GB stay, the NPU's tables land above 4 GiB.
  assert.equal(inst(p, NPU).outcome, "BUS_ERROR");
  assert.match(p.notes.join("\n"), /keeps only the first 2047 .*never sees the rest/);
  assert.match(p.notes.join("\n"), /mem=3838M/);
  const step = p.explanation.find((s) => s.rule === "kernel command line");
  assert.ok(step, "explanation step");
  assert.match(step.conclusion, /only the first 2047 of \d+ bytes are seen; .*mem=3838M/);
  assert.equal(step.facts[0].name, "COMMAND_LINE_SIZE");
  // The same mem= within the limit is applied.
  const inLimit = await run("rock-3b-8g", "6.12", { bootargs: "console=ttyS2 mem=3838M" });
  assert.equal(inst(inLimit, NPU).outcome, "OK");
  assert.ok(!inLimit.explanation.some((s) => s.rule === "kernel command line"));
});

Deno.test("4 GB board: BUS_ERROR while the 256 MiB of ZONE_NORMAL has free pages", async () => {
  const npu = inst(await run("rk3568-4g", "6.12"), NPU);
  assert.equal(npu.outcome, "BUS_ERROR");
  assert.match(npu.condition ?? "", /256 MiB/);
  assert.match(npu.condition ?? "", /if the tables come from ZONE_DMA instead: OK/);
  // VOP2 is OK either way: no condition.
  assert.equal(inst(await run("rk3568-4g", "6.12"), VOP).condition, undefined);
});

Deno.test("RK3588: NPU and VOP2 MMUs OK on 6.12 with tables above 4 GiB", async () => {
  const p = await run("rk3588-16g", "6.12");
  for (const unit of ["fdab9000", "fdaca000", "fdada000", "fdd97e00"]) {
    const i = inst(p, unit);
    if (i.status !== "okay") continue;
    assert.equal(i.outcome, "OK", unit);
  }
});

function mixedTree(): DtIommuNode[] {
  const node = (unit: string, label: string, compatible: string): DtIommuNode => ({
    unit,
    label,
    compatible: [compatible],
    status: "okay",
    properties: [],
    source: "test",
    confidence: "input",
  });
  return [
    node("fde4b000", "rknpu_mmu", "rockchip,iommu"),
    node("fdea0800", "vdpu_mmu", "rockchip,rk3568-iommu"),
    node("fe043e00", "vop_mmu", "rockchip,rk3568-iommu"),
  ];
}

Deno.test("mixed v1 and v2 compatibles: second kind fails to probe with global ops", async () => {
  const p = await run("rock-3b-8g", "7.1", { devicetree: mixedTree() });
  assert.equal(inst(p, "fde4b000").outcome, "WRONG_PAGE");
  for (const unit of ["fdea0800", "fe043e00"]) {
    const i = inst(p, unit);
    assert.equal(i.outcome, "PROBE_FAILED", unit);
    assert.ok(i.expectedLines.some((l) =>
      new RegExp(l.regex).test(
        `rk_iommu ${unit}.iommu: probe with driver rk_iommu failed with error -22`,
      )
    ));
  }
  // With per-device ops (7.3) all three probe.
  const p73 = await run("rock-3b-8g", "7.3", { devicetree: mixedTree() });
  assert.equal(inst(p73, "fe043e00").outcome, "OK");
  assert.equal(inst(p73, "fdea0800").outcome, "UNCERTAIN");
});

Deno.test("finding: Rocket RFC on a pre-6.15 kernel maps VOP2 tables with the NPU's 32-bit mask", async () => {
  // Before v6.15 one global dma_dev (the first-probed IOMMU) maps every table.
  const p = await run("rock-3b-8g", "6.12", { patches: ["rocket-rk3568-rfc"] });
  const vop = inst(p, VOP);
  assert.equal(vop.outcome, "PAGE_FAULT");
  assert.equal(vop.pt?.bounced, true);
  const p615 = await run("rock-3b-8g", "6.15", { patches: ["rocket-rk3568-rfc"] });
  assert.equal(inst(p615, VOP).outcome, "OK");
});

Deno.test("unknown kernel and patch names are refused with the known ones listed", async () => {
  await assert.rejects(() => run("rock-3b-8g", "4.19"), (e: unknown) => {
    assert.ok(e instanceof OracleInputError);
    assert.ok(e.known.includes("6.12"));
    assert.match(e.hint, /5\.14/);
    return true;
  });
  await assert.rejects(() => run("rock-3b-8g", "6.12", { patches: ["nope"] }), (e: unknown) => {
    assert.ok(e instanceof OracleInputError);
    assert.ok(e.known.includes("v2-dma32-withdrawn"));
    return true;
  });
  await assert.rejects(
    () => run("rock-3b-8g", "6.1", { patches: ["v2-dma32-withdrawn"] }),
    /applies to 6\.6 and later/,
  );
});

Deno.test("compare: agree, disagree with the first differing fact, inconclusive", async () => {
  const p = await run("rock-3b-8g", "6.12");
  assert.equal(
    compare(p, {
      instances: [{
        unit: NPU,
        outcome: "BUS_ERROR",
        dtPhys: 0x1_0189_a000,
        logLines: [
          "[   12.345678] rk_iommu fde4b000.iommu: BUS_ERROR occurred at 0x0000000000000000",
        ],
        source: "test",
      }],
    }).verdict,
    "agree",
  );
  const d = compare(p, { instances: [{ unit: NPU, outcome: "OK", source: "test" }] });
  assert.equal(d.verdict, "disagree");
  assert.equal(d.difference?.fact, "outcome");
  const d2 = compare(p, {
    instances: [{ unit: NPU, outcome: "BUS_ERROR", dtPhys: 0xe000_0000, source: "test" }],
  });
  assert.equal(d2.difference?.fact, "directory table placement");
  const d3 = compare(p, {
    instances: [{ unit: NPU, outcome: "BUS_ERROR", logLines: [], source: "t" }],
  });
  assert.equal(d3.difference?.fact, "kernel log line");
  const i = compare(p, { instances: [{ unit: NPU, dtPhys: 0x1_0000_0000, source: "test" }] });
  assert.equal(i.verdict, "inconclusive");
  assert.ok(i.missing.some((m) => m.includes("outcome")));
  // An uncertain prediction is resolved, not contradicted, by an outcome it allowed.
  const u = compare(p, { instances: [{ unit: "fdea0800", outcome: "OK", source: "test" }] });
  assert.equal(u.verdict, "agree");
  assert.match(u.instances[0].notes.join(" "), /resolves the uncertainty/);
  // A fault line on an instance predicted OK is a disagreement.
  const v = compare(p, {
    instances: [{
      unit: VOP,
      outcome: "OK",
      logLines: ["rk_iommu fe043e00.iommu: Page fault at 0x0000000000001000 of type read"],
      source: "test",
    }],
  });
  assert.equal(v.verdict, "disagree");
});
