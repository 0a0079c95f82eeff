/**
 * `rkhil validate` on real Debian kernels in QEMU: the oracle against the probe module.
 */
import assert from "node:assert/strict";
import { testRunRoot } from "../test_dirs.ts";
import { renderValidateRows, runValidate, SCENARIOS } from "./validate.ts";

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
