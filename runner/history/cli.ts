/**
 * The CLI of the history: `rkhil history import RUN_DIR...` and `rkhil report` (one run's
 * report.md as before, or with `--history` the per-release report over the history in any of
 * the five formats). Every option is checked before anything is read: bad input is exit 2 with
 * one line.
 *
 * @module
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { fileURLToPath } from "node:url";
import { compareRelease, parseRelease, releaseKey, RELEASES } from "../../oracle/releases.ts";
import * as opt from "../cli/options.ts";
import { UserInputError } from "../errors.ts";
import { escapeControls, shown } from "../safe_text.ts";
import { checkPostgresUrl, isPostgresUrl } from "./postgres.ts";

/** The history's default path: `runs/history.sqlite` of this checkout. */
export const DEFAULT_DB = fileURLToPath(new URL("../../runs/history.sqlite", import.meta.url));

/** Help of every `--db` option of the history commands. */
const DB_HELP =
  "the history database: a file (default: runs/history.sqlite) or postgres://USER@HOST[:PORT]/DB";

/** Output formats of `rkhil report --history`. */
export const FORMATS = ["text", "markdown", "html", "junit", "kcidb"] as const;

/** `--from`/`--to`: a kernel release (`6.6`, `6.12.57`, `6.12.118+deb13-arm64`). */
export function releaseOption(value: string): string {
  const r = parseRelease(value);
  if (!r || r.major > 99) {
    throw new InvalidArgumentError(
      `${shown(value)} is not a kernel release: give MAJOR.MINOR[.PATCH], e.g. 6.6 or 6.12.57`,
    );
  }
  return value.trim();
}

/** `--since`/`--until`: a date or time (ISO 8601), normalised to UTC ISO. */
export function timeOption(value: string): string {
  const ok = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(
    value.trim(),
  );
  const t = Date.parse(value.trim().replace(" ", "T"));
  if (!ok || Number.isNaN(t)) {
    throw new InvalidArgumentError(
      `${shown(value)} is not a date: give YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z]`,
    );
  }
  return new Date(t).toISOString();
}

/** A name of a target, board or suite (printable, no spaces at the ends). */
function nameOption(value: string): string {
  // deno-lint-ignore no-control-regex
  if (!value.trim() || value.length > 200 || /[\x00-\x1f\x7f]/.test(value)) {
    throw new InvalidArgumentError(`${shown(value)} is not a name`);
  }
  return value.trim();
}

/** A path for the history database (its directory must be writable or creatable). */
/**
 * `--db PATH|URL`: a path whose directory can be written (the history file may not exist yet),
 * or a `postgres://` / `postgresql://` URL (the history on PostgreSQL; its shape is checked
 * here, the server when the history is opened).
 *
 * @throws {InvalidArgumentError} for a path that cannot be written or a URL that is not one.
 */
export function dbOption(value: string): string {
  if (isPostgresUrl(value)) {
    try {
      checkPostgresUrl(value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message.replace(/^--db: /, ""));
    }
    return value;
  }
  const path = opt.userPath(value);
  opt.outputDir(path.slice(0, path.lastIndexOf("/")) || "/");
  return path;
}

interface ReportOptions {
  history?: boolean;
  db?: string;
  format: (typeof FORMATS)[number];
  out?: string;
  target: string[];
  board: string[];
  suite: string[];
  from?: string;
  to?: string;
  since?: string;
  until?: string;
  run: string[];
}

/** Add `rkhil report` to the CLI. */
export function addReportCommand(program: Command): void {
  program.command("report")
    .description(
      "Rewrite RUN_DIR/report.md from RUN_DIR/results.jsonl and print it (also after a kill: " +
        "a torn last line is skipped and reported); with --history, the per-kernel-release " +
        "report over the results history (regressions, their driver facts, latency)",
    )
    .argument("[run-dir]", "a run directory (rkhil run prints it)", opt.inputDir)
    .option("--history", "report over the results history instead of one run")
    .option("--db <path>", DB_HELP, dbOption)
    .addOption(
      new Option("--format <format>", "output format").choices([...FORMATS]).default("text"),
    )
    .option("--out <path>", "write to this file (junit: this directory, one file per run)")
    .option("--target <name>", "only this target, repeatable", opt.repeatable(nameOption), [])
    .option(
      "--board <id>",
      "only this board (its target name), repeatable",
      opt.repeatable(nameOption),
      [],
    )
    .option("--suite <name>", "only this suite, repeatable", opt.repeatable(nameOption), [])
    .option("--from <release>", "oldest kernel release, e.g. 6.1", releaseOption)
    .option("--to <release>", "newest kernel release, e.g. 6.12 (its .x included)", releaseOption)
    .option("--since <date>", "results started at or after (YYYY-MM-DD[THH:MM[:SS]Z])", timeOption)
    .option("--until <date>", "results started before", timeOption)
    .option(
      "--run <id>",
      "only this run (its directory name), repeatable",
      opt.repeatable(nameOption),
      [],
    )
    .action(async (runDir: string | undefined, o: ReportOptions) => {
      const filtering = o.target.length || o.board.length || o.suite.length || o.from || o.to ||
        o.since || o.until || o.run.length || o.db;
      if (runDir && (o.history || filtering)) {
        throw new UserInputError(
          "give either RUN_DIR or --history with filters, not both",
          "rkhil report RUN_DIR, or rkhil report --history [--db PATH] [filters]",
        );
      }
      if (!runDir && !o.history) {
        throw new UserInputError(
          filtering ? "filters need --history" : "nothing to report on",
          "rkhil report RUN_DIR, or rkhil report --history [--db PATH] [filters]",
        );
      }
      if (o.from && o.to) {
        const a = parseRelease(o.from)!, b = parseRelease(o.to)!;
        if (a.major > b.major || (a.major === b.major && a.minor > b.minor)) {
          throw new UserInputError(
            `--from ${o.from} comes after --to ${o.to}`,
            "give the older release as --from and the newer one as --to",
          );
        }
      }
      if (o.since && o.until && o.since >= o.until) {
        throw new UserInputError(
          `--since ${o.since} is not before --until ${o.until}`,
          "give the earlier time as --since",
        );
      }
      const out = o.out === undefined ? undefined : opt.userPath(o.out);
      if (runDir && o.format === "text" && !out) {
        const { writeRunReport } = await import("../report/run_report.ts");
        console.log(await writeRunReport(runDir));
        return;
      }
      const { openHistory } = await import("./schema.ts");
      let db;
      if (runDir) {
        const { importRunDir } = await import("./writer.ts");
        db = openHistory(":memory:");
        importRunDir(db, runDir);
      } else {
        const path = o.db ?? DEFAULT_DB;
        if (!isPostgresUrl(path) && !(await Deno.stat(path).then(() => true, () => false))) {
          throw new UserInputError(
            `${path}: no history there`,
            "import runs first: rkhil history import RUN_DIR... (or give --db PATH)",
          );
        }
        db = openHistory(path);
      }
      try {
        const filter = {
          targets: [...o.target, ...o.board],
          suites: o.suite,
          fromRelease: o.from,
          toRelease: o.to,
          since: o.since,
          until: o.until,
          runs: o.run,
        };
        const text = await renderFormat(db, filter, o.format, out);
        if (text !== undefined) {
          if (out) await Deno.writeTextFile(out, text);
          else console.log(o.format === "text" ? escapeControls(text) : text);
        }
      } finally {
        db.close();
      }
    });
}

/** Render `format`; junit with `out` writes one file per run and returns undefined. */
async function renderFormat(
  db: import("./sqlite.ts").Database,
  filter: import("./query.ts").HistoryFilter,
  format: (typeof FORMATS)[number],
  out: string | undefined,
): Promise<string | undefined> {
  const { buildHistoryReport } = await import("../report/history_report.ts");
  if (format === "junit") {
    const { queryResults, listRuns } = await import("./query.ts");
    const { renderJUnit } = await import("../report/junit.ts");
    const rows = queryResults(db, filter);
    const runs = listRuns(db).filter((r) => rows.some((x) => x.runId === r.id));
    if (!runs.length) {
      throw new UserInputError("no run in the history matches", "widen the filters");
    }
    if (!out && runs.length > 1) {
      throw new UserInputError(
        `${runs.length} runs match and JUnit is one document per run`,
        "give --out DIR (one file per run) or --run ID",
      );
    }
    const docs = runs.map((run) => ({
      run,
      xml: renderJUnit(run.id, run.dir, rows.filter((x) => x.runId === run.id)),
    }));
    if (!out) return docs[0].xml;
    await Deno.mkdir(out, { recursive: true });
    for (const d of docs) await Deno.writeTextFile(`${out}/${d.run.id}.junit.xml`, d.xml);
    console.log(`${docs.length} JUnit file${docs.length === 1 ? "" : "s"} in ${out}`);
    return undefined;
  }
  if (format === "kcidb") {
    const { queryResults, listRuns } = await import("./query.ts");
    const { renderKcidb } = await import("../report/kcidb.ts");
    return JSON.stringify(renderKcidb(queryResults(db, filter), listRuns(db)), null, 1);
  }
  const report = await buildHistoryReport(db, filter);
  switch (format) {
    case "text":
    case "markdown": {
      const { renderHistoryText } = await import("../report/history_text.ts");
      return renderHistoryText(report, { markdown: format === "markdown" });
    }
    case "html": {
      const { renderHistoryHtml } = await import("../report/history_html.ts");
      return renderHistoryHtml(report);
    }
  }
}

/** Add `rkhil history import` to the CLI. */
export function addHistoryCommand(program: Command): void {
  const history = program.command("history").description(
    "The results history (runs/history.sqlite): import run directories, record the knowledge " +
      "base's predictions",
  );
  history.command("import")
    .description(
      "Import run directories (their results.jsonl) into the history; importing a run again " +
        "adds nothing",
    )
    .argument(
      "<run-dir...>",
      "run directories (rkhil run prints them)",
      (v: string, prev?: string[]) => [
        ...(prev ?? []),
        opt.inputDir(v),
      ],
    )
    .option("--db <path>", DB_HELP, dbOption)
    .action(async (dirs: string[], o: { db?: string }) => {
      const { openHistory } = await import("./schema.ts");
      const { importRunDir } = await import("./writer.ts");
      // Every directory must hold a results.jsonl before anything is written.
      for (const d of dirs) {
        if (!(await Deno.stat(`${d}/results.jsonl`).then((s) => s.isFile, () => false))) {
          throw new UserInputError(
            `${d}/results.jsonl does not exist`,
            "give run directories (rkhil run prints them: runs/<time>-main-<id>)",
          );
        }
      }
      const db = openHistory(o.db ?? DEFAULT_DB);
      try {
        for (const d of dirs) {
          const r = importRunDir(db, d);
          console.log(
            escapeControls(
              `${r.run}: ${r.added} added, ${r.present} already present` +
                (r.damagedLines ? `, ${r.damagedLines} damaged lines skipped` : ""),
            ),
          );
        }
      } finally {
        db.close();
      }
    });
  history.command("predict")
    .description(
      "Record the knowledge base's prediction for a board on every release from --from to --to " +
        "(target knowledge-base), so the report places each release between real runs; " +
        "recording the same range again adds nothing",
    )
    .requiredOption("--board <id>", "board id (see `rkhil boards`)", opt.builtinBoardId)
    .option("--from <release>", "first release", opt.knownRelease, "6.1")
    .option("--to <release>", "last release", opt.knownRelease, RELEASES[RELEASES.length - 1])
    .option("--db <path>", DB_HELP, dbOption)
    .action(async (o: { board: string; from: string; to: string; db?: string }) => {
      const a = parseRelease(o.from)!, b = parseRelease(o.to)!;
      if (compareRelease(a, b) > 0) {
        throw new UserInputError(
          `--from ${o.from} comes after --to ${o.to}`,
          "give the older release as --from and the newer one as --to",
        );
      }
      const releases = RELEASES.filter((r) => {
        const x = parseRelease(r)!;
        return compareRelease(x, a) >= 0 && compareRelease(x, b) <= 0;
      });
      const { openHistory } = await import("./schema.ts");
      const { recordPredictions } = await import("./predictions.ts");
      const db = openHistory(o.db ?? DEFAULT_DB);
      try {
        const run = `kb-${o.board}-${releaseKey(a)}-${releaseKey(b)}`;
        const n = await recordPredictions(db, run, o.board, releases);
        console.log(
          `${o.board}: ${n} release${n === 1 ? "" : "s"} recorded (${releases[0]} … ${
            releases[releases.length - 1]
          })${n ? "" : ", already in the history"}`,
        );
      } finally {
        db.close();
      }
    });
}
