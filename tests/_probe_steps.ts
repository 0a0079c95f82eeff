/**
 * The steps the `probe` and `probe-boot` suites share: one step per probe scenario
 * (runner/probe/scenarios.ts) that builds the probe module for the kernel the target runs
 * (once per run), reads the kernel's memory facts, asks the oracle, runs the module through the
 * target's Command and FileTransfer protocols and compares; and the oracle's prediction from
 * the board file alone, for a target that cannot run them.
 *
 * @module
 */
import { boardFacts } from "../boards/facts.ts";
import { isKnownRelease, parseRelease } from "../oracle/releases.ts";
import { RkhilError } from "../runner/errors.ts";
import { buildProbeModule } from "../runner/probe/build.ts";
import { runProbe } from "../runner/probe/run.ts";
import {
  predictScenario,
  predictScenarioFromBoard,
  scenarioRow,
  summarise,
  type ValidateScenario,
} from "../runner/probe/scenarios.ts";
import { debianSpecOf } from "../runner/suite/debian_kernel.ts";
import { probeShellOf } from "../runner/suite/target_io.ts";
import type { PredictContext, SuiteStep } from "../runner/suite/types.ts";

function knownRelease(release: string) {
  const rel = parseRelease(release);
  if (!rel || !isKnownRelease(rel)) {
    throw new RkhilError(
      `release ${release} is not in the driver knowledge base`,
      "run a kernel the oracle knows (rkhil predict --help lists the releases)",
      "SKIP",
    );
  }
  return rel;
}

/** The step `probe/<name>` of scenario `s` (on its own boot when `s.boot` sets one). */
export function scenarioStep(s: ValidateScenario): SuiteStep {
  const own = s.boot.memory || s.boot.append;
  return {
    name: `probe/${s.name}`,
    ...(own ? { variant: { memory: s.boot.memory, append: s.boot.append } } : {}),
    run: async (ctx) => {
      const rel = knownRelease(ctx.release);
      const spec = await debianSpecOf(ctx);
      const ko = await ctx.once(
        `probe module ${spec}`,
        async () => await Deno.readFile((await buildProbeModule(spec)).ko),
      );
      const facts = await ctx.facts();
      const board = boardFacts(ctx.target.board.board, ctx.target.board.path);
      const p = predictScenario(s, board, facts, rel);
      const run = await runProbe(probeShellOf(ctx.target), ko, s.params);
      await Deno.mkdir(`${ctx.dir}/probe`, { recursive: true });
      await Deno.writeTextFile(`${ctx.dir}/probe/${s.name}.probe.txt`, run.raw);
      const row = scenarioRow(s, p, run.report);
      return {
        verdict: row.verdict === "AGREE" ? "PASS" : "FAIL",
        reason: row.why,
        details: { ...row, description: s.description, ...(own ? { boot: s.boot } : {}) },
      };
    },
  };
}

/** What the oracle predicts for `scenarios` on the target's board file and running release. */
export function predictScenarios(
  scenarios: readonly ValidateScenario[],
  ctx: PredictContext,
): Record<string, unknown> {
  const rel = parseRelease(ctx.release);
  if (!rel || !isKnownRelease(rel)) {
    return { note: `release ${ctx.release} is not in the driver knowledge base` };
  }
  const board = boardFacts(ctx.target.board.board, ctx.target.board.path);
  return {
    source: `the board file's memory (${ctx.target.board.id}) and release ${ctx.release}`,
    scenarios: Object.fromEntries(scenarios.map((s) => {
      // A memory size of its own is predicted as `mem=` on the board's banks.
      const withMem = s.boot.memory
        ? {
          ...s,
          boot: { append: [s.boot.append, `mem=${s.boot.memory}`].filter(Boolean).join(" ") },
        }
        : s;
      const p = predictScenarioFromBoard(withMem, board, rel);
      return [s.name, summarise(p.dt, p.walks)];
    })),
  };
}
