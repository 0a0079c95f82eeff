/**
 * `compare(prediction, observation)`: holds what a target showed against what the oracle
 * predicted. The verdict is `agree`, `disagree` (naming the first differing fact, in the order a
 * DMA meets them: outcome, directory table, page table, log lines, workload, latency) or
 * `inconclusive` (naming what was missing).
 *
 * @module
 */
import { splitPrintkPrefix } from "./kline.ts";
import type { InstancePrediction, Prediction, WorkloadVerdict } from "./prediction.ts";
import type { Outcome } from "./types.ts";

const FOUR_GIB = 0x1_0000_0000;

/** What was observed for one IOMMU instance. Every field is optional: observe what you can. */
export interface InstanceObservation {
  /** Unit address of the IOMMU node observed (`fde4b000`). */
  unit: string;
  /** The outcome seen. */
  outcome?: Outcome;
  /** Physical address of the directory table and the DMA address the IOMMU was given. */
  dtPhys?: number;
  /** True when the directory table was bounced through SWIOTLB. */
  dtBounced?: boolean;
  /** Physical address of a page table. */
  ptPhys?: number;
  /** True when that page table was bounced through SWIOTLB. */
  ptBounced?: boolean;
  /** Kernel log lines seen during the run (printk prefixes are tolerated). */
  logLines?: string[];
  /** What the workload run did. */
  workloadVerdict?: WorkloadVerdict;
  /** Workload latency in milliseconds. */
  latencyMs?: number;
  /** Where the observation comes from (board, QEMU probe module, log file). */
  source: string;
}

/** An observation of a run. */
export interface Observation {
  /** One observation per IOMMU instance observed. */
  instances: InstanceObservation[];
}

/** The first differing fact. */
export interface Difference {
  /** Unit address of the instance. */
  unit: string;
  /** The fact that differs (`outcome`, `<table> placement`, `<table> bounced`, `kernel log line`, `workload verdict`, `latency`). */
  fact: string;
  /** What the oracle predicted, in words. */
  predicted: string;
  /** What was observed, in words. */
  observed: string;
}

/** Result for one instance. */
export interface InstanceComparison {
  /** Unit address of the instance. */
  unit: string;
  /** `agree`: every observed fact matches; `disagree`: one does not; `inconclusive`: too little was observed to decide. */
  verdict: "agree" | "disagree" | "inconclusive";
  /** The first difference, with `disagree`. */
  difference?: Difference;
  /** What was missing to decide (`<unit>: outcome`, `<unit>: kernel log`). */
  missing: string[];
  /** Remarks that do not change the verdict (an uncertainty resolved, an uncertain line not seen). */
  notes: string[];
}

/** Result of a comparison. */
export interface Comparison {
  /** `disagree` when any instance disagrees; `agree` when at least one instance was compared and all agree; else `inconclusive`. */
  verdict: "agree" | "disagree" | "inconclusive";
  /** The first difference, in prediction order. */
  difference?: Difference;
  /** What was missing to decide, when inconclusive. */
  missing: string[];
  /** The result per observed instance that the prediction has. */
  instances: InstanceComparison[];
}

/** A kernel log line without its printk, dmesg or journald prefix (and a trailing CR). */
export function stripPrintkPrefix(line: string): string {
  return splitPrintkPrefix(line.replace(/\r$/, "")).rest;
}

/** Compare one instance. */
export function compareInstance(p: InstancePrediction, o: InstanceObservation): InstanceComparison {
  const notes: string[] = [];
  const missing: string[] = [];
  const differ = (fact: string, predicted: string, observed: string): InstanceComparison => ({
    unit: p.unit,
    verdict: "disagree",
    difference: { unit: p.unit, fact, predicted, observed },
    missing,
    notes: p.condition ? [...notes, `prediction was conditional: ${p.condition}`] : notes,
  });

  if (o.outcome === undefined) {
    missing.push(`${p.unit}: outcome`);
  } else if (!p.possible.includes(o.outcome)) {
    return differ("outcome", p.possible.join(" or "), o.outcome);
  } else if (p.outcome === "UNCERTAIN") {
    notes.push(`resolves the uncertainty: ${o.outcome} (${p.condition ?? "see explanation"})`);
  }

  const tables = [["directory table", p.dt, o.dtPhys, o.dtBounced], [
    "page table",
    p.pt,
    o.ptPhys,
    o.ptBounced,
  ]] as const;
  for (const [what, t, phys, bounced] of tables) {
    if (!t) continue;
    if (phys !== undefined) {
      const above = phys >= FOUR_GIB;
      if (above !== t.above4G) {
        return differ(
          `${what} placement`,
          t.above4G ? "above 4 GiB" : "below 4 GiB",
          `0x${phys.toString(16)}`,
        );
      }
    }
    if (bounced !== undefined && bounced !== t.bounced) {
      return differ(`${what} bounced`, String(t.bounced), String(bounced));
    }
  }

  if (o.logLines !== undefined) {
    const lines = o.logLines.map(stripPrintkPrefix);
    for (const e of p.expectedLines) {
      const re = new RegExp(e.regex);
      if (!lines.some((l) => re.test(l))) {
        if (p.outcome === "UNCERTAIN" || e.confidence === "unknown") {
          notes.push(`expected line not seen (prediction was not certain): ${e.template}`);
          continue;
        }
        return differ("kernel log line", e.template, "no matching line");
      }
    }
    if (p.outcome === "OK" || p.outcome === "WRONG_PAGE" || p.outcome === "DISABLED") {
      const own = `rk_iommu ${p.unit}.iommu: `;
      const fault = lines.find((l) =>
        l.startsWith(own) && /(Page fault|BUS_ERROR|mmu_dte_addr)/.test(l)
      );
      if (fault) return differ("kernel log line", "no fault line", fault);
    }
  } else if (p.expectedLines.length > 0) {
    missing.push(`${p.unit}: kernel log`);
  }

  if (p.workload && o.workloadVerdict !== undefined && p.workload.verdict !== "unknown") {
    if (o.workloadVerdict !== p.workload.verdict) {
      return differ("workload verdict", p.workload.verdict, o.workloadVerdict);
    }
  }
  const band = p.workload?.latency;
  if (band && o.latencyMs !== undefined) {
    if (o.latencyMs < band.lowMs || o.latencyMs > band.highMs) {
      return differ("latency", `${band.lowMs}–${band.highMs} ms`, `${o.latencyMs} ms`);
    }
  }

  const verdict = o.outcome === undefined ? "inconclusive" : "agree";
  return { unit: p.unit, verdict, missing, notes };
}

/**
 * Compare a prediction with an observation. Only instances present in the observation are
 * compared; a comparison with no instance in common is inconclusive.
 */
export function compare(prediction: Prediction, observation: Observation): Comparison {
  const results: InstanceComparison[] = [];
  const missing: string[] = [];
  for (const o of observation.instances) {
    const p = prediction.instances.find((i) => i.unit === o.unit.toLowerCase());
    if (!p) {
      missing.push(`${o.unit}: not in the prediction (no such IOMMU node)`);
      continue;
    }
    results.push(compareInstance(p, o));
  }
  const firstDiff = results.find((r) => r.verdict === "disagree");
  if (firstDiff) {
    return { verdict: "disagree", difference: firstDiff.difference, missing, instances: results };
  }
  for (const r of results) missing.push(...r.missing);
  const decided = results.some((r) => r.verdict === "agree");
  const verdict = decided && results.every((r) => r.verdict === "agree") ? "agree" : "inconclusive";
  if (results.length === 0) missing.push("no observed instance matches the prediction");
  return { verdict, missing: verdict === "agree" ? [] : missing, instances: results };
}
