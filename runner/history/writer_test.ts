import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseResults, RunStore } from "../results/store.ts";
import { observationsOf, releaseOrder, suiteOf } from "./extract.ts";
import { queryOutcomes, queryResults, querySamples } from "./query.ts";
import { openHistory } from "./schema.ts";
import { HistoryWriter, importRunDir, parseRunDirName } from "./writer.ts";
import { historyTest } from "./stores_testutil.ts";

const RUNS = fileURLToPath(new URL("./testdata/runs", import.meta.url));
const MAIN = `${RUNS}/2026-11-30T02-49-14Z-main-50fb`;
const CRASH = `${RUNS}/2026-11-30T01-00-55Z-main-f34d`;

historyTest(
  "importing a real run keeps every field, derives the release, and twice adds nothing",
  async (store) => {
    const db = openHistory(await store.fresh());
    const first = importRunDir(db, MAIN);
    assert.deepEqual(first, {
      run: "2026-11-30T02-49-14Z-main-50fb",
      added: 39,
      present: 0,
      damagedLines: 0,
    });
    const again = importRunDir(db, MAIN);
    assert.equal(again.added, 0);
    assert.equal(again.present, 39);
    const rows = queryResults(db);
    assert.equal(rows.length, 39);
    const text = Deno.readTextFileSync(`${MAIN}/results.jsonl`);
    const original = parseResults(text).results;
    // Every field of every result survives (details as JSON text, measurements as rows).
    const stored = db.prepare("SELECT * FROM results ORDER BY seq").all() as Record<
      string,
      unknown
    >[];
    original.forEach((r, i) => {
      const s = stored[i];
      assert.equal(s.test, r.test);
      assert.equal(s.target, r.target);
      assert.equal(s.kernel, r.kernel);
      assert.equal(s.verdict, r.verdict);
      assert.equal(s.reason ?? undefined, r.reason);
      assert.equal(s.started_at, r.startedAt);
      assert.equal(s.duration_ms, r.durationMs);
      assert.deepEqual(s.details === null ? undefined : JSON.parse(String(s.details)), r.details);
    });
    const releases = [...new Set(rows.map((r) => r.release))];
    assert.deepEqual(releases, ["6.1.0-57-arm64", "6.12.118+deb13-arm64", "7.3.4+deb13-arm64"]);
    const boot = querySamples(db).filter((m) => m.name === "boot to ssh");
    assert.equal(boot.length, 3);
    assert.ok(boot.every((m) => m.unit === "s" && m.values.length === 1));
    const r0 = original.find((r) => r.test === "boot")!.measurements!.find((m) =>
      m.name === "boot to ssh"
    )!;
    assert.deepEqual(boot.find((b) => b.release === "6.1.0-57-arm64")!.values, [r0.value]);
    const npu = queryOutcomes(db).filter((o) => o.unit === "fde4b000" && o.kind === "outcome");
    assert.deepEqual(npu.map((o) => o.outcome), ["OK", "BUS_ERROR", "BUS_ERROR"]);
    db.close();
  },
);

historyTest(
  "the live writer and a later import of the same run give one copy of each result",
  async (store) => {
    const dir = store.dir;
    const history = await store.fresh();
    {
      const runDir = `${dir}/2026-11-30T03-00-00Z-main-abcd`;
      const store = await RunStore.open(runDir);
      const w = HistoryWriter.open(history, runDir);
      const { results } = parseResults(await Deno.readTextFile(`${CRASH}/results.jsonl`));
      for (const r of results.slice(0, 5)) {
        await store.record(r);
        w.record(r);
      }
      w.close();
      // The runner died here; the rest reached the JSONL only.
      for (const r of results.slice(5)) await store.record(r);
      store.close();
      const db = openHistory(history);
      const rep = importRunDir(db, runDir);
      assert.equal(rep.added, results.length - 5);
      assert.equal(rep.present, 5);
      const rows = queryResults(db);
      assert.equal(rows.length, results.length);
      assert.ok(rows.every((r) => r.release === "6.12.118+deb13-arm64"));
      assert.deepEqual(rows.map((r) => r.verdict), results.map((r) => r.verdict));
      const run = db.prepare("SELECT name, started_at, source FROM runs").get() as Record<
        string,
        unknown
      >;
      assert.deepEqual({ ...run }, {
        name: "main",
        started_at: "2026-11-30T03:00:00Z",
        source: "live",
      });
      db.close();
      // Reopening the writer continues after the last result.
      const w2 = HistoryWriter.open(history, runDir);
      w2.record({ ...results[0], test: "late" });
      w2.close();
      const db2 = openHistory(history);
      const late = db2.prepare("SELECT seq FROM results WHERE test = 'late'").get() as {
        seq: number;
      };
      assert.equal(late.seq, results.length);
      db2.close();
    }
  },
);

historyTest(
  "import refuses a directory without results.jsonl and a file of something else",
  async (store) => {
    const dir = store.dir;
    {
      const db = openHistory(await store.fresh());
      assert.throws(() => importRunDir(db, `${dir}/none`), /results\.jsonl: does not exist/);
      await Deno.writeTextFile(`${dir}/results.jsonl`, '{"hello":1}\nnot json\n');
      assert.throws(() => importRunDir(db, dir), /holds no rkhil result \(2 other lines\)/);
      // A torn last line is counted, the rest imported.
      const good = (await Deno.readTextFile(`${CRASH}/results.jsonl`)).split("\n").slice(0, 2);
      await Deno.writeTextFile(`${dir}/results.jsonl`, good.join("\n") + '\n{"test":"fa');
      const rep = importRunDir(db, dir);
      assert.equal(rep.added, 2);
      assert.equal(rep.damagedLines, 1);
      db.close();
    }
  },
);

Deno.test("release order, suite and observations derived from real records", () => {
  assert.ok(releaseOrder("6.1.0-57-arm64")! < releaseOrder("6.6")!);
  assert.ok(releaseOrder("6.6")! < releaseOrder("6.12.118+deb13-arm64")!);
  assert.ok(releaseOrder("6.12.118+deb13-arm64")! < releaseOrder("7.3.4+deb13-arm64")!);
  assert.equal(releaseOrder("debian:trixie"), null);
  assert.equal(releaseOrder(""), null);
  assert.equal(releaseOrder("61234.1"), null);
  assert.equal(suiteOf({ test: "validate/v1" }), "validate");
  assert.equal(suiteOf({ test: "oracle/predict rock-3b-8g" }), "oracle");
  assert.equal(suiteOf({ test: "boot" }), "boot");
  assert.equal(suiteOf({ test: "boot", suite: "iommu" }), "iommu");
  const { results } = parseResults(Deno.readTextFileSync(`${MAIN}/results.jsonl`));
  const v = observationsOf(results.find((r) => r.test === "validate/v2-6.6")!);
  assert.deepEqual(v, [{
    kind: "scenario",
    key: "v2-6.6",
    predicted: '"BUS_ERROR/dt (tables >=4G)"',
    observed: '"BUS_ERROR/dt (tables >=4G)"',
    verdict: "AGREE",
  }]);
  const o = observationsOf(results.find((r) => r.test === "oracle/driver")!);
  assert.deepEqual(o.map((x) => [x.kind, x.key, x.verdict]), [[
    "oracle",
    "oracle/driver",
    "AGREE",
  ]]);
  // Hostile details: wrong types are ignored, never thrown on.
  assert.deepEqual(
    observationsOf({
      ...results[0],
      details: { outcomes: [1, 2], missing: [null, 3, { name: 4 }], summary: 7 },
    }),
    [],
  );
  assert.deepEqual(parseRunDirName("2026-11-30T02-49-14Z-main-50fb"), {
    startedAt: "2026-11-30T02:49:14Z",
    name: "main",
  });
  assert.equal(parseRunDirName("my-run"), undefined);
});

historyTest("filters: target, suite, release range and time", async (store) => {
  const db = openHistory(await store.fresh());
  for (const d of Deno.readDirSync(RUNS)) importRunDir(db, `${RUNS}/${d.name}`);
  const all = queryResults(db);
  assert.equal(all.length, 39 + 13 + 13 + 8);
  assert.equal(queryResults(db, { suites: ["validate"] }).length, 8 * 3 + 8 + 8 + 8);
  // validate/* of the main run (5 per kernel) and of the validate run.
  assert.equal(queryResults(db, { targets: ["qemu-virt 8G"] }).length, 15 + 5);
  const r612 = queryResults(db, { fromRelease: "6.12", toRelease: "6.12" });
  assert.ok(r612.length > 0 && r612.every((r) => r.release === "6.12.118+deb13-arm64"));
  assert.equal(queryResults(db, { fromRelease: "7.0" }).length, 13);
  assert.equal(
    queryResults(db, { since: "2026-11-30T02:00:00Z" }).length,
    39,
  );
  // Only the lost-target run's boot started before 01:00 (its other steps at 01:00:06).
  assert.equal(queryResults(db, { until: "2026-11-30T01:00:00Z" }).length, 1);
  db.close();
});

historyTest(
  "two writers on one history, their records interleaved, both land in full",
  async (store) => {
    const dir = store.dir;
    const h = await store.fresh();
    {
      const { results } = parseResults(await Deno.readTextFile(`${MAIN}/results.jsonl`));
      const a = HistoryWriter.open(h, `${dir}/2026-11-30T08-00-00Z-main-aaaa`);
      const b = HistoryWriter.open(h, `${dir}/2026-11-30T08-00-01Z-main-bbbb`);
      for (const r of results) {
        a.record(r);
        b.record(r);
      }
      a.close();
      b.close();
      const db = openHistory(h);
      assert.equal(queryResults(db).length, 2 * results.length);
      db.close();
    }
  },
);
