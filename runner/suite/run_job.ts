/**
 * `rkhil run`: suites × kernels × targets into one run directory. Every step is a result in the
 * run's one store, `runs/<time>-main-<id>/results.jsonl`, written as it happens (through
 * `runStep`); the run ends with `report.md` rendered from that record alone and a terminal
 * summary. SIGINT/SIGTERM (through {@linkcode RunJobOptions.interrupt}) records the running step
 * MISS "interrupted", powers every target off and still writes the report (exit 130).
 *
 * Results also go to the results history as they are recorded (`<runs root>/history.sqlite` by
 * default, {@linkcode RunJobOptions.history}): a history that cannot be opened or written is
 * logged once and the run goes on, `results.jsonl` keeping every result. The same history gives
 * the steps their target's own baselines (`StepContext.baseline`).
 *
 * @module
 */
import { renderRunReport } from "../report/run_report.ts";
import { parseResults, RunStore, tally, type TestResult } from "../results/store.ts";
import {
  type Interrupt,
  INTERRUPT_EXIT,
  InterruptedError,
  type InterruptSignal,
} from "../jobs/interrupt.ts";
import { baselineSamples } from "../history/baseline.ts";
import { openHistory } from "../history/schema.ts";
import { redactUrl } from "../history/postgres.ts";
import type { Database } from "../history/sqlite.ts";
import { HistoryWriter } from "../history/writer.ts";
import { errorReason } from "./run_step.ts";
import { closeOpenTargets, runSuites, type TargetPlan } from "./runner.ts";
import type { Suite } from "./types.ts";

/** Options of {@linkcode runJob}. */
export interface RunJobOptions {
  /** Targets and kernels, in order (runner/suite/plans.ts makes them). */
  plans: readonly TargetPlan[];
  /** Suites, in order. */
  suites: readonly Suite[];
  /** Boards for the `iommu` suite's `oracle/predict <board>` steps. */
  predictBoards: readonly string[];
  /** Root of run directories (default `runs`). */
  runsRoot?: string;
  /**
   * Called on an interrupt before the open targets are closed: refuse new power-ons (e.g.
   * `QemuTarget.powerOffAll`). Never throws.
   */
  shutdown?: () => Promise<void>;
  /** SIGINT/SIGTERM: the step that runs is recorded MISS "interrupted" and the run stops. */
  interrupt?: Interrupt;
  /** Progress lines (default: stdout). */
  log?: (line: string) => void;
  /**
   * The results history file the run writes as it goes (default `<runsRoot>/history.sqlite`);
   * `false`: none (`rkhil run --no-history`).
   */
  history?: string | false;
}

/**
 * The run's history writer and its database (a file, or a `postgres://` URL), or nothing when
 * `path` is false or the history cannot be opened: then one line is logged and the run goes on
 * (results.jsonl has every result; `rkhil history import` adds them later). Also the farm's.
 */
export function openRunHistory(
  path: string | false,
  dir: string,
  log: (line: string) => void,
): { db: Database; writer: HistoryWriter } | undefined {
  if (path === false) return undefined;
  let db: Database | undefined;
  try {
    db = openHistory(path);
    return { db, writer: HistoryWriter.on(db, dir, "live") };
  } catch (err) {
    try {
      db?.close();
    } catch { /* already closed */ }
    log(
      `rkhil run: no results history this run (${redactUrl(path)}: ${
        errorReason(err).split("\n")[0].slice(0, 200)
      }); results.jsonl has every result (rkhil history import ${dir} adds them later)`,
    );
    return undefined;
  }
}

/** What {@linkcode runJob} did. */
export interface RunJobResult {
  /** The run directory. */
  dir: string;
  /** Every result recorded, in order. */
  results: TestResult[];
  /** 0 when nothing failed, errored or went missing; 130 when interrupted; else 1. */
  exitCode: number;
  /** The signal that stopped the run, if one did. */
  interrupted?: InterruptSignal;
}

/**
 * Run the job (see the module documentation). Every result is on disk before the next step
 * starts; `report.md` is written at the end, also when interrupted or when a bug of rkhil's
 * throws (then the error is rethrown after the report).
 */
export async function runJob(opts: RunJobOptions): Promise<RunJobResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const dir = RunStore.newDir(opts.runsRoot ?? "runs", "main");
  const store = await RunStore.open(dir);
  log(`rkhil run: results in ${dir}`);
  const history = openRunHistory(
    opts.history ?? `${opts.runsRoot ?? "runs"}/history.sqlite`,
    dir,
    log,
  );
  const runId = history?.writer.run.id;
  let interrupted: InterruptSignal | undefined;
  const writeReport = async () => {
    const record = parseResults(await Deno.readTextFile(`${dir}/results.jsonl`));
    const report = renderRunReport(record);
    await Deno.writeTextFile(`${dir}/report.md`, report + "\n");
    return { record, report };
  };
  try {
    await runSuites({
      store,
      dir,
      suites: opts.suites,
      plans: opts.plans,
      predictBoards: opts.predictBoards,
      interrupt: opts.interrupt,
      log,
      history: history?.writer,
      baseline: history && runId ? (q) => baselineSamples(history.db, { ...q, runId }) : undefined,
    });
  } catch (err) {
    if (!(err instanceof InterruptedError)) {
      // A bug of ours: the record so far still gets its report.
      store.close();
      await closeOpenTargets();
      await writeReport().catch(() => {});
      throw err;
    }
    interrupted = err.signal;
    log(`\ninterrupted (${err.signal}): powering the targets off`);
    await opts.shutdown?.().catch(() => {});
    await closeOpenTargets();
  } finally {
    store.close();
    try {
      history?.db.close();
    } catch { /* closed already */ }
  }
  const { record, report } = await writeReport();
  const t = tally(record.results);
  log("");
  log(report);
  log(
    `${t.PASS} PASS, ${t.DONE} DONE, ${t.FAIL} FAIL, ${t.ERROR} ERROR, ${t.MISS} MISS, ` +
      `${t.SKIP} SKIP — report: ${dir}/report.md`,
  );
  return {
    dir,
    results: record.results,
    exitCode: interrupted ? INTERRUPT_EXIT : t.FAIL + t.ERROR + t.MISS > 0 ? 1 : 0,
    interrupted,
  };
}
