/** Unit tests of the target session's pure parts (no QEMU). */
import assert from "node:assert/strict";
import { commandText } from "./cli.ts";
import { detectKernelFault } from "./faults.ts";

Deno.test("minimal fault detector: kernel console lines only", () => {
  const t = 1;
  const p = detectKernelFault(
    "[   12.345678] Kernel panic - not syncing: sysrq triggered crash",
    true,
    t,
  );
  assert.equal(p?.kind, "panic");
  assert.equal(p?.reason, "Kernel panic - not syncing: sysrq triggered crash");
  // Mid-line (interleaved with command output).
  assert.equal(
    detectKernelFault("out[    1.000000] Unable to handle kernel paging request", true, t)?.kind,
    "oops",
  );
  assert.equal(detectKernelFault("[    2.5] kernel BUG at mm/slub.c:1!", true, t)?.kind, "bug");
  // Command output (bare LF under stty -opost) and unprefixed text never count.
  assert.equal(detectKernelFault("[ 1.0] Kernel panic - not syncing: x", false, t), undefined);
  assert.equal(detectKernelFault("Kernel panic - not syncing: x", true, t), undefined);
  assert.equal(detectKernelFault("[ 1.0] rk_iommu: Page fault", true, t), undefined);
});

Deno.test("qemu exec command text: one argument is shell text, several are quoted words", () => {
  assert.equal(commandText(["echo a; exit 3"]), "echo a; exit 3");
  assert.equal(commandText(["sh", "-c", "exit 3"]), "sh -c 'exit 3'");
});
