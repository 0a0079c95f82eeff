/**
 * The per-release report of what each kernel release changes for a board, as a terminal text
 * or Markdown: for every release where an IOMMU outcome or a driver fact changed, the outcome
 * changes (regression, fix) and the driver facts behind them with their sources.
 *
 * @module
 */
import type { ReleaseStep } from "../../oracle/changes.ts";

function show(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** Render a release timeline. `markdown` gives a document; otherwise plain text. */
export function renderReleaseReport(
  title: string,
  steps: ReleaseStep[],
  opts: { markdown?: boolean } = {},
): string {
  const md = opts.markdown ?? false;
  const note = "Each release stands for its stable series as distributions ship it: long-term " +
    "series (5.15, 6.1, …) carry backports that the short-lived series after them lack.";
  const out: string[] = [md ? `# ${title}` : title, "", note, ""];
  const first = steps[0];
  if (!first) return out.join("\n");
  const units = Object.keys(first.outcomes);
  const summary = (s: ReleaseStep) => units.map((u) => `${u} ${s.outcomes[u] ?? "-"}`).join(", ");
  out.push(
    md
      ? `Baseline **${first.release}**: ${summary(first)}.`
      : `baseline ${first.release}: ${summary(first)}`,
  );
  let any = false;
  for (const s of steps.slice(1)) {
    if (s.changes.length === 0 && s.facts.length === 0) continue;
    any = true;
    out.push(
      "",
      md ? `## ${s.release} (from ${s.previous})` : `${s.release} (from ${s.previous}):`,
    );
    if (s.changes.length === 0) {
      out.push(md ? "No outcome changes." : "  no outcome changes");
    }
    for (const c of s.changes) {
      const word = c.kind.toUpperCase();
      const text = `${word}: ${c.unit} ${c.label}: ${c.from} → ${c.to}` +
        (c.condition ? ` (${c.condition})` : "");
      out.push(
        md
          ? `- **${word}** \`${c.unit}\` ${c.label}: ${c.from} → ${c.to}` +
            (c.condition ? ` (${c.condition})` : "")
          : `  ${text}`,
      );
    }
    if (s.facts.length) {
      out.push(md ? "\nDriver facts that changed:" : "  driver facts that changed:");
      for (const f of s.facts) {
        const src = `${f.fact.provenance.source} [${f.fact.provenance.confidence}]`;
        out.push(
          md
            ? `- ${f.path}: ${show(f.before)} → ${show(f.after)} (${src})`
            : `    ${f.path}: ${show(f.before)} -> ${show(f.after)}  (${src})`,
        );
      }
    }
  }
  if (!any) out.push("", md ? "No release changes anything here." : "no release changes anything");
  return out.join("\n");
}
