/**
 * The knowledge base's predictions as history records: for a board and a list of
 * knowledge-base releases, one DONE result `oracle/predict BOARD` per release on the target
 * `knowledge-base`, with the predicted outcome of each IOMMU unit in `details.outcomes` (the
 * shape `rkhil run` records). With real runs beside them, the history report places every
 * release in between on the same axis.
 *
 * @module
 */
import { findBoard } from "../../boards/load.ts";
import { boardFacts } from "../../boards/facts.ts";
import { predict } from "../../oracle/predict.ts";
import { buildScenario } from "../../oracle/scenario.ts";
import type { TestResult } from "../results/store.ts";
import type { Database } from "./sqlite.ts";
import { HistoryWriter } from "./writer.ts";

/** The target name of knowledge-base predictions. */
export const KB_TARGET = "knowledge-base";

/** One prediction result per release (oldest first), as `rkhil run` records them. */
export async function predictionResults(
  boardId: string,
  releases: readonly string[],
  startedAt = new Date().toISOString(),
): Promise<TestResult[]> {
  const loaded = await findBoard(boardId);
  const board = boardFacts(loaded.board, loaded.path);
  return releases.map((release) => {
    const p = predict(buildScenario({ board, kernel: release }));
    return {
      test: `oracle/predict ${boardId}`,
      suite: "oracle",
      target: KB_TARGET,
      kernel: `kb:${release}`,
      release,
      verdict: "DONE",
      details: {
        release,
        outcomes: Object.fromEntries(p.instances.map((i) => [i.unit, i.outcome])),
      },
      startedAt,
      durationMs: 0,
    };
  });
}

/**
 * Record the predictions for `releases` into `db` as the run `runId` (a run directory name
 * such as `2026-11-30T00-00-00Z-kb-0000`; nothing is written to disk but the database).
 * Recording the same run again adds nothing.
 */
export async function recordPredictions(
  db: Database,
  runId: string,
  boardId: string,
  releases: readonly string[],
): Promise<number> {
  const results = await predictionResults(boardId, releases);
  const w = HistoryWriter.on(db, runId, "import");
  if (w.recorded > 0) return 0;
  for (const r of results) w.record(r);
  return results.length;
}
