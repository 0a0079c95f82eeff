import assert from "node:assert/strict";
import { failedBootConsole } from "./deploy.ts";

// A U-Boot console as Debian's qemu_arm64 U-Boot prints it: the steered boot aborts and resets.
const BOOT = (n: number) =>
  `\r\nU-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)\r\n\r\nDRAM:  2 GiB\r\n` +
  `Scanning virtio 0:1...\r\nrkhil U-Boot lab\r\n1:\tl0\r\n2:\trkhil-x\r\nEnter choice: ${n}\r\n`;

Deno.test("failedBootConsole: the steered boot up to the reset, without CRs", () => {
  const text = BOOT(2) + 'Starting kernel ...\r\n\r\n"Synchronous Abort" handler\r\n' +
    "Resetting CPU ...\r\n" + BOOT(1).replace("Enter choice: 1", "Enter choice: ") +
    "[    0.000000] Booting Linux on physical CPU 0x0\r\nrkhil-qemu# ";
  const out = failedBootConsole(text);
  assert.match(out, /Enter choice: 2\n/);
  assert.match(out, /Resetting CPU \.\.\.$/);
  assert.doesNotMatch(out, /Booting Linux|\r/);
  // A boot that never reached the menu, or no second banner: everything, bounded.
  assert.equal(failedBootConsole("no menu\r\n"), "no menu\n");
  const long = BOOT(2) + "x".repeat(10_000);
  assert.equal(failedBootConsole(long).length, 4096);
  // "U-Boot menu" (Debian's menu title) is not a banner.
  assert.match(failedBootConsole(BOOT(2) + "\r\nU-Boot menu\r\nend"), /U-Boot menu\nend$/);
});
