/**
 * The history report as one self-contained HTML file (no network): the status matrix release ×
 * target × suite, the regressions with the driver facts that explain them and links to their
 * console excerpts, the predicted IOMMU outcomes per release, and one latency chart per
 * measurement (median per release with its bootstrap interval), drawn by Chart.js (4.6.1, MIT
 * licence, © Chart.js Contributors; `npm:chart.js`, inlined from its UMD build).
 *
 * Each chart's canvas carries `data-expected` (points in the data) and, once Chart.js has drawn
 * it, `data-points` (points it placed inside the chart area): the browser check compares them.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import type { HistoryReport } from "./history_report.ts";
import { explanationLines, num, oracleByRelease } from "./history_text.ts";

const CHART_JS = fileURLToPath(
  new URL("../../node_modules/chart.js/dist/chart.umd.min.js", import.meta.url),
);

/** Escape text for HTML content and attributes. */
export function htmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/** JSON safe inside a `<script>` element. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(
    /\u2029/g,
    "\\u2029",
  );
}

let chartSource: string | undefined;

/** Chart.js's UMD build (read once). */
function chartJs(): string {
  chartSource ??= Deno.readTextFileSync(CHART_JS);
  // The bundle is inlined in a <script>: a literal `</script` inside it would end the element.
  return chartSource.replace(/<\/script/gi, "<\\/script");
}

const STATUS_CLASS: Record<string, string> = {
  PASS: "pass",
  FAIL: "fail",
  FLAKY: "flaky",
  NONE: "none",
};

const OUTCOME_CLASS = (o: string) =>
  o === "OK" ? "pass" : o === "UNCERTAIN" ? "flaky" : o === "DISABLED" ? "none" : "fail";

const CLIENT = `
(() => {
  const charts = JSON.parse(document.getElementById("rkhil-charts").textContent);
  const countPlugin = {
    id: "rkhilCount",
    afterRender(chart) {
      const meta = chart.getDatasetMeta(1);
      const a = chart.chartArea;
      const inside = meta.data.filter((p) =>
        Number.isFinite(p.x) && Number.isFinite(p.y) &&
        p.x >= a.left - 1 && p.x <= a.right + 1 && p.y >= a.top - 1 && p.y <= a.bottom + 1
      ).length;
      chart.canvas.dataset.points = String(inside);
      chart.canvas.dataset.rendered = "1";
    },
  };
  for (const c of charts) {
    const canvas = document.getElementById(c.id);
    new Chart(canvas, {
      data: {
        labels: c.releases,
        datasets: [
          { type: "bar", label: "95 % interval of the median", data: c.intervals,
            backgroundColor: "rgba(54, 110, 200, 0.25)", borderColor: "rgba(54, 110, 200, 0.8)",
            borderWidth: 1, barPercentage: 0.4 },
          { type: "line", label: "median (" + c.unit + ")", data: c.medians,
            borderColor: "rgb(200, 60, 40)", backgroundColor: "rgb(200, 60, 40)",
            pointRadius: 4, tension: 0 },
        ],
      },
      options: {
        animation: false, responsive: false,
        plugins: { title: { display: true, text: c.title } },
        scales: { y: { title: { display: true, text: c.unit } } },
      },
      plugins: [countPlugin],
    });
  }
  document.body.dataset.charts = String(charts.length);
})();
`;

/** Render the report as a self-contained HTML document. */
export function renderHistoryHtml(r: HistoryReport, opts: { title?: string } = {}): string {
  const e = htmlEscape;
  const title = opts.title ?? "rkhil history report";
  const parts: string[] = [];
  const p = (s: string) => parts.push(s);
  p(`<h1>${e(title)}</h1>`);
  p(
    `<p>${r.runs} runs, ${r.results} results, ${r.releases.length} kernel releases: ${
      ["PASS", "FAIL", "ERROR", "MISS", "SKIP", "DONE"].map((v) => `${r.counts[v] ?? 0} ${v}`)
        .join(", ")
    }.</p>`,
  );

  // Regressions first: what a reader came for.
  const excerpts: string[] = [];
  p(`<h2>Regressions and fixes</h2>`);
  if (!r.changes.length) p("<p>No test went from PASS to FAIL (or back) between two releases.</p>");
  else p("<ul>");
  for (const c of r.changes) {
    const t = c.test, tr = c.transition;
    const bad = tr.kind === "regression";
    let li = `<li class="${bad ? "fail" : "pass"}-text"><b>${
      bad ? "REGRESSION" : "FIX"
    }</b> <code>${e(t.test)}</code> (suite ${e(t.suite)}, target ${e(t.target)}): last ${
      bad ? "good" : "bad"
    } <b>${e(tr.from)}</b>, first ${bad ? "bad" : "good"} <b>${e(tr.to)}</b>`;
    if (c.reason) li += `<br>reason: ${e(c.reason.split("\n")[0])}`;
    if (c.explanation?.facts.length) {
      li += `<br>driver facts changed ${e(c.explanation.from)} → ${e(c.explanation.to)}:<ul>${
        explanationLines(c.explanation).map((l) => `<li>${e(l)}</li>`).join("")
      }</ul>`;
    }
    if (c.excerpt) {
      const id = `excerpt-${excerpts.length + 1}`;
      li += `<br><a href="#${id}">console excerpt</a>`;
      excerpts.push(
        `<h3 id="${id}">${e(t.test)} on ${e(tr.to)}: ${e(c.excerpt.file)}:${c.excerpt.line}</h3>` +
          `<pre>${e(c.excerpt.lines.join("\n"))}</pre>`,
      );
    }
    p(li + "</li>");
  }
  if (r.changes.length) p("</ul>");

  const units = r.outcomes.filter((o) => o.kind === "outcome");
  for (const board of [...new Set(units.map((u) => u.board))]) {
    const us = units.filter((u) => u.board === board);
    const rels = r.releases.filter((rel) => us.some((u) => u.cells.some((c) => c.release === rel)));
    p(`<h2>Predicted IOMMU outcomes on ${e(board)}</h2><table><tr><th>release</th>${
      us.map((u) => `<th>${e(u.unit)}</th>`).join("")
    }</tr>`);
    for (const rel of rels) {
      p(`<tr><th>${e(rel)}</th>${
        us.map((u) => {
          const o = u.cells.find((c) => c.release === rel)?.outcome;
          return o ? `<td class="${OUTCOME_CLASS(o)}">${e(o)}</td>` : "<td></td>";
        }).join("")
      }</tr>`);
    }
    p("</table>");
    const steady = us.filter((u) => !u.transitions.length && u.cells.length > 1);
    if (steady.length) {
      p(`<p>Unchanged on every release: ${
        steady.map((u) => `${e(u.unit)} ${e(u.cells[0].outcome)}`).join(", ")
      }.</p>`);
    }
    p("<ul>");
    for (
      const c of r.outcomeChanges.filter((c) =>
        c.history.board === board && c.history.kind === "outcome"
      )
    ) {
      const t = c.transition;
      p(`<li><b>${e(t.kind.toUpperCase())}</b> ${e(c.history.unit)}: ${e(t.before)} → ${
        e(t.after)
      } (last ${e(t.before)} ${e(t.from)}, first ${e(t.after)} ${e(t.to)})${
        c.explanation?.facts.length
          ? `<br>knowledge base: the change is at ${e(c.explanation.from)} → ${
            e(c.explanation.to)
          }, where<ul>${
            explanationLines(c.explanation).map((l) => `<li>${e(l)}</li>`).join("")
          }</ul>`
          : ""
      }</li>`);
    }
    p("</ul>");
  }

  const oracle = oracleByRelease(r);
  if (oracle.length) {
    p("<h2>Oracle verdicts per release</h2><table><tr><th>release</th><th>agree</th><th>disagree</th><th>uncertain</th></tr>");
    for (const [rel, a, d, u] of oracle) {
      p(`<tr><th>${e(rel)}</th><td>${a}</td><td class="${
        d ? "fail" : ""
      }">${d}</td><td>${u}</td></tr>`);
    }
    p("</table>");
  }

  p("<h2>Status matrix (release × target × suite)</h2>");
  for (const pair of [...new Set(r.tests.map((t) => `${t.target}\0${t.suite}`))]) {
    const [target, suite] = pair.split("\0");
    const ts = r.tests.filter((t) => t.target === target && t.suite === suite);
    const rels = r.releases.filter((rel) => ts.some((t) => t.cells.some((c) => c.release === rel)));
    p(`<h3>${e(target)} — suite ${e(suite)}</h3><table class="matrix"><tr><th>test</th>${
      rels.map((x) => `<th>${e(x)}</th>`).join("")
    }</tr>`);
    for (const t of ts) {
      p(`<tr><th>${e(t.test)}</th>${
        rels.map((rel) => {
          const c = t.cells.find((x) => x.release === rel);
          if (!c) return "<td></td>";
          const text = c.status === "NONE" ? Object.keys(c.counts).join("/") : c.status;
          const tip = Object.entries(c.counts).map(([v, n]) => `${n} ${v}`).join(", ") +
            (c.oracle ? `; oracle ${c.oracle}` : "");
          return `<td class="${STATUS_CLASS[c.status]}" title="${e(tip)}">${e(text)}</td>`;
        }).join("")
      }</tr>`);
    }
    p("</table>");
  }

  const charts = r.latency.map((s, i) => ({
    id: `chart-${i + 1}`,
    title: `${s.test} — ${s.name} (${s.target})`,
    unit: s.unit,
    releases: s.releases.map((x) => x.release),
    medians: s.releases.map((x) => x.interval.median),
    intervals: s.releases.map((x) => [x.interval.low, x.interval.high]),
  }));
  if (charts.length) {
    p(
      "<h2>Latency per release</h2><p>Median per release with its 95 % bootstrap interval; " +
        "judged against the previous release by a Mann-Whitney rank test and an effect floor.</p>",
    );
    r.latency.forEach((s, i) => {
      const c = charts[i];
      p(`<figure><canvas id="${c.id}" width="720" height="280" data-expected="${c.medians.length}"></canvas>`);
      p(`<table><tr><th>release</th><th>n</th><th>median</th><th>interval</th><th>change</th><th>p</th><th>judgement</th></tr>${
        s.releases.map((x) =>
          `<tr><th>${e(x.release)}</th><td>${x.interval.n}</td><td>${
            num(x.interval.median)
          }</td><td>[${num(x.interval.low)}, ${num(x.interval.high)}]</td><td>${
            x.change === undefined ? "" : `${(x.change * 100).toFixed(1)} %`
          }</td><td>${x.test ? x.test.p.toPrecision(2) : ""}</td><td class="${
            x.judgement === "slower" ? "fail" : ""
          }">${e(x.judgement)}</td></tr>`
        ).join("")
      }</table></figure>`);
    });
  }
  if (excerpts.length) p(`<h2>Console excerpts</h2>${excerpts.join("\n")}`);

  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${e(title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
td.pass { background: #d6f5d6; } td.fail { background: #f8cfcf; }
td.flaky { background: #fbeec0; } td.none { background: #eee; color: #666; }
.fail-text b { color: #b00; } .pass-text b { color: #070; }
pre { background: #f4f4f4; padding: 0.5em; overflow-x: auto; }
figure { margin: 0 0 1.5em; }
</style></head><body>
${parts.join("\n")}
<script type="application/json" id="rkhil-charts">${scriptJson(charts)}</script>
<script>/* Chart.js v4.6.1 | (c) Chart.js Contributors | MIT License | npm:chart.js */
${chartJs()}</script>
<script>${CLIENT}</script>
</body></html>
`;
}
