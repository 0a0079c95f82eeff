import assert from "node:assert/strict";
import { deployedRelease } from "./runner.ts";

Deno.test("deployedRelease: PASS is the running release; otherwise the one deployed, never the known-good one running again", () => {
  const details = { release: "0.0.0-rkhil-hang", runningAfter: "6.1.0-41-arm64" };
  assert.equal(
    deployedRelease({ verdict: "PASS", details: { release: "6.12.1" } }, "6.12.1"),
    "6.12.1",
  );
  assert.equal(deployedRelease({ verdict: "FAIL", details }, "6.1.0-41-arm64"), "0.0.0-rkhil-hang");
  // An outcome that does not say (hostile or foreign details): unknown, not the running one.
  assert.equal(deployedRelease({ verdict: "FAIL" }, "6.1.0-41-arm64"), undefined);
  assert.equal(deployedRelease({ verdict: "FAIL", details: { release: 7 } }, "6.1"), undefined);
});
