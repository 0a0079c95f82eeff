/**
 * Kernel deployment through U-Boot with fallback, end to end through the farm as a user runs it
 * (`rkhil run --farm`, a child process) on a U-Boot lab guest (Debian's u-boot-qemu booting a
 * virtio-blk disk with an extlinux.conf), reached only through its board file: console on its
 * pty, SSH with the pinned key, power by `rkhil lab power` command lines, `deploy:`.
 *
 * Two jobs of the board (one per `--kernel`, both `dir:` kernels), five boots: job 1 deploys a
 * kernel that hangs (known-good boot, the hung boot, the power cycle back to the known-good
 * kernel): deploy FAIL with the failed boot's console, its suite not run; job 2 deploys
 * `debian:trixie` (known-good boot, trixie): deploy PASS and its suite runs on trixie.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { fetchKernel } from "../debian/kernel.ts";
import { parseResults, type TestResult } from "../results/store.ts";
import { startUbootLab } from "../lab/uboot.ts";
import { testRunRoot } from "../test_dirs.ts";
import type { DeployDetails } from "./deploy.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
const HANG = "0.0.0-rkhil-hang";

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

const esc = (s: string) => s.replace(/[.+]/g, "\\$&");

Deno.test({
  name: "farm deploys on a U-Boot board: a hanging kernel is deploy FAIL (console of its boot, " +
    "power cycle back to the known-good kernel, its suite not run); the next job deploys " +
    "trixie (PASS) and runs its suite on it",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const root = await testRunRoot("rkhil-deploy-");
    const lab = await startUbootLab({ knownGood: "debian:bookworm" });
    let ok = false;
    try {
      // The two kernels as dir: kernels (a /boot-like directory each).
      const trixie = await fetchKernel("debian:trixie");
      const hangDir = `${root}/k-hang`;
      const trixieDir = `${root}/k-trixie`;
      await Deno.mkdir(hangDir);
      await Deno.mkdir(trixieDir);
      await hangingImage(trixie.vmlinuz, `${hangDir}/vmlinuz-${HANG}`);
      await Deno.symlink(trixie.vmlinuz, `${trixieDir}/vmlinuz-${trixie.release}`);
      await Deno.symlink(await lab.initrdFor(trixie), `${trixieDir}/initrd.img-${trixie.release}`);
      const farmFile = `${root}/farm.yaml`;
      await Deno.writeTextFile(
        farmFile,
        [
          "name: uboot-lab",
          "leases: { dir: leases, ttl_s: 60 }",
          `boards_dirs: [${JSON.stringify(lab.boardsDir)}]`,
          "groups:",
          "  - name: desk",
          "    boards:",
          `      - id: ${lab.id}`,
          "",
        ].join("\n"),
      );
      const t0 = performance.now();
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          MAIN,
          "run",
          "--farm",
          farmFile,
          "--kernel",
          `dir:${hangDir}`,
          "--kernel",
          `dir:${trixieDir}`,
          "--suite",
          "boot",
          "--runs-dir",
          `${root}/runs`,
          "--no-history",
          "--jobs",
          "1",
        ],
        env: { CI: "true" },
        stdin: "null",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      console.log(text.split("\n").map((l) => `  | ${l}`).join("\n"));
      console.log(`  farm run: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      assert.equal(out.code, 1, "a FAIL (the hanging kernel) is exit 1");
      const dirs = [];
      for await (const e of Deno.readDir(`${root}/runs`)) {
        if (e.isDirectory && e.name.includes("-farm-uboot-lab-")) dirs.push(e.name);
      }
      assert.equal(dirs.length, 1, dirs.join(", "));
      const dir = `${root}/runs/${dirs[0]}`;
      const results = parseResults(await Deno.readTextFile(`${dir}/results.jsonl`)).results;
      const of = (kernel: string) =>
        results.filter((r) => r.kernel === kernel).map((r) => `${r.suite} ${r.test} ${r.verdict}`);
      const hangSpec = `dir:${hangDir}`;
      const trixieSpec = `dir:${trixieDir}`;
      // Job 1: boot (known-good), deploy FAIL, the suite's steps not run. Job 2 after it.
      assert.deepEqual(of(hangSpec), [
        "boot boot PASS",
        "boot deploy FAIL",
        "boot boot/kernel MISS",
        "boot boot/console MISS",
      ]);
      assert.deepEqual(of(trixieSpec), [
        "boot boot PASS",
        "boot deploy PASS",
        "boot boot/kernel PASS",
        "boot boot/console PASS",
      ]);
      assert.deepEqual(results.map((r) => r.kernel), [
        ...Array(4).fill(hangSpec),
        ...Array(4).fill(trixieSpec),
      ]);
      const find = (kernel: string, test: string) =>
        results.find((r) => r.kernel === kernel && r.test === test) as TestResult;
      const broken = find(hangSpec, "deploy");
      assert.match(
        broken.reason ?? "",
        new RegExp(`kernel ${esc(HANG)} did not come up: it did not start`),
      );
      assert.match(broken.reason ?? "", new RegExp(`known-good ${esc(lab.knownGood.release)}`));
      const d1 = broken.details as DeployDetails;
      assert.ok(
        d1.events.includes("power cycled through the command adapter"),
        d1.events.join("; "),
      );
      assert.match(d1.console ?? "", /Starting kernel/);
      assert.doesNotMatch(d1.console ?? "", /Booting Linux/);
      assert.equal(d1.runningAfter, lab.knownGood.release);
      // Recorded under the release that failed, not the known-good one running again (the
      // history files results by release); the boot before it ran the known-good kernel.
      assert.equal(find(hangSpec, "boot").release, lab.knownGood.release);
      assert.deepEqual(
        ["deploy", "boot/kernel", "boot/console"].map((t) => find(hangSpec, t).release),
        [HANG, HANG, HANG],
      );
      assert.match(
        find(hangSpec, "boot/kernel").reason ?? "",
        new RegExp(`^not run: the kernel was not deployed \\(deploy FAIL: kernel ${esc(HANG)}`),
      );
      // The target stayed healthy: job 2 ran on it, from the known-good kernel to trixie.
      assert.equal(find(trixieSpec, "boot").release, lab.knownGood.release);
      assert.equal(find(trixieSpec, "deploy").release, trixie.release);
      assert.equal(find(trixieSpec, "boot/kernel").release, trixie.release);
      assert.equal(find(trixieSpec, "boot/kernel").details?.release, trixie.release);
      const jobs = (await Deno.readTextFile(`${dir}/jobs.jsonl`)).split("\n").filter(Boolean)
        .map((l) => JSON.parse(l));
      assert.deepEqual(jobs.map((j) => [j.job, j.state]), [
        [`${lab.id} ${hangSpec}`, "done"],
        [`${lab.id} ${trixieSpec}`, "done"],
      ]);
      // The power cycle after the hang went through the board file's adapter, on the console.
      const consoles: string[] = [];
      const walk = async (d: string) => {
        for await (const e of Deno.readDir(d)) {
          if (e.isDirectory) await walk(`${d}/${e.name}`);
          else if (e.name === "console.log") {
            consoles.push(await Deno.readTextFile(`${d}/${e.name}`));
          }
        }
      };
      await walk(dir);
      assert.ok(
        consoles.some((c) =>
          new RegExp(
            `deploy: kernel ${
              esc(HANG)
            } did not start: power cycle through the adapter\\n.*### rkhil: power off \\(command: `,
          ).test(c)
        ),
        "the power cycle on the console log",
      );
      ok = true;
    } finally {
      await lab.stop();
      if (ok) await Deno.remove(root, { recursive: true }).catch(() => {});
      else console.log(`  run directory kept: ${root}`);
    }
  },
});
