/**
 * The probe scenarios: the comparison of the oracle with real probe reports. The runs on real
 * Debian kernels are the `probe` and `probe-boot` suites (`runner/suite/*_qemu_test.ts`).
 */
import assert from "node:assert/strict";
import type { ProbePrediction } from "../../oracle/probe_model.ts";
import { parseProbeReport } from "./report.ts";
import { compareProbe, rowOfResult, scenarioRow, SCENARIOS } from "./scenarios.ts";

const report = (name: string) =>
  parseProbeReport(Deno.readTextFileSync(new URL(`./testdata/${name}`, import.meta.url)));

Deno.test("compareProbe: agrees with a real report, names the first differing fact", () => {
  const bounce = report("bounce-6.12.probe.txt");
  const p: ProbePrediction = {
    dt: { above4G: true, bounced: true },
    pt: { above4G: true, bounced: true },
    walks: [
      { iova: 0x1000_0000, result: "PAGE_FAULT", level: "pte" },
      { iova: 0x1040_0000, result: "PAGE_FAULT", level: "pte" },
    ],
    conditions: [],
    explanation: [],
  };
  assert.equal(compareProbe(p, bounce), null);
  assert.match(
    compareProbe({ ...p, dt: { above4G: false, bounced: true } }, bounce)!,
    /^directory table: predicted <4G, observed phys 0x100de3000$/,
  );
  assert.match(
    compareProbe({ ...p, dt: { above4G: true, bounced: false } }, bounce)!,
    /directory table bounced: predicted false, observed true/,
  );
  assert.match(
    compareProbe({ ...p, walks: [{ iova: 0x1000_0000, result: "ok" }] }, bounce)!,
    /iova 0x10000000: predicted ok, observed PAGE_FAULT\/pte/,
  );
  const v1 = report("v1-6.12.probe.txt");
  const low = { ...p, dt: { above4G: false, bounced: false } };
  assert.match(
    compareProbe(low, v1)!,
    /^page table of 0x10000000: predicted >=4G, observed phys 0x[0-9a-f]+$/,
  );
  assert.match(
    compareProbe({ ...low, pt: { above4G: false, bounced: true } }, v1)!,
    /page table of 0x10000000 bounced: predicted true, observed false/,
  );
});

Deno.test("scenarioRow: a real bounce report against its prediction and a wrong one", () => {
  const bounce = report("bounce-6.12.probe.txt");
  const s = SCENARIOS.find((x) => x.name === "bounce")!;
  const p: ProbePrediction = {
    dt: { above4G: true, bounced: true },
    pt: { above4G: true, bounced: true },
    walks: [
      { iova: 0x1000_0000, result: "PAGE_FAULT", level: "pte" },
      { iova: 0x1040_0000, result: "PAGE_FAULT", level: "pte" },
    ],
    conditions: [],
    explanation: [],
  };
  assert.deepEqual(scenarioRow(s, p, bounce), {
    scenario: "bounce",
    predicted: "PAGE_FAULT/pte (tables >=4G, bounced)",
    observed: "PAGE_FAULT/pte (tables >=4G, bounced)",
    verdict: "AGREE",
    why: undefined,
  });
  const wrong = scenarioRow(s, { ...p, walks: [{ iova: 0x1000_0000, result: "ok" }] }, bounce);
  assert.equal(wrong.verdict, "DISAGREE");
  assert.equal(wrong.predicted, "ok (tables >=4G, bounced)");
  assert.match(wrong.why!, /iova 0x10000000: predicted ok, observed PAGE_FAULT\/pte/);
});

Deno.test("SCENARIOS: names unique; the as-booted ones first, each boot of its own distinct", () => {
  const names = SCENARIOS.map((s) => s.name);
  assert.equal(new Set(names).size, names.length);
  const own = SCENARIOS.filter((s) => s.boot.memory || s.boot.append);
  assert.deepEqual(own.map((s) => s.name), ["swiotlb-force", "mem-below-4g", "2g"]);
  assert.equal(new Set(own.map((s) => JSON.stringify(s.boot))).size, own.length);
});

Deno.test("rowOfResult: a compared step's row, or INCONCLUSIVE with the verdict and reason", () => {
  const base = { target: "t", kernel: "k", startedAt: "", durationMs: 0 };
  const row = {
    scenario: "bounce",
    predicted: "PAGE_FAULT/pte (tables >=4G, bounced)",
    observed: "ok (tables <4G)",
    verdict: "DISAGREE",
    why: "directory table: predicted >=4G, observed phys 0x4000",
  };
  assert.deepEqual(
    rowOfResult({ ...base, test: "probe/bounce", verdict: "FAIL", details: { ...row } }),
    row,
  );
  assert.deepEqual(
    rowOfResult({
      ...base,
      test: "probe/v1",
      verdict: "MISS",
      reason: "not run: target lost in facts (QEMU exited)\n  what to do: x",
    }),
    {
      scenario: "v1",
      predicted: "-",
      observed: "-",
      verdict: "INCONCLUSIVE",
      why: "MISS: not run: target lost in facts (QEMU exited)",
    },
  );
  // Hostile details: wrong types are not trusted.
  assert.equal(
    rowOfResult({
      ...base,
      test: "probe/x",
      verdict: "PASS",
      details: { verdict: "AGREE", predicted: 3 },
    })
      .predicted,
    "-",
  );
});
