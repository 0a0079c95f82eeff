/**
 * Suite `iommu`: the oracle's prediction for this target's board (its board file's facts) and
 * running kernel release, held against what the kernel log (`dmesg`) and the console show
 * (`iommu/log`): for an IOMMU predicted to work (OK, WRONG_PAGE) or disabled, no fault line of
 * its own; a fault line seen must be one the oracle expects for that IOMMU; the expected fault
 * lines themselves come with the first DMA (the workload suites). On a board with no Rockchip
 * IOMMU (qemu-virt) the oracle predicts none, and that no `rk_iommu` line shows is checked, not
 * assumed. Then, per `--predict-board` board, what this release's driver does there
 * (`oracle/predict <board>`, DONE), with the board file's device tree and with the DTB the
 * kernel's Debian package ships. On a target with `rk-iommu` (emulated IOMMUs, issue 15),
 * `iommu/emulated` runs the real driver's DMA on them and judges it (tests/_iommu_emulated.ts).
 * Needs nothing.
 *
 * @module
 */
import { boardFacts } from "../boards/facts.ts";
import { findBoard } from "../boards/load.ts";
import { stripPrintkPrefix } from "../oracle/compare.ts";
import { predict } from "../oracle/predict.ts";
import type { InstancePrediction } from "../oracle/prediction.ts";
import { isKnownRelease, parseRelease, releaseKey } from "../oracle/releases.ts";
import { buildScenario } from "../oracle/scenario.ts";
import { emulatedStep } from "./_iommu_emulated.ts";
import type { Outcome } from "../oracle/types.ts";
import { fetchKernel } from "../runner/debian/kernel.ts";
import { dtbIommuNodes } from "../runner/dtb.ts";
import { debianSpecOf } from "../runner/suite/debian_kernel.ts";
import type { StepContext, StepOutcome, Suite, SuiteStep } from "../runner/suite/types.ts";

/** Outcomes under which an IOMMU's own fault lines contradict the prediction. */
const QUIET: ReadonlySet<Outcome> = new Set(["OK", "WRONG_PAGE", "DISABLED"]);

/** The `rk_iommu` lines among kernel log lines (prefixes of the one grammar removed). */
export function rkIommuLines(lines: readonly string[]): string[] {
  return lines.map(stripPrintkPrefix).filter((l) => /\brk_iommu\b/.test(l));
}

/** What one IOMMU's lines say against its prediction. */
export interface InstanceLogCheck {
  /** Unit address (`fde4b000`). */
  unit: string;
  /** Predicted outcome. */
  outcome: Outcome;
  /** Templates of the lines the oracle expects from it (on its first DMA). */
  expected: string[];
  /** Its lines seen in the log. */
  seen: string[];
  /** The contradiction, if any. */
  problem?: string;
}

/**
 * Hold one IOMMU's prediction against the `rk_iommu` lines of the log: an IOMMU predicted
 * quiet (OK, WRONG_PAGE, DISABLED) must print no fault line; a fault line of a faulting one must
 * match an expected line.
 */
export function checkInstanceLog(
  p: InstancePrediction,
  rkLines: readonly string[],
): InstanceLogCheck {
  // dmesg and the console show the same lines: each once.
  const own = [...new Set(rkLines.filter((l) => l.includes(`${p.unit}.iommu`)))];
  const faults = own.filter((l) =>
    /Page fault|BUS_ERROR|mmu_dte_addr|Enable stall|Disable paging/.test(l)
  );
  const check: InstanceLogCheck = {
    unit: p.unit,
    outcome: p.outcome,
    expected: p.expectedLines.map((e) => e.template),
    seen: own,
  };
  if (QUIET.has(p.outcome) && faults.length) {
    check.problem = `${p.unit}: predicted ${p.outcome}, the log shows ${JSON.stringify(faults[0])}`;
  } else if (faults.length && p.expectedLines.length) {
    const res = p.expectedLines.map((e) => new RegExp(e.regex));
    const odd = faults.find((l) => !res.some((re) => re.test(l)));
    if (odd && p.outcome !== "UNCERTAIN") {
      check.problem = `${p.unit}: predicted ${p.outcome}, the log shows an unexpected line ${
        JSON.stringify(odd)
      }`;
    }
  }
  return check;
}

async function logStep(ctx: StepContext): Promise<StepOutcome> {
  const rel = parseRelease(ctx.release);
  if (!rel || !isKnownRelease(rel)) {
    return {
      verdict: "SKIP",
      reason: `release ${ctx.release} is not in the driver knowledge base`,
    };
  }
  const cmdline = (await ctx.target.command.run("cat /proc/cmdline", { timeoutMs: 20_000 })).stdout
    .trim();
  const board = boardFacts(ctx.target.board.board, ctx.target.board.path);
  const p = predict(buildScenario({ board, kernel: releaseKey(rel), bootargs: cmdline }));
  const dmesg = await ctx.target.command.run("dmesg", { timeoutMs: 30_000 });
  if (dmesg.exitStatus !== 0) {
    return { verdict: "ERROR", reason: `dmesg failed (status ${dmesg.exitStatus})` };
  }
  const lines = [
    ...dmesg.stdout.split("\n"),
    ...(ctx.target.console?.recorder.text.split("\n") ?? []),
  ];
  const rk = rkIommuLines(lines);
  const measurements = [{ name: "log lines read", value: lines.length, unit: "lines" }];
  if (!p.instances.length) {
    return {
      verdict: rk.length ? "FAIL" : "PASS",
      reason: rk.length
        ? `the oracle predicts no Rockchip IOMMU on ${board.soc}, the log shows ${
          JSON.stringify(rk[0])
        }`
        : undefined,
      measurements,
      details: {
        summary: rk.length ? "unexpected rk_iommu lines" : "no IOMMU predicted, no rk_iommu line",
        release: releaseKey(rel),
        instances: [],
        rkIommuLines: [...new Set(rk)].slice(0, 20),
      },
    };
  }
  const checks = p.instances.map((i) => checkInstanceLog(i, rk));
  const bad = checks.filter((c) => c.problem);
  return {
    verdict: bad.length ? "FAIL" : "PASS",
    reason: bad.length ? bad.map((c) => c.problem).join("; ") : undefined,
    measurements,
    details: {
      summary: bad.length
        ? `DISAGREE: ${bad.map((c) => c.unit).join(", ")}`
        : `agree (${checks.length} IOMMUs)`,
      release: releaseKey(rel),
      instances: checks,
    },
  };
}

/** The board's DTB in the kernel's Debian package, by the board's model name (e.g. ROCK 3B). */
async function packageDtb(ctx: StepContext, boardName: string, soc: string) {
  let dtbDir: string | undefined;
  try {
    dtbDir = (await fetchKernel(await debianSpecOf(ctx))).dtbDir;
  } catch {
    return undefined; // not a Debian kernel, or the package is gone: the board file's tree only
  }
  if (!dtbDir) return undefined;
  const slug = boardName.toLowerCase().replace(/radxa\s+/, "").replace(/\s+\d+\s*gb$/, "")
    .replace(/\s+/g, "-");
  const path = `${dtbDir}/rockchip/${soc}-${slug}.dtb`;
  return await Deno.stat(path).then(() => path, () => undefined);
}

function predictStep(boardId: string): SuiteStep {
  return {
    name: `oracle/predict ${boardId}`,
    run: async (ctx) => {
      const rel = parseRelease(ctx.release);
      if (!rel || !isKnownRelease(rel)) {
        return {
          verdict: "SKIP",
          reason: `release ${ctx.release} is not in the driver knowledge base`,
        };
      }
      const loaded = await findBoard(boardId);
      const board = boardFacts(loaded.board, loaded.path);
      const p = predict(buildScenario({ board, kernel: releaseKey(rel) }));
      const outcomes = Object.fromEntries(p.instances.map((i) => [i.unit, i.outcome]));
      const dtb = await packageDtb(ctx, loaded.board.name, board.soc);
      let dtbOutcomes: Record<string, Outcome> | undefined;
      if (dtb) {
        const nodes = (await dtbIommuNodes(dtb, board.soc)).nodes;
        const pd = predict(buildScenario({ board, kernel: releaseKey(rel), devicetree: nodes }));
        dtbOutcomes = Object.fromEntries(pd.instances.map((i) => [i.unit, i.outcome]));
      }
      return { verdict: "DONE", details: { release: releaseKey(rel), outcomes, dtb, dtbOutcomes } };
    },
  };
}

/** The `iommu` suite. */
export const suite: Suite = {
  name: "iommu",
  description:
    "the oracle's prediction for this board and kernel vs the rk_iommu lines of dmesg and the console; predictions per --predict-board",
  requires: [],
  steps: (ctx) => [
    { name: "iommu/log", run: logStep },
    // Emulated IOMMUs (issue 15): the real driver's DMA, judged against the oracle.
    ...(ctx.target.capabilities.has("rk-iommu") ? [emulatedStep] : []),
    ...ctx.predictBoards.map(predictStep),
  ],
};
