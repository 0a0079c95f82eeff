import assert from "node:assert/strict";
import { findBoard } from "../boards/load.ts";
import { boardFacts } from "../boards/facts.ts";
import { driverFactChanges, releaseTimeline } from "./changes.ts";
import { compareRelease, mainlineFacts, parseRelease, RELEASES } from "./releases.ts";

const rock3b = async () => {
  const b = await findBoard("rock-3b-8g");
  return boardFacts(b.board, b.path);
};

Deno.test("ROCK 3B 8 GB timeline: 6.6 brings the NPU regression and names 2a7e6400f72b", async () => {
  const steps = releaseTimeline({ board: await rock3b() }, RELEASES);
  const s66 = steps.find((s) => s.release === "6.6")!;
  const npu = s66.changes.find((c) => c.unit === "fde4b000");
  assert.ok(npu, "6.6 changes the NPU MMU");
  assert.equal(npu.from, "OK");
  assert.equal(npu.to, "BUS_ERROR");
  assert.equal(npu.kind, "regression");
  const gfp = s66.facts.find((f) => f.path === "rockchip,rk3568-iommu gfp zone");
  assert.ok(gfp);
  assert.equal(gfp.before, "GFP_DMA32");
  assert.equal(gfp.after, "none");
  assert.match(gfp.fact.provenance.source, /2a7e6400f72b/);
  // VOP2 never changes after 6.1.
  const after61 = (r: string) => compareRelease(parseRelease(r)!, { major: 6, minor: 1 }) > 0;
  for (const s of steps.filter((s) => after61(s.release))) {
    assert.ok(!s.changes.some((c) => c.unit === "fe043e00"), s.release);
  }
  // 6.2: the permission-bit fix; 6.1 already has it as a backport, so 6.0 → 6.1 is a fix.
  const s61 = steps.find((s) => s.release === "6.1")!;
  assert.ok(s61.changes.some((c) => c.kind === "fix"));
});

Deno.test("with the proposed v1 compatible, no release regresses the NPU MMU from 6.6 on", async () => {
  const steps = releaseTimeline(
    { board: await rock3b(), patches: ["rk3568-iommu-v1"] },
    RELEASES.filter((r) => compareRelease(parseRelease(r)!, { major: 6, minor: 6 }) >= 0),
  );
  for (const s of steps) assert.equal(s.outcomes["fde4b000"], "OK", s.release);
});

Deno.test("driverFactChanges is empty for equal facts and names every differing field", () => {
  const a = mainlineFacts(parseRelease("6.14")!);
  assert.deepEqual(driverFactChanges(a, a), []);
  const b = mainlineFacts(parseRelease("6.15")!);
  assert.deepEqual(driverFactChanges(a, b).map((c) => c.path), ["table dma_dev"]);
});
