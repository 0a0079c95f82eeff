/**
 * QemuMachine with run directories whose paths carry QEMU's option syntax (commas) and shell
 * metacharacters. QEMU starts paused (`-S`) on a dummy kernel, so nothing boots: the test
 * checks that every path QEMU is given (QMP socket, pid file, kernel, initrd, console capture,
 * log) reaches it intact.
 */
import assert from "node:assert/strict";
import { ensureHostTools } from "../debian/host_tools.ts";
import { testRunRoot } from "../test_dirs.ts";
import { QemuMachine, qemuOptValue } from "./machine.ts";

await ensureHostTools(["qemu-system-aarch64", "setpriv"]);

Deno.test("qemuOptValue doubles commas and nothing else", () => {
  assert.equal(qemuOptValue("/a,b/c,,d"), "/a,,b/c,,,,d");
  assert.equal(qemuOptValue("/plain path/$x'y"), "/plain path/$x'y");
});

for (const name of ["a,b", "server=on,wait=off,x", "sp ace $x 'q' \"d\""]) {
  Deno.test(`QEMU starts with a run directory named ${JSON.stringify(name)}`, async () => {
    const root = await testRunRoot("machine-");
    const dir = `${root}/${name}`;
    await Deno.mkdir(dir);
    const kernel = `${dir}/kernel,1`;
    const initrd = `${dir}/initrd,1`;
    await Deno.writeFile(kernel, new Uint8Array(4096));
    await Deno.writeFile(initrd, new Uint8Array(512));
    const m = await QemuMachine.launch({ kernel, initrd, runDir: dir, memory: "256M", cpus: 1 });
    try {
      // QMP answers on the socket inside the run directory: the path was not cut at a comma.
      const status = await m.qmp.execute<{ status: string }>("query-status");
      assert.equal(status.status, "prelaunch");
      assert.equal(m.qemuPid, Number((await Deno.readTextFile(`${dir}/qemu.pid`)).trim()));
      assert.ok((await Deno.stat(`${dir}/qmp.sock`)).isSocket);
      assert.ok((await Deno.stat(m.consoleCapturePath)).isFile);
      assert.ok(m.consoleCapturePath.startsWith(`${dir}/`));
      // -kernel and -initrd are plain paths: given verbatim, not comma-escaped.
      assert.ok(m.args.includes(kernel));
      assert.ok(m.args.includes(initrd));
    } finally {
      await m.quit();
    }
    assert.ok(m.exited);
    await Deno.remove(root, { recursive: true });
  });
}
