/**
 * Load board definitions (`boards/*.yaml`) and refuse a bad file with the file, line, column and
 * field of every problem in it, plus what to do about each.
 *
 * Built-in boards live next to this module; users may add directories of their own, which are
 * searched first so that a lab can override a shipped board with its own file of the same id.
 *
 * Every failure of parsing or validation, whatever the input (empty, binary, huge, deeply nested,
 * an alias bomb), is a `BoardFileError`; nothing else escapes `parseBoard` or `loadBoardFile`.
 *
 * @module
 */

import { basename, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node as YamlNode,
  parseDocument,
  YAMLError,
} from "yaml";
import type { z } from "zod";
import { UserInputError } from "../runner/errors.ts";
import { shown } from "../runner/safe_text.ts";
import {
  BOARD_ID_PATTERN,
  BoardSchema,
  type BoardSpec,
  describeInput,
  KNOWN_KEYS,
} from "./schema.ts";

/** Largest board file accepted (board files are a few kilobytes). */
export const MAX_BOARD_FILE_BYTES = 1024 * 1024;
/** Most alias expansions accepted while reading a file (guards against alias bombs). */
export const MAX_ALIAS_COUNT = 100;
/** File name extensions of board files. */
export const BOARD_FILE_EXTENSIONS: readonly string[] = [".yaml", ".yml"];

/** The directory of the built-in boards: this module's own directory. */
export const BUILTIN_BOARDS_DIR: string | undefined = new URL(".", import.meta.url).protocol ===
    "file:"
  ? fileURLToPath(new URL(".", import.meta.url))
  : undefined;

/** One problem in a board file. `line` and `column` are 1-based; 0 means "no position". */
export interface BoardIssue {
  /** The file as the user named it. */
  file: string;
  /** 1-based line, 0 for no position. */
  line: number;
  /** 1-based column, 0 for no position. */
  column: number;
  /** Dotted path of the field, e.g. `ram.banks[1].end`; empty for the file as a whole. */
  field: string;
  /** What is wrong, e.g. `expected a hex address like 0x100000000 (got "0x1zz")`. */
  message: string;
  /** What to do about it. */
  hint: string;
}

/** Format one issue as `file:line:col: field: message`. */
export function formatBoardIssue(issue: BoardIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.column}` : issue.file;
  return issue.field ? `${where}: ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}

/**
 * A board file (or board directory) that cannot be used. Carries every problem found, sorted by
 * line; `file`, `line`, `column`, `field` and `hint` are those of the first one. The message
 * lists all of them, one per line.
 */
export class BoardFileError extends UserInputError {
  /** File of the first issue. */
  readonly file: string;
  /** Line of the first issue (1-based; 0 for no position). */
  readonly line: number;
  /** Column of the first issue (1-based; 0 for no position). */
  readonly column: number;
  /** Field path of the first issue (empty for the file as a whole). */
  readonly field: string;
  /** Every issue, sorted by file, line and column. */
  readonly issues: readonly BoardIssue[];

  /**
   * Every issue found (at least one).
   *
   * @throws {TypeError} when `issues` is empty.
   */
  constructor(issues: readonly BoardIssue[], options?: { cause?: unknown }) {
    if (issues.length === 0) throw new TypeError("BoardFileError needs at least one issue");
    const sorted = [...issues].sort((a, b) =>
      a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column
    );
    super(sorted.map(formatBoardIssue).join("\n"), combinedHint(sorted), options);
    const first = sorted[0];
    this.file = first.file;
    this.line = first.line;
    this.column = first.column;
    this.field = first.field;
    this.issues = sorted;
  }
}

function combinedHint(issues: readonly BoardIssue[]): string {
  if (issues.length === 1) return issues[0].hint;
  const lines = issues.filter((i) => i.hint !== "").map((i) => {
    const where = i.line > 0 ? `${basename(i.file)}:${i.line}` : basename(i.file);
    return `${where}${i.field ? ` ${i.field}` : ""}: ${i.hint}`;
  });
  return [`fix each problem (${issues.length}):`, ...lines].join("\n    ");
}

/** A board id that no board directory holds. */
export class UnknownBoardError extends UserInputError {
  constructor(readonly id: string, readonly known: readonly string[]) {
    super(
      `unknown board id ${shown(id)}` +
        (known.length > 0 ? `; known boards: ${known.join(", ")}` : "; no boards found"),
      [
        didYouMean(id, known),
        known.length > 0
          ? `use one of the known ids, or add ${id}.yaml to a board directory`
          : `add ${id}.yaml to a board directory`,
      ].filter((s) => s !== undefined).join(" "),
    );
  }
}

/** A board and the file it came from. */
export interface LoadedBoard {
  /** Board id (`rock-3b-8g`). */
  id: string;
  /** Path of the board file it was read from. */
  path: string;
  /** The validated board file. */
  board: BoardSpec;
}

type PathSegment = string | number;

/** `["ram", "banks", 1, "end"]` -> `ram.banks[1].end`. */
export function formatFieldPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out === "" ? seg : `.${seg}`;
  }
  return out;
}

function pathPattern(path: readonly PathSegment[]): string {
  return formatFieldPath(path.map((s) => (typeof s === "number" ? 0 : s))).replaceAll("[0]", "[]");
}

/** Edit distance (Levenshtein), for "did you mean" hints. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j] + 1,
        cur[j - 1] + 1,
        prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The candidates closest to `word` (ties kept), if close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string[] {
  const w = word.toLowerCase();
  let best: string[] = [];
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [[c], d];
    else if (d === bestDistance) best.push(c);
  }
  const limit = Math.max(1, Math.min(3, Math.floor(w.length / 3)));
  return bestDistance <= limit ? best : [];
}

/** `did you mean "a"?` / `did you mean "a" or "b"?`, or undefined when nothing is close. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const guesses = closest(word, candidates);
  if (guesses.length === 0) return undefined;
  return `did you mean ${guesses.map((g) => `"${g}"`).join(" or ")}?`;
}

function idFromFileName(fileName: string): string {
  const base = basename(fileName);
  const ext = extname(base);
  return BOARD_FILE_EXTENSIONS.includes(ext) ? base.slice(0, -ext.length) : base;
}

/** Locates fields of a parsed YAML document. */
class Locator {
  constructor(
    private readonly root: unknown,
    private readonly lines: LineCounter,
    private readonly textLength: number,
  ) {}

  pos(offset: number): { line: number; column: number } {
    const { line, col } = this.lines.linePos(Math.max(0, Math.min(offset, this.textLength)));
    return line === 0 ? { line: 1, column: 1 } : { line, column: col };
  }

  private static start(node: unknown): number | undefined {
    if (node !== null && typeof node === "object" && "range" in node) {
      const range = (node as YamlNode).range;
      if (Array.isArray(range)) return range[0];
    }
    return undefined;
  }

  /**
   * Walk `path`: returns the value node when every segment exists, else the deepest node
   * reached; `key` is the key node of the last mapping entry walked, `complete` whether the
   * whole path exists.
   */
  walk(path: readonly PathSegment[]): { node: unknown; key: unknown; complete: boolean } {
    let node: unknown = this.root;
    let key: unknown = undefined;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return { node, key, complete: false };
        key = pair.key;
        node = pair.value ?? pair.key;
      } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
        node = node.items[seg];
        key = undefined;
      } else {
        return { node, key, complete: false };
      }
    }
    return { node, key, complete: true };
  }

  /** Position of the value at `path`, or of the nearest thing that exists. */
  value(path: readonly PathSegment[]): { line: number; column: number } {
    const { node, key } = this.walk(path);
    const offset = isAlias(node) ? Locator.start(node) : Locator.start(node) ?? Locator.start(key);
    return this.pos(offset ?? 0);
  }

  /** Position of the key `name` in the mapping at `path`. */
  key(path: readonly PathSegment[], name: string): { line: number; column: number } {
    const { node: map } = this.walk(path);
    if (isMap(map)) {
      const pair = map.items.find((p) => isScalar(p.key) && String(p.key.value) === name);
      const offset = Locator.start(pair?.key);
      if (offset !== undefined) return this.pos(offset);
    }
    return this.value(path);
  }

  /**
   * Position for a field that is missing from the mapping at `parent`: the key of that mapping
   * when it has one (`ram:`), else the mapping's first entry.
   */
  missing(parent: readonly PathSegment[]): { line: number; column: number } {
    const { node, key, complete } = this.walk(parent);
    const offset = complete && key !== undefined ? Locator.start(key) : Locator.start(node);
    return this.pos(offset ?? 0);
  }
}

function hasPath(value: unknown, path: readonly PathSegment[]): boolean {
  let cur: unknown = value;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return false;
    if (!Object.hasOwn(cur, seg)) return false;
    cur = (cur as Record<PathSegment, unknown>)[seg];
  }
  return cur !== undefined;
}

const EXPECTED_WORDS: Readonly<Record<string, string>> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
};

const FORMAT_HINTS: Readonly<Record<string, string>> = {
  host_key_fingerprint:
    "run `ssh-keyscan -t ed25519 HOST | ssh-keygen -lf -` and copy the SHA256:... part",
  password_env:
    "name an environment variable that holds the password (password_env: ROCK3B_PASSWORD)",
  firmware_dir: "write the directory on the board where its firmware/SDK files are",
  id: "use lower-case letters and digits separated by single dashes, as in the file name",
  label: "copy the label from the device tree (the name before the colon: rknpu_mmu)",
  cpu: "use a qemu-system-aarch64 -cpu model name, e.g. cortex-a53",
};

/** Convert one zod issue into board issues (an unknown-keys issue gives one per key). */
function fromZodIssue(
  issue: z.core.$ZodIssue,
  file: string,
  raw: unknown,
  at: Locator,
): BoardIssue[] {
  const path = issue.path.filter((p): p is PathSegment => typeof p !== "symbol");
  const field = formatFieldPath(path);
  const make = (
    pos: { line: number; column: number },
    f: string,
    message: string,
    hint: string,
  ): BoardIssue => ({ file, line: pos.line, column: pos.column, field: f, message, hint });

  if (issue.code !== "unrecognized_keys" && issue.code !== "custom" && !hasPath(raw, path)) {
    const leaf = path.at(-1);
    return [
      make(
        at.missing(path.slice(0, -1)),
        field,
        "missing required field",
        typeof leaf !== "string"
          ? "add the missing value"
          : issue.code === "invalid_value"
          ? `add ${leaf}: one of ${issue.values.map(String).join(", ")}`
          : `add ${leaf}: ...; boards/rock-3b-8g.yaml shows every field`,
      ),
    ];
  }

  switch (issue.code) {
    case "unrecognized_keys": {
      const known = KNOWN_KEYS[pathPattern(path)] ?? [];
      return issue.keys.map((k) => {
        const hint = didYouMean(k, known) ??
          (known.length > 0
            ? `remove it; the keys allowed here are: ${known.join(", ")}`
            : "remove it");
        return make(at.key(path, k), formatFieldPath([...path, k]), `unknown key "${k}"`, hint);
      });
    }
    case "invalid_type": {
      const expected = EXPECTED_WORDS[issue.expected] ?? issue.expected;
      const got = describeInput(issue.input);
      return [
        make(at.value(path), field, `expected ${expected} (got ${got})`, `write ${expected} here`),
      ];
    }
    case "invalid_value": {
      const values = issue.values.map(String);
      const got = describeInput(issue.input);
      const guess = typeof issue.input === "string" ? didYouMean(issue.input, values) : undefined;
      return [
        make(
          at.value(path),
          field,
          `expected one of ${values.join(", ")} (got ${got})`,
          guess ?? `use one of ${values.join(", ")}`,
        ),
      ];
    }
    case "too_small": {
      const min = Number(issue.minimum);
      const message = issue.origin === "array"
        ? `expected at least ${min} item${min === 1 ? "" : "s"}`
        : issue.origin === "string"
        ? "must not be empty"
        : `expected a number ${issue.inclusive === false ? ">" : ">="} ${min} (got ${
          describeInput(issue.input)
        })`;
      return [make(at.value(path), field, message, "see boards/schema.ts for the allowed values")];
    }
    case "too_big": {
      const max = Number(issue.maximum);
      return [
        make(
          at.value(path),
          field,
          `expected at most ${max}${issue.origin === "array" ? " items" : ""} (got ${
            describeInput(issue.input)
          })`,
          "see boards/schema.ts for the allowed values",
        ),
      ];
    }
    case "custom": {
      const hint = typeof issue.params?.hint === "string" ? issue.params.hint : "";
      return [make(at.value(path), field, issue.message, hint)];
    }
    case "invalid_format": {
      const leaf = path.at(-1);
      // A password written where its variable's name belongs is never echoed.
      const got = leaf === "password_env"
        ? "a value that is not a name; not shown, it may be a password"
        : describeInput(issue.input);
      return [
        make(
          at.value(path),
          field,
          `${issue.message} (got ${got})`,
          (typeof leaf === "string" ? FORMAT_HINTS[leaf] : undefined) ??
            "see boards/rock-3b-8g.yaml for an example",
        ),
      ];
    }
    default:
      return [make(at.value(path), field, issue.message, "see boards/schema.ts")];
  }
}

function fileIssue(file: string, message: string, hint: string, line = 1): BoardIssue {
  return { file, line, column: line > 0 ? 1 : 0, field: "", message, hint };
}

/**
 * Parse and validate the text of a board file. `fileName` is used in messages and must name
 * the board: its base name without `.yaml` must equal the board's `id`.
 *
 * @throws {BoardFileError} listing every problem found, sorted by line.
 */
export function parseBoard(text: string, fileName: string): BoardSpec {
  if (text.length > MAX_BOARD_FILE_BYTES) {
    throw new BoardFileError([
      fileIssue(
        fileName,
        `file is ${text.length} characters; a board file is at most ${MAX_BOARD_FILE_BYTES}`,
        "check that this is a board file; board files are a few kilobytes",
      ),
    ]);
  }
  const lines = new LineCounter();
  let root: unknown;
  let raw: unknown;
  const issues: BoardIssue[] = [];
  try {
    const doc = parseDocument(text, {
      lineCounter: lines,
      prettyErrors: false,
      uniqueKeys: true,
      version: "1.2",
    });
    root = doc.contents;
    const at = new Locator(root, lines, text.length);
    if (doc.errors.length > 0) {
      for (const err of doc.errors) {
        const pos = at.pos(err.pos[0]);
        if (/call stack|stack overflow/i.test(err.message)) {
          issues.push({ ...readFailure(fileName, new RangeError(err.message)), ...pos });
          continue;
        }
        issues.push({
          file: fileName,
          line: pos.line,
          column: pos.column,
          field: "",
          message: `YAML syntax: ${err.message.split("\n")[0]}`,
          hint: err.code === "DUPLICATE_KEY"
            ? "remove or rename the repeated key"
            : err.code === "MULTIPLE_DOCS"
            ? "keep one board per file (remove the extra ---)"
            : "fix the YAML here (indentation, quoting, a missing ':' or closing bracket)",
        });
        // After a syntax error the parser's later errors follow from it (one unclosed `[` gave
        // hundreds): report the first; duplicate keys before it are independent and stay.
        if (err.code !== "DUPLICATE_KEY" && err.code !== "MULTIPLE_DOCS") break;
      }
      throw new BoardFileError(issues);
    }
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (err instanceof BoardFileError) throw err;
    throw new BoardFileError([readFailure(fileName, err)], { cause: err });
  }

  if (raw === null || raw === undefined) {
    throw new BoardFileError([
      fileIssue(
        fileName,
        "file is empty",
        "a board file is a YAML mapping with id, name, soc, description, ram, devicetree, " +
          "console and capabilities; copy boards/rock-3b-8g.yaml to start",
      ),
    ]);
  }

  const at = new Locator(root, lines, text.length);
  const expectedId = idFromFileName(fileName);
  if (raw !== null && typeof raw === "object" && !Array.isArray(raw)) {
    const id = (raw as Record<string, unknown>).id;
    if (typeof id === "string" && id !== expectedId) {
      const pos = at.value(["id"]);
      issues.push({
        file: fileName,
        line: pos.line,
        column: pos.column,
        field: "id",
        message: `id "${id}" differs from the file name "${basename(fileName)}"`,
        hint: BOARD_ID_PATTERN.test(id)
          ? `rename the file to ${id}.yaml, or set id: ${expectedId}`
          : `set id: ${expectedId}`,
      });
    }
  }

  let result: ReturnType<typeof BoardSchema.safeParse>;
  try {
    result = BoardSchema.safeParse(raw, { reportInput: true });
  } catch (err) {
    issues.push(readFailure(fileName, err));
    throw new BoardFileError(issues, { cause: err });
  }
  if (!result.success) {
    for (const issue of result.error.issues) issues.push(...fromZodIssue(issue, fileName, raw, at));
  }
  if (issues.length > 0 || !result.success) throw new BoardFileError(issues);
  return result.data;
}

/** A failure while reading the YAML (resource limits, stack exhaustion) as an issue. */
function readFailure(fileName: string, err: unknown): BoardIssue {
  if (err instanceof ReferenceError && /alias/i.test(err.message)) {
    return fileIssue(
      fileName,
      `too many alias expansions (more than ${MAX_ALIAS_COUNT})`,
      "board files need few YAML aliases (*name); write the values out instead",
    );
  }
  if (err instanceof RangeError) {
    return fileIssue(
      fileName,
      "the YAML is nested too deeply to read",
      "board files are a few levels deep; check that this is a board file",
    );
  }
  if (err instanceof YAMLError) {
    return fileIssue(fileName, `YAML: ${err.message.split("\n")[0]}`, "fix the YAML");
  }
  const message = err instanceof Error ? err.message : String(err);
  return fileIssue(
    fileName,
    `cannot read the file as YAML: ${message.split("\n")[0]}`,
    "check that this is a board file",
  );
}

/**
 * Read, parse and validate one board file.
 *
 * @throws {BoardFileError} when the file cannot be read, is too large, is not UTF-8 text, or
 * does not describe a valid board.
 */
export async function loadBoardFile(path: string): Promise<BoardSpec> {
  let bytes: Uint8Array;
  try {
    // stat, not open: opening a FIFO named like a board file would block.
    const info = await Deno.stat(path);
    if (!info.isFile) {
      const what = info.isDirectory
        ? "a directory"
        : info.isFifo
        ? "a FIFO"
        : info.isSocket
        ? "a socket"
        : "not a regular file";
      throw new BoardFileError([
        fileIssue(
          path,
          `is ${what}, not a board file`,
          "rename or remove it; a board file is a regular YAML file named <board id>.yaml",
          0,
        ),
      ]);
    }
    if (info.size > MAX_BOARD_FILE_BYTES) {
      throw new BoardFileError([
        fileIssue(
          path,
          `file is ${info.size} bytes; a board file is at most ${MAX_BOARD_FILE_BYTES}`,
          "check that this is a board file; board files are a few kilobytes",
          0,
        ),
      ]);
    }
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof BoardFileError) throw err;
    const reason = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : `cannot read: ${err instanceof Error ? err.message : String(err)}`;
    throw new BoardFileError([fileIssue(path, reason, "check the path and its permissions", 0)], {
      cause: err,
    });
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    throw new BoardFileError([
      fileIssue(path, "file is not UTF-8 text", "board files are YAML text; check the path"),
    ], { cause: err });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return parseBoard(text, path);
}

async function boardFilesIn(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  try {
    for await (const entry of Deno.readDir(dir)) {
      // Anything named like a board file is one: a directory or FIFO called <id>.yaml is
      // refused by name when it is loaded, not silently skipped.
      const ext = extname(entry.name);
      if (!BOARD_FILE_EXTENSIONS.includes(ext)) continue;
      const id = entry.name.slice(0, -ext.length);
      if (!files.has(id)) files.set(id, join(dir, entry.name));
    }
  } catch (err) {
    throw new BoardFileError([
      fileIssue(
        dir,
        err instanceof Deno.errors.NotFound
          ? "board directory does not exist"
          : `cannot read board directory: ${err instanceof Error ? err.message : String(err)}`,
        "check the board directory path",
        0,
      ),
    ], { cause: err });
  }
  return files;
}

function searchDirs(dirs: readonly string[]): string[] {
  const all = BUILTIN_BOARDS_DIR === undefined ? [...dirs] : [...dirs, BUILTIN_BOARDS_DIR];
  return [...new Set(all)];
}

/**
 * Load every board file of one directory (default: the built-in boards), sorted by id.
 *
 * @throws {BoardFileError} with the problems of every bad file in the directory.
 */
export async function listBoards(dir: string | undefined = BUILTIN_BOARDS_DIR): Promise<
  LoadedBoard[]
> {
  if (dir === undefined) return [];
  const files = await boardFilesIn(dir);
  const boards: LoadedBoard[] = [];
  const issues: BoardIssue[] = [];
  for (const [id, path] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    try {
      boards.push({ id, path, board: await loadBoardFile(path) });
    } catch (err) {
      if (!(err instanceof BoardFileError)) throw err;
      issues.push(...err.issues);
    }
  }
  if (issues.length > 0) throw new BoardFileError(issues);
  return boards;
}

/**
 * Find and load the board `id`. The user directories `dirs` are searched in order, then the
 * built-in boards, so a user file overrides a shipped board of the same id. Only the matching
 * file is parsed: a broken unrelated file does not stop the search.
 *
 * @throws {UnknownBoardError} listing the known ids when no directory holds `id`.
 * @throws {BoardFileError} when the board file is bad or a directory cannot be read.
 */
export async function findBoard(id: string, dirs: readonly string[] = []): Promise<LoadedBoard> {
  const known = new Set<string>();
  for (const dir of searchDirs(dirs)) {
    const files = await boardFilesIn(dir);
    const path = BOARD_ID_PATTERN.test(id) ? files.get(id) : undefined;
    if (path !== undefined) return { id, path, board: await loadBoardFile(path) };
    for (const k of files.keys()) known.add(k);
  }
  throw new UnknownBoardError(id, [...known].sort());
}
