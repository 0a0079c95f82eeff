/**
 * Oracle speed: the whole matrix (every shipped board × every release × every patch set that
 * applies) against one prediction, side by side. Goal: the matrix in under 100 ms.
 *
 *   deno bench -A bench/oracle_bench.ts            # compare in one run
 *   deno task bench:record                          # write bench/results/oracle.json
 */
import { boardFacts } from "../boards/facts.ts";
import { listBoards } from "../boards/load.ts";
import { patchNames } from "../oracle/patches.ts";
import { predict } from "../oracle/predict.ts";
import { RELEASES } from "../oracle/releases.ts";
import { buildScenario, OracleInputError, type Scenario } from "../oracle/scenario.ts";

const boards = (await listBoards()).map((b) => boardFacts(b.board, b.path));
const patchSets: string[][] = [[], ...patchNames().map((p) => [p])];

/** Every scenario of the matrix; combinations a patch does not apply to are skipped. */
function matrix(): Scenario[] {
  const out: Scenario[] = [];
  for (const board of boards) {
    for (const kernel of RELEASES) {
      for (const patches of patchSets) {
        try {
          out.push(buildScenario({ board, kernel, patches }));
        } catch (e) {
          if (!(e instanceof OracleInputError)) throw e;
        }
      }
    }
  }
  return out;
}

const scenarios = matrix();
const rock3b = boards.find((b) => b.id === "rock-3b-8g")!;
const one = buildScenario({ board: rock3b, kernel: "6.12" });

Deno.bench({
  name: `one prediction (rock-3b-8g, 6.12)`,
  group: "oracle",
  baseline: true,
  fn: () => {
    predict(one);
  },
});

Deno.bench({
  name: `whole matrix: ${scenarios.length} predictions (${boards.length} boards × ` +
    `${RELEASES.length} releases × ${patchSets.length} patch sets, applicable ones)`,
  group: "oracle",
  fn: () => {
    for (const s of scenarios) predict(s);
  },
});

Deno.bench({
  name: "whole matrix including scenario building",
  group: "oracle",
  fn: () => {
    for (const s of matrix()) predict(s);
  },
});
