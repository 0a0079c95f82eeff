/**
 * The one strategy (runner/target/strategy.ts) on real QEMU guests, through the Target only:
 * a power cycle through the adapter is on the console from its first byte (and the Boot
 * protocol waits for its stages); a hung boot is power-cycled at most `retries` times, then
 * MISS; a kernel panic while booting is a FAIL at once, never retried.
 *
 * Bounds are small on purpose (each hung attempt costs its whole bound) but well above a
 * normal boot here (about 4-7 s to the prompt under TCG on 2 loaded cores).
 */
import assert from "node:assert/strict";
import { ensureHostTools } from "../debian/host_tools.ts";
import { InfraError, TimeoutError } from "../errors.ts";
import { QEMU_HOST_TOOLS, QemuTarget } from "../qemu/target.ts";
import { testRunRoot } from "../test_dirs.ts";
import { QemuDriver } from "../qemu/driver.ts";
import { freePort } from "../qemu/machine.ts";
import { HostKeyError } from "../ssh/classify.ts";
import type { ConnectOptions } from "../ssh/client.ts";
import { KernelFaultError } from "./faults.ts";
import { DriverTarget } from "./target.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const runRoot = await testRunRoot("rkhil-strategy-test-");
const KERNEL = "debian:trixie";

await ensureHostTools([...QEMU_HOST_TOOLS]);

Deno.test("power cycle through the adapter: on the console from the first byte", opts, async () => {
  const t = await QemuTarget.prepare({ kernel: KERNEL, runDir: `${runRoot}/cycle` });
  try {
    const first = await t.ready({ consoleOnly: true });
    assert.equal(first.attempts, 1);
    assert.ok(first.firstByte! <= first.kernel! && first.kernel! <= first.shell!, "order");
    const rec = t.console!.recorder;
    // Let the first boot's output settle, so the mark is between boots.
    await new Promise((r) => setTimeout(r, 1_000));
    const from = rec.mark();
    await t.power.cycle();
    const kernelS = await t.boot.waitFor("kernel", { from, timeoutMs: 60_000 });
    const shellS = await t.boot.waitFor("shell", { from, timeoutMs: 120_000 });
    assert.ok(kernelS <= shellS);
    // The first bytes after the cycle are the new kernel's first line: nothing was lost.
    const after = rec.since(from).replace(/^[\r\n]+/, "");
    assert.match(after.split("\n")[0], /^\[ +0\.000000\] Booting Linux on physical CPU/);
    // No U-Boot in front of a QEMU -kernel boot: the bootloader wait is a bounded MISS.
    const noUboot = await t.boot.waitFor("bootloader", { from, timeoutMs: 1_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(noUboot instanceof TimeoutError && noUboot.verdict === "MISS");
    // The same QEMU, console and capture file: the adapter reset the machine, not the console.
    const raw = await Deno.readTextFile(t.machine!.consoleCapturePath);
    assert.equal((raw.match(/Booting Linux on physical CPU/g) ?? []).length, 2);
    // And the strategy's own cycle (reboot) brings it to ready, SSH included.
    const again = await t.reboot();
    assert.equal(again.attempts, 1);
    assert.equal(t.state, "ready");
    assert.equal((await t.command.run("echo up")).stdout, "up\n");
    assert.deepEqual(t.transitions.map((x) => x.to), [
      "booting",
      "shell",
      "booting",
      "shell",
      "ready",
    ]);
  } finally {
    await t.close();
  }
  assert.equal(t.state, "off");
});

Deno.test("a hung boot is power-cycled at most `retries` times, then MISS", opts, async () => {
  // init is busybox's `sleep`: the kernel boots, but rkhil's init never starts (no marker, no
  // prompt, no panic): a hang as far as the strategy can tell.
  const t = await QemuTarget.prepare({
    kernel: KERNEL,
    runDir: `${runRoot}/hung`,
    extraAppend: "rdinit=/bin/busybox -- sleep 3600",
    bootTimeoutMs: 20_000,
    retries: 1,
  });
  const t0 = performance.now();
  try {
    const err = await t.ready().then(() => undefined, (e: unknown) => e);
    const s = (performance.now() - t0) / 1000;
    assert.ok(err instanceof TimeoutError, `expected TimeoutError, got ${err}`);
    assert.equal(err.verdict, "MISS");
    assert.ok(!(err instanceof KernelFaultError));
    assert.match(err.message, /boot .* to shell: timed out after 20000 ms/);
    assert.deepEqual(t.transitions.map((x) => [x.to, x.why.replace(/:.*/, "")]), [
      ["booting", "power on"],
      ["booting", "power cycle 1 after a hung boot"],
      ["off", "boot failed"],
    ]);
    assert.equal(t.bootCount, 2);
    const raw = await Deno.readTextFile(t.machine!.consoleCapturePath);
    assert.equal((raw.match(/Booting Linux on physical CPU/g) ?? []).length, 2, "two boots");
    assert.ok(s < 2 * 20 + 30, `bounded: ${s.toFixed(1)} s`);
  } finally {
    await t.close();
  }
});

Deno.test("a kernel panic while booting is FAIL at once, not retried", opts, async () => {
  // No such init in the initramfs: the kernel falls back to mounting a root device it does not
  // have and panics ("VFS: Unable to mount root fs").
  const t = await QemuTarget.prepare({
    kernel: KERNEL,
    runDir: `${runRoot}/panic`,
    extraAppend: "rdinit=/nonexistent",
    bootTimeoutMs: 60_000,
    retries: 2,
  });
  try {
    const err = await t.ready().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof KernelFaultError, `expected KernelFaultError, got ${err}`);
    assert.equal(err.verdict, "FAIL");
    assert.equal(err.fault.kind, "panic");
    assert.match(err.fault.reason, /Kernel panic - not syncing: VFS: Unable to mount root fs/);
    assert.deepEqual(t.transitions.map((x) => x.to), ["booting", "off"]);
    assert.equal(t.bootCount, 1, "never power-cycled");
  } finally {
    await t.close();
  }
  // A closed target does not come up again (nothing is launched).
  await assert.rejects(() => t.ready(), (e: unknown) => e instanceof InfraError);
  assert.equal(t.machine, undefined);
});

/** The QEMU driver with the SSH endpoints a test hands it, one per boot. */
class EndpointDriver extends QemuDriver {
  endpoints: ((ep: ConnectOptions) => ConnectOptions)[] = [];
  override async sshEndpoint(): Promise<ConnectOptions> {
    const real = await super.sshEndpoint();
    return (this.endpoints.shift() ?? ((ep) => ep))(real);
  }
}

Deno.test(
  "SSH: a changed host key is refused at once; an unreachable host is MISS with the reason",
  opts,
  async () => {
    const q = await QemuTarget.prepare({ kernel: KERNEL, runDir: `${runRoot}/ssh` });
    const driver = new EndpointDriver({
      ...q.driver.opts,
      bounds: { bootTimeoutMs: 120_000, sshTimeoutMs: 8_000, retries: 0 },
    });
    const dead = freePort(); // nothing listens there
    driver.endpoints.push(
      (ep) => ({ ...ep, hostKeyFingerprint: "SHA256:" + "A".repeat(43) }),
      (ep) => ({ ...ep, port: dead }),
    );
    const t = new DriverTarget(driver);
    try {
      const key = await t.ready().then(() => undefined, (e: unknown) => e);
      // Not retried: a retry would have run into the 8 s bound (a TimeoutError, MISS).
      assert.ok(key instanceof HostKeyError, `expected HostKeyError, got ${key}`);
      assert.match(key.message, /does not match the pinned fingerprint/);
      assert.equal(t.state, "shell", "the console shell is still there");
      assert.equal(t.release, undefined);

      const unreachable = await t.reboot().then(() => undefined, (e: unknown) => e);
      assert.ok(unreachable instanceof InfraError, `expected InfraError, got ${unreachable}`);
      assert.equal(unreachable.verdict, "MISS");
      assert.match(
        unreachable.message,
        new RegExp(`SSH to 127\\.0\\.0\\.1:${dead} did not answer within 8000 ms`),
      );
      assert.match(unreachable.message, /connection refused/);
    } finally {
      await t.close();
      await q.close();
    }
  },
);
