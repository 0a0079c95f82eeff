/**
 * The history report as terminal text or Markdown (one renderer, two dialects): status matrix
 * per target × suite (release columns), regressions with the last good and first bad release,
 * the driver facts that explain them and console lines, the oracle's predicted outcomes per
 * IOMMU unit with their changes, the oracle's verdicts per release and latency per release.
 *
 * @module
 */
import type { HistoryReport } from "./history_report.ts";
import type { ChangeExplanation } from "./explain_change.ts";
import type { ReleaseCell } from "./regressions.ts";

const show = (v: unknown) => typeof v === "string" ? v : JSON.stringify(v);

/** Compact number: 3 significant digits. */
export function num(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 100
    ? x.toFixed(0)
    : a >= 10
    ? x.toFixed(1)
    : a >= 1
    ? x.toFixed(2)
    : x.toPrecision(3);
}

/** One line per explaining fact. */
export function explanationLines(e: ChangeExplanation): string[] {
  return e.facts.map((f) =>
    `${f.path}: ${show(f.before)} → ${show(f.after)}` +
    `${f.commit ? ` (commit ${f.commit})` : ""} — ${f.source} [${f.confidence}]`
  );
}

function cellText(c: ReleaseCell | undefined): string {
  if (!c) return "";
  if (c.status !== "NONE") return c.status;
  const v = Object.keys(c.counts);
  return v.length === 1 ? v[0] : v.join("/");
}

/** The oracle's verdicts per release: `[release, agree, disagree, uncertain]`. */
export function oracleByRelease(r: HistoryReport): [string, number, number, number][] {
  const by = new Map<string, [number, number, number]>();
  for (const t of r.tests) {
    for (const c of t.cells) {
      if (!c.oracle) continue;
      const x = by.get(c.release) ?? [0, 0, 0];
      if (c.oracle === "AGREE") x[0]++;
      else if (c.oracle === "DISAGREE") x[1]++;
      else x[2]++;
      by.set(c.release, x);
    }
  }
  return r.releases.filter((rel) => by.has(rel)).map((rel) => [rel, ...by.get(rel)!]);
}

/** Render the report; `markdown` gives a Markdown document, else terminal text. */
export function renderHistoryText(r: HistoryReport, opts: { markdown?: boolean } = {}): string {
  const md = opts.markdown ?? false;
  const out: string[] = [];
  const h = (level: number, text: string) =>
    out.push("", md ? `${"#".repeat(level)} ${text}` : level === 1 ? text : `== ${text} ==`, "");
  const table = (head: string[], rows: string[][]) => {
    if (md) {
      out.push(`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`);
      for (const row of rows) {
        out.push(`| ${row.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`);
      }
      return;
    }
    const w = head.map((x, i) => Math.max(x.length, ...rows.map((row) => (row[i] ?? "").length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd();
    out.push(line(head), ...rows.map(line));
  };
  const f = r.filter;
  const scope = [
    f.targets?.length ? `target ${f.targets.join(", ")}` : "",
    f.suites?.length ? `suite ${f.suites.join(", ")}` : "",
    f.fromRelease ? `from ${f.fromRelease}` : "",
    f.toRelease ? `to ${f.toRelease}` : "",
    f.since ? `since ${f.since}` : "",
    f.until ? `until ${f.until}` : "",
  ].filter(Boolean).join(", ");
  out.push(md ? "# rkhil history report" : "rkhil history report");
  out.push(
    "",
    `${r.runs} run${r.runs === 1 ? "" : "s"}, ${r.results} results, ` +
      `${r.releases.length} kernel releases${scope ? ` (${scope})` : ""}: ` +
      ["PASS", "FAIL", "ERROR", "MISS", "SKIP", "DONE"].map((v) => `${r.counts[v] ?? 0} ${v}`)
        .join(", "),
  );
  if (!r.results) {
    out.push("", "Nothing in the history matches.");
    return out.join("\n");
  }

  const regressions = r.changes.filter((c) => c.transition.kind === "regression");
  h(2, `Regressions (${regressions.length})`);
  if (!regressions.length) out.push("No test went from PASS to FAIL between two releases.");
  for (const c of r.changes) {
    const t = c.test, tr = c.transition;
    const word = tr.kind === "regression" ? "REGRESSION" : "FIX";
    out.push(
      md
        ? `- **${word}** \`${t.test}\` (suite ${t.suite}, target ${t.target}): ` +
          `last ${tr.kind === "regression" ? "good" : "bad"} **${tr.from}**, first ` +
          `${tr.kind === "regression" ? "bad" : "good"} **${tr.to}**`
        : `${word} ${t.target} ${t.suite} ${t.test}: last ${
          tr.kind === "regression" ? "good" : "bad"
        } ${tr.from}, first ${tr.kind === "regression" ? "bad" : "good"} ${tr.to}`,
    );
    const ind = md ? "  " : "    ";
    if (c.reason) out.push(`${ind}${md ? "reason: " : "reason: "}${c.reason.split("\n")[0]}`);
    if (c.explanation?.facts.length) {
      out.push(`${ind}driver facts changed ${c.explanation.from} → ${c.explanation.to}:`);
      for (const l of explanationLines(c.explanation)) out.push(`${ind}${md ? "- " : "  "}${l}`);
    }
    if (c.excerpt) {
      out.push(`${ind}console (${c.excerpt.file}:${c.excerpt.line}):`);
      if (md) out.push(`${ind}\`\`\``);
      for (const l of c.excerpt.lines) out.push(`${ind}${md ? "" : "| "}${l}`);
      if (md) out.push(`${ind}\`\`\``);
    }
  }
  const flaky = r.tests.flatMap((t) =>
    t.cells.filter((c) => c.status === "FLAKY").map((c) => `${t.target} ${t.test} @ ${c.release}`)
  );
  if (flaky.length) {
    out.push(
      "",
      `Flaky (passed and failed on one release; never counted as a regression): ${
        flaky.join("; ")
      }`,
    );
  }

  const outcomeUnits = r.outcomes.filter((o) => o.kind === "outcome");
  const boards = [...new Set(outcomeUnits.map((o) => o.board))];
  for (const board of boards) {
    const units = outcomeUnits.filter((o) => o.board === board);
    const rels = r.releases.filter((rel) =>
      units.some((u) => u.cells.some((c) => c.release === rel))
    );
    h(2, `Predicted IOMMU outcomes on ${board} per release`);
    table(
      ["release", ...units.map((u) => u.unit)],
      rels.map((rel) => [
        rel,
        ...units.map((u) => u.cells.find((c) => c.release === rel)?.outcome ?? "-"),
      ]),
    );
    const steady = units.filter((u) => !u.transitions.length && u.cells.length > 1);
    if (steady.length) {
      out.push(
        "",
        `Unchanged on every release: ${
          steady.map((u) => `${u.unit} ${u.cells[0].outcome}`).join(", ")
        }.`,
      );
    }
    const ch = r.outcomeChanges.filter((c) =>
      c.history.board === board && c.history.kind === "outcome"
    );
    if (ch.length) out.push("");
    for (const c of ch) {
      const t = c.transition;
      out.push(
        `${md ? "- **" : ""}${t.kind.toUpperCase()}${
          md ? "**" : ""
        } ${c.history.unit}: ${t.before} → ${t.after} ` +
          `(last ${t.before} ${t.from}, first ${t.after} ${t.to})`,
      );
      if (c.explanation) {
        out.push(
          `${
            md ? "  " : "    "
          }knowledge base: the change is at ${c.explanation.from} → ${c.explanation.to}, where`,
        );
        for (const l of explanationLines(c.explanation)) out.push(`${md ? "  - " : "      "}${l}`);
      }
    }
  }

  const oracle = oracleByRelease(r);
  if (oracle.length) {
    h(2, "Oracle verdicts per release");
    table(
      ["release", "agree", "disagree", "uncertain"],
      oracle.map(([rel, a, d, u]) => [rel, String(a), String(d), String(u)]),
    );
  }

  const pairs = [...new Set(r.tests.map((t) => `${t.target}\0${t.suite}`))];
  for (const p of pairs) {
    const [target, suite] = p.split("\0");
    const ts = r.tests.filter((t) => t.target === target && t.suite === suite);
    const rels = r.releases.filter((rel) => ts.some((t) => t.cells.some((c) => c.release === rel)));
    h(2, `Status: ${target}, suite ${suite}`);
    table(
      ["test", ...rels],
      ts.map((
        t,
      ) => [t.test, ...rels.map((rel) => cellText(t.cells.find((c) => c.release === rel)))]),
    );
  }

  if (r.latency.length) {
    h(2, "Latency per release (median, 95 % bootstrap interval; Mann-Whitney vs previous)");
    for (const s of r.latency) {
      out.push(
        md
          ? `**${s.test} — ${s.name}** (${s.target}, ${s.unit})`
          : `${s.target} ${s.test} ${s.name} (${s.unit})`,
      );
      if (md) out.push("");
      table(
        ["release", "n", "median", "interval", "change", "p", "judgement"],
        s.releases.map((x) => [
          x.release,
          String(x.interval.n),
          num(x.interval.median),
          `[${num(x.interval.low)}, ${num(x.interval.high)}]`,
          x.change === undefined
            ? ""
            : `${x.change >= 0 ? "+" : ""}${(x.change * 100).toFixed(1)} %`,
          x.test ? x.test.p.toPrecision(2) : "",
          x.judgement,
        ]),
      );
      out.push("");
    }
  }
  return out.join("\n").trimEnd();
}
