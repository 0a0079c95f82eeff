/**
 * `rkhil run`'s suites on real Debian kernels in QEMU, through the suite runner: every suite on
 * trixie (the boot, the kernel's facts, the driver and the memory model against the oracle,
 * the IOMMU log against the prediction, the probe scenarios as booted and on their own boots),
 * the probe suites on 6.1 and 7.x, a suite the target lacks a capability for (SKIP with the
 * oracle's prediction), and a kernel the mirror does not have.
 */
import assert from "node:assert/strict";
import { SUITES as ALL_SUITES } from "../../tests/mod.ts";

/**
 * The suites but the workload ones (runner/workload/guest_qemu_test.ts runs those once) and
 * iommu-emulated (a boot per scenario; runner/rkiommu/emu_qemu_test.ts runs it once).
 */
const SUITES = ALL_SUITES.filter((s) => !s.name.startsWith("npu/") && s.name !== "iommu-emulated");
import { parseResults } from "../results/store.ts";
import { testRunRoot } from "../test_dirs.ts";
import { waitNoneUnder } from "../jobs/_qemu_procs.ts";
import { qemuPlans, shutdownQemu } from "./plans.ts";
import { runJob } from "./run_job.ts";
import type { Suite } from "./types.ts";

/** A suite the embedded target cannot run: it lacks `npu`. */
const needsNpu: Suite = {
  name: "needs-npu",
  description: "a suite for a target with an NPU",
  requires: ["npu"],
  predict: ({ release, target }) => ({ release, board: target.board.id }),
  steps: () => [{ name: "needs-npu/never", run: () => Promise.reject(new Error("ran")) }],
};

Deno.test("rkhil run on Debian trixie: every suite passes, one record per step", async () => {
  const root = await testRunRoot("rkhil-suites-");
  const lines: string[] = [];
  const r = await runJob({
    plans: qemuPlans(["debian:trixie"]),
    suites: [...SUITES, needsNpu],
    predictBoards: ["rock-3b-8g"],
    runsRoot: root,
    shutdown: shutdownQemu,
    log: (l) => lines.push(l),
  });
  const tests = r.results.map((x) => x.test);
  assert.deepEqual(tests, [
    "boot",
    "boot/kernel",
    "boot/console",
    "facts",
    "oracle/driver",
    "oracle/memory",
    "iommu/log",
    "oracle/predict rock-3b-8g",
    ...["v1", "v2-6.1", "v2-6.6", "v2-6.6-vop", "bounce"].map((s) => `probe/${s}`),
    ...["swiotlb-force", "mem-below-4g", "2g"].map((s) => `probe/${s}`),
    "needs-npu",
  ]);
  const by = Object.fromEntries(r.results.map((x) => [x.test, x]));
  for (const x of r.results) {
    const want = x.test.startsWith("oracle/predict")
      ? "DONE"
      : x.test === "needs-npu"
      ? "SKIP"
      : "PASS";
    assert.equal(x.verdict, want, `${x.test}: ${x.reason}`);
    assert.equal(x.target, "qemu-virt-8g");
    assert.equal(x.kernel, "debian:trixie");
    assert.match(x.release ?? "", /^6\.12\.\d+\+deb13-arm64$/);
  }
  // The SKIP is not a failure.
  assert.equal(r.exitCode, 0);
  assert.deepEqual(
    [...new Set(r.results.map((x) => x.suite))],
    ["boot", "driver", "iommu", "probe", "probe-boot", "needs-npu"],
  );
  assert.ok((by["boot"].measurements ?? []).some((m) => m.name === "boot to ssh" && m.value > 0));
  assert.equal((by["boot/console"].details as { summary: string }).summary, "no crash, no WARNING");
  const mem = by["oracle/memory"].details as { agreed: string[] };
  assert.ok(mem.agreed.includes("ZONE_NORMAL span"), JSON.stringify(mem));
  // qemu-virt has no Rockchip IOMMU: none predicted, and none in dmesg or on the console.
  assert.deepEqual(by["iommu/log"].details?.instances, []);
  assert.deepEqual(by["iommu/log"].details?.rkIommuLines, []);
  const outcomes = (by["oracle/predict rock-3b-8g"].details as { outcomes: Record<string, string> })
    .outcomes;
  assert.equal(outcomes["fde4b000"], "BUS_ERROR");
  assert.equal(outcomes["fe043e00"], "OK");
  // The seed's failure mode 2, reproduced on a real kernel and predicted.
  assert.equal(
    (by["probe/bounce"].details as { observed: string }).observed,
    "PAGE_FAULT/pte (tables >=4G, bounced)",
  );
  assert.deepEqual((by["probe/2g"].details as { boot: unknown }).boot, { memory: "2G" });
  // SKIP for the missing capability, with what the oracle predicts there.
  assert.equal(
    by["needs-npu"].reason,
    "needs capability npu (this target has: boot-config, cpu-workload, kernel-introspection, probe-module)",
  );
  assert.deepEqual((by["needs-npu"].details as { prediction: unknown }).prediction, {
    release: by["boot"].release,
    board: "qemu-virt-8g",
  });
  // Written as it happened: one line per step the run logged, in the run's one store.
  const stored = parseResults(await Deno.readTextFile(`${r.dir}/results.jsonl`));
  assert.equal(stored.damagedLines, 0);
  assert.deepEqual(stored.results, r.results);
  assert.equal(
    lines.filter((l) => /^ {2}(PASS|FAIL|ERROR|MISS|SKIP|DONE) /.test(l)).length,
    tests.length,
  );
  const report = await Deno.readTextFile(`${r.dir}/report.md`);
  assert.match(report, /^## qemu-virt-8g$/m);
  assert.match(
    report,
    /^\| debian:trixie \| 6\.12\.\d+\+deb13-arm64 \| [\d.]+ s \| 2\/2 agree \| \d+ facts, 0 missing \| agree \(\d+ facts\) \| agree \(\d+ facts\) \| no IOMMU predicted, no rk_iommu line \| 5\/5 agree \| 3\/3 agree \|$/m,
  );
  assert.match(report, /^- SKIP qemu-virt-8g debian:trixie needs-npu: needs capability npu/m);
  assert.deepEqual(await waitNoneUnder(root), []);
});

Deno.test("the probe suites on Debian 6.1 and 7.x: the oracle agrees with the probe everywhere", async () => {
  const root = await testRunRoot("rkhil-probe-");
  const r = await runJob({
    plans: qemuPlans(["debian:bookworm", "debian:trixie-backports"]),
    suites: SUITES.filter((s) => s.name === "probe" || s.name === "probe-boot"),
    predictBoards: [],
    runsRoot: root,
    shutdown: shutdownQemu,
    log: () => {},
  });
  for (const kernel of ["debian:bookworm", "debian:trixie-backports"]) {
    const rs = r.results.filter((x) => x.kernel === kernel);
    assert.equal(rs.length, 1 + 8, JSON.stringify(rs.map((x) => x.test)));
    for (const x of rs) assert.equal(x.verdict, "PASS", `${kernel} ${x.test}: ${x.reason}`);
  }
  assert.equal(r.exitCode, 0);
  assert.deepEqual(await waitNoneUnder(root), []);
});

Deno.test("a kernel the mirror does not have: a classified boot result naming what exists", async () => {
  const root = await testRunRoot("rkhil-nokernel-");
  const r = await runJob({
    plans: qemuPlans(["debian:no-such-suite"]),
    suites: SUITES,
    predictBoards: [],
    runsRoot: root,
    log: () => {},
  });
  assert.equal(r.exitCode, 1);
  assert.deepEqual(r.results.map((x) => x.test), ["boot"]);
  assert.ok(["ERROR", "MISS"].includes(r.results[0].verdict), r.results[0].verdict);
  assert.match(r.results[0].reason ?? "", /bookworm|trixie|sid/);
});
