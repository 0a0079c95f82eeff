import assert from "node:assert/strict";
import { debianVersionOf } from "./debian_kernel.ts";

Deno.test("debianVersionOf: the package version in real Debian uname -v lines, nothing from others", () => {
  assert.equal(debianVersionOf("#1 SMP Debian 6.1.55-1 (2023-09-29)"), "6.1.55-1");
  assert.equal(debianVersionOf("#1  Debian 6.1.55-1"), "6.1.55-1");
  assert.equal(
    debianVersionOf("#1 SMP PREEMPT_DYNAMIC Debian 6.12.118-1 (2026-11-01)"),
    "6.12.118-1",
  );
  assert.equal(
    debianVersionOf("#1 SMP PREEMPT_DYNAMIC Debian 7.3.4-1~bpo13+1 (2026-11-10)"),
    "7.3.4-1~bpo13+1",
  );
  // A vendor kernel (Radxa's BSP), an Ubuntu one, and hostile text.
  assert.equal(debianVersionOf("#1 SMP Mon Jun 5 12:00:00 CST 2023"), undefined);
  assert.equal(debianVersionOf("#52-Ubuntu SMP PREEMPT_DYNAMIC Thu Sep 12 2024"), undefined);
  assert.equal(debianVersionOf("#1 SMP Debian ;rm -rf / (x)"), undefined);
  assert.equal(debianVersionOf(`#1 SMP Debian 6.1.${"9".repeat(100)} (x)`), undefined);
  assert.equal(debianVersionOf(""), undefined);
});
