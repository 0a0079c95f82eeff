// Fuzzing of the JUnit and KCIDB writers (issue 13): results with any text in every field
// (names, targets, kernels, reasons: control characters, markup, quotes, surrogates, CR/LF)
// give a JUnit document that a strict XML parser reads back with the same names, counts and
// reasons (control characters dropped), and a KCIDB document that validates against the
// official v5.3 schema and keeps each result's text (NUL, which KCIDB forbids, dropped). 10 MB of results are bounded.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type Document, DOMParser } from "@xmldom/xmldom";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import fc from "fast-check";
import type { HistoryRow } from "../history/query.ts";
import { renderJUnit } from "./junit.ts";
import { renderKcidb } from "./kcidb.ts";

const SCHEMA = JSON.parse(
  Deno.readTextFileSync(fileURLToPath(new URL("./kcidb/v5.3.schema.json", import.meta.url))),
);
const ajv = new Ajv({ allErrors: true, strict: false });
(addFormats as unknown as (a: Ajv) => void)(ajv);
const validate = ajv.compile(SCHEMA);

/** What an XML 1.0 document can hold of `s`: xmlEscape drops the rest, lone surrogates become U+FFFD. */
const xmlText = (s: string) =>
  // deno-lint-ignore no-control-regex
  s.toWellFormed().replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, "");

const text = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.constantFrom(
    "<img src=x>",
    "]]>",
    "a\r\nb",
    "\ttab",
    "&amp;",
    "\"'",
    "é",
    "\u0085",
    "\ufffd",
    "\ud800 lone",
  ),
);
const VERDICTS = ["PASS", "FAIL", "ERROR", "MISS", "SKIP", "DONE"] as const;
const row = fc.record({
  test: text,
  suite: text,
  target: text,
  kernel: text,
  release: fc.option(text, { nil: null }),
  verdict: fc.constantFrom(...VERDICTS),
  reason: fc.option(text, { nil: null }),
  durationMs: fc.nat(10_000_000),
});
const rows = fc.array(row, { maxLength: 12 }).map((rs): HistoryRow[] =>
  rs.map((r, i) => ({
    ...r,
    runId: "2026-11-30T01-00-55Z-main-f34d",
    seq: i,
    releaseOrder: null,
    startedAt: new Date(Date.UTC(2026, 10, 30, 1, 0, i)).toISOString(),
  }))
);

/**
 * Parse strictly: any warning or error of the parser fails the test, but for xmldom's warning
 * on U+FFFD, a legal XML character it reports as a possible source-encoding problem (the fuzzer
 * generates it, and a kernel log's invalid UTF-8 decodes to it).
 */
function parseXml(xml: string): Document {
  return new DOMParser({
    onError: (level: string, msg: string) => {
      if (level === "warning" && /Unicode replacement character/.test(msg)) return;
      throw new Error(`XML ${level}: ${msg}`);
    },
  }).parseFromString(xml, "text/xml");
}

Deno.test("fuzz: JUnit of any results is well-formed XML that reads back names, counts and reasons", () => {
  fc.assert(
    fc.property(rows, text, (rs, runId) => {
      const doc = parseXml(renderJUnit(runId, null, rs));
      const top = doc.documentElement!;
      assert.equal(top.tagName, "testsuites");
      assert.equal(top.getAttribute("name"), xmlText(`rkhil ${runId}`));
      assert.equal(top.getAttribute("tests"), String(rs.length));
      const cases = Array.from(doc.getElementsByTagName("testcase"));
      assert.equal(cases.length, rs.length);
      // Grouped by target and kernel, in first-seen order: find each row's case by position.
      const order = [...new Set(rs.map((r) => `${r.target} ${r.release ?? r.kernel}`))];
      const sorted = order.flatMap((k) =>
        rs.filter((r) => `${r.target} ${r.release ?? r.kernel}` === k)
      );
      sorted.forEach((r, i) => {
        const c = cases[i];
        assert.equal(c.getAttribute("name"), xmlText(r.test));
        assert.equal(c.getAttribute("classname"), xmlText(r.suite));
        const tag = r.verdict === "FAIL"
          ? "failure"
          : r.verdict === "SKIP"
          ? "skipped"
          : r.verdict === "PASS" || r.verdict === "DONE"
          ? undefined
          : "error";
        const el = tag ? c.getElementsByTagName(tag)[0] : undefined;
        if (!tag) assert.equal(c.childNodes.length, 0);
        else {
          assert.ok(el, `${r.verdict} has <${tag}>`);
          const first = (r.reason ?? "").split("\n")[0];
          assert.equal(el.getAttribute("message"), xmlText(first));
          if (tag !== "skipped") assert.equal(el.textContent, xmlText(r.reason ?? ""));
        }
      });
    }),
    { numRuns: 300 },
  );
});

Deno.test("fuzz: KCIDB of any results validates against the v5.3 schema and keeps the text", () => {
  fc.assert(
    fc.property(rows, (rs) => {
      const doc = renderKcidb(rs, []);
      assert.ok(validate(doc), JSON.stringify(validate.errors?.slice(0, 3)));
      assert.equal(doc.tests.length, rs.length);
      // JSON keeps every character: the document read back is the same document.
      assert.deepEqual(JSON.parse(JSON.stringify(doc)), doc);
      rs.forEach((r, i) => {
        const t = doc.tests[i] as { misc: { test: string }; status: string; comment?: string };
        // KCIDB allows no NUL anywhere: it is dropped, everything else kept.
        const noNul = (s: string) => s.replaceAll("\0", "");
        assert.equal(t.misc.test, noNul(r.test));
        assert.equal(t.status, r.verdict);
        if (r.reason) assert.equal(t.comment, noNul(r.reason.split("\n")[0].slice(0, 1000)));
      });
    }),
    { numRuns: 300 },
  );
});

Deno.test("fuzz: 10 MB of results: JUnit and KCIDB are written and read back", () => {
  const reason = "r".repeat(1000);
  const n = Math.ceil((10 << 20) / 1000);
  const rs: HistoryRow[] = Array.from({ length: n }, (_, i) => ({
    runId: "run",
    seq: i,
    test: `t${i}`,
    suite: "s",
    target: `target-${i % 7}`,
    kernel: "debian:trixie",
    release: null,
    releaseOrder: null,
    verdict: VERDICTS[i % VERDICTS.length],
    reason,
    startedAt: new Date(0).toISOString(),
    durationMs: i,
  }));
  const xml = renderJUnit("run", null, rs);
  assert.ok(xml.length > 10 << 20);
  assert.equal(parseXml(xml).getElementsByTagName("testcase").length, n);
  const doc = renderKcidb(rs, []);
  assert.equal(doc.tests.length, n);
  assert.ok(validate(doc));
});
