/**
 * Render the atlas (runner/atlas.ts) as Markdown or as one self-contained HTML file (inline CSS,
 * no scripts, no external assets). Both come from the same document model, so they say the same.
 *
 * @module
 */
import { type DtbGroup, groupDtbs } from "../../oracle/atlas.ts";
import { OUTCOMES } from "../../oracle/types.ts";
import type { Atlas, AtlasRelease } from "../atlas.ts";

type Block =
  | { kind: "h"; level: number; text: string }
  | { kind: "p"; text: string }
  | { kind: "list"; items: string[] }
  | { kind: "table"; head: string[]; rows: string[][] };

const hex = (x: number) => "0x" + x.toString(16);

function releaseTitle(r: AtlasRelease): string {
  return `debian:${r.suite} — ${r.package} ${r.version} (driver facts of ${r.kb})`;
}

function groupBlocks(r: AtlasRelease, g: DtbGroup, sizes: number[]): Block[] {
  const models = g.dtbs.map((name) => {
    const d = r.dtbs.find((x) => x.name === name);
    return d?.model ? `${name} (${d.model})` : name;
  });
  const rows = g.nodes.map((n) => [
    `${n.unit} ${n.label}`,
    n.compatible.join(", "),
    n.status,
    ...sizes.map((s) => g.outcomes?.[String(s)]?.[n.unit] ?? "-"),
  ]);
  return [
    { kind: "p", text: `${g.soc}, ${g.dtbs.length} DTB(s): ${models.join("; ")}` },
    g.nodes.length
      ? {
        kind: "table",
        head: ["IOMMU", "compatible", "status", ...sizes.map((s) => `${s} GB`)],
        rows,
      }
      : { kind: "p", text: "No IOMMU node that rk_iommu binds." },
  ];
}

/** The atlas as a list of blocks (headings, paragraphs, lists, tables). */
export function atlasBlocks(a: Atlas): Block[] {
  const b: Block[] = [];
  b.push({
    kind: "h",
    level: 1,
    text: "Atlas of Rockchip RK356x and RK3588 device trees in Debian kernels",
  });
  b.push({
    kind: "p",
    text:
      "Per Debian kernel suite: every RK3566/RK3568/RK3588(S) DTB the kernel package ships, its " +
      "IOMMU nodes that rk_iommu binds (label, compatible, status), and the oracle's outcome per " +
      "RAM size. DTBs with the same IOMMU nodes and outcomes share one table. Releases are in " +
      "kernel-version order; each lists what changed from the one before.",
  });
  b.push({ kind: "h", level: 2, text: "Releases" });
  b.push({
    kind: "table",
    head: ["suite", "kernel package", "version", "driver facts", "DTBs", "changes from previous"],
    rows: a.releases.map((r) => [
      `debian:${r.suite}`,
      r.package,
      r.version,
      r.kb,
      String(r.dtbs.length),
      r.previous ? `${r.changes.length} vs debian:${r.previous}` : "(oldest)",
    ]),
  });
  if (a.missing.length) {
    b.push({ kind: "p", text: "Suites not in the atlas:" });
    b.push({ kind: "list", items: a.missing.map((m) => `debian:${m.suite}: ${m.why}`) });
  }
  b.push({ kind: "h", level: 2, text: "RAM layouts" });
  b.push({
    kind: "table",
    head: ["SoC family", "size", "banks", "source"],
    rows: a.layouts.map((l) => [
      l.family,
      `${l.sizeGb} GB${l.generalised ? " (generalised)" : ""}`,
      l.banks.map((x) => `[${hex(x.start)}, ${hex(x.end)})`).join(" "),
      l.source,
    ]),
  });
  for (const r of a.releases) {
    b.push({ kind: "h", level: 2, text: releaseTitle(r) });
    if (r.previous) {
      b.push({ kind: "h", level: 3, text: `Changes from debian:${r.previous}` });
      const items = r.changes.map((c) =>
        c.kind === "changed"
          ? `${c.dtb}: ${[...c.nodes, ...c.outcomes].join("; ")}`
          : `${c.dtb} ${c.kind}`
      );
      b.push(items.length ? { kind: "list", items } : { kind: "p", text: "None." });
    }
    if (r.unreadable.length) {
      b.push({ kind: "list", items: r.unreadable.map((u) => `${u.dtb} not read: ${u.why}`) });
    }
    const groups = groupDtbs(r.dtbs, r.outcomes);
    for (const fam of ["rk3566", "rk3568", "rk3588", "rk3588s"]) {
      const gs = groups.filter((g) => g.soc === fam);
      if (!gs.length) continue;
      b.push({
        kind: "h",
        level: 3,
        text: `${fam.toUpperCase()} (${gs.reduce((n, g) => n + g.dtbs.length, 0)} DTBs)`,
      });
      for (const g of gs) b.push(...groupBlocks(r, g, a.sizesGb));
    }
  }
  return b;
}

/** Markdown. */
export function renderAtlasMarkdown(a: Atlas): string {
  const esc = (s: string) => s.replaceAll("|", "\\|");
  const out: string[] = [];
  for (const x of atlasBlocks(a)) {
    if (x.kind === "h") out.push(`${"#".repeat(x.level)} ${x.text}`, "");
    else if (x.kind === "p") out.push(x.text, "");
    else if (x.kind === "list") out.push(...x.items.map((i) => `- ${i}`), "");
    else {
      out.push(
        `| ${x.head.map(esc).join(" | ")} |`,
        `|${x.head.map(() => "---").join("|")}|`,
        ...x.rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
        "",
      );
    }
  }
  return out.join("\n").trimEnd() + "\n";
}

function html(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:110em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:left;vertical-align:top}th{background:#f2f2f2}.OK{background:#d9f2d9}
.BUS_ERROR,.PAGE_FAULT,.WRONG_PAGE,.PROBE_FAILED{background:#f7c9c9}.UNCERTAIN{background:#fbeec2}
.DISABLED{color:#888}h2{border-bottom:1px solid #ccc;margin-top:2em}`;

const OUTCOME_WORDS = new Set<string>(OUTCOMES);

/** One self-contained HTML file. */
export function renderAtlasHtml(a: Atlas): string {
  const out = [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    "<title>rkhil atlas</title>",
    `<style>${CSS}</style></head><body>`,
  ];
  for (const x of atlasBlocks(a)) {
    if (x.kind === "h") out.push(`<h${x.level}>${html(x.text)}</h${x.level}>`);
    else if (x.kind === "p") out.push(`<p>${html(x.text)}</p>`);
    else if (x.kind === "list") {
      out.push(`<ul>${x.items.map((i) => `<li>${html(i)}</li>`).join("")}</ul>`);
    } else {
      const cell = (c: string) =>
        OUTCOME_WORDS.has(c) ? `<td class="${c}">${c}</td>` : `<td>${html(c)}</td>`;
      out.push(
        "<table><thead><tr>" + x.head.map((h) => `<th>${html(h)}</th>`).join("") +
          "</tr></thead><tbody>" +
          x.rows.map((r) => `<tr>${r.map(cell).join("")}</tr>`).join("") + "</tbody></table>",
      );
    }
  }
  out.push("</body></html>");
  return out.join("\n") + "\n";
}
