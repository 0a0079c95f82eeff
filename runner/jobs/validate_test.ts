/**
 * `rkhil validate`: the comparison of the oracle with real probe reports, and bad input.
 * The runs on real Debian kernels are in `validate_qemu_test.ts`.
 */
import assert from "node:assert/strict";
import type { ProbePrediction } from "../../oracle/probe_model.ts";
import { parseProbeReport } from "../probe/report.ts";
import { compareProbe, runValidate } from "./validate.ts";

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

Deno.test("validate refuses an unknown scenario with the known ones", async () => {
  await assert.rejects(
    () => runValidate({ kernel: "debian:trixie", scenarios: ["nope"], log: () => {} }),
    /unknown scenario nope[\s\S]*/,
  );
});
