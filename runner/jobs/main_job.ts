/**
 * The main job (`rkhil run`): for each kernel under test, boot the default embedded target (a
 * QEMU aarch64 guest with 8 GiB, like a ROCK 3B 8 GB) on the real Debian kernel, reach it over
 * SSH with a pinned host key (one `boot` result), read the kernel's facts, hold the oracle's memory model against
 * them, and say what that kernel release's driver does on the boards the oracle knows. Every
 * step is a result in `runs/<id>/results.jsonl`, written as it happens; the run ends with a
 * per-release report (`report.md`) and a terminal summary.
 *
 * @module
 */
import { boardFacts } from "../../boards/facts.ts";
import { findBoard } from "../../boards/load.ts";
import { predict } from "../../oracle/predict.ts";
import { isKnownRelease, mainlineFacts, parseRelease, releaseKey } from "../../oracle/releases.ts";
import { compareDriverWithKb, introspectDriver } from "../introspect/driver.ts";
import { buildScenario } from "../../oracle/scenario.ts";
import type { Outcome } from "../../oracle/types.ts";
import { dtbIommuNodes } from "../dtb.ts";
import { describeError, InfraError, RkhilError, type Verdict } from "../errors.ts";
import {
  collectKernelFacts,
  compareWithModel,
  type KernelFacts,
  predictMemory,
} from "../facts/collect.ts";
import type { QemuTarget } from "../qemu/target.ts";
import { parseResults, RunStore, tally, type TestResult } from "../results/store.ts";
import { bootGuest, type Guest } from "./guest.ts";
import { runValidate } from "./validate.ts";

/** The kernels the main job runs by default: 6.1, 6.12 and 7.x from Debian. */
export const DEFAULT_KERNELS: readonly string[] = [
  "debian:bookworm",
  "debian:trixie",
  "debian:trixie-backports",
];

/** Options of {@link runMainJob}. */
export interface MainJobOptions {
  kernels: readonly string[];
  /** Guest memory (QEMU syntax), default 8G. */
  memory?: string;
  /** Boards whose outcome each release's driver is predicted for. */
  predictBoards: readonly string[];
  /** Root of run directories (default `runs`). */
  runsRoot?: string;
  /** Run the probe-module validation scenarios (default true). */
  validate?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What one kernel gave, for the report. */
interface KernelRow {
  spec: string;
  release?: string;
  bootSeconds?: number;
  facts?: string;
  memory?: string;
  /** Probe validation: "8/8 agree", or the verdict that stopped it. */
  validate?: string;
  /** Introspected driver against the knowledge base. */
  driver?: string;
  /** Per predicted board: outcome per IOMMU unit with the board file's device tree. */
  outcomes: Record<string, Record<string, Outcome>>;
  /** The same with the device tree the kernel package ships for that board, if any. */
  dtbOutcomes: Record<string, Record<string, Outcome>>;
}

/** Result of the main job. */
export interface MainJobResult {
  dir: string;
  results: TestResult[];
  /** 0 when nothing failed, errored or went missing. */
  exitCode: number;
}

/** Run the main job. */
export async function runMainJob(opts: MainJobOptions): Promise<MainJobResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const dir = RunStore.newDir(opts.runsRoot ?? "runs", "main");
  const store = await RunStore.open(dir);
  log(`rkhil run: results in ${dir}`);
  const rows: KernelRow[] = [];
  try {
    for (const spec of opts.kernels) rows.push(await runKernel(spec, opts, store, dir, log));
  } finally {
    store.close();
  }
  const { results } = parseResults(await Deno.readTextFile(`${dir}/results.jsonl`));
  const report = renderReport(rows, results, opts);
  await Deno.writeTextFile(`${dir}/report.md`, report);
  const t = tally(results);
  log("");
  log(report);
  log(
    `${t.PASS} PASS, ${t.DONE} DONE, ${t.FAIL} FAIL, ${t.ERROR} ERROR, ${t.MISS} MISS, ` +
      `${t.SKIP} SKIP — report: ${dir}/report.md`,
  );
  return { dir, results, exitCode: t.FAIL + t.ERROR + t.MISS > 0 ? 1 : 0 };
}

type Step = (
  row: KernelRow,
) => Promise<Omit<TestResult, "test" | "target" | "kernel" | "startedAt" | "durationMs">>;

async function step(
  store: RunStore,
  log: (l: string) => void,
  test: string,
  kernel: string,
  row: KernelRow,
  fn: Step,
  guest?: Guest,
): Promise<TestResult> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const faultsBefore = guest?.faults.length ?? 0;
  let r: Omit<TestResult, "test" | "target" | "kernel" | "startedAt" | "durationMs">;
  try {
    r = await fn(row);
  } catch (err) {
    const verdict: Verdict = err instanceof RkhilError ? err.verdict : "ERROR";
    r = { verdict, reason: describeError(err).replace(/^error: /, "") };
  }
  // A kernel crash while the step ran is the kernel's failure, whatever the step saw.
  const fault = guest?.faults[faultsBefore];
  if (fault) r = { ...r, verdict: "FAIL", reason: `kernel ${fault.kind}: ${fault.reason}` };
  const result: TestResult = {
    test,
    target: "qemu-virt-8g",
    kernel,
    startedAt,
    durationMs: Math.round(performance.now() - t0),
    ...r,
  };
  await store.record(result);
  log(
    `  ${result.verdict.padEnd(5)} ${test}${
      result.reason ? `: ${result.reason.split("\n")[0]}` : ""
    }`,
  );
  return result;
}

async function runKernel(
  spec: string,
  opts: MainJobOptions,
  store: RunStore,
  dir: string,
  log: (l: string) => void,
): Promise<KernelRow> {
  const row: KernelRow = { spec, outcomes: {}, dtbOutcomes: {} };
  log(`\n${spec}`);
  const booted = await runOnGuest(spec, row, opts, store, dir, log);
  if (booted && opts.validate !== false) await runValidation(spec, row, opts, store, dir, log);
  return row;
}

/** The probe scenarios of `rkhil validate`, each a result of the main job too. */
async function runValidation(
  spec: string,
  row: KernelRow,
  opts: MainJobOptions,
  store: RunStore,
  dir: string,
  log: (l: string) => void,
): Promise<void> {
  try {
    const v = await runValidate({
      kernel: spec,
      memory: opts.memory,
      runsRoot: `${dir}/${spec.replace(/[^a-z0-9.+-]/gi, "_")}`,
      log: () => {},
    });
    const { results } = parseResults(await Deno.readTextFile(`${v.dir}/results.jsonl`));
    for (const r of results) {
      await store.record(r);
      log(`  ${r.verdict.padEnd(5)} ${r.test}${r.reason ? `: ${r.reason}` : ""}`);
    }
    const agree = v.rows.filter((r) => r.verdict === "AGREE").length;
    row.validate = `${agree}/${v.rows.length} agree`;
  } catch (err) {
    const r: TestResult = {
      test: "validate",
      target: "qemu-virt-8g",
      kernel: spec,
      verdict: err instanceof RkhilError ? err.verdict : "ERROR",
      reason: describeError(err).replace(/^error: /, ""),
      startedAt: new Date().toISOString(),
      durationMs: 0,
    };
    await store.record(r);
    log(`  ${r.verdict.padEnd(5)} validate: ${r.reason}`);
    row.validate = r.verdict;
  }
}

/** Boot, SSH, facts, the memory model and the predictions on one guest; false if no boot. */
async function runOnGuest(
  spec: string,
  row: KernelRow,
  opts: MainJobOptions,
  store: RunStore,
  dir: string,
  log: (l: string) => void,
): Promise<boolean> {
  const kernelDir = `${dir}/${spec.replace(/[^a-z0-9.+-]/gi, "_")}`;
  let guest: Guest | undefined;
  let facts: KernelFacts | undefined;
  try {
    const boot = await step(store, log, "boot", spec, row, async () => {
      guest = await bootGuest({ kernel: spec, runDir: kernelDir, memory: opts.memory });
      row.release = guest.target.kernel.release;
      row.bootSeconds = guest.bootSeconds.ssh ?? guest.bootSeconds.shell;
      return {
        verdict: "PASS",
        measurements: [
          { name: "boot to shell", value: guest.bootSeconds.shell ?? NaN, unit: "s" },
          { name: "boot to ssh", value: guest.bootSeconds.ssh ?? NaN, unit: "s" },
          { name: "ssh connect", value: guest.ssh.connectMs, unit: "ms" },
        ],
        details: { release: guest.target.kernel.release },
      };
    });
    if (boot.verdict !== "PASS" || !guest) return false;
    const t = guest.target;
    const g = guest;

    await step(store, log, "facts", spec, row, async () => {
      facts = await collectKernelFacts(
        g.run,
        { target: `qemu ${t.kernel.release}` },
      );
      const have = Object.entries(facts).filter(([k, v]) =>
        v && typeof v === "object" && "provenance" in v && k
      ).length;
      row.facts = `${have} facts, ${facts.missing.length} missing`;
      return {
        verdict: facts.release ? "PASS" : "ERROR",
        reason: facts.release ? undefined : "the kernel release could not be read",
        details: {
          missing: facts.missing,
          problems: facts.problems,
          zones: facts.zones?.value,
          swiotlb: facts.swiotlb?.value,
          cmdline: facts.cmdline?.value.raw,
        },
      };
    }, g);

    await step(store, log, "oracle/driver", spec, row, async () => {
      const rel = parseRelease(t.kernel.release);
      if (!rel || !isKnownRelease(rel)) {
        return {
          verdict: "SKIP",
          reason: `release ${t.kernel.release} is not in the driver knowledge base`,
        };
      }
      const intro = await introspectDriver(g.run);
      const c = compareDriverWithKb(intro, mainlineFacts(rel));
      row.driver = c.findings.length
        ? `DISAGREE: ${c.findings.map((f) => f.fact).join(", ")}`
        : `agree (${c.agreed.length} facts)`;
      return {
        verdict: c.findings.length ? "FAIL" : "PASS",
        reason: c.findings.length
          ? `the running driver differs from the knowledge base: ${
            c.findings.map((f) =>
              `${f.compatible ? `${f.compatible} ` : ""}${f.fact}: kernel ${
                JSON.stringify(f.measured)
              }, ` +
              `knowledge base ${JSON.stringify(f.kb)}`
            ).join("; ")
          }`
          : undefined,
        details: { agreed: c.agreed, findings: c.findings },
      };
    }, g);

    await step(store, log, "oracle/memory", spec, row, () => {
      if (!facts) throw new InfraError("no kernel facts", "see the facts result");
      const p = predictMemory(facts);
      if (!p.ok) {
        row.memory = "inconclusive";
        return Promise.resolve({ verdict: "SKIP" as const, reason: p.reason });
      }
      const c = compareWithModel(facts, p.summary);
      row.memory = c.findings.length
        ? `DISAGREE: ${c.findings.map((f) => f.fact).join(", ")}`
        : `agree (${c.agreed.length} facts)`;
      return Promise.resolve({
        verdict: c.findings.length ? "FAIL" as const : "PASS" as const,
        reason: c.findings.length
          ? `the oracle's memory model disagrees with the kernel: ${
            c.findings.map((f) =>
              `${f.fact} predicted ${JSON.stringify(f.predicted)}, ` +
              `measured ${JSON.stringify(f.measured)}`
            ).join("; ")
          }`
          : undefined,
        details: { ...c, assumptions: p.assumptions },
      });
    }, g);

    for (const boardId of opts.predictBoards) {
      await step(store, log, `oracle/predict ${boardId}`, spec, row, async () => {
        const rel = parseRelease(t.kernel.release);
        if (!rel || !isKnownRelease(rel)) {
          return {
            verdict: "SKIP",
            reason: `release ${t.kernel.release} is not in the driver knowledge base`,
          };
        }
        const loaded = await findBoard(boardId);
        const board = boardFacts(loaded.board, loaded.path);
        const p = predict(buildScenario({ board, kernel: releaseKey(rel) }));
        row.outcomes[boardId] = Object.fromEntries(p.instances.map((i) => [i.unit, i.outcome]));
        // The same release's own device tree for that board, when the package ships one.
        const dtb = await kernelDtbFor(t, loaded.board.name, board.soc);
        if (dtb) {
          const nodes = (await dtbIommuNodes(dtb, board.soc)).nodes;
          const pd = predict(buildScenario({ board, kernel: releaseKey(rel), devicetree: nodes }));
          row.dtbOutcomes[boardId] = Object.fromEntries(
            pd.instances.map((i) => [i.unit, i.outcome]),
          );
        }
        return {
          verdict: "DONE",
          details: {
            release: releaseKey(rel),
            outcomes: row.outcomes[boardId],
            dtb,
            dtbOutcomes: row.dtbOutcomes[boardId],
          },
        };
      }, g);
    }
  } finally {
    await guest?.close();
  }
  return true;
}

/** The board's DTB in the kernel package, found by the board's model name (e.g. ROCK 3B). */
async function kernelDtbFor(
  t: QemuTarget,
  boardName: string,
  soc: string,
): Promise<string | undefined> {
  const dir = t.kernel.dtbDir ? `${t.kernel.dtbDir}/rockchip` : undefined;
  if (!dir) return undefined;
  const slug = boardName.toLowerCase().replace(/radxa\s+/, "").replace(/\s+\d+\s*gb$/, "")
    .replace(/\s+/g, "-");
  const want = `${soc}-${slug}.dtb`;
  try {
    await Deno.stat(`${dir}/${want}`);
    return `${dir}/${want}`;
  } catch {
    return undefined;
  }
}

function renderReport(rows: KernelRow[], results: TestResult[], opts: MainJobOptions): string {
  const t = tally(results);
  const out: string[] = ["# rkhil run: QEMU aarch64 (8 GiB) on Debian kernels", ""];
  out.push(
    "| kernel | release | boot to ssh | kernel facts | running driver vs knowledge base | " +
      "oracle memory model | probe validation |",
  );
  out.push("|---|---|---|---|---|---|---|");
  for (const r of rows) {
    out.push(
      `| ${r.spec} | ${r.release ?? "-"} | ${
        r.bootSeconds !== undefined ? `${r.bootSeconds.toFixed(2)} s` : "-"
      } | ${r.facts ?? "-"} | ${r.driver ?? "-"} | ${r.memory ?? "-"} | ${r.validate ?? "-"} |`,
    );
  }
  const table = (title: string, pick: (r: KernelRow) => Record<string, Outcome> | undefined) => {
    const units = [...new Set(rows.flatMap((r) => Object.keys(pick(r) ?? {})))].sort();
    if (!units.length) return;
    out.push("", title, "");
    out.push(`| release | ${units.join(" | ")} |`, `|---|${units.map(() => "---").join("|")}|`);
    for (const r of rows) {
      const o = pick(r);
      if (o) out.push(`| ${r.release ?? r.spec} | ${units.map((u) => o[u] ?? "-").join(" | ")} |`);
    }
  };
  for (const board of opts.predictBoards) {
    table(
      `## What each release's driver does on ${board} (board file's device tree)`,
      (r) => r.outcomes[board],
    );
    table(
      `## The same with the device tree each kernel package ships for ${board}`,
      (r) => r.dtbOutcomes[board],
    );
  }
  const bad = results.filter((r) => ["FAIL", "ERROR", "MISS"].includes(r.verdict));
  if (bad.length) {
    out.push("", "## Not passed", "");
    for (const r of bad) out.push(`- ${r.verdict} ${r.kernel} ${r.test}: ${r.reason ?? ""}`);
  }
  out.push(
    "",
    `${t.PASS} PASS, ${t.DONE} DONE, ${t.FAIL} FAIL, ${t.ERROR} ERROR, ${t.MISS} MISS, ${t.SKIP} SKIP`,
  );
  return out.join("\n");
}
