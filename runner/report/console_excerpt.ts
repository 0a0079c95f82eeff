/**
 * The first relevant console lines of a result that did not pass: from the run directory's
 * console capture of that kernel (`<run>/<kernel spec with ':' as '_'>/console.log`), the first
 * line that names the result's reason or a kernel fault (panic, Oops, BUG, rk_iommu, a call
 * trace), and the lines after it.
 *
 * @module
 */

/** Lines of a console capture. */
export interface ConsoleExcerpt {
  /** The console log the lines come from. */
  file: string;
  /** 1-based number of the first line. */
  line: number;
  /** The lines, as captured (control characters removed). */
  lines: string[];
}

const FAULT =
  /Kernel panic|Oops|BUG:|rk_iommu|Unable to handle|Internal error|Call trace|WARNING:|rkhil: session/;

/**
 * Pick the excerpt from a console text: the first line containing the reason's first line (or
 * its part after `kernel panic: `), else the first fault line; `max` lines from there.
 */
export function pickExcerpt(
  text: string,
  reason: string | null,
  max = 8,
): { line: number; lines: string[] } | undefined {
  // deno-lint-ignore no-control-regex
  const lines = text.split("\n").map((l) => l.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ""));
  const first = (reason ?? "").split("\n")[0];
  const needle = first.replace(/^[a-z ]+: /i, "").trim().slice(0, 60);
  let at = needle.length >= 8 ? lines.findIndex((l) => l.includes(needle)) : -1;
  if (at < 0) at = lines.findIndex((l) => FAULT.test(l));
  if (at < 0) return undefined;
  return { line: at + 1, lines: lines.slice(at, at + max) };
}

/** The console excerpt of `kernel`'s capture in `runDir`, when the capture exists. */
export function consoleExcerpt(
  runDir: string | null,
  kernel: string,
  reason: string | null,
  max = 8,
): ConsoleExcerpt | undefined {
  if (!runDir) return undefined;
  const file = `${runDir}/${kernel.replaceAll(":", "_").replaceAll("/", "_")}/console.log`;
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch {
    return undefined;
  }
  const e = pickExcerpt(text, reason, max);
  return e && { file, ...e };
}
