/**
 * Text from users and user files (option values, board files, device trees) made safe to print
 * on a terminal: control characters escaped so that nothing read from a file can move the
 * cursor, recolour or retitle the terminal, or forge an extra line; long values cut.
 *
 * @module
 */

/** Longest user value {@link shown} quotes in full (characters). */
export const MAX_SHOWN_CHARS = 60;
/** Longest line {@link terminalSafe} prints in full (characters). */
export const MAX_LINE_CHARS = 400;

/**
 * Characters a terminal may act on: C0 controls (with `\n` and `\t` handled by the caller), DEL,
 * C1 controls (0x80–0x9f, e.g. the 8-bit CSI 0x9b), the Unicode line and paragraph separators and
 * the bidirectional overrides and isolates (which reorder what a reader sees).
 */
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeOne(c: string): string {
  switch (c) {
    case "\r":
      return "\\r";
    case "\x1b":
      return "\\e";
    case "\0":
      return "\\0";
  }
  const code = c.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

/**
 * Escape every control character of `text` as a visible `\xNN`, `\e`, `\r`, `\0` or `\uNNNN`.
 * Newlines and tabs are kept unless `keepNewlines` is false (then they become `\n` and `\t`).
 *
 * @example escapeControls("a\x1b[2Jb") === "a\\e[2Jb"
 */
export function escapeControls(text: string, keepNewlines = true): string {
  const out = text.replace(CONTROL, escapeOne);
  return keepNewlines ? out : out.replaceAll("\n", "\\n").replaceAll("\t", "\\t");
}

/**
 * A user value for a one-line message: in double quotes, control characters (newlines too)
 * escaped, and cut to `max` characters with the length of the whole when it is longer.
 *
 * @example shown("abc") === '"abc"'; shown("x".repeat(100)) === '"xxx…x…" (100 characters)'
 */
export function shown(value: string, max: number = MAX_SHOWN_CHARS): string {
  const chars = [...value];
  const cut = chars.length > max;
  const head = cut ? chars.slice(0, max).join("") : value;
  const body = escapeControls(head, false).replaceAll('"', '\\"');
  return cut ? `"${body}…" (${chars.length} characters)` : `"${body}"`;
}

/**
 * Text for a terminal: control characters escaped (newlines and tabs kept) and every line longer
 * than `maxLine` characters cut, saying how much was left out.
 */
export function terminalSafe(text: string, maxLine: number = MAX_LINE_CHARS): string {
  return escapeControls(text).split("\n").map((line) => {
    const chars = [...line];
    return chars.length <= maxLine
      ? line
      : `${chars.slice(0, maxLine).join("")}… (${chars.length - maxLine} more characters)`;
  }).join("\n");
}

/**
 * JSON for a terminal: `JSON.stringify` already escapes C0 controls; this also escapes DEL, the
 * C1 controls, the line separators and the bidirectional controls as `\uNNNN` (still valid JSON
 * that parses to the same value).
 */
export function terminalJson(value: unknown, indent = 2): string {
  return JSON.stringify(value, null, indent).replace(
    CONTROL,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
