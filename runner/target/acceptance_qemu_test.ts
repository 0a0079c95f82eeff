/**
 * Acceptance tests of the Target (DriverTarget over the QEMU driver) on real QEMU guests booting real Debian arm64 kernels
 * (6.1, 6.12, 7.3): the same commands over the serial console, SSH exec channels and the
 * framed SSH shell give identical output and status, stdin included; uploads are verified in
 * the guest and downloads against it (a missing remote file is a clear error);
 * reboot and reconnect; a kernel panic is classified FAIL (not MISS); QEMU killed in the
 * middle of a command is classified MISS within seconds, not a hang.
 *
 * Bounds are generous (2 loaded cores, TCG) but every wait is bounded.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { InfraError } from "../errors.ts";
import { ensureHostTools } from "../debian/host_tools.ts";
import type { CommandResult, Via } from "../protocol/command.ts";
import { QEMU_HOST_TOOLS, QemuTarget, type QemuTargetOptions } from "../qemu/target.ts";
import { VIAS } from "./commands.ts";
import { KernelFaultError } from "./faults.ts";
import { testRunRoot } from "../test_dirs.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const runRoot = await testRunRoot("rkhil-target-test-");
const BOOT = { bootTimeoutMs: 180_000, sshTimeoutMs: 120_000 };
const T = { timeoutMs: 60_000 };

/** A ready QEMU target (closed again when the boot fails). */
async function bootTarget(o: QemuTargetOptions): Promise<QemuTarget> {
  const t = await QemuTarget.prepare(o);
  try {
    await t.ready();
    return t;
  } catch (err) {
    await t.close();
    throw err;
  }
}

await ensureHostTools([...QEMU_HOST_TOOLS]);

const PATTERN = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.,:;+=";

/** Commands with what they must print and return, on every transport. */
function commands(release: string): { cmd: string; stdout: string; status: number }[] {
  const line = PATTERN + "\n";
  const big = line.repeat(Math.ceil(102400 / line.length)).slice(0, 102400);
  return [
    { cmd: "uname -r", stdout: `${release}\n`, status: 0 },
    { cmd: "echo hello", stdout: "hello\n", status: 0 },
    { cmd: "sh -c 'exit 3'", stdout: "", status: 3 },
    { cmd: "echo out; echo err >&2; false", stdout: "out\nerr\n", status: 1 },
    { cmd: `printf 'a\\tb "q" \\303\\251\\n'`, stdout: 'a\tb "q" é\n', status: 0 },
    { cmd: "sh -c 'kill -9 $$'", stdout: "", status: 137 },
    { cmd: `yes '${PATTERN}' | head -c 102400`, stdout: big, status: 0 },
    { cmd: "cat /proc/cmdline", stdout: "", status: 0 }, // compared across transports
  ];
}

const KERNELS: { spec: string; major: RegExp; panicVia: Via }[] = [
  { spec: "debian:bookworm", major: /^6\.1\./, panicVia: "ssh-exec" },
  { spec: "debian:trixie", major: /^6\.12\./, panicVia: "serial" },
  { spec: "debian:trixie-backports", major: /^7\.3\./, panicVia: "ssh-shell" },
];

for (const k of KERNELS) {
  Deno.test(
    `${k.spec}: serial, ssh exec and ssh shell agree; upload; reboot; panic`,
    opts,
    async (t) => {
      const runDir = `${runRoot}/${k.spec.replace(":", "_")}`;
      const s = await bootTarget({ kernel: k.spec, runDir, ...BOOT });
      const release = s.kernel.release;
      try {
        assert.match(release, k.major);

        await t.step("same output and status on every transport", async () => {
          for (const c of commands(release)) {
            const results = new Map<Via, CommandResult>();
            for (const via of VIAS) results.set(via, await s.command.run(c.cmd, { via, ...T }));
            const ref = results.get("ssh-exec")!;
            if (c.stdout !== "" || c.status !== 0) {
              assert.equal(ref.stdout, c.stdout, `${c.cmd} stdout`);
            }
            assert.equal(ref.exitStatus, c.status, `${c.cmd} status`);
            for (const via of VIAS) {
              const r = results.get(via)!;
              // On a terminal (serial, ssh-shell) busybox ash reports a child killed by a
              // signal ("Killed") on stderr; over a pipe it does not (see commands.ts).
              const out = c.status > 128 && via !== "ssh-exec"
                ? r.stdout.replace(/^Killed\n$/m, "")
                : r.stdout;
              assert.equal(out, ref.stdout, `${c.cmd}: ${via} stdout differs from ssh-exec`);
              assert.equal(r.exitStatus, ref.exitStatus, `${c.cmd}: ${via} status`);
              assert.ok(r.durationMs > 0 && r.durationMs < T.timeoutMs);
            }
          }
          const cmdline = await s.command.run("cat /proc/cmdline", { via: "serial" });
          assert.match(cmdline.stdout, /console=ttyAMA0/);
        });

        await t.step("stdin reaches the command on every transport", async () => {
          const bytes = new Uint8Array(2500);
          for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) % 256;
          const sha = createHash("sha256").update(bytes).digest("hex");
          for (const via of VIAS) {
            const r = await s.command.run("sha256sum; echo done >&2", { via, stdin: bytes, ...T });
            assert.equal(r.exitStatus, 0, `${via}: ${r.stdout}`);
            assert.equal(r.stdout, `${sha}  -\ndone\n`, `${via} stdin`);
            const txt = await s.command.run("tr a-z A-Z", { via, stdin: "it's 100% \\ok\n", ...T });
            assert.equal(txt.stdout, "IT'S 100% \\OK\n", `${via} text stdin`);
          }
          // The default transport is an SSH exec channel (the target has SSH).
          assert.equal((await s.command.run("echo d", T)).via, "ssh-exec");
        });

        await t.step("upload with checksum, verified in the guest", async () => {
          const data = crypto.getRandomValues(new Uint8Array(65536));
          const big = new Uint8Array(3 << 20);
          for (let i = 0; i < big.length; i += data.length) big.set(data, i);
          const local = `${runDir}/upload.bin`;
          await Deno.writeFile(local, big);
          const sha = createHash("sha256").update(big).digest("hex");
          const up = await s.files!.upload(local, "/tmp/upload.bin", { timeoutMs: 120_000 });
          assert.equal(up.sha256, sha);
          assert.equal(up.bytes, big.length);
          const r = await s.command.run("sha256sum /tmp/upload.bin", { via: "serial" });
          assert.equal(r.stdout.split(" ")[0], sha);
          // And back: the same bytes, checked against the guest's sha256 on the way.
          const back = `${runDir}/download.bin`;
          const down = await s.files!.download("/tmp/upload.bin", back, { timeoutMs: 120_000 });
          assert.equal(down.sha256, sha);
          assert.equal(down.bytes, big.length);
          assert.equal(createHash("sha256").update(await Deno.readFile(back)).digest("hex"), sha);
          const missing = await s.files!.download("/tmp/no-such-file", `${runDir}/none.bin`).then(
            () => undefined,
            (e: unknown) => e,
          );
          assert.ok(
            missing instanceof Error && /not a readable regular file/.test(missing.message),
          );
          assert.equal((missing as { verdict?: string }).verdict, "ERROR");
          await assert.rejects(() => Deno.stat(`${runDir}/none.bin`), Deno.errors.NotFound);
        });

        await t.step("reboot and reconnect", async () => {
          const before = s.bootCount;
          const r = await s.reboot();
          console.log(
            `${release}: reboot to shell ${r.shell?.toFixed(2)} s, ssh ${r.ssh?.toFixed(2)} s`,
          );
          assert.equal(s.bootCount, before + 1);
          for (const via of VIAS) {
            const u = await s.command.run("cat /proc/uptime", { via, ...T });
            assert.equal(u.exitStatus, 0);
            assert.ok(Number(u.stdout.split(" ")[0]) < 120, `fresh boot (${via}): ${u.stdout}`);
          }
        });

        await t.step(
          `kernel panic over ${k.panicVia} is a kernel FAIL, then recovery`,
          async () => {
            const t0 = performance.now();
            const err = await s.command.run("echo c > /proc/sysrq-trigger; sleep 30", {
              via: k.panicVia,
              timeoutMs: 90_000,
            }).then(() => undefined, (e: unknown) => e);
            const ms = performance.now() - t0;
            assert.ok(err instanceof KernelFaultError, `expected KernelFaultError, got ${err}`);
            assert.equal(err.verdict, "FAIL");
            assert.equal(err.fault.kind, "panic");
            assert.match(err.fault.reason, /Kernel panic - not syncing: sysrq triggered crash/);
            assert.ok(ms < 30_000, `classified after ${ms.toFixed(0)} ms`);
            assert.equal(err.fault.source, "watcher", "the runner/watch console watcher decided");
            assert.ok(s.watcher!.events.some((e) => e.kind === "panic" && e.verdict === "FAIL"));
            console.log(`${release}: panic classified FAIL after ${ms.toFixed(0)} ms`);
            // The next command reboots the crashed target first.
            const r = await s.command.run("echo back", { via: "ssh-exec", timeoutMs: 60_000 });
            assert.equal(r.stdout, "back\n");
            assert.equal(s.faults.length, 1);
          },
        );

        const log = await Deno.readTextFile(s.machine!.consoleCapturePath);
        assert.match(log, /sysrq: Trigger a crash/);
        assert.ok((log.match(/rkhil-init: start/g) ?? []).length >= 3, "three boots captured");
      } finally {
        await s.close();
      }
    },
  );
}

Deno.test(
  "QEMU killed mid-command: InfraError (MISS) within seconds on every transport",
  opts,
  async () => {
    const runDir = `${runRoot}/kill`;
    const s = await bootTarget({ kernel: "debian:trixie", runDir, ...BOOT });
    try {
      for (const via of VIAS) {
        if (!s.usable) await s.reboot();
        // Warm the transport so the kill lands in the command, not in a connect.
        assert.equal((await s.command.run("echo warm", { via, ...T })).stdout, "warm\n");
        const m = s.machine!;
        setTimeout(() => m.kill(), 1_500);
        const t0 = performance.now();
        const err = await s.command.run("sleep 100", { via, timeoutMs: 120_000 }).then(
          () => undefined,
          (e: unknown) => e,
        );
        const ms = performance.now() - t0;
        console.log(`${via}: ${(err as Error)?.message} (${ms.toFixed(0)} ms)`);
        assert.ok(err instanceof InfraError, `expected InfraError, got ${err}`);
        assert.ok(!(err instanceof KernelFaultError));
        assert.equal(err.verdict, "MISS");
        assert.match(err.message, /QEMU exited/);
        assert.ok(ms < 15_000, `${via}: classified after ${ms.toFixed(0)} ms`);
        assert.ok(!s.usable);
      }
      // A fresh QEMU comes up through reboot().
      await s.reboot();
      assert.equal(
        (await s.command.run("echo alive", { via: "serial", ...T })).stdout,
        "alive\n",
      );
    } finally {
      await s.close();
    }
  },
);
