/**
 * `rkhil validate`: reproduce the rockchip-iommu table failure modes on a real kernel with the
 * probe module and hold the oracle against each. For each scenario: boot a guest on the kernel
 * (with the scenario's memory and command line), read its memory facts, ask the oracle what the
 * driver's table sequence gives on that memory (`oracle/probe_model.ts`), run the same sequence
 * with the probe module, and compare: table placement, bouncing, and every IOVA's walk.
 *
 * @module
 */
import { predictProbe, type ProbePrediction } from "../../oracle/probe_model.ts";
import { mainlineFacts, parseRelease } from "../../oracle/releases.ts";
import { buildScenario } from "../../oracle/scenario.ts";
import { describeError, RkhilError, UserInputError, type Verdict } from "../errors.ts";
import { collectKernelFacts, type KernelFacts } from "../facts/collect.ts";
import { QemuTarget } from "../qemu/target.ts";
import { buildProbeModule } from "../probe/build.ts";
import { directoryTable, pageTableOf, type ProbeReport } from "../probe/report.ts";
import { type ProbeParams, runProbe, sshShell } from "../probe/run.ts";
import { RunStore, type TestResult } from "../results/store.ts";
import { bootGuest, type Guest } from "./guest.ts";
import { type Interrupt, InterruptedError, type InterruptSignal } from "./interrupt.ts";

/** A validation scenario: how the guest boots and what the probe replays. */
export interface ValidateScenario {
  /** Scenario name (to pass to `--scenario`). */
  name: string;
  /** What the scenario shows, in one sentence. */
  description: string;
  /** Guest memory (default: the job's) and extra command line. */
  boot: { memory?: string; append?: string };
  /** What the probe module replays in the guest. */
  params: ProbeParams;
}

/** A page below and a page above 4 GiB, in two DTEs. */
const LOW_HIGH: ProbeParams["mappings"] = [
  { iova: 0x1000_0000, where: "low" },
  { iova: 0x1040_0000, where: "high" },
];

/** Probe parameters: ops (format, mask, gfp) and a walker reaching `reach` bits at both levels. */
function ops(
  format: ProbeParams["format"],
  maskBits: number,
  gfp: ProbeParams["gfp"],
  reach = 32,
): ProbeParams {
  return { format, maskBits, gfp, dtReach: reach, ptReach: reach, mappings: LOW_HIGH };
}

/** The scenarios, in the order they run. */
export const SCENARIOS: readonly ValidateScenario[] = [
  {
    name: "v1",
    description: "v1 ops (rockchip,iommu): 32-bit mask, GFP_DMA32, v1 entries",
    boot: {},
    params: ops("v1", 32, "dma32"),
  },
  {
    name: "v2-6.1",
    description: "v2 ops as in 6.1: 40-bit mask, GFP_DMA32 hard-coded; a v1.0 walker (32 bits)",
    boot: {},
    params: ops("v2", 40, "dma32"),
  },
  {
    name: "v2-6.6",
    description: "v2 ops from 6.6: 40-bit mask, tables from all memory; a v1.0 walker (NPU)",
    boot: {},
    params: ops("v2", 40, "none"),
  },
  {
    name: "v2-6.6-vop",
    description: "v2 ops from 6.6 with a v2.0 walker (VOP2, 40-bit reach)",
    boot: {},
    params: ops("v2", 40, "none", 40),
  },
  {
    name: "bounce",
    description: "32-bit mask with unrestricted allocation: the seed's bounce poisoning",
    boot: {},
    params: ops("v2", 32, "none"),
  },
  {
    name: "swiotlb-force",
    description: "swiotlb=force: every mapping bounces, GFP_DMA32 tables too",
    boot: { append: "swiotlb=force" },
    params: ops("v2", 40, "dma32"),
  },
  {
    name: "mem-below-4g",
    description: "mem=3G: QEMU's RAM starts at 1 GiB, so no memory is left above 4 GiB",
    boot: { append: "mem=3G" },
    params: ops("v2", 40, "none"),
  },
  {
    name: "2g",
    description: "a 2 GiB guest: everything below 4 GiB",
    boot: { memory: "2G" },
    params: ops("v2", 40, "none"),
  },
];

/** One row of the validation. */
export interface ValidateRow {
  /** Scenario name. */
  scenario: string;
  /** What the oracle predicted, in words. */
  predicted: string;
  /** What the probe module saw, in words. */
  observed: string;
  /** Whether the observation agrees with the prediction, or could not decide. */
  verdict: "AGREE" | "DISAGREE" | "INCONCLUSIVE";
  /** The first differing fact, or what was missing. */
  why?: string;
}

/** A one-line summary of what a probe run shows. */
function summarise(
  dt: { above4G: boolean; bounced: boolean },
  walks: { result: string; level?: string }[],
): string {
  const results = [...new Set(walks.map((w) => w.level ? `${w.result}/${w.level}` : w.result))];
  return `${results.join("+")} (tables ${dt.above4G ? ">=4G" : "<4G"}${
    dt.bounced ? ", bounced" : ""
  })`;
}

/** Compare a prediction with a probe report: the first differing fact, or null. */
export function compareProbe(p: ProbePrediction, r: ProbeReport): string | null {
  const dt = directoryTable(r);
  if (!dt) return "the report has no directory table";
  const high = (zone: string) => zone === "high";
  if (p.dt.above4G !== high(dt.zone)) {
    return `directory table: predicted ${p.dt.above4G ? ">=4G" : "<4G"}, observed phys ` +
      `0x${dt.phys.toString(16)}`;
  }
  if (p.dt.bounced !== dt.bounced) {
    return `directory table bounced: predicted ${p.dt.bounced}, observed ${dt.bounced}`;
  }
  for (const w of p.walks) {
    const pt = pageTableOf(r, w.iova);
    if (!pt) return `no page table reported for iova 0x${w.iova.toString(16)}`;
    if (p.pt.above4G !== high(pt.zone)) {
      return `page table of 0x${w.iova.toString(16)}: predicted ${
        p.pt.above4G ? ">=4G" : "<4G"
      }, ` +
        `observed phys 0x${pt.phys.toString(16)}`;
    }
    if (p.pt.bounced !== pt.bounced) {
      return `page table of 0x${w.iova.toString(16)} bounced: predicted ${p.pt.bounced}, ` +
        `observed ${pt.bounced}`;
    }
    const o = r.walks.find((x) => x.iova === w.iova);
    if (!o) return `no walk reported for iova 0x${w.iova.toString(16)}`;
    if (o.result !== w.result || (w.level && o.level !== w.level)) {
      return `iova 0x${w.iova.toString(16)}: predicted ${w.result}${
        w.level ? `/${w.level}` : ""
      }, ` +
        `observed ${o.result}${o.level ? `/${o.level}` : ""}`;
    }
  }
  return null;
}

/** Options of {@link runValidate}. */
export interface ValidateOptions {
  /** Kernel spec to boot (`debian:trixie`). */
  kernel: string;
  /** Guest memory (QEMU syntax) for scenarios that do not set their own (default 8G). */
  memory?: string;
  /** Scenario names (default: all). */
  scenarios?: readonly string[];
  /** Root of run directories (default `runs`), when the validation has its own run. */
  runsRoot?: string;
  /**
   * The run's store, when validation is part of another job (`rkhil run`): every result goes
   * there as it ends (one store per run), and `runDir` holds the guests' logs.
   */
  store?: RunStore;
  /** With `store`: the directory for the guests' logs and probe outputs. */
  runDir?: string;
  /** SIGINT/SIGTERM: the scenario that runs is recorded MISS "interrupted"; the guest is powered off. */
  interrupt?: Interrupt;
  /** Called with every result once it is recorded. */
  onResult?: (r: TestResult) => void;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What {@link runValidate} did. */
export interface ValidateRun {
  /** One row per scenario run. */
  rows: ValidateRow[];
  /** The run directory (or `runDir` of a job's validation). */
  dir: string;
  /** The signal that stopped the validation, if one did. */
  interrupted?: InterruptSignal;
}

/**
 * Run the validation; returns the rows and the run directory. A kernel fault during a scenario
 * is a FAIL of it, a target lost during it a MISS of it; after either, every later scenario of
 * the kernel is MISS "not run: ..." with the reason.
 *
 * @throws {UserInputError} for an unknown scenario name, before anything runs.
 */
export async function runValidate(opts: ValidateOptions): Promise<ValidateRun> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const wanted = opts.scenarios?.length ? opts.scenarios : SCENARIOS.map((s) => s.name);
  const unknown = wanted.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) {
    throw new UserInputError(
      `unknown scenario ${unknown.join(", ")}`,
      `use one of: ${SCENARIOS.map((s) => s.name).join(", ")}`,
    );
  }
  const dir = opts.store
    ? opts.runDir ?? `${opts.store.dir}/validate`
    : RunStore.newDir(opts.runsRoot ?? "runs", "validate");
  const store = opts.store ?? await RunStore.open(dir);
  await Deno.mkdir(dir, { recursive: true });
  const rows: ValidateRow[] = [];
  const it = opts.interrupt;
  const race = <T>(p: Promise<T>) => it ? it.race(p) : p;
  const record = async (r: TestResult) => {
    await store.record(r);
    opts.onResult?.(r);
  };
  /** Record scenario `name` as not compared, with its verdict and reason. */
  const inconclusive = async (
    name: string,
    target: string,
    verdict: Verdict,
    why: string,
  ) => {
    rows.push({ scenario: name, predicted: "-", observed: "-", verdict: "INCONCLUSIVE", why });
    log(`  ${name}: INCONCLUSIVE (${why})`);
    await record({
      test: `validate/${name}`,
      target,
      kernel: opts.kernel,
      verdict,
      reason: why,
      startedAt: new Date().toISOString(),
      durationMs: 0,
    });
  };
  const firstLine = (err: unknown) => describeError(err).replace(/^error: /, "").split("\n")[0];
  /** Set when the target was lost or the kernel crashed: later scenarios are MISS with it. */
  let stopped: string | undefined;
  try {
    log(`rkhil validate ${opts.kernel}: building the probe module`);
    let ko: Uint8Array;
    try {
      ko = await race((async () => {
        it?.check();
        return await Deno.readFile((await buildProbeModule(opts.kernel)).ko);
      })());
    } catch (err) {
      if (err instanceof InterruptedError) {
        await inconclusive(
          wanted[0],
          "qemu-virt",
          "MISS",
          `${err.message} (building the probe module)`,
        );
        throw err;
      }
      // No module, no scenario: each is recorded with the reason, nothing is lost.
      for (const name of wanted) {
        await inconclusive(
          name,
          "qemu-virt",
          err instanceof RkhilError ? err.verdict : "ERROR",
          `probe module build: ${firstLine(err)}`,
        );
      }
      return { rows, dir };
    }
    // Scenarios that boot the same way share one guest.
    const groups = new Map<string, ValidateScenario[]>();
    for (const s of SCENARIOS.filter((s) => wanted.includes(s.name))) {
      const key = JSON.stringify([s.boot.memory ?? opts.memory ?? "8G", s.boot.append ?? ""]);
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    for (const [key, scenarios] of groups) {
      const [memory, append] = JSON.parse(key) as [string, string];
      const targetName = `qemu-virt ${memory}${append ? ` ${append}` : ""}`;
      if (stopped) {
        for (const s of scenarios) {
          await inconclusive(s.name, targetName, "MISS", `not run: ${stopped}`);
        }
        continue;
      }
      let guest: Guest | undefined;
      let booting: Promise<Guest> | undefined;
      let interruptRecorded = false;
      try {
        it?.check();
        log(`booting ${opts.kernel} with ${memory}${append ? `, ${append}` : ""}`);
        booting = bootGuest({
          kernel: opts.kernel,
          runDir: `${dir}/${memory}${append ? "-" + append.replace(/[^a-z0-9]+/gi, "_") : ""}`,
          memory,
          append: append || undefined,
        });
        guest = await race(booting);
        const g = guest;
        const facts = await race(collectKernelFacts(g.run, { target: `qemu ${g.release}` }));
        const rel = parseRelease(g.target.kernel.release);
        const banks = facts.memoryBanks?.value;
        for (const s of scenarios) {
          it?.check();
          if (stopped) {
            await inconclusive(s.name, targetName, "MISS", `not run: ${stopped}`);
            continue;
          }
          const faultsBefore = g.faults.length;
          const t0 = performance.now();
          const startedAt = new Date().toISOString();
          let row: ValidateRow;
          let verdict: Verdict;
          let interrupted: InterruptedError | undefined;
          try {
            if (!banks || !rel) throw new Error("the guest's memory banks or release are unknown");
            row = await race(g.whileUp(runScenario(s, g, ko, dir, facts, banks, rel)));
            verdict = row.verdict === "AGREE" ? "PASS" : "FAIL";
          } catch (err) {
            if (err instanceof InterruptedError) interrupted = err;
            row = {
              scenario: s.name,
              predicted: "-",
              observed: "-",
              verdict: "INCONCLUSIVE",
              why: firstLine(err),
            };
            verdict = err instanceof RkhilError ? err.verdict : "ERROR";
          }
          if (!interrupted) {
            // A kernel crash during the scenario is the kernel's failure, not a comparison; a
            // target lost during it means it did not run, whatever it compared.
            const fault = g.faults[faultsBefore];
            const lost = fault ? undefined : g.lost();
            if (fault) {
              row = {
                ...row,
                verdict: "INCONCLUSIVE",
                why: `kernel ${fault.kind}: ${fault.reason}`,
              };
              verdict = "FAIL";
              stopped = `the kernel crashed in validate/${s.name} (${fault.kind}: ${fault.reason})`;
            } else if (lost) {
              row = { ...row, verdict: "INCONCLUSIVE", why: `target lost: ${lost}` };
              verdict = "MISS";
              stopped = `target lost in validate/${s.name} (${lost})`;
            }
          }
          rows.push(row);
          log(`  ${row.scenario}: ${row.verdict}${row.why ? ` (${row.why})` : ""}`);
          await record({
            test: `validate/${s.name}`,
            target: targetName,
            kernel: opts.kernel,
            verdict,
            reason: row.why,
            details: { ...row, description: s.description },
            startedAt,
            durationMs: Math.round(performance.now() - t0),
          });
          if (interrupted) {
            interruptRecorded = true;
            throw interrupted;
          }
        }
      } catch (err) {
        const left = scenarios.filter((s) => !rows.some((r) => r.scenario === s.name));
        if (err instanceof InterruptedError) {
          // Between scenarios, or while the group's guest booted: the next scenario is the
          // interrupted step; the rest did not start.
          if (!interruptRecorded && left.length) {
            await inconclusive(left[0].name, targetName, "MISS", err.message);
          }
          throw err;
        }
        const lost = guest?.lost();
        if (lost) stopped = `target lost while preparing ${targetName} (${lost})`;
        for (const s of left) {
          await inconclusive(
            s.name,
            targetName,
            lost ? "MISS" : err instanceof RkhilError ? err.verdict : "ERROR",
            lost ? `target lost: ${lost} (${firstLine(err)})` : firstLine(err),
          );
        }
      } finally {
        if (guest) await guest.close();
        else booting?.then((g) => g.close(), () => {});
      }
    }
  } catch (err) {
    if (!(err instanceof InterruptedError)) throw err;
    await QemuTarget.powerOffAll();
    return { rows, dir, interrupted: err.signal };
  } finally {
    if (!opts.store) store.close();
  }
  return { rows, dir };
}

/** Predict, run the probe and compare one scenario on a booted guest. */
async function runScenario(
  s: ValidateScenario,
  g: Guest,
  ko: Uint8Array,
  dir: string,
  facts: KernelFacts,
  banks: NonNullable<KernelFacts["memoryBanks"]>["value"],
  rel: NonNullable<ReturnType<typeof parseRelease>>,
): Promise<ValidateRow> {
  const scenario = buildScenario({
    board: {
      id: "qemu-virt",
      name: "QEMU virt",
      soc: "qemu-virt",
      banks,
      ramSource: facts.memoryBanks!.provenance.source,
      ramConfidence: "measured",
      iommus: [],
    },
    kernel: mainlineFacts(rel),
    bootargs: facts.cmdline?.value.raw ?? "",
  });
  const p = predictProbe(scenario, {
    format: s.params.format,
    maskBits: s.params.maskBits,
    gfp: s.params.gfp === "none" ? "none" : s.params.gfp === "dma32" ? "GFP_DMA32" : "GFP_DMA",
    dtReach: s.params.dtReach ?? 32,
    ptReach: s.params.ptReach ?? 32,
    iovas: s.params.mappings.map((m) => ({ iova: m.iova, where: m.where })),
  });
  const run = await runProbe(sshShell(g.ssh), ko, s.params);
  await Deno.writeTextFile(`${dir}/${s.name}.probe.txt`, run.raw);
  const dt = directoryTable(run.report);
  const diff = compareProbe(p, run.report);
  return {
    scenario: s.name,
    predicted: summarise(p.dt, p.walks),
    observed: dt
      ? summarise({ above4G: dt.zone === "high", bounced: dt.bounced }, run.report.walks)
      : "no report",
    verdict: diff ? "DISAGREE" : "AGREE",
    why: diff ?? undefined,
  };
}

/** Render the rows as a table. */
export function renderValidateRows(rows: readonly ValidateRow[]): string {
  const w = (k: keyof ValidateRow) =>
    Math.max(k.length, ...rows.map((r) => String(r[k] ?? "").length));
  const cols: (keyof ValidateRow)[] = ["scenario", "predicted", "observed", "verdict"];
  const line = (r: Record<string, string>) =>
    cols.map((c) => String(r[c] ?? "").padEnd(w(c))).join("  ").trimEnd();
  const out = [
    line({
      scenario: "scenario",
      predicted: "predicted",
      observed: "observed",
      verdict: "verdict",
    }),
  ];
  for (const r of rows) {
    out.push(line(r as unknown as Record<string, string>));
    if (r.why) out.push(`  ${r.why}`);
  }
  return out.join("\n");
}
