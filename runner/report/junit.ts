/**
 * JUnit XML for CI systems, one document per run: a `<testsuite>` per target × kernel, one
 * `<testcase>` per step (classname = suite), FAIL as `<failure>`, ERROR and MISS as `<error>`
 * (type says which), SKIP as `<skipped>`; a failure's body carries its reason and the first
 * relevant console lines of that kernel's capture.
 *
 * @module
 */
import type { HistoryRow } from "../history/query.ts";
import { consoleExcerpt } from "./console_excerpt.ts";

/**
 * Escape text for XML content and attribute values: control characters XML 1.0 cannot hold
 * dropped, a lone UTF-16 surrogate replaced by U+FFFD (as the UTF-8 file would hold it anyway).
 */
export function xmlEscape(s: string): string {
  return s.toWellFormed()
    // deno-lint-ignore no-control-regex
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, "")
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/**
 * Escape text for an XML attribute value: as {@linkcode xmlEscape}, and the characters a
 * parser would otherwise change are character references (TAB, LF and CR become spaces by
 * attribute-value normalisation; C1 controls such as NEL are line ends to some parsers).
 */
export function xmlAttr(s: string): string {
  return xmlEscape(s).replace(/[\t\n\r\x7f-\x9f]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Element content: as {@linkcode xmlEscape}; CR and C1 controls kept as references. */
function xmlContent(s: string): string {
  return xmlEscape(s).replace(/[\r\x7f-\x9f]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The JUnit XML of one run's results (`rows` of that run, in order). `runDir` is where the
 * console captures are (null: failures carry their reason only).
 */
export function renderJUnit(
  runId: string,
  runDir: string | null,
  rows: readonly HistoryRow[],
): string {
  const groups = new Map<string, HistoryRow[]>();
  for (const r of rows) {
    const k = `${r.target} ${r.release ?? r.kernel}`;
    let g = groups.get(k);
    if (!g) groups.set(k, g = []);
    g.push(r);
  }
  const count = (rs: readonly HistoryRow[], ...v: string[]) =>
    rs.filter((r) => v.includes(r.verdict)).length;
  const secs = (rs: readonly HistoryRow[]) =>
    (rs.reduce((s, r) => s + r.durationMs, 0) / 1000).toFixed(3);
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${xmlAttr(`rkhil ${runId}`)}" tests="${rows.length}" failures="${
      count(rows, "FAIL")
    }" errors="${count(rows, "ERROR", "MISS")}" skipped="${count(rows, "SKIP")}" time="${
      secs(rows)
    }">`,
  ];
  for (const [name, rs] of groups) {
    out.push(
      `  <testsuite name="${xmlAttr(name)}" tests="${rs.length}" failures="${
        count(rs, "FAIL")
      }" errors="${count(rs, "ERROR", "MISS")}" skipped="${count(rs, "SKIP")}" time="${
        secs(rs)
      }" timestamp="${xmlAttr(rs[0].startedAt)}">`,
    );
    out.push(
      `    <properties><property name="target" value="${xmlAttr(rs[0].target)}"/>` +
        `<property name="kernel" value="${xmlAttr(rs[0].kernel)}"/>` +
        `<property name="release" value="${xmlAttr(rs[0].release ?? "")}"/></properties>`,
    );
    for (const r of rs) {
      const head = `    <testcase classname="${xmlAttr(r.suite)}" name="${xmlAttr(r.test)}" time="${
        (r.durationMs / 1000).toFixed(3)
      }"`;
      const reason = r.reason ?? "";
      const first = reason.split("\n")[0];
      if (r.verdict === "PASS" || r.verdict === "DONE") {
        out.push(`${head}/>`);
      } else if (r.verdict === "SKIP") {
        out.push(`${head}><skipped message="${xmlAttr(first)}"/></testcase>`);
      } else {
        const tag = r.verdict === "FAIL" ? "failure" : "error";
        const ex = consoleExcerpt(runDir, r.kernel, r.reason);
        const body = [reason, ...(ex ? [`console ${ex.file}:${ex.line}:`, ...ex.lines] : [])]
          .join("\n");
        out.push(
          `${head}><${tag} type="${r.verdict}" message="${xmlAttr(first)}">${
            xmlContent(body)
          }</${tag}></testcase>`,
        );
      }
    }
    out.push("  </testsuite>");
  }
  out.push("</testsuites>");
  return out.join("\n") + "\n";
}
