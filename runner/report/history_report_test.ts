import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { RELEASES } from "../../oracle/releases.ts";
import { recordPredictions } from "../history/predictions.ts";
import { queryResults } from "../history/query.ts";
import { openHistory } from "../history/schema.ts";
import type { Database } from "../history/sqlite.ts";
import { HistoryWriter, importRunDir } from "../history/writer.ts";
import { parseResults, type TestResult } from "../results/store.ts";
import { buildHistoryReport } from "./history_report.ts";
import { renderHistoryText } from "./history_text.ts";
import { renderJUnit } from "./junit.ts";
import { bootstrapMedian, judgeReleases, mannWhitney, medianInPlace } from "./latency.ts";
import { median } from "simple-statistics";
import fc from "fast-check";
import { pickExcerpt } from "./console_excerpt.ts";
import { historyTest } from "../history/stores_testutil.ts";

const RUNS = fileURLToPath(new URL("../history/testdata/runs", import.meta.url));
const MAIN = `${RUNS}/2026-11-30T02-49-14Z-main-50fb`;
const CRASH = `${RUNS}/2026-11-30T01-00-55Z-main-f34d`;
const realMain = () => parseResults(Deno.readTextFileSync(`${MAIN}/results.jsonl`)).results;

/** Record `results` as the run `id` (a run directory name) into `db`. */
function recordRun(db: Database, id: string, results: TestResult[]): void {
  const w = HistoryWriter.on(db, id, "import");
  for (const r of results) w.record(r);
}

historyTest(
  "showcase: KB predictions 6.1 → 7.3 plus a real run: the NPU MMU goes OK → BUS_ERROR at 6.6 (2a7e6400f72b), the VOP2 MMU stays OK",
  async (store) => {
    const db = openHistory(await store.fresh());
    importRunDir(db, MAIN);
    const releases = RELEASES.slice(RELEASES.indexOf("6.1"));
    assert.equal(
      await recordPredictions(db, "2026-11-30T00-00-00Z-kb-0000", "rock-3b-8g", releases),
      releases.length,
    );
    const report = await buildHistoryReport(db);
    const npu = report.outcomes.find((o) =>
      o.board === "rock-3b-8g" && o.kind === "outcome" && o.unit === "fde4b000"
    )!;
    const at = (rel: string) => npu.cells.find((c) => c.release === rel)?.outcome;
    assert.equal(at("6.5"), "OK");
    assert.equal(at("6.6"), "BUS_ERROR");
    assert.equal(at("6.1.0-57-arm64"), "OK"); // the real run's prediction on its running release
    assert.equal(at("6.12.118+deb13-arm64"), "BUS_ERROR");
    const regressions = report.outcomeChanges.filter((c) =>
      c.history.unit === "fde4b000" && c.history.kind === "outcome" &&
      c.transition.kind === "regression"
    );
    assert.equal(regressions.length, 1);
    const r = regressions[0];
    assert.equal(r.transition.from, "6.5");
    assert.equal(r.transition.to, "6.6");
    assert.deepEqual(r.explanation?.facts.map((f) => [f.path, f.commit]), [[
      "rockchip,rk3568-iommu gfp zone",
      "2a7e6400f72b",
    ]]);
    assert.match(
      r.explanation!.facts[0].source,
      /Allocate tables from all available memory for IOMMU v2/,
    );
    const vop = report.outcomes.find((o) => o.kind === "outcome" && o.unit === "fe043e00")!;
    assert.ok(
      vop.cells.every((c) => c.outcome === "OK"),
      "the VOP2 MMU is unaffected on every release",
    );
    assert.ok(!report.outcomeChanges.some((c) => c.history.unit === "fe043e00"));
    const md = renderHistoryText(report, { markdown: true });
    assert.match(
      md,
      /\*\*REGRESSION\*\* fde4b000: OK → BUS_ERROR \(last OK 6\.5, first BUS_ERROR 6\.6\)/,
    );
    assert.match(md, /gfp zone: GFP_DMA32 → none \(commit 2a7e6400f72b\)/);
    assert.match(md, /Unchanged on every release: fdfe0800 DISABLED, fe043e00 OK\./);
    db.close();
  },
);

historyTest(
  "a FAIL on a later release is a regression with last good, first bad, the driver facts and console lines",
  async (store) => {
    const db = openHistory(await store.fresh());
    importRunDir(db, MAIN);
    // The crash run's oracle/driver FAIL on 6.12, recorded as a second run where 6.1 passed.
    const crash = parseResults(Deno.readTextFileSync(`${CRASH}/results.jsonl`)).results;
    const pass61 = realMain().filter((r) => r.kernel === "debian:bookworm");
    recordRun(db, "2026-11-30T05-00-00Z-main-0001", [...pass61, ...crash]);
    const report = await buildHistoryReport(db, { runs: ["2026-11-30T05-00-00Z-main-0001"] });
    const reg = report.changes.filter((c) => c.transition.kind === "regression");
    assert.deepEqual(reg.map((c) => [c.test.test, c.transition.from, c.transition.to]), [
      ["oracle/driver", "6.1.0-57-arm64", "6.12.118+deb13-arm64"],
    ]);
    assert.match(reg[0].reason!, /Kernel panic - not syncing: sysrq triggered crash/);
    assert.ok(reg[0].explanation!.facts.some((f) => f.commit === "2a7e6400f72b"));
    // MISS never counts: the validate/* steps MISSed on 6.12 after the crash and are no regression.
    assert.ok(!report.changes.some((c) => c.test.test.startsWith("validate/")));
    // The crash run's directory is elsewhere: the excerpt comes from a run dir that has it.
    db.close();
    const db2 = openHistory(":memory:");
    importRunDir(db2, CRASH);
    const rows = queryResults(db2);
    const xml = renderJUnit("2026-11-30T01-00-55Z-main-f34d", CRASH, rows);
    assert.equal((xml.match(/<testcase /g) ?? []).length, 13);
    assert.match(
      xml,
      /<failure type="FAIL" message="kernel panic: Kernel panic - not syncing: sysrq triggered crash">/,
    );
    assert.match(
      xml,
      /console .*debian_trixie\/console\.log:241:\n\[\+ +6\.028502\] \[ +4\.848027\] Kernel panic/,
    );
    assert.equal((xml.match(/<error type="MISS"/g) ?? []).length, 10);
    assert.match(
      xml,
      /<testsuites name="rkhil 2026-11-30T01-00-55Z-main-f34d" tests="13" failures="1" errors="10" skipped="0"/,
    );
    db2.close();
  },
);

Deno.test("no false regressions: MISS and ERROR never count, a retry that passed is flaky, other targets never pair", async () => {
  const base = realMain().find((r) =>
    r.test === "oracle/memory" && r.kernel === "debian:bookworm"
  )!;
  const on = (
    release: string,
    verdict: TestResult["verdict"],
    extra: Partial<TestResult> = {},
  ): TestResult => ({
    ...base,
    kernel: `k:${release}`,
    release,
    verdict,
    ...extra,
  });
  const db = openHistory(":memory:");
  recordRun(db, "2026-11-30T06-00-00Z-main-0002", [
    on("6.1.0-57-arm64", "PASS"),
    on("6.6.10", "MISS", { reason: "target lost: console gone" }),
    on("6.6.10", "ERROR", { reason: "test broke" }),
    on("6.12.118+deb13-arm64", "FAIL", { reason: "first try" }),
    on("6.12.118+deb13-arm64", "PASS"), // the retry passed: flaky, not a regression
    on("7.3.4+deb13-arm64", "PASS"),
    // Another target fails on 6.12: never paired with qemu-virt-8g's PASS on 6.1.
    on("6.12.118+deb13-arm64", "FAIL", { target: "rock-3b-8g", reason: "disagree" }),
  ]);
  const report = await buildHistoryReport(db);
  assert.deepEqual(report.changes, []);
  const t = report.tests.find((x) => x.target === "qemu-virt-8g")!;
  assert.deepEqual(t.cells.map((c) => [c.release, c.status]), [
    ["6.1.0-57-arm64", "PASS"],
    ["6.6.10", "NONE"],
    ["6.12.118+deb13-arm64", "FLAKY"],
    ["7.3.4+deb13-arm64", "PASS"],
  ]);
  assert.match(
    renderHistoryText(report),
    /Flaky .*qemu-virt-8g oracle\/memory @ 6\.12\.118\+deb13-arm64/,
  );
  // A real FAIL on 7.3 after the flaky 6.12: last good is 7.3's predecessor with evidence (none: flaky breaks the chain).
  recordRun(db, "2026-11-30T07-00-00Z-main-0003", [
    on("7.4.1", "FAIL", { reason: "really broken" }),
  ]);
  const again = await buildHistoryReport(db);
  assert.deepEqual(
    again.changes.map((c) => [c.transition.kind, c.transition.from, c.transition.to]),
    [
      ["regression", "7.3.4+deb13-arm64", "7.4.1"],
    ],
  );
  assert.equal(
    again.changes[0].explanation,
    undefined,
    "7.4 is outside the knowledge base: no facts claimed",
  );
  db.close();
});

Deno.test("latency: Mann-Whitney exact and normal, bootstrap interval, the effect floor", () => {
  // Fully separated samples of 4 and 4: U = 0, exact two-sided p = 2 / C(8, 4) = 2/70.
  const t = mannWhitney([1, 2, 3, 4], [5, 6, 7, 8]);
  assert.equal(t.method, "exact");
  assert.equal(t.u, 0);
  assert.ok(Math.abs(t.p - 2 / 70) < 1e-12);
  // Identical samples: no evidence.
  assert.equal(mannWhitney([1, 2, 3], [1, 2, 3]).p, 1);
  // With ties: the normal approximation; scipy.stats.mannwhitneyu(a, b, use_continuity=True,
  // method="asymptotic") gives U = 1.0, p = 0.0011992228710210819.
  const n = mannWhitney([1, 2, 2, 3, 3, 3, 4, 4], [4, 5, 5, 6, 6, 6, 7, 7]);
  assert.equal(n.method, "normal");
  assert.equal(n.u, 1);
  assert.ok(Math.abs(n.p - 0.0011992228710210819) < 1e-6, `p = ${n.p}`);
  assert.throws(() => mannWhitney([], [1]), RangeError);
  const b = bootstrapMedian([10, 11, 12, 13, 14, 15, 16], { seed: 1 });
  assert.equal(b.median, 13);
  assert.ok(b.low <= 13 && b.high >= 13 && b.low >= 10 && b.high <= 16);
  assert.deepEqual(
    bootstrapMedian([10, 11, 12, 13, 14, 15, 16], { seed: 1 }),
    b,
    "seeded: reproducible",
  );
  assert.throws(() => bootstrapMedian([]), RangeError);
  // The linear-time median the bootstrap uses agrees with simple-statistics on any sample.
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 60 }),
      (ints) => {
        const xs = ints.map((x) => x / 1000);
        const got = medianInPlace(Float64Array.from(xs)), want = median(xs);
        assert.ok(Math.abs(got - want) <= 1e-9 * Math.max(1, Math.abs(want)), `${got} vs ${want}`);
      },
    ),
    { numRuns: 500 },
  );
  const base = [4.0, 4.1, 4.05, 4.2, 3.95, 4.1];
  const judged = judgeReleases([
    { release: "6.1", samples: base },
    { release: "6.6", samples: base.map((x) => x * 1.03) }, // significant shift, under the 10 % floor
    { release: "6.12", samples: base.map((x) => x * 1.5) }, // significant and large
    { release: "7.0", samples: [6.1, 6.2] }, // too few samples
  ]);
  assert.deepEqual(judged.map((j) => j.judgement), [
    "baseline",
    "same",
    "slower",
    "too few samples",
  ]);
});

Deno.test("console excerpt: the reason's line, else the first fault line; nothing for a clean log", () => {
  const log =
    "boot\n[  1.0] hello\n[  2.0] rk_iommu fde4b000.iommu: BUS_ERROR occurred at 0x0\n[  2.1] next\n";
  assert.deepEqual(pickExcerpt(log, "kernel panic: nothing like this", 2), {
    line: 3,
    lines: ["[  2.0] rk_iommu fde4b000.iommu: BUS_ERROR occurred at 0x0", "[  2.1] next"],
  });
  assert.equal(pickExcerpt("all fine\n", "x"), undefined);
  assert.equal(pickExcerpt("\x1b[31mOops\x07 here", null)?.lines[0], "[31mOops here");
});
