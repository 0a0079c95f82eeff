/** Issue 12 §4: `cma=` is modelled (where it lands; page tables never come from it). */
import assert from "node:assert/strict";
import { findBoard } from "../boards/load.ts";
import { boardFacts } from "../boards/facts.ts";
import { parseBootArgs } from "./bootargs.ts";
import { honoursUserLimit, placeCma, withoutCma } from "./cma.ts";
import { computeZones } from "./memory.ts";
import type { Prediction } from "./prediction.ts";
import { predict } from "./predict.ts";
import { buildScenario } from "./scenario.ts";
import { main } from "../main.ts";

const NPU = "fde4b000";
const BANKS_4G = [{ start: 0x20_0000, end: 0xf000_0000 }, {
  start: 0x1_f000_0000,
  end: 0x2_0000_0000,
}];

async function run(kernel: string, bootargs: string): Promise<Prediction> {
  const loaded = await findBoard("rk3568-4g");
  return predict(
    buildScenario({ board: boardFacts(loaded.board, loaded.path), kernel, bootargs }),
  );
}

async function predictJson(args: string[]): Promise<string> {
  const out: string[] = [];
  const log = console.log;
  console.log = (s: string) => out.push(s);
  try {
    assert.equal(await main(["predict", ...args, "--json"]), 0);
  } finally {
    console.log = log;
  }
  return out.join("\n");
}

Deno.test("rkhil predict --board rk3568-4g --kernel 6.12 --bootargs cma=256M@0x1f0000000: not reserved, said so", async () => {
  const base = ["--board", "rk3568-4g", "--kernel", "6.12"];
  const without = await predictJson(base);
  const withCma = await predictJson([...base, "--bootargs", "cma=256M@0x1f0000000"]);
  assert.notEqual(withCma, without);
  const p = JSON.parse(withCma) as Prediction;
  assert.equal(p.memory.cma?.kind, "failed");
  const step = p.explanation.find((s) => s.rule === "CMA");
  assert.ok(step);
  // 6.12 caps the user's limit at arm64_dma_phys_limit (4 GiB here): the fixed area cannot fit.
  assert.match(step.conclusion, /exceeds limit \(0x0000000100000000\)/);
  assert.match(step.conclusion, /cma: Failed to reserve 256 MiB/);
  // So nothing moves: the NPU MMU's tables still come from ZONE_NORMAL above 4 GiB.
  const npu = p.instances.find((i) => i.unit === NPU)!;
  assert.equal(npu.outcome, "BUS_ERROR");
  assert.equal(npu.dt?.above4G, true);
});

Deno.test("a kernel that honours the user's limit: the CMA area takes ZONE_NORMAL, tables move below 4 GiB", async () => {
  const without = await run("7.3", "");
  const withCma = await run("7.3", "cma=256M@0x1f0000000");
  const a = without.instances.find((i) => i.unit === NPU)!;
  const b = withCma.instances.find((i) => i.unit === NPU)!;
  assert.equal(a.dt?.above4G, true);
  assert.equal(b.dt?.above4G, false);
  assert.equal(b.dt?.zone, "DMA");
  assert.equal(b.outcome, "OK");
  assert.deepEqual(withCma.memory.cma, {
    kind: "fixed",
    sizeBytes: 256 * 2 ** 20,
    range: { start: 0x1_f000_0000, end: 0x2_0000_0000 },
  });
  const step = withCma.explanation.find((s) => s.rule === "CMA")!;
  assert.match(step.conclusion, /only movable pages/);
  assert.match(step.conclusion, /cma: Reserved 256 MiB at 0x00000001f0000000 on node -1/);
});

Deno.test("placeCma: alignment, RAM holes, dynamic placement, the limit rule by release", () => {
  const layout = computeZones(BANKS_4G);
  const cma = (s: string, r = { major: 7, minor: 3 }) => placeCma(layout, parseBootArgs(s).cma, r);
  assert.equal(cma("cma=64M@0x1f0100000").kind, "failed");
  assert.match(cma("cma=64M@0x1f0100000").logLines[0], /must be aligned to 0x0000000000200000/);
  assert.match(cma("cma=64M@0xf0000000").reason, /not all RAM/);
  const dyn = cma("cma=64M");
  assert.equal(dyn.kind, "bounded");
  assert.equal(dyn.range?.end, layout.dmaPhysLimit);
  assert.equal(placeCma(layout, undefined, null).kind, "none");
  assert.equal(honoursUserLimit({ major: 6, minor: 12 }), false);
  assert.equal(honoursUserLimit({ major: 6, minor: 17 }), true);
  assert.equal(honoursUserLimit(null), false);
  // Below 4 GiB a fixed area takes its range out of the zone that holds it, nothing else.
  const low = cma("cma=256M@0x40000000", { major: 6, minor: 12 });
  assert.equal(low.kind, "fixed");
  const cut = withoutCma(layout, low);
  const dma = cut.zones.find((z) => z.name === "DMA")!;
  assert.deepEqual(dma.present, [{ start: 0x20_0000, end: 0x4000_0000 }, {
    start: 0x5000_0000,
    end: 0xf000_0000,
  }]);
  assert.equal(
    dma.presentBytes,
    layout.zones.find((z) => z.name === "DMA")!.presentBytes - 256 * 2 ** 20,
  );
});
