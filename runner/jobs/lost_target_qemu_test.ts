/**
 * Results in the right class on real Debian kernels in QEMU: a kernel that panics while booting
 * is a `boot` FAIL with the panic's first line (never retried into a MISS); a guest killed in the
 * middle of a step makes that step MISS and every later step of the kernel MISS "not run", with
 * the reason; no QEMU outlives the job.
 */
import assert from "node:assert/strict";
import { testRunRoot } from "../test_dirs.ts";
import { qemuUnder, waitNoneUnder } from "./_qemu_procs.ts";
import { runFacts } from "../introspect/facts_cmd.ts";
import { parseResults } from "../results/store.ts";
import { runMainJob } from "./main_job.ts";
import { runValidate, SCENARIOS } from "./validate.ts";

const KERNEL = "debian:trixie";

Deno.test("a kernel that panics while booting is a boot FAIL with the panic line, not a MISS", async () => {
  const root = await testRunRoot("rkhil-panic-");
  const t0 = performance.now();
  const r = await runMainJob({
    kernels: [KERNEL],
    predictBoards: ["rock-3b-8g"],
    runsRoot: root,
    // No init the kernel can run: "Kernel panic - not syncing: ..." before any shell.
    append: "init=/nonexistent rdinit=/nonexistent",
    log: () => {},
  });
  const seconds = (performance.now() - t0) / 1000;
  const boot = r.results.find((x) => x.test === "boot");
  assert.equal(boot?.verdict, "FAIL", JSON.stringify(boot));
  assert.match(
    boot!.reason ?? "",
    /^boot \S+-arm64: kernel panic: Kernel panic - not syncing: (Requested init \/nonexistent failed|VFS: Unable to mount root fs)/,
  );
  // Not retried as a hung boot: one attempt, far below the 120 s boot timeout.
  assert.ok(seconds < 100, `took ${seconds.toFixed(1)} s`);
  const transcript = await Deno.readTextFile(`${r.dir}/debian_trixie/console.log`).catch(() => "");
  assert.doesNotMatch(transcript, /power cycle/);
  assert.deepEqual(r.results.map((x) => x.test), ["boot"]);
  assert.equal(r.exitCode, 1);
  const report = await Deno.readTextFile(`${r.dir}/report.md`);
  assert.match(report, /^\| debian:trixie \| - \| FAIL \|/m);
  assert.match(report, /^- FAIL debian:trixie boot: .*Kernel panic - not syncing: /m);
  assert.deepEqual(await waitNoneUnder(root), []);
});

for (
  const c of [
    // `facts` reads the kernel through the target: kill QEMU as it starts (the case:
    // "16 facts, 2 missing: SSH connection lost" recorded as PASS).
    { after: "boot", lostIn: "facts", delayMs: 0 },
    // `oracle/driver` takes about ten seconds: kill QEMU a moment into it.
    { after: "facts", lostIn: "oracle/driver", delayMs: 1_500 },
  ]
) {
  Deno.test(`a guest killed during ${c.lostIn}: that step and every later one are MISS`, async () => {
    const root = await testRunRoot("rkhil-lost-");
    let killed: number[] = [];
    const r = await runMainJob({
      kernels: [KERNEL],
      predictBoards: ["rock-3b-8g"],
      runsRoot: root,
      log: (line) => {
        if (line.startsWith(`  PASS  ${c.after}`)) {
          setTimeout(async () => {
            killed = await qemuUnder(root);
            for (const pid of killed) Deno.kill(pid, "SIGKILL");
          }, c.delayMs);
        }
      },
    });
    assert.equal(killed.length, 1, "one QEMU was running and was killed");
    const by = Object.fromEntries(r.results.map((x) => [x.test, x]));
    const steps = ["boot", "facts", "oracle/driver", "oracle/memory", "oracle/predict rock-3b-8g"];
    const lostAt = steps.indexOf(c.lostIn);
    for (const t of steps.slice(0, lostAt)) assert.equal(by[t]?.verdict, "PASS", t);
    assert.equal(by[c.lostIn].verdict, "MISS", JSON.stringify(by[c.lostIn]));
    assert.match(
      by[c.lostIn].reason!,
      /^target lost: (QEMU exited|SSH connection lost|the console is gone)/,
    );
    const later = [...steps.slice(lostAt + 1), ...SCENARIOS.map((s) => `validate/${s.name}`)];
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
    assert.match(report, /^\| debian:trixie \| \S+ \| [\d.]+ s \| .*\| 0\/8 agree \(8 MISS\) \|$/m);
    assert.deepEqual(await waitNoneUnder(root), []);
  });
}

Deno.test("validate: a guest killed during a scenario makes it and every later scenario MISS", async () => {
  const root = await testRunRoot("rkhil-lost-validate-");
  let killed: number[] = [];
  const { rows, dir } = await runValidate({
    kernel: KERNEL,
    runsRoot: root,
    log: (line) => {
      // The next scenario starts on the same guest right after this line.
      if (line.startsWith("  v1: ")) {
        qemuUnder(root).then((pids) => {
          killed = pids;
          for (const pid of pids) Deno.kill(pid, "SIGKILL");
        });
      }
    },
  });
  assert.equal(killed.length, 1);
  assert.equal(rows[0].scenario, "v1");
  assert.equal(rows[0].verdict, "AGREE", rows[0].why);
  assert.equal(rows[1].verdict, "INCONCLUSIVE");
  assert.match(rows[1].why ?? "", /^target lost: /);
  const stored = parseResults(await Deno.readTextFile(`${dir}/results.jsonl`)).results;
  assert.deepEqual(stored.map((r) => r.test), SCENARIOS.map((s) => `validate/${s.name}`));
  assert.equal(stored[1].verdict, "MISS");
  for (const r of stored.slice(2)) {
    assert.equal(r.verdict, "MISS", r.test);
    assert.match(r.reason ?? "", /^not run: target lost in validate\/v2-6\.1 \(/);
  }
  assert.deepEqual(await waitNoneUnder(root), []);
});

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
  const r = await runMainJob({
    kernels: [KERNEL],
    predictBoards: ["rock-3b-8g"],
    runsRoot: root,
    validate: true,
    log: (line) => {
      dir ||= /results in (\S+)$/.exec(line)?.[1] ?? "";
      if (line.startsWith("  PASS  facts")) {
        // oracle/driver runs for about ten seconds over SSH; crash the kernel from the console.
        setTimeout(() => {
          crashAt = Date.now();
          typeOnConsole(`${dir}/debian_trixie`, "echo c > /proc/sysrq-trigger\r").catch((e) =>
            console.error(e)
          );
        }, 1_500);
      }
    },
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
  const later = [
    "oracle/memory",
    "oracle/predict rock-3b-8g",
    ...SCENARIOS.map((s) => `validate/${s.name}`),
  ];
  for (const t of later) {
    assert.equal(by[t]?.verdict, "MISS", `${t}: ${JSON.stringify(by[t])}`);
    assert.match(by[t].reason!, /^not run: the kernel crashed in oracle\/driver \(panic: /);
  }
  assert.equal(r.exitCode, 1);
  const report = await Deno.readTextFile(`${r.dir}/report.md`);
  assert.match(report, /^- FAIL debian:trixie oracle\/driver: kernel panic: Kernel panic/m);
  assert.deepEqual(await waitNoneUnder(root), []);
});
