/** Unit tests of the target's pure parts (no QEMU). */
import assert from "node:assert/strict";
import { hostCommand } from "../debian/host_tools.ts";
import { commandText } from "./cli.ts";
import { printfFormat } from "./commands.ts";
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

Deno.test("stdin for framed shells: the printf format prints exactly the bytes (dash, busybox)", async () => {
  const bytes = new Uint8Array(1024);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256;
  crypto.getRandomValues(bytes.subarray(512));
  const text = new TextEncoder().encode("it's 100% \\ok\n\t'%s'\n");
  for (const sample of [bytes, text]) {
    const fmt = printfFormat(sample);
    assert.ok(!fmt.includes("'"), "single-quote safe");
    for (const sh of [["sh", "-c"], ["busybox", "sh", "-c"]]) {
      const out = await (await hostCommand(sh[0], {
        args: [...sh.slice(1), `printf '${fmt}'`],
        stdout: "piped",
        stderr: "piped",
      })).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.deepEqual(out.stdout, sample, `${sh[0]} printf`);
    }
  }
});
