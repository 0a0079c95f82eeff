/**
 * `rkhil validate`: the oracle against the probe module on real Debian kernels, and the
 * comparison itself against real probe reports.
 */
import assert from "node:assert/strict";
import type { ProbePrediction } from "../../oracle/probe_model.ts";
import { parseProbeReport } from "../probe/report.ts";
import { testRunRoot } from "../test_dirs.ts";
import { compareProbe, renderValidateRows, runValidate, SCENARIOS } from "./validate.ts";

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

for (const kernel of ["debian:bookworm", "debian:trixie", "debian:trixie-backports"]) {
  Deno.test(`validate ${kernel}: the oracle agrees with the probe on every scenario`, async () => {
    const root = await testRunRoot("rkhil-validate-");
    {
      const { rows } = await runValidate({ kernel, runsRoot: root, log: () => {} });
      assert.deepEqual(rows.map((r) => r.scenario), SCENARIOS.map((s) => s.name));
      for (const r of rows) assert.equal(r.verdict, "AGREE", renderValidateRows([r]));
      // The seed's failure mode 2, reproduced on a real kernel and predicted.
      const bounce = rows.find((r) => r.scenario === "bounce")!;
      assert.match(bounce.observed, /^PAGE_FAULT\/pte \(tables >=4G, bounced\)$/);
    }
  });
}

Deno.test("validate refuses an unknown scenario with the known ones", async () => {
  await assert.rejects(
    () => runValidate({ kernel: "debian:trixie", scenarios: ["nope"], log: () => {} }),
    /unknown scenario nope[\s\S]*/,
  );
});
