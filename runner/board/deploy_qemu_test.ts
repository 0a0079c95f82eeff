/**
 * Kernel deployment through U-Boot with fallback, end to end on a U-Boot lab guest (Debian's
 * u-boot-qemu booting a virtio-blk disk with an extlinux.conf), reached only through its board
 * file: console on its pty, SSH with the pinned key, power by `rkhil lab power` command lines.
 * Five boots: the known-good kernel (bookworm) from power on; the broken kernel (hangs), the
 * power cycle back to the known-good one; the next kernel (trixie), which boots; a truncated
 * Image (U-Boot aborts and resets into the known-good kernel; one boot for both).
 */
import assert from "node:assert/strict";
import { findBoard } from "../../boards/load.ts";
import { fetchKernel } from "../debian/kernel.ts";
import { parseResults, RunStore } from "../results/store.ts";
import { runStep } from "../suite/run_step.ts";
import { startUbootLab } from "../lab/uboot.ts";
import { parseExtlinux } from "./extlinux.ts";
import { type DeployDetails, deployKernel } from "./deploy.ts";
import { openBoardTarget } from "./target.ts";

/**
 * A kernel that hangs at once: a real arm64 Image's first 2 MiB (header, magic and sizes
 * intact, so U-Boot's booti starts it) whose first instruction (`code0`) is `b .`.
 */
async function hangingImage(real: string, out: string): Promise<void> {
  const f = await Deno.open(real);
  const head = new Uint8Array(2 * 1024 * 1024);
  let n = 0;
  while (n < head.length) {
    const r = await f.read(head.subarray(n));
    if (r === null) break;
    n += r;
  }
  f.close();
  assert.equal(new TextDecoder().decode(head.subarray(0x38, 0x3c)), "ARM\x64", "arm64 Image magic");
  new DataView(head.buffer).setUint32(0, 0x14000000, true); // b .
  await Deno.writeFile(out, head.subarray(0, n));
}

Deno.test({
  name: "deploy through U-Boot: a hanging kernel is FAIL and the power cycle brings the " +
    "known-good kernel back; the next kernel deploys and boots; an image U-Boot cannot start " +
    "ends in the known-good kernel, not the last deployed one",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lab = await startUbootLab({ knownGood: "debian:bookworm" });
    const runDir = await Deno.makeTempDir({ prefix: "rkhil-deploy-run-" });
    const loaded = await findBoard(lab.id, [lab.boardsDir]);
    assert.equal(loaded.board.deploy?.known_good, "l0");
    const target = await openBoardTarget(loaded, {
      runDir,
      bounds: { bootTimeoutMs: 240_000, sshTimeoutMs: 90_000, retries: 1 },
      log: (l) => console.log(`  ${l}`),
    });
    let ok = false;
    try {
      const t0 = performance.now();
      await target.ready();
      const firstBoot = (performance.now() - t0) / 1000;
      console.log(`  known-good boot through U-Boot: ${firstBoot.toFixed(1)} s`);
      assert.equal(target.release, lab.knownGood.release);
      assert.match(target.console!.recorder.text, /U-Boot 20\d\d/);

      const trixie = await fetchKernel("debian:trixie");
      const hang = `${lab.dir}/Image-hang`;
      await hangingImage(trixie.vmlinuz, hang);
      const store = await RunStore.open(runDir);
      const ctx = (kernel: string) => ({
        store,
        suite: "kernel",
        targetName: target.name,
        kernel,
        state: {},
        target,
        log: (l: string) => console.log(l),
      });

      // Job 1: the broken kernel. FAIL (the kernel's), the known-good kernel runs again.
      const broken = await runStep(
        ctx("0.0.0-rkhil-hang"),
        "deploy",
        () => deployKernel(target, { release: "0.0.0-rkhil-hang", image: hang }),
      );
      assert.equal(broken.verdict, "FAIL", JSON.stringify(broken));
      assert.match(
        broken.reason ?? "",
        /kernel 0\.0\.0-rkhil-hang did not come up: it did not start/,
      );
      assert.match(
        broken.reason ?? "",
        new RegExp(`known-good ${lab.knownGood.release.replace(/[.+]/g, "\\$&")}`),
      );
      const d1 = broken.details as DeployDetails;
      assert.ok(
        d1.events.includes("power cycled through the command adapter"),
        d1.events.join("; "),
      );
      assert.match(d1.console ?? "", /Starting kernel/);
      assert.equal(d1.runningAfter, lab.knownGood.release);
      assert.equal(target.state, "ready");
      assert.equal(target.release, lab.knownGood.release);
      const healthy = await target.command.run("uname -r; cat /proc/cmdline");
      assert.equal(healthy.exitStatus, 0);
      assert.match(
        healthy.stdout,
        new RegExp(`^${lab.knownGood.release.replace(/[.+]/g, "\\$&")}\n`),
      );

      // Job 2: the next kernel deploys and boots once; the file's default stays l0.
      const initrd = await lab.initrdFor(trixie);
      const next = await runStep(
        ctx(trixie.release),
        "deploy",
        () => deployKernel(target, { release: trixie.release, image: trixie.vmlinuz, initrd }),
      );
      assert.equal(next.verdict, "PASS", JSON.stringify(next));
      assert.equal(target.release, trixie.release);
      // A new boot of the lab guest (its root is the initramfs) has /boot unmounted again.
      const conf = await target.command.run(
        "mount /dev/vda1 /boot && cat /boot/extlinux/extlinux.conf",
      );
      assert.equal(conf.exitStatus, 0, conf.stdout);
      const cfg = parseExtlinux(conf.stdout);
      assert.equal(cfg.default, "l0");
      assert.deepEqual(cfg.labels.map((l) => l.name), ["l0", `rkhil-${trixie.release}`]);
      const ls = await target.command.run("ls /boot/rkhil");
      assert.equal(ls.stdout, `initrd.img-${trixie.release}\nvmlinuz-${trixie.release}\n`);

      // Job 3, from the deployed kernel: an Image U-Boot cannot start (truncated to 1 MiB: its
      // synchronous abort resets the board) ends in the known-good kernel, not the last one.
      const truncated = `${lab.dir}/Image-truncated`;
      await Deno.writeFile(truncated, (await Deno.readFile(trixie.vmlinuz)).subarray(0, 1 << 20));
      const cut = await runStep(
        ctx("0.0.0-rkhil-truncated"),
        "deploy",
        () => deployKernel(target, { release: "0.0.0-rkhil-truncated", image: truncated }),
      );
      assert.equal(cut.verdict, "FAIL", JSON.stringify(cut));
      const d3 = cut.details as DeployDetails;
      assert.equal(d3.runningBefore, trixie.release);
      assert.equal(d3.runningAfter, lab.knownGood.release);
      assert.equal(target.release, lab.knownGood.release);
      assert.match(d3.console ?? "", /Synchronous Abort|Resetting CPU/);
      assert.equal((await target.command.run("true")).exitStatus, 0);

      const recorded = parseResults(await Deno.readTextFile(`${runDir}/results.jsonl`)).results;
      assert.deepEqual(recorded.map((r) => r.verdict), ["FAIL", "PASS", "FAIL"]);
      // The power cycle after the hang went through the board file's adapter, on the console.
      const log = await Deno.readTextFile(`${runDir}/console.log`);
      assert.match(
        log,
        /deploy: kernel 0\.0\.0-rkhil-hang did not start: power cycle through the adapter\n.*### rkhil: power off \(command: /,
      );
      ok = true;
    } finally {
      await target.close();
      await lab.stop();
      // A failure keeps the console logs (console.log of the run directory) for a look.
      if (ok) await Deno.remove(runDir, { recursive: true }).catch(() => {});
      else console.log(`  run directory kept: ${runDir}`);
    }
  },
});
