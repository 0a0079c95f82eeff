/**
 * Render a blast radius (oracle/blast.ts) as text or Markdown: per board, one table whose rows are
 * runs of consecutive releases with the same result and whose columns are the board's IOMMU
 * instances (`before → after CLASS`), then every changed fact per instance, then what the patch
 * holds that the model does not represent.
 *
 * @module
 */
import type { BlastCell, ChangeClass, InstanceDelta } from "../../oracle/blast.ts";
import { classCounts } from "../../oracle/blast.ts";
import type { NotModelled } from "../../oracle/patch_model.ts";

/** The whole report's inputs. */
export interface BlastReport {
  /** Heading of the report (what was assessed). */
  title: string;
  /** The patches (subjects) or patch-set names assessed, in order. */
  patches: string[];
  /** One cell per board × release, boards then releases in the order given. */
  cells: BlastCell[];
  /** Changed lines of the patches the model does not represent. */
  notModelled: NotModelled[];
  /** Notes on reading the patch text (quoted form, incomplete hunks). */
  notes: string[];
  /** True for named patch sets (models themselves: nothing is left unmodelled). */
  namedSets?: boolean;
}

function cellKey(c: BlastCell): string {
  const why = c.why.map((w) => w.replaceAll(c.release, "<release>"));
  return JSON.stringify([c.status, why, c.instances.map((i) => [i.class, i.changed])]);
}

/** Runs of consecutive releases (per board) with identical results. */
export function releaseRuns(
  cells: BlastCell[],
): { board: string; releases: string[]; cell: BlastCell }[] {
  const runs: { board: string; releases: string[]; cell: BlastCell }[] = [];
  for (const c of cells) {
    const last = runs[runs.length - 1];
    if (last && last.board === c.board && cellKey(last.cell) === cellKey(c)) {
      last.releases.push(c.release);
    } else runs.push({ board: c.board, releases: [c.release], cell: c });
  }
  return runs;
}

function span(releases: string[]): string {
  return releases.length === 1 ? releases[0] : `${releases[0]}–${releases[releases.length - 1]}`;
}

function cellText(d: InstanceDelta): string {
  const o = d.before.outcome === d.after.outcome
    ? d.after.outcome
    : `${d.before.outcome} → ${d.after.outcome}`;
  return d.class === "UNCHANGED" ? o : `${o} ${d.class}`;
}

function fmt(v: unknown): string {
  if (v === null || v === undefined) return "-";
  if (Array.isArray(v)) return v.join(", ");
  return String(v);
}

function factLine(d: InstanceDelta): string {
  const facts = d.changed.filter((c) => c.fact !== "outcome")
    .map((c) => `${c.fact} ${fmt(c.before)} → ${fmt(c.after)}`);
  const extra = d.constraints.length ? ` [constrained: ${d.constraints.join("; ")}]` : "";
  return `${d.unit} ${d.label}: ${cellText(d)}${
    facts.length ? `; ${facts.join("; ")}` : ""
  }${extra}`;
}

function table(head: string[], rows: string[][], markdown: boolean): string[] {
  if (markdown) {
    const esc = (s: string) => s.replaceAll("|", "\\|");
    return [
      `| ${head.map(esc).join(" | ")} |`,
      `|${head.map(() => "---").join("|")}|`,
      ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
    ];
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((x, i) => x.padEnd(w[i])).join("  ").trimEnd();
  return [line(head), ...rows.map(line)];
}

/** Render the report. */
export function renderBlastReport(r: BlastReport, opts: { markdown?: boolean } = {}): string {
  const md = opts.markdown === true;
  const out: string[] = [];
  const h = (level: number, s: string) => out.push(md ? `${"#".repeat(level)} ${s}` : s, "");
  h(1, r.title);
  out.push(`Patches: ${r.patches.join("; ")}`);
  const counts = classCounts(r.cells);
  out.push(
    "Instances (board × release × IOMMU): " +
      (Object.keys(counts) as ChangeClass[]).map((k) => `${counts[k]} ${k}`).join(", "),
    "",
  );
  for (const n of r.notes) out.push(`${md ? "- " : ""}note: ${n}`);
  if (r.notes.length) out.push("");
  const boards = [...new Set(r.cells.map((c) => c.board))];
  for (const board of boards) {
    const runs = releaseRuns(r.cells.filter((c) => c.board === board));
    h(2, `Board ${board}`);
    const units = runs.find((x) => x.cell.instances.length)?.cell.instances ?? [];
    const head = ["releases", ...units.map((u) => `${u.unit} ${u.label}`)];
    const rows = runs.map((x) => [
      span(x.releases),
      ...(x.cell.status === "applied"
        ? units.map((u) => {
          const d = x.cell.instances.find((i) => i.unit === u.unit);
          return d ? cellText(d) : "-";
        })
        : units.map(() => x.cell.status)),
    ]);
    out.push(...table(head, rows, md), "");
    for (const x of runs) {
      const changed = x.cell.instances.filter((i) => i.class !== "UNCHANGED");
      if (x.cell.status !== "applied") {
        out.push(
          `${md ? "- " : ""}${span(x.releases)}: ${x.cell.status}: ${x.cell.why.join("; ")}`,
        );
        continue;
      }
      for (const w of x.cell.why) out.push(`${md ? "- " : ""}${span(x.releases)}: ${w}`);
      for (const d of changed) out.push(`${md ? "- " : ""}${span(x.releases)}: ${factLine(d)}`);
    }
    out.push("");
  }
  if (r.namedSets) return out.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n";
  h(2, "Not modelled");
  if (r.notModelled.length === 0) out.push("Every changed line of the patch is in the model.");
  for (const n of r.notModelled) {
    out.push(`${md ? "- " : ""}${n.file} ${n.hunk}: ${n.reason}`);
    const body = n.lines.map((l) => `    ${l}`);
    out.push(...(md ? ["", "  ```diff", ...n.lines.map((l) => `  ${l}`), "  ```"] : body));
  }
  return out.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n";
}
