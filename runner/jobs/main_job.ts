/**
 * The main job (`rkhil run`): for each kernel under test, boot the default embedded target (a
 * QEMU aarch64 guest with 8 GiB, like a ROCK 3B 8 GB) on the real Debian kernel, reach it over
 * SSH with a pinned host key (one `boot` result), read the kernel's facts, hold the oracle's memory model against
 * them, and say what that kernel release's driver does on the boards the oracle knows. Every
 * step is a result in the run's one store, `runs/<id>/results.jsonl` (the probe validation's
 * too), written as it happens; the run ends with a per-release report (`report.md`, rendered
 * from that record) and a terminal summary.
 *
 * Classes: a kernel fault while a step runs is a FAIL of that step; a target lost while a step
 * runs (QEMU gone, console gone, SSH lost) is a MISS of it, whatever the step saw; after either,
 * every later step of that kernel is MISS "not run: ..." with the reason. A kernel that panics
 * while booting is a `boot` FAIL with the panic's first line. SIGINT/SIGTERM (through
 * {@linkcode MainJobOptions.interrupt}) records the running step MISS "interrupted", powers the
 * targets off and still writes the report.
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
import { QemuTarget } from "../qemu/target.ts";
import { renderRunReport } from "../report/run_report.ts";
import { parseResults, RunStore, tally, type TestResult } from "../results/store.ts";
import { bootGuest, type Guest } from "./guest.ts";
import {
  type Interrupt,
  INTERRUPT_EXIT,
  InterruptedError,
  type InterruptSignal,
} from "./interrupt.ts";
import { runValidate, SCENARIOS } from "./validate.ts";

/** The kernels the main job runs by default: 6.1, 6.12 and 7.x from Debian. */
export const DEFAULT_KERNELS: readonly string[] = [
  "debian:bookworm",
  "debian:trixie",
  "debian:trixie-backports",
];

/** Options of {@link runMainJob}. */
export interface MainJobOptions {
  /** Kernel specs to run (`debian:trixie`, `debian:6.1.192-2`), one guest each. */
  kernels: readonly string[];
  /** Guest memory (QEMU syntax), default 8G. */
  memory?: string;
  /** Extra kernel command line for every guest of the job (e.g. `swiotlb=force`). */
  append?: string;
  /** Boards whose outcome each release's driver is predicted for. */
  predictBoards: readonly string[];
  /** Root of run directories (default `runs`). */
  runsRoot?: string;
  /** Run the probe-module validation scenarios (default true). */
  validate?: boolean;
  /** SIGINT/SIGTERM: the step that runs is recorded MISS "interrupted" and the job stops. */
  interrupt?: Interrupt;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Result of the main job. */
export interface MainJobResult {
  /** The run directory. */
  dir: string;
  /** Every result recorded, in order. */
  results: TestResult[];
  /** 0 when nothing failed, errored or went missing; 130 when interrupted. */
  exitCode: number;
  /** The signal that stopped the job, if one did. */
  interrupted?: InterruptSignal;
}

/**
 * Run the main job. Every step is recorded in the run's one store (`results.jsonl`, validation
 * scenarios included) as it ends; `report.md` is rendered from that record at the end, also
 * when the job is interrupted (then every target is powered off first).
 */
export async function runMainJob(opts: MainJobOptions): Promise<MainJobResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const dir = RunStore.newDir(opts.runsRoot ?? "runs", "main");
  const store = await RunStore.open(dir);
  log(`rkhil run: results in ${dir}`);
  let interrupted: InterruptSignal | undefined;
  const writeReport = async () => {
    const record = parseResults(await Deno.readTextFile(`${dir}/results.jsonl`));
    const report = renderRunReport(record);
    await Deno.writeTextFile(`${dir}/report.md`, report + "\n");
    return { record, report };
  };
  try {
    for (const spec of opts.kernels) await runKernel(spec, opts, store, dir, log);
  } catch (err) {
    if (!(err instanceof InterruptedError)) {
      // A bug of ours: the record so far still gets its report.
      store.close();
      await writeReport().catch(() => {});
      throw err;
    }
    interrupted = err.signal;
    log(`\ninterrupted (${err.signal}): powering the targets off`);
    await QemuTarget.powerOffAll();
  } finally {
    store.close();
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

type StepOutcome = Omit<TestResult, "test" | "target" | "kernel" | "startedAt" | "durationMs">;

/** One kernel's steps: where they are recorded, and why the later ones cannot run. */
interface KernelRun {
  spec: string;
  store: RunStore;
  log: (l: string) => void;
  interrupt?: Interrupt;
  guest?: Guest;
  /** Set when the target was lost or the kernel crashed: every later step is MISS with it. */
  stopped?: string;
  /** The target's name in results (`qemu-virt-8g`). */
  target: string;
}

async function record(k: KernelRun, result: TestResult): Promise<void> {
  await k.store.record(result);
  k.log(
    `  ${result.verdict.padEnd(5)} ${result.test}${
      result.reason ? `: ${result.reason.split("\n")[0]}` : ""
    }`,
  );
}

/** A step that was not run because an earlier one lost the target or crashed the kernel. */
async function notRun(k: KernelRun, test: string): Promise<void> {
  await record(k, {
    test,
    target: k.target,
    kernel: k.spec,
    verdict: "MISS",
    reason: `not run: ${k.stopped}`,
    startedAt: new Date().toISOString(),
    durationMs: 0,
  });
}

/**
 * Run one step and record it. A kernel fault seen while it ran makes it FAIL; a target lost
 * while it ran (QEMU gone, console gone, SSH lost) makes it MISS whatever it returned; either
 * way every later step of the kernel is MISS. An interrupt records it MISS "interrupted" and
 * throws the {@linkcode InterruptedError} on.
 */
async function step(
  k: KernelRun,
  test: string,
  fn: () => Promise<StepOutcome>,
): Promise<TestResult> {
  if (k.stopped && !k.interrupt?.signal) {
    await notRun(k, test);
    return {
      test,
      target: k.target,
      kernel: k.spec,
      verdict: "MISS",
      startedAt: "",
      durationMs: 0,
    };
  }
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const guest = k.guest;
  const faultsBefore = guest?.faults.length ?? 0;
  let r: StepOutcome;
  let stop: InterruptedError | undefined;
  try {
    // An interrupt that came before the step started ends it before it does anything.
    k.interrupt?.check();
    const work = guest ? guest.whileUp(fn()) : fn();
    r = await (k.interrupt ? k.interrupt.race(work) : work);
  } catch (err) {
    if (err instanceof InterruptedError) stop = err;
    const verdict: Verdict = err instanceof RkhilError ? err.verdict : "ERROR";
    // An interrupt's reason is just "interrupted (SIGINT)": the step is not at fault.
    r = { verdict, reason: stop ? stop.message : describeError(err).replace(/^error: /, "") };
  }
  if (!stop && guest) {
    // A kernel crash while the step ran is the kernel's failure, whatever the step saw.
    const fault = guest.faults[faultsBefore];
    const lost = fault ? undefined : guest.lost();
    if (fault) {
      r = { ...r, verdict: "FAIL", reason: `kernel ${fault.kind}: ${fault.reason}` };
      k.stopped = `the kernel crashed in ${test} (${fault.kind}: ${fault.reason})`;
    } else if (lost) {
      const saw = r.verdict === "PASS" || !r.reason ? "" : ` (the step saw: ${r.reason})`;
      r = { ...r, verdict: "MISS", reason: `target lost: ${lost}${saw}` };
      k.stopped = `target lost in ${test} (${lost})`;
    }
  }
  const result: TestResult = {
    test,
    target: k.target,
    kernel: k.spec,
    startedAt,
    durationMs: Math.round(performance.now() - t0),
    ...r,
  };
  await record(k, result);
  if (stop) throw stop;
  return result;
}

async function runKernel(
  spec: string,
  opts: MainJobOptions,
  store: RunStore,
  dir: string,
  log: (l: string) => void,
): Promise<void> {
  const k: KernelRun = {
    spec,
    store,
    log,
    interrupt: opts.interrupt,
    target: `qemu-virt-${(opts.memory ?? "8G").toLowerCase()}`,
  };
  log(`\n${spec}`);
  const booted = await runOnGuest(k, opts, dir);
  if (booted && opts.validate !== false) await runValidation(k, opts, dir);
}

/** The probe scenarios of `rkhil validate`, recorded in the run's own store as they end. */
async function runValidation(k: KernelRun, opts: MainJobOptions, dir: string): Promise<void> {
  if (k.stopped && !k.interrupt?.signal) {
    for (const s of SCENARIOS) await notRun(k, `validate/${s.name}`);
    return;
  }
  try {
    const v = await runValidate({
      kernel: k.spec,
      memory: opts.memory,
      store: k.store,
      runDir: `${dir}/${kernelDirName(k.spec)}/validate`,
      interrupt: k.interrupt,
      onResult: (r) =>
        k.log(
          `  ${r.verdict.padEnd(5)} ${r.test}${r.reason ? `: ${r.reason.split("\n")[0]}` : ""}`,
        ),
      log: () => {},
    });
    if (v.interrupted) throw new InterruptedError(v.interrupted);
  } catch (err) {
    if (err instanceof InterruptedError) throw err;
    await record(k, {
      test: "validate",
      target: k.target,
      kernel: k.spec,
      verdict: err instanceof RkhilError ? err.verdict : "ERROR",
      reason: describeError(err).replace(/^error: /, ""),
      startedAt: new Date().toISOString(),
      durationMs: 0,
    });
  }
}

function kernelDirName(spec: string): string {
  return spec.replace(/[^a-z0-9.+-]/gi, "_");
}

/** Boot, SSH, facts, the memory model and the predictions on one guest; false if no boot. */
async function runOnGuest(k: KernelRun, opts: MainJobOptions, dir: string): Promise<boolean> {
  const spec = k.spec;
  const kernelDir = `${dir}/${kernelDirName(spec)}`;
  const memory = opts.memory ?? "8G";
  let facts: KernelFacts | undefined;
  // A guest whose boot the interrupt overtook is still powered off (QemuTarget.powerOffAll).
  let booting: Promise<Guest> | undefined;
  try {
    const boot = await step(k, "boot", async () => {
      booting = bootGuest({ kernel: spec, runDir: kernelDir, memory, append: opts.append });
      const guest = await booting;
      k.guest = guest;
      return {
        verdict: "PASS",
        measurements: [
          { name: "boot to shell", value: guest.bootSeconds.shell ?? NaN, unit: "s" },
          { name: "boot to ssh", value: guest.bootSeconds.ssh ?? NaN, unit: "s" },
          { name: "ssh connect", value: guest.ssh.connectMs, unit: "ms" },
        ],
        details: {
          release: guest.target.kernel.release,
          memory,
          ...(opts.append ? { append: opts.append } : {}),
        },
      };
    });
    if (boot.verdict !== "PASS" || !k.guest) return false;
    const g = k.guest;
    const t = g.target;

    await step(k, "facts", async () => {
      facts = await collectKernelFacts(g.run, { target: `qemu ${t.kernel.release}` });
      const have = Object.entries(facts).filter(([k, v]) =>
        v && typeof v === "object" && "provenance" in v && k
      ).length;
      return {
        verdict: facts.release ? "PASS" : "ERROR",
        reason: facts.release ? undefined : "the kernel release could not be read",
        details: {
          summary: `${have} facts, ${facts.missing.length} missing`,
          missing: facts.missing,
          problems: facts.problems,
          zones: facts.zones?.value,
          swiotlb: facts.swiotlb?.value,
          cmdline: facts.cmdline?.value.raw,
        },
      };
    });

    await step(k, "oracle/driver", async () => {
      const rel = parseRelease(t.kernel.release);
      if (!rel || !isKnownRelease(rel)) {
        return {
          verdict: "SKIP",
          reason: `release ${t.kernel.release} is not in the driver knowledge base`,
        };
      }
      const intro = await introspectDriver(g.run);
      const c = compareDriverWithKb(intro, mainlineFacts(rel));
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
        details: {
          summary: c.findings.length
            ? `DISAGREE: ${c.findings.map((f) => f.fact).join(", ")}`
            : `agree (${c.agreed.length} facts)`,
          agreed: c.agreed,
          findings: c.findings,
        },
      };
    });

    await step(k, "oracle/memory", () => {
      if (!facts) throw new InfraError("no kernel facts", "see the facts result");
      const p = predictMemory(facts);
      if (!p.ok) {
        return Promise.resolve({
          verdict: "SKIP" as const,
          reason: p.reason,
          details: { summary: "inconclusive" },
        });
      }
      const c = compareWithModel(facts, p.summary);
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
        details: {
          summary: c.findings.length
            ? `DISAGREE: ${c.findings.map((f) => f.fact).join(", ")}`
            : `agree (${c.agreed.length} facts)`,
          ...c,
          assumptions: p.assumptions,
        },
      });
    });

    for (const boardId of opts.predictBoards) {
      await step(k, `oracle/predict ${boardId}`, async () => {
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
        const outcomes = Object.fromEntries(p.instances.map((i) => [i.unit, i.outcome]));
        // The same release's own device tree for that board, when the package ships one.
        const dtb = await kernelDtbFor(t, loaded.board.name, board.soc);
        let dtbOutcomes: Record<string, Outcome> | undefined;
        if (dtb) {
          const nodes = (await dtbIommuNodes(dtb, board.soc)).nodes;
          const pd = predict(buildScenario({ board, kernel: releaseKey(rel), devicetree: nodes }));
          dtbOutcomes = Object.fromEntries(pd.instances.map((i) => [i.unit, i.outcome]));
        }
        return {
          verdict: "DONE",
          details: { release: releaseKey(rel), outcomes, dtb, dtbOutcomes },
        };
      });
    }
  } finally {
    if (k.guest) await k.guest.close();
    // A boot the interrupt overtook: its guest is closed when (if) it comes up.
    else booting?.then((g) => g.close(), () => {});
    k.guest = undefined;
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
