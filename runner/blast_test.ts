import assert from "node:assert/strict";
import type { BlastCell, InstanceDelta } from "../oracle/blast.ts";
import { instanceDelta } from "../oracle/blast.ts";
import { OracleInputError } from "../oracle/scenario.ts";
import { compareRelease, parseRelease } from "../oracle/releases.ts";
import { blastOfPatchFiles, blastOfPatchSets } from "./blast.ts";
import { UserInputError } from "./errors.ts";
import { renderBlastReport } from "./report/blast_report.ts";

const T = new URL("../oracle/testdata/patches/", import.meta.url).pathname;
const SEED = `${T}seed-thread.txt`;
const TWO_STEP = [
  `${T}0000-per-device-ops.patch`,
  `${T}0001-rk3568-iommu-v1-compatible.patch`,
  `${T}0002-rk356x-dts-iommu-v1.patch`,
];
const from66 = (r: string) => compareRelease(parseRelease(r)!, { major: 6, minor: 6 }) >= 0;
const inst = (c: BlastCell, unit: string): InstanceDelta | undefined =>
  c.instances.find((i) => i.unit === unit);
const VOPS = ["fe043e00", "fdd97e00"];

Deno.test("withdrawn v2 patch (seed): fixes fde4b000, constrains VOP2 and every rk3568-iommu user", async () => {
  const r = await blastOfPatchFiles([SEED], {});
  const boards = new Set(r.cells.map((c) => c.board));
  assert.deepEqual([...boards].sort(), ["rk3568-2g", "rk3568-4g", "rk3588-16g", "rock-3b-8g"]);
  for (const c of r.cells) {
    if (!from66(c.release)) {
      assert.equal(c.status, "does not apply", `${c.board} ${c.release}`);
      assert.match(c.why.join(" "), /no gfp_flags field/);
      continue;
    }
    assert.equal(c.status, "applied", `${c.board} ${c.release}`);
    const npu = inst(c, "fde4b000");
    if (c.board === "rock-3b-8g" || c.board === "rk3568-4g") {
      assert.equal(npu?.class, "FIXED", `${c.board} ${c.release}`);
      assert.equal(npu?.before.outcome, "BUS_ERROR");
      assert.equal(npu?.after.outcome, "OK");
    }
    let vops = 0;
    for (const i of c.instances) {
      if (i.before.status !== "okay" || !i.before.compatible.includes("rockchip,rk3568-iommu")) {
        assert.equal(i.class, "UNCHANGED", `${c.board} ${c.release} ${i.unit}`);
        continue;
      }
      // Every enabled rk3568-iommu user is narrowed to a 32-bit mask and GFP_DMA32.
      assert.ok(i.constraints.includes("DMA mask 40 → 32 bits"), `${c.board} ${i.unit}`);
      assert.ok(i.constraints.includes("table gfp none → GFP_DMA32"), `${c.board} ${i.unit}`);
      assert.notEqual(i.class, "BROKEN");
      if (VOPS.includes(i.unit)) {
        vops++;
        assert.equal(i.class, "CONSTRAINED", `${c.board} ${c.release} VOP2`);
        assert.equal(i.after.outcome, "OK");
      }
    }
    assert.equal(vops, 1, `${c.board} has one enabled VOP2 MMU`);
  }
  // The 8 GB board: VOP2's tables are forced below 4 GiB.
  const vop = inst(
    r.cells.find((c) => c.board === "rock-3b-8g" && c.release === "6.12")!,
    "fe043e00",
  )!;
  assert.ok(vop.constraints.some((x) => /forced below 4 GiB/.test(x)));
  assert.deepEqual(
    vop.changed.map((x) => x.fact),
    ["dmaMaskBits", "gfpZone", "tableZone", "tablesAbove4G"],
  );
});

Deno.test("proposed two-step fix: fixes the NPU MMU and leaves VOP2 untouched on every board", async () => {
  const r = await blastOfPatchFiles(TWO_STEP, {});
  for (const c of r.cells) {
    if (!from66(c.release)) {
      assert.equal(c.status, "does not apply");
      continue;
    }
    assert.equal(c.status, "applied", `${c.board} ${c.release}`);
    for (const i of c.instances) assert.notEqual(i.class, "BROKEN", `${c.board} ${i.unit}`);
    for (const v of VOPS) {
      const vop = inst(c, v);
      if (vop) assert.equal(vop.class, "UNCHANGED", `${c.board} ${c.release} VOP2`);
    }
    if (c.board === "rock-3b-8g" || c.board === "rk3568-4g") {
      assert.equal(inst(c, "fde4b000")?.class, "FIXED");
    }
    if (c.board === "rk3588-16g") {
      assert.ok(c.instances.every((i) => i.class === "UNCHANGED"), c.release);
    }
  }
  // On 7.3 the per-device-ops patch is already in the release, and said so.
  const c73 = r.cells.find((c) => c.board === "rock-3b-8g" && c.release === "7.3")!;
  assert.match(c73.why.join(" "), /7\.3 already has per-device ops/);
});

Deno.test("without per-device ops, the v1.0 compatible breaks VOP2 on global-ops kernels", async () => {
  const r = await blastOfPatchFiles(TWO_STEP.slice(1), { boards: ["rock-3b-8g"] });
  const c612 = r.cells.find((c) => c.release === "6.12")!;
  const vop = inst(c612, "fe043e00")!;
  assert.equal(vop.class, "BROKEN");
  assert.equal(vop.after.outcome, "PROBE_FAILED");
  const c73 = r.cells.find((c) => c.release === "7.3")!;
  assert.equal(inst(c73, "fe043e00")!.class, "UNCHANGED");
});

/** What must agree between a parsed diff and the named patch set that models it. */
function essence(cells: BlastCell[]) {
  return cells.map((c) => ({
    board: c.board,
    release: c.release,
    applies: c.status === "applied",
    instances: c.instances.map((i) => ({
      unit: i.unit,
      class: i.class,
      before: i.before.outcome,
      after: i.after.outcome,
      changed: i.changed.filter((x) => x.fact !== "ops"),
      constraints: i.constraints,
    })),
  }));
}

Deno.test("--patch NAME --all-boards gives the same blast radius as the patches it names", async () => {
  const seed = await blastOfPatchFiles([SEED], {});
  const set = await blastOfPatchSets(["v2-dma32-withdrawn"], {});
  assert.deepEqual(essence(set.cells), essence(seed.cells));
  const two = await blastOfPatchFiles(TWO_STEP, {});
  const sets = await blastOfPatchSets(["per-device-ops", "rk3568-iommu-v1"], {});
  assert.deepEqual(essence(sets.cells), essence(two.cells));
});

Deno.test("narrowing and bad input", async () => {
  const r = await blastOfPatchFiles([SEED], { boards: ["rock-3b-8g"], kernels: ["6.12", "6.1"] });
  assert.deepEqual(r.cells.map((c) => [c.board, c.release, c.status]), [
    ["rock-3b-8g", "6.12", "applied"],
    ["rock-3b-8g", "6.1", "does not apply"],
  ]);
  await assert.rejects(blastOfPatchFiles(["/nonexistent.patch"], {}), UserInputError);
  await assert.rejects(
    blastOfPatchFiles([new URL("./blast.ts", import.meta.url).pathname], {}),
    UserInputError,
  );
  await assert.rejects(blastOfPatchFiles([SEED], { kernels: ["9.9"] }), OracleInputError);
  await assert.rejects(blastOfPatchFiles([SEED], { boards: ["no-such-board"] }), UserInputError);
  await assert.rejects(blastOfPatchFiles([], {}), UserInputError);
  await assert.rejects(blastOfPatchSets([], {}), UserInputError);
  await assert.rejects(blastOfPatchSets(["nope"], {}), UserInputError);
});

Deno.test("reports: text and Markdown name the classes, facts and unmodelled lines", async () => {
  const r = await blastOfPatchFiles(TWO_STEP, { boards: ["rock-3b-8g"], kernels: ["6.12"] });
  const text = renderBlastReport(r);
  assert.match(text, /BUS_ERROR → OK FIXED/);
  assert.match(text, /gfpZone none → GFP_DMA32/);
  assert.match(text, /Not modelled/);
  assert.match(text, /-\t\/\*/);
  const md = renderBlastReport(r, { markdown: true });
  assert.match(md, /^# Blast radius/);
  assert.match(md, /\| 6\.12 \| BUS_ERROR → OK FIXED \|/);
  assert.match(md, /```diff/);
});

Deno.test("classification: CONSTRAINED keeps the outcome, RELAXED is its opposite", () => {
  const base = {
    outcome: "OK" as const,
    compatible: ["rockchip,rk3568-iommu"],
    status: "okay" as const,
    ops: "iommu_data_ops_v2",
    format: "v2" as const,
    dmaMaskBits: 40,
    gfpZone: "none" as const,
    tableZone: "NORMAL" as const,
    tablesAbove4G: true,
    bounced: false,
    bounceRisk: "none" as const,
  };
  const narrowed = {
    ...base,
    dmaMaskBits: 32,
    gfpZone: "GFP_DMA32" as const,
    tableZone: "DMA" as const,
    tablesAbove4G: false,
  };
  const id = { unit: "fe043e00", label: "vop_mmu", master: "vop" };
  assert.equal(instanceDelta(base, narrowed, id).class, "CONSTRAINED");
  assert.equal(instanceDelta(narrowed, base, id).class, "RELAXED");
  assert.equal(instanceDelta(base, base, id).class, "UNCHANGED");
  assert.equal(
    instanceDelta({ ...base, outcome: "BUS_ERROR" }, narrowed, id).class,
    "FIXED",
  );
  assert.equal(instanceDelta(base, { ...base, outcome: "PAGE_FAULT" }, id).class, "BROKEN");
  assert.equal(
    instanceDelta(base, { ...base, bounceRisk: "latent", dmaMaskBits: 40 }, id).class,
    "CHANGED",
  );
});

Deno.test("bounce risk: a 32-bit mask with tables from all memory is latent on 2 GB, bounced on 8 GB", async () => {
  const r = await blastOfPatchSets(["v2-mask32-only"], {
    boards: ["rk3568-2g", "rock-3b-8g"],
    kernels: ["6.12"],
  });
  const two = inst(r.cells.find((c) => c.board === "rk3568-2g")!, "fe043e00")!;
  assert.equal(two.class, "CONSTRAINED");
  assert.equal(two.before.bounceRisk, "none");
  assert.equal(two.after.bounceRisk, "latent");
  const eight = inst(r.cells.find((c) => c.board === "rock-3b-8g")!, "fe043e00")!;
  assert.equal(eight.class, "BROKEN");
  assert.equal(eight.after.outcome, "PAGE_FAULT");
  assert.equal(eight.after.bounced, true);
  assert.equal(eight.after.bounceRisk, "bounced");
});
