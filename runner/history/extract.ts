/**
 * What the history derives from a result record besides its own fields: the sort order of a
 * kernel release, the suite of a record written before results carried one, and the
 * predictions/observations its `details` hold (one row each, the JSON values kept as they were).
 *
 * Pure: no I/O.
 *
 * @module
 */
import type { TestResult } from "../results/store.ts";

/**
 * Sort key of a kernel release: `6.12.118+deb13-arm64` → 6·10⁹ + 12·10⁶ + 118·10³, `6.6` →
 * 6·10⁹ + 6·10⁶; `null` when `release` does not start with `MAJOR.MINOR`. Fits an SQL BIGINT.
 */
export function releaseOrder(release: string | null | undefined): number | null {
  if (!release) return null;
  const m = /^v?(\d{1,3})\.(\d{1,3})(?:\.(\d{1,3}))?(?![\d])/.exec(release.trim());
  if (!m) return null;
  return Number(m[1]) * 1e9 + Number(m[2]) * 1e6 + Number(m[3] ?? 0) * 1e3;
}

/**
 * The suite of a result: its own `suite`, or for records from before suites (issue 8) the part
 * of the test id before the first `/` (`validate/v1` → `validate`, `boot` → `boot`).
 */
export function suiteOf(r: Pick<TestResult, "suite" | "test">): string {
  if (r.suite) return r.suite;
  const slash = r.test.indexOf("/");
  return slash > 0 ? r.test.slice(0, slash) : r.test.split(" ")[0];
}

/** The running release a result names itself: `release`, or a boot step's `details.release`. */
export function ownRelease(r: TestResult): string | undefined {
  if (r.release) return r.release;
  const rel = r.details?.release;
  // oracle/predict carries the knowledge-base key (`6.12`), not the running release.
  if (typeof rel === "string" && (r.test === "boot" || r.test.endsWith("/boot"))) return rel;
  return undefined;
}

/** One prediction or observation a result's details carry. */
export interface Observation {
  /**
   * `outcome` (the oracle's predicted outcome of an IOMMU unit with the board file's device
   * tree), `outcome-dtb` (with the kernel package's DTB), `scenario` (a probe scenario's
   * predicted and observed behaviour), `oracle` (an oracle check: its findings),
   * `missing-fact` (a kernel fact that could not be read).
   */
  kind: "outcome" | "outcome-dtb" | "scenario" | "oracle" | "missing-fact";
  /** The unit address, scenario, check or fact name. */
  key: string;
  /** The predicted value as JSON, when the record has one. */
  predicted: string | null;
  /** The observed value as JSON, when the record has one. */
  observed: string | null;
  /** `AGREE`, `DISAGREE`, `INCONCLUSIVE`, or an outcome word; null when none. */
  verdict: string | null;
}

const json = (v: unknown): string | null => v === undefined ? null : JSON.stringify(v);

/** The oracle's verdict a summary like `agree (9 facts)` or `disagree: ...` states. */
export function summaryVerdict(summary: unknown): string | null {
  if (typeof summary !== "string") return null;
  const m = /^(agree|disagree|inconclusive|uncertain)\b/i.exec(summary.trim());
  return m ? m[1].toUpperCase() : null;
}

/** The predictions and observations in `r.details` (see {@linkcode Observation}). */
export function observationsOf(r: TestResult): Observation[] {
  const d = r.details;
  if (!d) return [];
  const out: Observation[] = [];
  for (const [field, kind] of [["outcomes", "outcome"], ["dtbOutcomes", "outcome-dtb"]] as const) {
    const o = d[field];
    if (o && typeof o === "object" && !Array.isArray(o)) {
      for (const [unit, outcome] of Object.entries(o)) {
        out.push({
          kind,
          key: unit,
          predicted: json(outcome),
          observed: null,
          verdict: typeof outcome === "string" ? outcome : null,
        });
      }
    }
  }
  if ("predicted" in d || "observed" in d) {
    out.push({
      kind: "scenario",
      key: typeof d.scenario === "string" ? d.scenario : r.test,
      predicted: json(d.predicted),
      observed: json(d.observed),
      verdict: typeof d.verdict === "string" ? d.verdict : null,
    });
  }
  const verdict = summaryVerdict(d.summary);
  if (verdict && (r.test.startsWith("oracle/") || "findings" in d)) {
    out.push({
      kind: "oracle",
      key: r.test,
      predicted: null,
      observed: json(d.findings ?? null),
      verdict,
    });
  }
  if (Array.isArray(d.missing)) {
    const seen = new Set<string>();
    for (const m of d.missing) {
      const name = m && typeof m === "object" ? (m as { name?: unknown }).name : undefined;
      if (typeof name !== "string" || seen.has(name)) continue;
      seen.add(name);
      out.push({
        kind: "missing-fact",
        key: name,
        predicted: null,
        observed: json(m),
        verdict: null,
      });
    }
  }
  return out;
}

/**
 * The oracle's verdict among a result's observations (a probe scenario's or an oracle check's):
 * `DISAGREE` if any disagrees, else the first one, else null.
 */
export function oracleVerdict(os: readonly Observation[]): string | null {
  const vs = os.filter((o) => (o.kind === "scenario" || o.kind === "oracle") && o.verdict)
    .map((o) => o.verdict!);
  return vs.includes("DISAGREE") ? "DISAGREE" : vs[0] ?? null;
}
