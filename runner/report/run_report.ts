/**
 * The report of a run (`report.md`), rendered from its results alone (`results.jsonl`), so that
 * the end of `rkhil run`, an interrupted run and `rkhil report RUN_DIR` after a kill all give
 * the same report from the same record. One row per kernel (in the order the run met them),
 * one column per step; per predicted board, what each release's driver does; every result
 * that did not pass; the interrupt and any damaged lines; the verdict counts.
 *
 * @module
 */
import type { Outcome } from "../../oracle/types.ts";
import { UserInputError } from "../errors.ts";
import { parseResults, tally, type TestResult } from "../results/store.ts";

/** What the report is made from. */
export interface RunRecord {
  /** The results that parsed, in the order they were recorded. */
  results: readonly TestResult[];
  /** Lines of `results.jsonl` that did not parse (a write torn by a kill). */
  damagedLines: number;
}

const COLUMNS: { title: string; test: string }[] = [
  { title: "kernel facts", test: "facts" },
  { title: "running driver vs knowledge base", test: "oracle/driver" },
  { title: "oracle memory model", test: "oracle/memory" },
];

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

/** The probe validation cell: `8/8 agree`, with what did not agree counted by verdict. */
function validateCell(rs: readonly TestResult[]): string {
  if (!rs.length) return "-";
  const pass = rs.filter((r) => r.verdict === "PASS").length;
  const others = tally(rs.filter((r) => r.verdict !== "PASS"));
  const extra = Object.entries(others).filter(([, n]) => n > 0).map(([v, n]) => `${n} ${v}`);
  return `${pass}/${rs.length} agree${extra.length ? ` (${extra.join(", ")})` : ""}`;
}

/** Render `report.md` from a run's results (see the module documentation). */
export function renderRunReport(record: RunRecord): string {
  const { results } = record;
  const kernels = [...new Set(results.map((r) => r.kernel))];
  const of = (k: string, test: string) => results.find((r) => r.kernel === k && r.test === test);
  const memories = [
    ...new Set(
      results.map((r) => r.details?.memory).filter((m): m is string => typeof m === "string"),
    ),
  ];
  const out: string[] = [
    `# rkhil run: QEMU aarch64${
      memories.length ? ` (${memories.map(memoryText).join(", ")})` : ""
    } on Debian kernels`,
    "",
  ];
  const interrupted = results.find((r) => r.reason?.startsWith("interrupted"));
  if (interrupted) {
    out.push(
      `**${
        interrupted.reason?.split("\n")[0]
      }** during ${interrupted.kernel} \`${interrupted.test}\`: ` +
        "this report covers what ran before.",
      "",
    );
  }
  out.push(
    `| kernel | release | boot to ssh | ${COLUMNS.map((c) => c.title).join(" | ")} | ` +
      "probe validation |",
  );
  out.push(`|---|---|---|${COLUMNS.map(() => "---").join("|")}|---|`);
  const release = (k: string) => {
    const rel = of(k, "boot")?.details?.release;
    return typeof rel === "string" ? rel : undefined;
  };
  for (const k of kernels) {
    const boot = of(k, "boot");
    const toSsh = boot?.measurements?.find((m) => m.name === "boot to ssh")?.value ??
      boot?.measurements?.find((m) => m.name === "boot to shell")?.value;
    const bootCell = !boot
      ? "-"
      : boot.verdict === "PASS" && toSsh !== undefined && Number.isFinite(toSsh)
      ? `${toSsh.toFixed(2)} s`
      : boot.verdict;
    const validation = results.filter((r) =>
      r.kernel === k && (r.test === "validate" || r.test.startsWith("validate/"))
    );
    out.push(
      `| ${k} | ${release(k) ?? "-"} | ${bootCell} | ${
        COLUMNS.map((c) => cell(of(k, c.test))).join(" | ")
      } | ${validateCell(validation)} |`,
    );
  }
  const boards = [
    ...new Set(
      results.filter((r) => r.test.startsWith("oracle/predict ")).map((r) =>
        r.test.slice("oracle/predict ".length)
      ),
    ),
  ];
  const outcomesOf = (k: string, board: string, key: "outcomes" | "dtbOutcomes") => {
    const o = of(k, `oracle/predict ${board}`)?.details?.[key];
    return o && typeof o === "object" ? o as Record<string, Outcome> : undefined;
  };
  for (const board of boards) {
    for (
      const [title, key] of [
        [`## What each release's driver does on ${board} (board file's device tree)`, "outcomes"],
        [`## The same with the device tree each kernel package ships for ${board}`, "dtbOutcomes"],
      ] as const
    ) {
      const units = [
        ...new Set(kernels.flatMap((k) => Object.keys(outcomesOf(k, board, key) ?? {}))),
      ]
        .sort();
      if (!units.length) continue;
      out.push("", title, "");
      out.push(`| release | ${units.join(" | ")} |`, `|---|${units.map(() => "---").join("|")}|`);
      for (const k of kernels) {
        const o = outcomesOf(k, board, key);
        if (o) out.push(`| ${release(k) ?? k} | ${units.map((u) => o[u] ?? "-").join(" | ")} |`);
      }
    }
  }
  const bad = results.filter((r) => ["FAIL", "ERROR", "MISS"].includes(r.verdict));
  if (bad.length) {
    out.push("", "## Not passed", "");
    for (const r of bad) {
      out.push(`- ${r.verdict} ${r.kernel} ${r.test}: ${(r.reason ?? "").split("\n")[0]}`);
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
