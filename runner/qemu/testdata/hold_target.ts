/**
 * Test helper: a "runner" that powers a QEMU target on, prints one JSON line with the QEMU
 * and watchdog pids, and then waits forever (until killed). Used by the SIGKILL test.
 * Usage: deno run -A hold_target.ts <kernel spec> <run dir>
 */
import { QemuTarget } from "../target.ts";

const [spec, runDir] = Deno.args;
const t = await QemuTarget.prepare({ kernel: spec, runDir });
await t.ready({ consoleOnly: true });
console.log(JSON.stringify({ qemuPid: t.machine!.qemuPid, watchdogPid: t.machine!.watchdog.pid }));
setInterval(() => {}, 1 << 30);
