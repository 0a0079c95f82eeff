/**
 * The report's emulated-IOMMU table on a real run's record (testdata/run-6.12-emulated.results.jsonl:
 * `rkhil run`'s iommu-emulated suite on Debian 6.12, from runner/rkiommu/emu_qemu_test.ts), on a
 * disagreement, a step that gave no outcome, and details that are not the step's shape.
 */
import assert from "node:assert/strict";
import { renderRunReport } from "../report/run_report.ts";
import { parseResults, type TestResult } from "../results/store.ts";
import { emulatedRows, renderEmulatedSection } from "./table.ts";

const record = parseResults(
  await Deno.readTextFile(new URL("./testdata/run-6.12-emulated.results.jsonl", import.meta.url)),
);

Deno.test("a real run: release × scenario × instance, observed, directory, the driver's line, the oracle, agree", () => {
  const rows = emulatedRows(record.results);
  assert.deepEqual(
    rows.map((r) => [r.scenario, r.unit, r.observed, r.predicted, r.verdict]),
    [
      ["dtsi", "fde4b000", "BUS_ERROR", "BUS_ERROR", "agree"],
      ["dtsi", "fe043e00", "OK", "OK", "agree"],
      ["swiotlb-force", "fde4b000", "PAGE_FAULT", "PAGE_FAULT", "agree"],
      ["swiotlb-force", "fe043e00", "PAGE_FAULT", "PAGE_FAULT", "agree"],
      ["npu-rockchip-iommu", "fde4b000", "WRONG_PAGE", "WRONG_PAGE", "agree"],
      ["npu-rockchip-iommu", "fe043e00", "PROBE_FAILED", "PROBE_FAILED", "agree"],
    ],
  );
  assert.ok(
    rows.every((r) => r.release === "6.12.118+deb13-arm64" && r.kernel === "debian:trixie"),
  );
  // The directory above 4 GiB on 6.12 (the seed's failure mode 1), bounced with swiotlb=force.
  assert.ok(BigInt(rows[0].directory) >= 2n ** 32n, rows[0].directory);
  assert.equal(rows[2].directory, "bounced (SWIOTLB)");
  assert.equal(rows[0].line, "rk_iommu fde4b000.iommu: BUS_ERROR occurred at 0x00000000fffff040");
  assert.equal(rows[1].line, "-");
  // WRONG_PAGE is silent: no line of its own.
  assert.equal(rows[4].line, "-");
  assert.equal(
    rows[5].line,
    "rk_iommu fe043e00.iommu: probe with driver rk_iommu failed with error -22",
  );
  const report = renderRunReport(record);
  assert.match(
    report,
    /\n## The real rk_iommu driver on emulated IOMMUs\n\n\| kernel \| release \| scenario/,
  );
  assert.match(
    report,
    /\| debian:trixie \| 6\.12\.118\+deb13-arm64 \| dtsi \| fde4b000 \| BUS_ERROR \| 0x[0-9a-f]+ \| `rk_iommu fde4b000\.iommu: BUS_ERROR occurred at 0x00000000fffff040` \| BUS_ERROR \| agree \|/,
  );
});

Deno.test("a disagreement names its fact on its instance only; a step without outcome shows its verdict and reason", () => {
  const dtsi = record.results.find((r) => r.test === "iommu/emulated/dtsi")!;
  const failed: TestResult = {
    ...dtsi,
    verdict: "FAIL",
    reason: "fde4b000: outcome: predicted BUS_ERROR, observed OK",
    details: {
      ...dtsi.details,
      instances: (dtsi.details!.instances as Record<string, unknown>[]).map((i, n) =>
        n === 0 ? { ...i, observed: "OK", lines: [] } : i
      ),
    },
  };
  const skipped: TestResult = {
    ...dtsi,
    test: "iommu/emulated/swiotlb-force",
    verdict: "SKIP",
    reason: "the registers of npu (0xfde4b000) are outside guest RAM 0x40000000..0xc0000000",
    details: undefined,
  };
  const rows = emulatedRows([failed, skipped]);
  assert.deepEqual(rows.map((r) => [r.scenario, r.unit, r.verdict]), [
    ["dtsi", "fde4b000", "disagree: outcome: predicted BUS_ERROR, observed OK"],
    ["dtsi", "fe043e00", "agree"],
    [
      "swiotlb-force",
      "-",
      "SKIP: the registers of npu (0xfde4b000) are outside guest RAM 0x40000000..0xc0000000",
    ],
  ]);
});

Deno.test("details that are not the step's shape give '-' cells; pipes and newlines cannot break the table; no emulated result, no section", () => {
  const odd: TestResult = {
    test: "iommu/emulated",
    suite: "iommu",
    target: "t",
    kernel: "k|x",
    verdict: "ERROR",
    reason: "boom\nsecond line",
    details: { instances: [{ unit: 7, lines: "nope" }, null].filter(Boolean), scenario: 3 },
    startedAt: "2026-11-30T00:00:00Z",
    durationMs: 1,
  } as TestResult;
  const rows = emulatedRows([odd]);
  assert.deepEqual(rows.map((r) => [r.scenario, r.unit, r.observed, r.line, r.verdict]), [
    ["target", "-", "-", "-", "ERROR: boom"],
  ]);
  const section = renderEmulatedSection([odd]);
  assert.equal(section.at(-1)!.split(/(?<!\\)\|/).length, 11, section.at(-1));
  assert.match(section.at(-1)!, /^\| k\\\|x \|/);
  assert.deepEqual(
    renderEmulatedSection(record.results.filter((r) => !r.test.startsWith("iommu/"))),
    [],
  );
});

Deno.test("a real run on 6.1 and 7.3: the NPU MMU works on 6.1 and faults on 7.3; the Rocket RFC's tree fails VOP2's probe on 6.1 (global rk_ops) but not on 7.3 (per-device ops); all agree", async () => {
  const run = parseResults(
    await Deno.readTextFile(
      new URL("./testdata/run-6.1-7.3-emulated.results.jsonl", import.meta.url),
    ),
  );
  const rows = emulatedRows(run.results);
  assert.deepEqual(
    rows.map((r) => [r.release.split("-")[0], r.scenario, r.unit, r.observed, r.verdict]),
    [
      ["6.1.0", "dtsi", "fde4b000", "OK", "agree"],
      ["6.1.0", "dtsi", "fe043e00", "OK", "agree"],
      ["6.1.0", "swiotlb-force", "fde4b000", "PAGE_FAULT", "agree"],
      ["6.1.0", "swiotlb-force", "fe043e00", "PAGE_FAULT", "agree"],
      ["6.1.0", "npu-rockchip-iommu", "fde4b000", "WRONG_PAGE", "agree"],
      ["6.1.0", "npu-rockchip-iommu", "fe043e00", "PROBE_FAILED", "agree"],
      ["7.3.4+deb13", "dtsi", "fde4b000", "BUS_ERROR", "agree"],
      ["7.3.4+deb13", "dtsi", "fe043e00", "OK", "agree"],
      ["7.3.4+deb13", "swiotlb-force", "fde4b000", "PAGE_FAULT", "agree"],
      ["7.3.4+deb13", "swiotlb-force", "fe043e00", "PAGE_FAULT", "agree"],
      ["7.3.4+deb13", "npu-rockchip-iommu", "fde4b000", "WRONG_PAGE", "agree"],
      ["7.3.4+deb13", "npu-rockchip-iommu", "fe043e00", "OK", "agree"],
    ],
  );
  // 6.1: GFP_DMA32 directory; 7.3: above 4 GiB (dtsi), below with the v1 ops (rockchip,iommu).
  assert.ok(BigInt(rows[0].directory) < 2n ** 32n);
  assert.ok(BigInt(rows[6].directory) >= 2n ** 32n);
  assert.ok(BigInt(rows[10].directory) < 2n ** 32n);
  assert.equal(rows[5].line, "rk_iommu: probe of fe043e00.iommu failed with error -22");
});

Deno.test("real runs with --mem 4G and --mem 2G on 6.12: 4 GiB agrees in every scenario; 2 GiB is a SKIP per scenario that says why", async () => {
  const read = async (f: string) =>
    parseResults(await Deno.readTextFile(new URL(`./testdata/${f}`, import.meta.url))).results;
  const four = emulatedRows(await read("run-6.12-4g-emulated.results.jsonl"));
  assert.deepEqual(four.map((r) => [r.scenario, r.unit, r.observed, r.verdict]), [
    ["dtsi", "fde4b000", "BUS_ERROR", "agree"],
    ["dtsi", "fe043e00", "OK", "agree"],
    ["swiotlb-force", "fde4b000", "PAGE_FAULT", "agree"],
    ["swiotlb-force", "fe043e00", "PAGE_FAULT", "agree"],
    ["npu-rockchip-iommu", "fde4b000", "WRONG_PAGE", "agree"],
    ["npu-rockchip-iommu", "fe043e00", "PROBE_FAILED", "agree"],
  ]);
  const twoResults = await read("run-6.12-2g-emulated.results.jsonl");
  assert.equal(twoResults.find((r) => r.test === "boot")?.target, "qemu-virt-2g");
  const two = emulatedRows(twoResults);
  assert.deepEqual(two.map((r) => r.scenario), ["dtsi", "swiotlb-force", "npu-rockchip-iommu"]);
  for (const r of two) {
    assert.equal(r.unit, "-");
    assert.match(
      r.verdict,
      /^SKIP: the registers of npu \(0xfde4b000\) are outside guest RAM 0x40000000\.\.0xc0000000: emulated IOMMUs need 3G or more/,
    );
  }
});

Deno.test("recorded per-instance verdicts win over the inference: inconclusive names what was missing, an instance outside the prediction is not compared", () => {
  const dtsi = record.results.find((r) => r.test === "iommu/emulated/dtsi")!;
  const [npu, vop] = dtsi.details!.instances as Record<string, unknown>[];
  const errored: TestResult = {
    ...dtsi,
    verdict: "ERROR",
    reason: "the emulation gave no outcome: fe043e00: outcome",
    details: {
      ...dtsi.details,
      instances: [
        { ...npu, verdict: "agree", difference: null, missing: [] },
        { ...vop, observed: null, verdict: "inconclusive", missing: ["fe043e00: outcome"] },
        { unit: "fdd40000", observed: "OK", predicted: null, verdict: null, missing: [] },
      ],
    },
  };
  assert.deepEqual(emulatedRows([errored]).map((r) => [r.unit, r.verdict]), [
    ["fde4b000", "agree"],
    ["fe043e00", "inconclusive: fe043e00: outcome"],
    ["fdd40000", "not compared: not in the prediction"],
  ]);
});
