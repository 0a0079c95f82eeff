// Fuzzing of the probe report parser (issue 13) beyond report_test.ts (random text and line
// edits never crash it): 10 MB inputs (real reports repeated, console noise, one long line),
// each parsed or refused with ProbeReportError, never anything else.
import assert from "node:assert/strict";
import { parseProbeReports, ProbeReportError } from "./report.ts";

const MB10 = 10 << 20;
const td = (name: string) => Deno.readTextFileSync(new URL(`./testdata/${name}`, import.meta.url));

/** Parsed reports, or the parser's own error; anything else fails the test. */
function parseOrRefuse(text: string): number | ProbeReportError {
  try {
    return parseProbeReports(text).length;
  } catch (e) {
    if (!(e instanceof ProbeReportError)) throw e;
    return e;
  }
}

Deno.test("fuzz: probe reports of 10 MB: real reports repeated parse, one per repetition", () => {
  const one = td("bounce-6.12.probe.txt");
  const n1 = parseProbeReports(one).length;
  assert.ok(n1 >= 1);
  const reps = Math.ceil(MB10 / one.length);
  assert.equal(parseOrRefuse(one.repeat(reps)), n1 * reps);
});

Deno.test("fuzz: 10 MB of noise, a 10 MB report line, a report cut at 10 MB: refused or parsed", () => {
  const one = td("6.1-v2-none-mask32.txt");
  const lines = one.split("\n");
  const mark = lines.find((l) => l.includes("rkprobe") || l.length > 0)!;
  for (
    const text of [
      "x".repeat(MB10),
      mark + "y".repeat(MB10),
      one.repeat(Math.ceil(MB10 / one.length)).slice(0, MB10 - 7),
      (mark + "\n").repeat(Math.ceil(MB10 / (mark.length + 1))),
      "\n".repeat(MB10),
    ]
  ) {
    const r = parseOrRefuse(text);
    if (typeof r === "number") assert.ok(r <= text.split("\n").length);
    else assert.match(r.message, /line \d+|report/);
  }
});
