/** Issue 12 §4: the contrary report on v2-gfp-dma32-distro is carried in the prediction. */
import assert from "node:assert/strict";
import { findBoard } from "../boards/load.ts";
import { boardFacts } from "../boards/facts.ts";
import { getPatch } from "./patches.ts";
import { predict } from "./predict.ts";
import { buildScenario } from "./scenario.ts";

async function run(patches: string[]) {
  const loaded = await findBoard("rock-3b-8g");
  return predict(buildScenario({
    board: boardFacts(loaded.board, loaded.path),
    kernel: "6.12",
    patches,
    workload: { name: "mobilenet_v1", buffers: "all-memory" },
  }));
}

Deno.test("v2-gfp-dma32-distro on an 8 GB RK3568: OK only unless armbian/build PR #10366 holds", async () => {
  const p = await run(["v2-gfp-dma32-distro"]);
  const npu = p.instances.find((i) => i.unit === "fde4b000")!;
  assert.equal(npu.outcome, "OK");
  assert.equal(npu.dt?.above4G, false);
  assert.match(npu.condition ?? "", /unless the contrary report holds \(armbian\/build PR #10366/);
  assert.match(npu.condition ?? "", /rknn_run fail! ret=-1/);
  assert.equal(npu.workload?.verdict, "unknown");
  const step = npu.explanation.find((s) => s.rule === "contrary report");
  assert.match(step?.conclusion ?? "", /no mechanism found: dma_bit_mask only decides/);
  assert.equal(step?.facts[0].provenance.confidence, "reported");
  // Other instances are not what the report is about.
  const vop = p.instances.find((i) => i.unit === "fe043e00")!;
  assert.ok(!(vop.condition ?? "").includes("#10366"));
  assert.ok(!vop.explanation.some((s) => s.rule === "contrary report"));
  // Without the patch there is nothing to contradict.
  const plain = (await run([])).instances.find((i) => i.unit === "fde4b000")!;
  assert.ok(!plain.explanation.some((s) => s.rule === "contrary report"));
  assert.ok(getPatch("v2-gfp-dma32-distro")?.contrary?.length === 1);
});
