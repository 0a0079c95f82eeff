/**
 * History report benchmark: a synthetic history of 100 000 results of realistic shape (the 39
 * steps of a real `rkhil run` record, runner/history/testdata, repeated over 4 targets, 10
 * kernel releases and ~2 560 runs: boot latency with noise and a slower release, a FAIL from
 * one release on, a retried flaky step, MISS runs), written through HistoryWriter into a
 * file database; then `rounds` timed reports, each read from the history and rendered as
 * Markdown and as HTML (timed apart, side by side). Goal: Markdown and HTML under 2 s.
 * Written to `bench/results/history.json` with the database size.
 *
 * Run: deno run -A bench/history.ts [rounds=5] [results=100000]
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { stats } from "./stats.ts";
import { openHistory } from "../runner/history/schema.ts";
import { HistoryWriter } from "../runner/history/writer.ts";
import { parseResults, type TestResult } from "../runner/results/store.ts";
import { buildHistoryReport } from "../runner/report/history_report.ts";
import { renderHistoryText } from "../runner/report/history_text.ts";
import { renderHistoryHtml } from "../runner/report/history_html.ts";
import { bootstrapMedian } from "../runner/report/latency.ts";

const rounds = Number(Deno.args[0] ?? 5);
const total = Number(Deno.args[1] ?? 100_000);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) {
  console.error("bench/history.ts: rounds must be a whole number from 1 to 50");
  Deno.exit(2);
}
if (!Number.isInteger(total) || total < 1000 || total > 1_000_000) {
  console.error("bench/history.ts: results must be a whole number from 1000 to 1000000");
  Deno.exit(2);
}

const template = parseResults(
  Deno.readTextFileSync(
    fileURLToPath(
      new URL(
        "../runner/history/testdata/runs/2026-11-30T02-49-14Z-main-50fb/results.jsonl",
        import.meta.url,
      ),
    ),
  ),
).results.filter((r) => r.kernel === "debian:trixie"); // one kernel's 13 steps
const RELEASES = [
  "6.1.0-57-arm64",
  "6.6.15-arm64",
  "6.8.12-arm64",
  "6.10.11-arm64",
  "6.12.118+deb13-arm64",
  "6.14.3-arm64",
  "6.16.9-arm64",
  "7.0.4-arm64",
  "7.2.13-arm64",
  "7.3.4+deb13-arm64",
];
const TARGETS = ["qemu-virt-8g", "rock-3b-8g", "rock-3b-8g-lab2", "quartz64-a"];

/** A deterministic generator (mulberry32) for the synthetic noise. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(11);

function runResults(run: number, target: string, ri: number): TestResult[] {
  const release = RELEASES[ri];
  const lost = rand() < 0.03; // the target was lost after boot: the rest MISS
  const start = Date.parse("2026-06-01T00:00:00Z") + run * 3_600_000;
  const out: TestResult[] = [];
  for (const [i, t] of template.entries()) {
    const r: TestResult = {
      ...t,
      target,
      kernel: `debian:${release}`,
      release,
      startedAt: new Date(start + i * 1000).toISOString(),
      durationMs: t.durationMs * (0.8 + 0.4 * rand()),
    };
    if (t.test === "boot") {
      const slow = ri >= 7 ? 1.25 : 1; // 7.0 boots slower
      r.measurements = t.measurements?.map((m) => ({
        ...m,
        value: m.value * slow * (0.9 + 0.2 * rand()),
      }));
    } else if (lost) {
      r.verdict = "MISS";
      r.reason = "target lost: the console is gone";
      delete r.details;
    } else if (t.test === "validate/v2-6.6" && target === "rock-3b-8g" && ri >= 4) {
      r.verdict = "FAIL";
      r.reason = "disagree: predicted BUS_ERROR/dt, observed ok";
    } else if (t.test === "validate/bounce" && rand() < 0.02) {
      out.push({ ...r, verdict: "FAIL", reason: "flaky first try" }); // the retry below passes
    }
    out.push(r);
  }
  return out;
}

const dir = await Deno.makeTempDir({ prefix: "rkhil-history-bench-" });
try {
  const dbPath = `${dir}/history.sqlite`;
  const db = openHistory(dbPath);
  const t0 = performance.now();
  let n = 0, run = 0;
  while (n < total) {
    const target = TARGETS[run % TARGETS.length];
    const ri = Math.floor(run / TARGETS.length) % RELEASES.length;
    const id = new Date(Date.parse("2026-06-01T00:00:00Z") + run * 3_600_000).toISOString()
      .replace(/\.\d+Z$/, "Z").replaceAll(":", "-") +
      `-main-${(run % 65536).toString(16).padStart(4, "0")}`;
    const rs = runResults(run, target, ri).slice(0, total - n);
    HistoryWriter.on(db, `${dir}/${id}`, "live").recordAll(rs);
    n += rs.length;
    run++;
  }
  const writeSeconds = (performance.now() - t0) / 1000;
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const dbBytes = (await Deno.stat(dbPath)).size;

  const md: number[] = [], html: number[] = [], mdCpu: number[] = [], htmlCpu: number[] = [];
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  let sizes = { markdown: 0, html: 0 };
  let counts: Record<string, number> = {};
  for (let i = 0; i < rounds + 1; i++) {
    const a = performance.now(), ca = cpu();
    const m = renderHistoryText(await buildHistoryReport(db), { markdown: true });
    const b = performance.now(), cb = cpu();
    const report = await buildHistoryReport(db);
    const h = renderHistoryHtml(report);
    const c = performance.now(), cc = cpu();
    if (i === 0) continue; // warm-up
    md.push((b - a) / 1000);
    html.push((c - b) / 1000);
    mdCpu.push(cb - ca);
    htmlCpu.push(cc - cb);
    sizes = { markdown: m.length, html: h.length };
    counts = report.counts;
  }
  db.close();
  const interval = (xs: number[]) => {
    const b = bootstrapMedian(xs);
    return { median: +b.median.toFixed(3), low: +b.low.toFixed(3), high: +b.high.toFixed(3) };
  };
  const out = {
    date: new Date().toISOString(),
    host: { cpus: navigator.hardwareConcurrency, loadavg: Deno.loadavg() },
    results: n,
    runs: run,
    verdicts: counts,
    releases: RELEASES.length,
    targets: TARGETS.length,
    writeSeconds: +writeSeconds.toFixed(3),
    databaseBytes: dbBytes,
    databaseMiB: +(dbBytes / 2 ** 20).toFixed(2),
    outputBytes: sizes,
    // Wall time, and the process's CPU time (user + system): on a shared machine the wall
    // time carries the other processes' load (loadavg above), the CPU time does not.
    seconds: {
      markdown: { ...stats(md), medianInterval95: interval(md) },
      html: { ...stats(html), medianInterval95: interval(html) },
    },
    cpuSeconds: {
      markdown: { ...stats(mdCpu), medianInterval95: interval(mdCpu) },
      html: { ...stats(htmlCpu), medianInterval95: interval(htmlCpu) },
    },
    goalSeconds: 2,
    meetsGoalWall: stats(md).median < 2 && stats(html).median < 2,
    meetsGoalCpu: stats(mdCpu).median < 2 && stats(htmlCpu).median < 2,
  };
  await Deno.mkdir("bench/results", { recursive: true });
  await Deno.writeTextFile("bench/results/history.json", JSON.stringify(out, null, 2) + "\n");
  console.log(JSON.stringify(out, null, 2));
} finally {
  if (!Deno.env.get("KEEP")) await Deno.remove(dir, { recursive: true });
  else console.log(dir);
}
