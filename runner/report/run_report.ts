/**
 * The report of a run (`report.md`), rendered from its results alone (`results.jsonl`), so that
 * the end of `rkhil run`, an interrupted run and `rkhil report RUN_DIR` after a kill all give
 * the same report from the same record. Grouped by target: per target a table with one row per
 * kernel (in the order the run met them) and a column per suite (the driver suite's steps each
 * get theirs); per predicted board, what each release's driver does; the suites a target
 * SKIPped and why; the NPU workloads per kernel and backend (runner/report/workload_report.ts);
 * every result that did not pass; the interrupt and any damaged lines; the
 * verdict counts. Records of older runs (no `suite` field) are read too.
 *
 * @module
 */
import type { Outcome } from "../../oracle/types.ts";
import { UserInputError } from "../errors.ts";
import { parseResults, tally, type TestResult } from "../results/store.ts";
import { renderWorkloadSection } from "./workload_report.ts";
import { renderEmulatedSection } from "../rkiommu/table.ts";

/** What the report is made from. */
export interface RunRecord {
  /** The results that parsed, in the order they were recorded. */
  results: readonly TestResult[];
  /** Lines of `results.jsonl` that did not parse (a write torn by a kill). */
  damagedLines: number;
}

/** Columns showing one step's summary. */
const STEP_COLUMNS: { title: string; test: string }[] = [
  { title: "kernel facts", test: "facts" },
  { title: "running driver vs knowledge base", test: "oracle/driver" },
  { title: "oracle memory model", test: "oracle/memory" },
  { title: "IOMMU log vs oracle", test: "iommu/log" },
];

/** Columns counting a suite's steps that agreed. */
const SUITE_COLUMNS: { title: string; suite: string }[] = [
  { title: "kernel and console", suite: "boot" },
  { title: "probe", suite: "probe" },
  { title: "probe (own boots)", suite: "probe-boot" },
];

/** The suite of a result: its field, or (older records) from its test name. */
export function suiteOf(r: TestResult): string {
  if (r.suite) return r.suite;
  if (r.test === "validate" || r.test.startsWith("validate/")) return "probe";
  if (r.test.startsWith("oracle/predict")) return "iommu";
  if (r.test === "boot") return "boot";
  return "driver";
}

/**
 * The text a step's cell shows: its summary (`details.summary`), or its verdict when it has none
 * or did not run (MISS, ERROR: a summary of a half-run step would mislead).
 */
function cell(r: TestResult | undefined): string {
  if (!r) return "-";
  const summary = r.details?.summary;
  if (r.verdict === "MISS" || r.verdict === "ERROR" || typeof summary !== "string") {
    return r.verdict;
  }
  return summary;
}

/** `8G` → `8 GiB`; other spellings as given. */
function memoryText(mem: string): string {
  const m = /^(\d+)([MGT])$/i.exec(mem);
  return m ? `${m[1]} ${m[2].toUpperCase()}iB` : mem;
}

/**
 * A suite's cell: `SKIP` for a suite skipped as a whole, else `5/5 agree`, with what did not
 * agree counted by verdict (the boot step itself is not counted in `boot`).
 */
function suiteCell(rs: readonly TestResult[]): string {
  if (!rs.length) return "-";
  if (rs.length === 1 && rs[0].verdict === "SKIP" && rs[0].test === rs[0].suite) return "SKIP";
  const pass = rs.filter((r) => r.verdict === "PASS").length;
  const others = tally(rs.filter((r) => r.verdict !== "PASS"));
  const extra = Object.entries(others).filter(([, n]) => n > 0).map(([v, n]) => `${n} ${v}`);
  return `${pass}/${rs.length} agree${extra.length ? ` (${extra.join(", ")})` : ""}`;
}

/** Escape a value for a Markdown table cell. */
function md(s: string): string {
  return s.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/** Render `report.md` from a run's results (see the module documentation). */
export function renderRunReport(record: RunRecord): string {
  const { results } = record;
  const targets = [...new Set(results.map((r) => r.target))];
  const memories = [
    ...new Set(
      results.map((r) => r.details?.memory).filter((m): m is string => typeof m === "string"),
    ),
  ];
  const out: string[] = [
    `# rkhil run: ${targets.length ? targets.map(md).join(", ") : "no target"}${
      memories.length ? ` (${memories.map(memoryText).join(", ")})` : ""
    }`,
    "",
  ];
  const interrupted = results.find((r) => r.reason?.startsWith("interrupted"));
  if (interrupted) {
    out.push(
      `**${interrupted.reason?.split("\n")[0]}** during ${md(interrupted.target)} ${
        md(interrupted.kernel)
      } \`${interrupted.test}\`: this report covers what ran before.`,
      "",
    );
  }
  const releaseOf = (rs: readonly TestResult[]) => {
    const rel = rs.find((r) => r.test === "boot")?.details?.release ??
      rs.find((r) => typeof r.release === "string")?.release;
    return typeof rel === "string" ? rel : undefined;
  };
  /** (target, kernel) pairs in order, with their results. */
  const groups: { target: string; kernel: string; rs: TestResult[] }[] = [];
  for (const r of results) {
    let g = groups.find((x) => x.target === r.target && x.kernel === r.kernel);
    if (!g) groups.push(g = { target: r.target, kernel: r.kernel, rs: [] });
    g.rs.push(r);
  }
  for (const target of targets) {
    out.push(`## ${md(target)}`, "");
    out.push(
      `| kernel | release | boot to ssh | ${SUITE_COLUMNS[0].title} | ${
        STEP_COLUMNS.map((c) => c.title).join(" | ")
      } | ${SUITE_COLUMNS.slice(1).map((c) => c.title).join(" | ")} |`,
    );
    out.push(`|${Array(3 + SUITE_COLUMNS.length + STEP_COLUMNS.length).fill("---").join("|")}|`);
    for (const g of groups.filter((x) => x.target === target)) {
      const of = (test: string) => g.rs.find((r) => r.test === test);
      const boot = of("boot");
      const toSsh = boot?.measurements?.find((m) => m.name === "boot to ssh")?.value ??
        boot?.measurements?.find((m) => m.name === "boot to shell")?.value;
      const bootCell = !boot
        ? "-"
        : boot.verdict === "PASS" && toSsh !== undefined && Number.isFinite(toSsh)
        ? `${toSsh.toFixed(2)} s`
        : boot.verdict;
      const suiteRs = (suite: string) =>
        g.rs.filter((r) => suiteOf(r) === suite && r.test !== "boot");
      out.push(
        `| ${md(g.kernel)} | ${md(releaseOf(g.rs) ?? "-")} | ${bootCell} | ${
          suiteCell(suiteRs("boot"))
        } | ${STEP_COLUMNS.map((c) => md(cell(of(c.test)))).join(" | ")} | ${
          SUITE_COLUMNS.slice(1).map((c) => suiteCell(suiteRs(c.suite))).join(" | ")
        } |`,
      );
    }
    out.push("");
  }
  if (out[out.length - 1] === "") out.pop();
  const workloads = renderWorkloadSection(results);
  if (workloads.length) out.push("", ...workloads);
  // The real driver on emulated IOMMUs: release × scenario × instance (issue 15).
  const emulated = renderEmulatedSection(results);
  if (emulated.length) out.push("", ...emulated);
  const boards = [
    ...new Set(
      results.filter((r) => r.test.startsWith("oracle/predict ")).map((r) =>
        r.test.slice("oracle/predict ".length)
      ),
    ),
  ];
  const outcomesOf = (rs: readonly TestResult[], board: string, key: string) => {
    const o = rs.find((r) => r.test === `oracle/predict ${board}`)?.details?.[key];
    return o && typeof o === "object" && !Array.isArray(o)
      ? o as Record<string, Outcome>
      : undefined;
  };
  for (const board of boards) {
    for (
      const [title, key] of [
        [`## What each release's driver does on ${board} (board file's device tree)`, "outcomes"],
        [`## The same with the device tree each kernel package ships for ${board}`, "dtbOutcomes"],
      ] as const
    ) {
      const units = [
        ...new Set(groups.flatMap((g) => Object.keys(outcomesOf(g.rs, board, key) ?? {}))),
      ].sort();
      if (!units.length) continue;
      out.push("", title, "");
      out.push(`| release | ${units.join(" | ")} |`, `|---|${units.map(() => "---").join("|")}|`);
      const seen = new Set<string>();
      for (const g of groups) {
        const o = outcomesOf(g.rs, board, key);
        const rel = releaseOf(g.rs) ?? g.kernel;
        // The same release on several targets predicts the same: one row.
        if (!o || seen.has(rel)) continue;
        seen.add(rel);
        out.push(`| ${md(rel)} | ${units.map((u) => md(String(o[u] ?? "-"))).join(" | ")} |`);
      }
    }
  }
  const skipped = results.filter((r) => r.verdict === "SKIP" && r.test === r.suite);
  if (skipped.length) {
    out.push("", "## Suites skipped", "");
    for (const r of skipped) {
      out.push(
        `- SKIP ${md(r.target)} ${md(r.kernel)} ${r.test}: ${(r.reason ?? "").split("\n")[0]}`,
      );
    }
  }
  const bad = results.filter((r) => ["FAIL", "ERROR", "MISS"].includes(r.verdict));
  if (bad.length) {
    out.push("", "## Not passed", "");
    for (const r of bad) {
      out.push(
        `- ${r.verdict} ${md(r.target)} ${md(r.kernel)} ${r.test}: ${
          (r.reason ?? "").split("\n")[0]
        }`,
      );
    }
  }
  if (record.damagedLines) {
    out.push(
      "",
      `${record.damagedLines} damaged line${
        record.damagedLines === 1 ? "" : "s"
      } of results.jsonl skipped (a write torn by a kill): the results before ${
        record.damagedLines === 1 ? "it" : "them"
      } are complete.`,
    );
  }
  const t = tally(results);
  out.push(
    "",
    `${t.PASS} PASS, ${t.DONE} DONE, ${t.FAIL} FAIL, ${t.ERROR} ERROR, ${t.MISS} MISS, ${t.SKIP} SKIP`,
  );
  return out.join("\n");
}

/**
 * `rkhil report RUN_DIR`: read `RUN_DIR/results.jsonl` (a torn last line is counted, never
 * fatal), write `RUN_DIR/report.md` and return its text.
 *
 * @throws {UserInputError} when `RUN_DIR` has no readable `results.jsonl`, or one in which no
 *   line is an rkhil result (another program's file).
 */
export async function writeRunReport(runDir: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${runDir}/results.jsonl`);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? "does not exist" : (err as Error).message;
    throw new UserInputError(
      `${runDir}/results.jsonl: ${why.slice(0, 200)}`,
      "give the directory of a run (rkhil run prints it: runs/<time>-main-<id>)",
    );
  }
  const record = parseResults(text);
  if (record.results.length === 0 && record.damagedLines > 0) {
    throw new UserInputError(
      `${runDir}/results.jsonl holds no rkhil result (${record.damagedLines} line${
        record.damagedLines === 1 ? "" : "s"
      } of something else); report.md left as it was`,
      "give the directory of a run (rkhil run prints it: runs/<time>-main-<id>)",
    );
  }
  const report = renderRunReport(record);
  await Deno.writeTextFile(`${runDir}/report.md`, report + "\n");
  return report;
}
