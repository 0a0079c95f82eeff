/**
 * The report's table of the real rk_iommu driver on emulated IOMMUs (issue 15): one row per
 * release × scenario × instance from the `iommu/emulated` results of a run (the details the
 * step records through `runStep`: tests/_iommu_emulated.ts): what the emulated device saw, where
 * the directory lay, the driver's first own line, the oracle's prediction, and whether they
 * agree (each instance's own comparison as the step recorded it; records that predate it are
 * inferred from the step's verdict and its first differing fact). Pure: results in, Markdown out.
 *
 * @module
 */

import type { TestResult } from "../results/store.ts";

/** One instance of one `iommu/emulated` result, as the table shows it. */
export interface EmulatedRow {
  /** Kernel as results name it (`debian:trixie`). */
  kernel: string;
  /** Running release (`6.12.118+deb13-arm64`), `-` when unknown. */
  release: string;
  /** Scenario id (`dtsi`, `swiotlb-force`, `npu-rockchip-iommu`; `target` on a target's own). */
  scenario: string;
  /** Unit address (`fde4b000`), `-` when the step recorded no instance. */
  unit: string;
  /** Observed outcome (`BUS_ERROR`), `-` when none. */
  observed: string;
  /** Directory address as the walker decoded it (`0x100c70000`), `bounced`, or `-`. */
  directory: string;
  /**
   * The driver's first line naming the instance (timestamp removed; for PROBE_FAILED without
   * one, the driver's WARNING), `-` when none.
   */
  line: string;
  /** The oracle's predicted outcome, `-` when none. */
  predicted: string;
  /**
   * `agree`, `disagree: <fact>: predicted <x>, observed <y>`, `inconclusive: <missing>`, `not
   * compared: …`, or (records without per-instance verdicts) the step's verdict and reason when it
   * gave no outcome.
   */
  verdict: string;
}

interface InstanceDetails {
  unit?: unknown;
  observed?: unknown;
  predicted?: unknown;
  dt?: unknown;
  dtBounced?: unknown;
  lines?: unknown;
  /** The instance's own comparison (`agree`, `disagree`, `inconclusive`; `null`: not compared). */
  verdict?: unknown;
  /** `<fact>: predicted <x>, observed <y>` with `disagree`. */
  difference?: unknown;
  /** What was missing to decide, with `inconclusive`. */
  missing?: unknown;
}

/**
 * The instance's own verdict as the step recorded it (`details.instances[].verdict`), or
 * `undefined` for records that predate it (they are inferred from the step's verdict).
 */
function recordedVerdict(i: InstanceDetails): string | undefined {
  if (i.verdict === null) return "not compared: not in the prediction";
  if (i.verdict === "agree") return "agree";
  if (i.verdict === "disagree") {
    return typeof i.difference === "string" && i.difference
      ? `disagree: ${i.difference}`
      : "disagree";
  }
  if (i.verdict === "inconclusive") {
    const missing = Array.isArray(i.missing) ? i.missing.filter((m) => typeof m === "string") : [];
    return missing.length ? `inconclusive: ${missing.join("; ")}` : "inconclusive";
  }
  return undefined;
}

const text = (v: unknown, dflt = "-"): string => typeof v === "string" && v !== "" ? v : dflt;

/** The kernel log line without its `[    1.234567] ` stamp. */
function bare(line: string): string {
  return line.replace(/^\s*\[\s*\d+\.\d+\]\s*/, "");
}

/** Whether `r` is an `iommu/emulated` result (the target's own or a scenario's). */
export function isEmulatedResult(r: TestResult): boolean {
  return r.test === "iommu/emulated" || r.test.startsWith("iommu/emulated/");
}

/**
 * The rows of every `iommu/emulated` result in `results`, in record order. Details that are not
 * the step's shape (older or hand-written records) give `-` cells, never an exception.
 */
export function emulatedRows(results: readonly TestResult[]): EmulatedRow[] {
  const rows: EmulatedRow[] = [];
  for (const r of results.filter(isEmulatedResult)) {
    const d = r.details ?? {};
    const scenario = text(d.scenario, r.test.split("/")[2] ?? "target");
    const release = text(d.release, text(r.release));
    const instances = Array.isArray(d.instances) ? d.instances as InstanceDetails[] : [];
    const reason = (r.reason ?? "").split("\n")[0];
    if (!instances.length) {
      rows.push({
        kernel: r.kernel,
        release,
        scenario,
        unit: "-",
        observed: "-",
        directory: "-",
        line: "-",
        predicted: "-",
        verdict: `${r.verdict}${reason ? `: ${reason}` : ""}`,
      });
      continue;
    }
    for (const i of instances) {
      const unit = text(i.unit);
      const observed = text(i.observed);
      const predicted = text(i.predicted);
      const lines = Array.isArray(i.lines) ? i.lines.filter((l) => typeof l === "string") : [];
      // Its own line; for a failed probe, the driver's WARNING when no line names the unit.
      const own = lines.find((l) => l.includes(`${unit}.iommu`)) ??
        (observed === "PROBE_FAILED" ? lines[0] : undefined);
      const mine = reason.startsWith(`${unit}: `);
      // Records that predate per-instance verdicts: inferred from the step's (first) difference.
      let verdict: string;
      const recorded = recordedVerdict(i);
      if (recorded !== undefined) {
        verdict = recorded;
      } else if (
        r.verdict === "PASS" || (r.verdict === "FAIL" && !mine && observed === predicted)
      ) {
        verdict = "agree";
      } else if (r.verdict === "FAIL") {
        verdict = mine ? `disagree: ${reason.slice(unit.length + 2)}` : "disagree";
      } else {
        verdict = `${r.verdict}${reason ? `: ${reason}` : ""}`;
      }
      rows.push({
        kernel: r.kernel,
        release,
        scenario,
        unit,
        observed,
        directory: i.dtBounced === true ? "bounced (SWIOTLB)" : text(i.dt),
        line: own ? bare(own) : "-",
        predicted,
        verdict,
      });
    }
  }
  return rows;
}

/** Escape a value for a Markdown table cell. */
function md(s: string): string {
  return s.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/**
 * The report section (lines, no trailing blank) for the run's `iommu/emulated` results; empty
 * when the run has none.
 */
export function renderEmulatedSection(results: readonly TestResult[]): string[] {
  const rows = emulatedRows(results);
  if (!rows.length) return [];
  const out = [
    "## The real rk_iommu driver on emulated IOMMUs",
    "",
    "| kernel | release | scenario | instance | observed | directory | driver's line | oracle | verdict |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const x of rows) {
    const line = x.line.length > 120 ? `${x.line.slice(0, 117)}...` : x.line;
    out.push(
      `| ${
        [x.kernel, x.release, x.scenario, x.unit, x.observed, x.directory]
          .map(md).join(" | ")
      } | ${line === "-" ? "-" : `\`${md(line).replaceAll("`", "'")}\``} | ${md(x.predicted)} | ${
        md(x.verdict)
      } |`,
    );
  }
  return out;
}
