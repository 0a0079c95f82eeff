import assert from "node:assert/strict";
import { openHistory } from "../history/schema.ts";
import { queryResults } from "../history/query.ts";
import { HistoryWriter } from "../history/writer.ts";
import type { TestResult } from "../results/store.ts";
import { buildHistoryReport } from "./history_report.ts";
import { renderHistoryHtml } from "./history_html.ts";
import { renderHistoryText } from "./history_text.ts";
import { renderJUnit, xmlEscape } from "./junit.ts";

const EVIL = `<img src=x onerror=alert(1)>"'&]]></script><script>alert(2)</script>\u0000\u001b[31m`;

function hostileHistory() {
  const db = openHistory(":memory:");
  const r = (release: string, verdict: TestResult["verdict"]): TestResult => ({
    test: `probe/${EVIL}`,
    suite: "probe",
    target: `board ${EVIL}`,
    kernel: "debian:trixie",
    release,
    verdict,
    reason: verdict === "FAIL" ? `disagree: ${EVIL}\nsecond line` : undefined,
    measurements: [{ name: `boot ${EVIL}`, value: 4.2, unit: "s" }],
    startedAt: "2026-11-30T00:00:00.000Z",
    durationMs: 1200,
  });
  const w = HistoryWriter.on(db, "2026-11-30T00-00-00Z-main-0bad", "import");
  w.recordAll([r("6.1.0-57-arm64", "PASS"), r("6.12.118+deb13-arm64", "FAIL")]);
  return db;
}

Deno.test("hostile names and reasons are escaped in HTML and JUnit; the HTML has only rkhil's scripts", async () => {
  const db = hostileHistory();
  const report = await buildHistoryReport(db);
  assert.equal(report.changes.length, 1, "the FAIL after a PASS is a regression");
  const html = renderHistoryHtml(report);
  assert.ok(!html.includes("<img src=x"), "no markup from the data");
  assert.ok(!html.includes("<script>alert(2)"), "no script from the data");
  assert.ok(html.includes("&lt;img src=x onerror=alert(1)&gt;"));
  // Only rkhil's three script elements: the chart data, Chart.js, the drawing code.
  assert.equal((html.match(/<script[\s>]/g) ?? []).length, 3);
  const data = /<script type="application\/json" id="rkhil-charts">(.*?)<\/script>/s.exec(html)!;
  assert.ok(!data[1].includes("</"), "the chart data cannot end its script element");
  assert.equal(
    JSON.parse(data[1])[0].title.includes("<img src=x"),
    true,
    "the JSON keeps the text",
  );
  const xml = renderJUnit("run", null, queryResults(db));
  assert.ok(!xml.includes("<img"), "no markup in XML");
  assert.ok(!xml.includes("\u0000") && !xml.includes("\u001b"), "no control characters in XML");
  assert.match(
    xml,
    /<failure type="FAIL" message="disagree: &lt;img src=x onerror=alert\(1\)&gt;&quot;&apos;&amp;\]\]&gt;/,
  );
  assert.equal(xmlEscape("a\u0007b<"), "ab&lt;");
  const text = renderHistoryText(report);
  assert.match(text, /REGRESSION board <img/);
  db.close();
});

Deno.test("an empty history or a filter that matches nothing says so in every format", async () => {
  const db = openHistory(":memory:");
  const report = await buildHistoryReport(db);
  assert.match(renderHistoryText(report), /Nothing in the history matches\./);
  assert.match(renderHistoryText(report, { markdown: true }), /^# rkhil history report/);
  const html = renderHistoryHtml(report);
  assert.match(html, /0 runs, 0 results/);
  assert.match(renderJUnit("r", null, []), /<testsuites name="rkhil r" tests="0"/);
  db.close();
});
