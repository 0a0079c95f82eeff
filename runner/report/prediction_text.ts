/**
 * Terminal rendering of a prediction: one row per IOMMU instance (unit address, label, ops,
 * outcome, where the tables land), the expected kernel log lines, then the explanation.
 *
 * @module
 */
import Table from "cli-table3";
import type { InstancePrediction, Prediction, TablePrediction } from "../../oracle/prediction.ts";
import type { Fact } from "../../oracle/types.ts";

function where(t: TablePrediction | undefined): string {
  if (!t) return "-";
  const place = t.above4G ? ">=4G" : "<4G";
  const map = t.bounced ? "bounced" : "direct";
  const reach = t.reachable === true ? "" : t.reachable === false ? " UNREACHABLE" : " reach?";
  return `${place} ${map}${reach}`;
}

function outcomeCell(i: InstancePrediction): string {
  return i.outcome === "UNCERTAIN" ? `UNCERTAIN (${i.possible.join("|")})` : i.outcome;
}

function factText(f: Fact<unknown>): string {
  const v = typeof f.value === "string" ? f.value : JSON.stringify(f.value);
  const note = f.provenance.note ? `; ${f.provenance.note}` : "";
  return `${f.name} = ${v} [${f.provenance.confidence}: ${f.provenance.source}${note}]`;
}

/** Render a prediction for a terminal. `explain` adds the facts behind every step. */
export function renderPrediction(p: Prediction, opts: { explain?: boolean } = {}): string {
  const out: string[] = [];
  const patches = p.patches.length ? p.patches.join(", ") : "none";
  out.push(
    `rkhil predict: board ${p.board} (${p.soc}), kernel ${p.kernel}, patches ${patches}` +
      (p.bootargs ? `, bootargs "${p.bootargs}"` : ""),
  );
  for (const n of p.notes) out.push(`  ${n}`);
  const table = new Table({
    head: ["unit", "label", "ops", "outcome", "directory table", "page table"],
    style: { head: [], border: [], compact: true },
    chars: {
      top: "",
      "top-mid": "",
      "top-left": "",
      "top-right": "",
      bottom: "",
      "bottom-mid": "",
      "bottom-left": "",
      "bottom-right": "",
      left: "",
      "left-mid": "",
      mid: "",
      "mid-mid": "",
      right: "",
      "right-mid": "",
      middle: "  ",
    },
  });
  for (const i of p.instances) {
    table.push([i.unit, i.label, i.ops ?? "-", outcomeCell(i), where(i.dt), where(i.pt)]);
  }
  out.push(table.toString().split("\n").map((l) => l.trimEnd()).join("\n"));

  const byCondition = new Map<string, string[]>();
  for (const i of p.instances) {
    if (i.condition) {
      byCondition.set(i.condition, [...(byCondition.get(i.condition) ?? []), i.unit]);
    }
  }
  if (byCondition.size) {
    out.push("", "Conditions:");
    for (const [c, units] of byCondition) out.push(`  ${units.join(", ")}: ${c}`);
  }
  const workloads = p.instances.filter((i) => i.workload);
  if (workloads.length) {
    out.push("", "Workload:");
    for (const i of workloads) {
      const w = i.workload!;
      const lat = w.latency
        ? `, ${w.latency.lowMs}–${w.latency.highMs} ms (baseline ${w.latency.baselineMs} ms)`
        : "";
      out.push(`  ${w.name} through ${i.unit}: ${w.verdict}${lat}`);
    }
  }
  const lines = p.instances.flatMap((i) => i.expectedLines.map((l) => ({ i, l })));
  out.push("", "Expected kernel log lines:");
  if (lines.length === 0) out.push("  (none: no IOMMU fault or probe failure is predicted)");
  for (const { l } of lines) out.push(`  ${l.template}  [${l.confidence}]`);

  out.push("", "Explanation:");
  const steps = (title: string, list: Prediction["explanation"]) => {
    out.push(`  ${title}`);
    list.forEach((s, n) => {
      out.push(`    ${n + 1}. ${s.rule}: ${s.conclusion}`);
      if (opts.explain) { for (const f of s.facts) out.push(`         - ${factText(f)}`); }
    });
  };
  steps("all instances", p.explanation);
  for (const i of p.instances) steps(`${i.unit} ${i.label}: ${outcomeCell(i)}`, i.explanation);
  if (!opts.explain) out.push("", "(--explain lists the facts behind each step, with sources)");
  return out.join("\n");
}
