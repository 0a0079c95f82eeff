/**
 * Results in the right class on real Debian kernels in QEMU, through the suite runner's one
 * `runStep`: a kernel that panics while booting is a `boot` FAIL with the panic's first line
 * (never retried into a MISS); a guest killed in the middle of a step makes that step MISS and
 * every later step of the kernel MISS "not run" (the probe scenarios on boots of their own
 * included), with the reason; a kernel crash during a step is its FAIL; no QEMU outlives the
 * run. `rkhil facts` reports a lost guest as lost.
 */
import assert from "node:assert/strict";
import { SUITES as ALL_SUITES } from "../../tests/mod.ts";

/**
 * The suites but the workload ones (runner/workload/guest_qemu_test.ts runs those once) and
 * iommu-emulated (a boot per scenario; runner/rkiommu/emu_qemu_test.ts runs it once).
 */
const SUITES = ALL_SUITES.filter((s) => !s.name.startsWith("npu/") && s.name !== "iommu-emulated");
import { testRunRoot } from "../test_dirs.ts";
import { qemuUnder, waitNoneUnder } from "../jobs/_qemu_procs.ts";
import { runFacts } from "../introspect/facts_cmd.ts";
import { SCENARIOS } from "../probe/scenarios.ts";
import { qemuPlans, shutdownQemu } from "./plans.ts";
import { runJob } from "./run_job.ts";

const KERNEL = "debian:trixie";
/** Where the run keeps the embedded target's files for KERNEL. */
const KERNEL_DIR = "qemu-virt-8g/debian_trixie";

/** `rkhil run --kernel KERNEL` with every suite, as the CLI runs it. */
function run(root: string, log: (line: string) => void, append?: string) {
  return runJob({
    plans: qemuPlans([KERNEL], "8G", append),
    suites: SUITES,
    predictBoards: ["rock-3b-8g"],
    runsRoot: root,
    shutdown: shutdownQemu,
    log,
  });
}

/** Every step after boot, in run order, as the suites give them on the embedded target. */
const STEPS = [
  "boot",
  "boot/kernel",
  "boot/console",
  "facts",
  "oracle/driver",
  "oracle/memory",
  "iommu/log",
  "oracle/predict rock-3b-8g",
  ...SCENARIOS.map((s) => `probe/${s.name}`),
];

Deno.test("a kernel that panics while booting is a boot FAIL with the panic line, not a MISS", async () => {
  const root = await testRunRoot("rkhil-panic-");
  const t0 = performance.now();
  // No init the kernel can run: "Kernel panic - not syncing: ..." before any shell.
  const r = await run(root, () => {}, "init=/nonexistent rdinit=/nonexistent");
  const seconds = (performance.now() - t0) / 1000;
  const boot = r.results.find((x) => x.test === "boot");
  assert.equal(boot?.verdict, "FAIL", JSON.stringify(boot));
  assert.match(
    boot!.reason ?? "",
    /kernel panic: Kernel panic - not syncing: (Requested init \/nonexistent failed|VFS: Unable to mount root fs)/,
  );
  // Not retried as a hung boot: one attempt, far below the 120 s boot timeout.
  assert.ok(seconds < 100, `took ${seconds.toFixed(1)} s`);
  const transcript = await Deno.readTextFile(`${r.dir}/${KERNEL_DIR}/console.log`);
  assert.match(transcript, /Kernel panic - not syncing/);
  assert.doesNotMatch(transcript, /power cycle/);
  assert.deepEqual(r.results.map((x) => x.test), ["boot"]);
  assert.equal(r.exitCode, 1);
  const report = await Deno.readTextFile(`${r.dir}/report.md`);
  assert.match(report, /^\| debian:trixie \| - \| FAIL \|/m);
  assert.match(report, /^- FAIL qemu-virt-8g debian:trixie boot: .*Kernel panic - not syncing: /m);
  assert.deepEqual(await waitNoneUnder(root), []);
});

for (
  const c of [
    // `facts` reads the kernel through the target: kill QEMU as it starts (the case:
    // "16 facts, 2 missing: SSH connection lost" recorded as PASS).
    { after: "boot/console", lostIn: "facts", delayMs: 0 },
    // `oracle/driver` takes about ten seconds: kill QEMU a moment into it.
    { after: "facts", lostIn: "oracle/driver", delayMs: 1_500 },
  ]
) {
  Deno.test(`a guest killed during ${c.lostIn}: that step and every later one are MISS`, async () => {
    const root = await testRunRoot("rkhil-lost-");
    let killed: number[] = [];
    const r = await run(root, (line) => {
      if (line.startsWith(`  PASS  ${c.after}`)) {
        setTimeout(async () => {
          killed = await qemuUnder(root);
          for (const pid of killed) Deno.kill(pid, "SIGKILL");
        }, c.delayMs);
      }
    });
    assert.equal(killed.length, 1, "one QEMU was running and was killed");
    const by = Object.fromEntries(r.results.map((x) => [x.test, x]));
    const steps = STEPS;
    const lostAt = steps.indexOf(c.lostIn);
    for (const t of steps.slice(0, lostAt)) assert.equal(by[t]?.verdict, "PASS", t);
    assert.equal(by[c.lostIn].verdict, "MISS", JSON.stringify(by[c.lostIn]));
    assert.match(
      by[c.lostIn].reason!,
      /^target lost: (QEMU exited|SSH connection lost|the console is gone)/,
    );
    // The probe scenarios on boots of their own too: none of them boots.
    const later = steps.slice(lostAt + 1);
    for (const t of later) {
      assert.equal(by[t]?.verdict, "MISS", `${t}: ${JSON.stringify(by[t])}`);
      assert.ok(
        by[t].reason!.startsWith(`not run: target lost in ${c.lostIn} (`),
        `${t}: ${by[t].reason}`,
      );
    }
    assert.deepEqual(r.results.map((x) => x.test), [...steps.slice(0, lostAt + 1), ...later]);
    assert.equal(r.exitCode, 1);
    const report = await Deno.readTextFile(`${r.dir}/report.md`);
    assert.match(
      report,
      /^\| debian:trixie \| \S+ \| [\d.]+ s \| .*\| 0\/5 agree \(5 MISS\) \| 0\/3 agree \(3 MISS\) \|$/m,
    );
    assert.deepEqual(await waitNoneUnder(root), []);
  });
}

Deno.test("facts: a guest killed while the driver is read is reported lost, not as findings", async () => {
  const root = await testRunRoot("rkhil-lost-facts-");
  let killed: number[] = [];
  const r = await runFacts({
    kernel: KERNEL,
    runsRoot: root,
    log: (line) => {
      if (line.startsWith("introspecting")) {
        setTimeout(async () => {
          killed = await qemuUnder(root);
          for (const pid of killed) Deno.kill(pid, "SIGKILL");
        }, 1_500);
      }
    },
  });
  assert.equal(killed.length, 1);
  assert.match(r.lost ?? "", /^(QEMU exited|SSH connection lost|the console is gone)/);
  assert.equal(r.driver, undefined);
  assert.equal(r.comparison, undefined);
  const saved = JSON.parse(await Deno.readTextFile(`${r.runDir}/facts.json`));
  assert.equal(saved.lost, r.lost);
  assert.deepEqual(await waitNoneUnder(root), []);
});

/** Type `text` on the guest's serial console (the pty QEMU gives it, as a second writer). */
async function typeOnConsole(kernelDir: string, text: string): Promise<void> {
  const log = await Deno.readTextFile(`${kernelDir}/console.log`);
  const pty = /console (\/dev\/pts\/\d+) \(capture /.exec(log)?.[1];
  assert.ok(pty, "the console log names the console's pty");
  const f = await Deno.open(pty, { write: true });
  try {
    await f.write(new TextEncoder().encode(text));
  } finally {
    f.close();
  }
}

Deno.test("a kernel crash during a step: FAIL with the panic line, every later step MISS", async () => {
  const root = await testRunRoot("rkhil-crash-");
  let dir = "";
  let crashAt = 0;
  const r = await run(root, (line) => {
    dir ||= /results in (\S+)$/.exec(line)?.[1] ?? "";
    if (line.startsWith("  PASS  facts")) {
      // oracle/driver runs for about ten seconds over SSH; crash the kernel from the console.
      setTimeout(() => {
        crashAt = Date.now();
        typeOnConsole(`${dir}/${KERNEL_DIR}`, "echo c > /proc/sysrq-trigger\r").catch((e) =>
          console.error(e)
        );
      }, 1_500);
    }
  });
  assert.ok(crashAt > 0);
  const by = Object.fromEntries(r.results.map((x) => [x.test, x]));
  assert.equal(by["facts"].verdict, "PASS");
  assert.equal(by["oracle/driver"].verdict, "FAIL", JSON.stringify(by["oracle/driver"]));
  assert.match(
    by["oracle/driver"].reason!,
    /^kernel panic: Kernel panic - not syncing: sysrq triggered crash/,
  );
  // The step ended with the crash, not after the dead guest's SSH timeouts.
  const driverEnd = Date.parse(by["oracle/driver"].startedAt) + by["oracle/driver"].durationMs;
  assert.ok(driverEnd - crashAt < 20_000, `${driverEnd - crashAt} ms after the crash`);
  const later = STEPS.slice(STEPS.indexOf("oracle/memory"));
  for (const t of later) {
    assert.equal(by[t]?.verdict, "MISS", `${t}: ${JSON.stringify(by[t])}`);
    assert.match(by[t].reason!, /^not run: the kernel crashed in oracle\/driver \(panic: /);
  }
  assert.equal(r.exitCode, 1);
  const report = await Deno.readTextFile(`${r.dir}/report.md`);
  assert.match(
    report,
    /^- FAIL qemu-virt-8g debian:trixie oracle\/driver: kernel panic: Kernel panic/m,
  );
  assert.deepEqual(await waitNoneUnder(root), []);
});
