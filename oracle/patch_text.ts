/**
 * Read a patch as it travels: `git format-patch` output, a mailbox of several patches of a series,
 * a plain unified diff, or a patch quoted in a mail reply (`> ` prefixes, the `diff --git` line
 * wrapped by the mail client, the leading space of context lines stripped, blank context lines
 * lost). The text is first normalised into a clean unified diff (quote prefixes removed, wrapped
 * headers joined, context lines re-prefixed, each hunk cut at its declared length and its header
 * recounted when the quoted copy lost lines), then parsed with `parse-diff`.
 *
 * Pure: no I/O. Limitation: in a quoted copy, a context line whose code itself begins with `+`
 * or `-` cannot be told from an added or removed line; such lines are read as changes.
 *
 * @module
 */
import parseDiff from "parse-diff";

/** One line of a hunk. `text` is the line without its `+`/`-`/space prefix. */
export interface HunkLine {
  /** `context`, `add` (`+`) or `del` (`-`). */
  kind: "context" | "add" | "del";
  /** The line without its prefix. */
  text: string;
}

/** One hunk of one file. */
export interface Hunk {
  /** The `@@ … @@` header as recounted, with its function context. */
  header: string;
  /** The function context after the second `@@` (e.g. `static struct rk_iommu_ops … = {`). */
  context: string;
  /** First line of the hunk in the old file (1-based). */
  oldStart: number;
  /** First line of the hunk in the new file (1-based). */
  newStart: number;
  /** The hunk's lines, in order. */
  lines: HunkLine[];
}

/** One file a patch touches. */
export interface PatchFile {
  /** Path after the patch (`drivers/iommu/rockchip-iommu.c`); the old path for a deletion. */
  path: string;
  /** True when the patch creates the file. */
  isNew: boolean;
  /** True when the patch deletes the file. */
  deleted: boolean;
  /** The file's hunks, in order. */
  hunks: Hunk[];
}

/** One patch of a series (one mail, or the whole text when it has no mail headers). */
export interface ParsedPatch {
  /** `Subject:` of the mail (`[PATCH 1/2] …`), or `(no subject)`. */
  subject: string;
  /** Where the text came from (a file name), for reports. */
  source: string;
  /** Files the patch touches, in diff order. */
  files: PatchFile[];
  /** What normalisation had to do or could not do (quoted form, truncated hunks). */
  notes: string[];
}

/** The text holds no unified diff, or a diff that cannot be read. */
export class PatchTextError extends Error {
  /**
   * A patch text that cannot be read.
   *
   * @param message what is wrong with the text, in one line
   * @param hint what the user should pass instead (the CLI prints it and exits 2)
   */
  constructor(message: string, readonly hint: string) {
    super(message);
    this.name = "PatchTextError";
  }
}

/** Largest patch text accepted (a whole mailbox of a long series stays well below). */
export const MAX_PATCH_CHARS = 8 * 1024 * 1024;

const HUNK_RE = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$/;
const DIFF_GIT_RE = /^diff --git /;
const QUOTED_START_RE = /^((?:>[ \t]?)*)(?:diff --git a\/|--- a\/|Index: |@@ -\d)/;

/** Count the `>` of a quote prefix. */
function quoteDepth(prefix: string): number {
  return (prefix.match(/>/g) ?? []).length;
}

/** Remove `depth` quote levels; `null` when the line is quoted less deeply (outside the patch). */
function unquote(line: string, depth: number): string | null {
  if (depth === 0) return line;
  let i = 0, seen = 0;
  while (seen < depth) {
    while (line[i] === " " || line[i] === "\t") i++;
    if (line[i] !== ">") return null;
    i++;
    seen++;
  }
  if (line[i] === " ") i++;
  return line.slice(i);
}

interface Segment {
  subject: string;
  lines: string[];
}

/**
 * Normalise patch text into clean unified-diff segments, one per mail of a series. Exposed for
 * tests; `parsePatchText` is the entry point.
 */
export function normalisePatchText(text: string): { segments: Segment[]; notes: string[] } {
  if (text.length > MAX_PATCH_CHARS) {
    throw new PatchTextError(
      `the patch text is ${text.length} characters, more than ${MAX_PATCH_CHARS}`,
      "pass the patch mails of one series, not a whole archive",
    );
  }
  const raw = text.replace(/\r\n?/g, "\n").split("\n");
  const notes: string[] = [];
  // Quote depth of the first diff header: a reply quotes the patch at some depth.
  let depth = 0;
  for (const l of raw) {
    const m = QUOTED_START_RE.exec(l);
    if (m) {
      depth = quoteDepth(m[1]);
      break;
    }
  }
  if (depth > 0) notes.push(`patch read from a mail reply, quoted ${depth} level(s) deep`);

  const segments: Segment[] = [];
  let cur: Segment = { subject: "(no subject)", lines: [] };
  const flush = () => {
    if (cur.lines.some((l) => HUNK_RE.test(l))) segments.push(cur);
  };
  for (let i = 0; i < raw.length; i++) {
    const subj = /^Subject:\s*(.*)$/.exec(raw[i]);
    // A folded Subject (its continuation's leading space may have been stripped in a quote).
    if (subj && raw[i + 1] && !/^[\w-]+:/.test(raw[i + 1]) && !/^\s*$/.test(raw[i + 1])) {
      subj[1] = `${subj[1].trimEnd()} ${raw[i + 1].trim()}`;
      i++;
    }
    if (subj && !cur.lines.some((l) => HUNK_RE.test(l))) {
      cur.subject = subj[1].trim();
      continue;
    }
    if (subj) {
      flush();
      cur = { subject: subj[1].trim(), lines: [] };
      continue;
    }
    let line = unquote(raw[i], depth);
    if (line === null) continue;
    // A mail client wrapped `diff --git a/X b/X` after a/X.
    if (/^diff --git a\/\S+$/.test(line)) {
      const next = unquote(raw[i + 1] ?? "", depth);
      if (next !== null && /^b\/\S+$/.test(next.trim())) {
        line = `${line} ${next.trim()}`;
        i++;
        const note = "a diff --git line wrapped by the mail client was joined";
        if (!notes.includes(note)) notes.push(note);
      }
    }
    const h = HUNK_RE.exec(line);
    if (!h) {
      cur.lines.push(line);
      continue;
    }
    // Read the hunk body up to its declared length.
    const oldWant = h[2] === undefined ? 1 : Number(h[2]);
    const newWant = h[4] === undefined ? 1 : Number(h[4]);
    let oldN = 0, newN = 0;
    const body: string[] = [];
    let j = i + 1;
    for (; j < raw.length && (oldN < oldWant || newN < newWant); j++) {
      const b = unquote(raw[j], depth);
      if (b === null) break;
      if (HUNK_RE.test(b) || DIFF_GIT_RE.test(b) || /^Subject:/.test(raw[j])) break;
      if (b.startsWith("\\")) {
        body.push(b);
        continue;
      }
      let kind = b[0];
      let rest = b.slice(1);
      if (kind !== "+" && kind !== "-" && kind !== " ") {
        // Leading space stripped (quoted copy) or a blank context line with its space removed.
        kind = " ";
        rest = b;
      }
      if (kind === "-" && rest.startsWith("-- ") && oldN >= oldWant) break;
      if (kind !== "+") oldN++;
      if (kind !== "-") newN++;
      body.push(kind + rest);
    }
    if (oldN !== oldWant || newN !== newWant) {
      notes.push(
        `hunk ${h[0].replace(/ @@.*$/, " @@")} is incomplete in this copy ` +
          `(${oldN} of ${oldWant} old lines, ${newN} of ${newWant} new lines): read as far as it goes`,
      );
    }
    cur.lines.push(`@@ -${h[1]},${oldN} +${h[3]},${newN} @@${h[5]}`, ...body);
    i = j - 1;
  }
  flush();
  return { segments, notes };
}

/**
 * Parse patch text (format-patch mail, mailbox, plain diff or a quoted reply) into patches.
 * Throws PatchTextError when no hunk can be found.
 */
export function parsePatchText(text: string, source: string): ParsedPatch[] {
  const { segments, notes } = normalisePatchText(text);
  if (segments.length === 0) {
    throw new PatchTextError(
      `${source} holds no unified diff (no "@@ -a,b +c,d @@" hunk found)`,
      "pass a patch as `git format-patch` writes it, a mailbox of such patches, or a mail " +
        "that quotes one",
    );
  }
  return segments.map((seg) => {
    const files = parseDiff(seg.lines.join("\n") + "\n");
    const out: PatchFile[] = [];
    for (const f of files) {
      const to = strip(f.to), from = strip(f.from);
      const path = to && to !== "/dev/null" ? to : from;
      if (!path) continue;
      out.push({
        path,
        isNew: f.new === true || from === "/dev/null",
        deleted: f.deleted === true || to === "/dev/null",
        hunks: f.chunks.map((c) => ({
          header: c.content,
          context: (HUNK_RE.exec(c.content)?.[5] ?? "").trim(),
          oldStart: c.oldStart,
          newStart: c.newStart,
          lines: c.changes.map((ch): HunkLine => ({
            kind: ch.type === "add" ? "add" : ch.type === "del" ? "del" : "context",
            text: ch.content.slice(1),
          })),
        })),
      });
    }
    if (out.length === 0) {
      throw new PatchTextError(
        `${source}: the patch "${seg.subject}" has hunks but no file names`,
        "the diff needs its ---/+++ (or diff --git) lines",
      );
    }
    return { subject: seg.subject, source, files: out, notes: [...notes] };
  });
}

function strip(p: string | undefined): string | undefined {
  if (!p) return undefined;
  return p.replace(/^[ab]\//, "");
}
