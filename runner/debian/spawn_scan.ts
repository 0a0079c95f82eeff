/**
 * A source scan for host programs: every place the project's TypeScript, shell scripts and
 * bootstrap start a program on the host, with the program when it is written in the source,
 * and every spawn that bypasses the installing helpers (`run()` of runner/debian/proc.ts,
 * `hostCommand()` of runner/debian/host_tools.ts).
 *
 * What counts as a spawn in TypeScript:
 * - `new Deno.Command(X, …)`: only Deno itself (`Deno.execPath()`, or a `deno` constant set
 *   from it) may be started this way outside proc.ts and host_tools.ts; anything else is a
 *   bypass (its program, when literal, is checked too);
 * - `hostCommand("x", …)`, and `run("x", […])` where `run` is proc.ts's;
 * - `ensureHostTools([...])` / `ensureHostTool("x")` with literal names;
 * - the script of a `"-c", SCRIPT` argument of those calls (a literal, a concatenation of
 *   literals, or a same-file `const` holding one or an array joined), parsed as shell;
 * - `Deno.run`, `node:child_process`, and `runResolved` outside the helpers: bypasses.
 * Shell scripts (the `rkhil` bootstrap, `.ci/run`, `scripts/*.sh`, any file with a shell
 * shebang) are parsed whole; their shebang interpreter counts.
 *
 * @module
 */

import { isDeclared, isHostProgram } from "./host_tools.ts";
import { shellPrograms } from "./shell_programs.ts";

/** One program the sources start on the host. */
export interface SpawnSite {
  /** Source file, as given to the scanner (relative to the project root). */
  file: string;
  /** 1-based line of the call. */
  line: number;
  /** The program as written (a name or a path). */
  program: string;
  /** How it is started (`run()`, `hostCommand()`, `sh -c`, `script`, ...). */
  via: string;
}

/** Something the scan refuses: an undeclared program or a spawn around the helpers. */
export interface ScanProblem {
  /** Source file, as given to the scanner (relative to the project root). */
  file: string;
  /** 1-based line of the offending call. */
  line: number;
  /** What is wrong and what to do, in one line. */
  message: string;
}

/** The result of a scan. */
export interface ScanResult {
  /** Every program start found. */
  sites: SpawnSite[];
  /** What the scan refuses; empty when the sources are clean. */
  problems: ScanProblem[];
}

/** Files allowed to call `new Deno.Command` for any program: the helpers themselves. */
const HELPER_FILES = ["runner/debian/proc.ts", "runner/debian/host_tools.ts"];

/** Directories never scanned, at any depth: tooling, run output, caches. */
const SKIP_DIRS = new Set([".git", ".tools", "node_modules", "runs", ".cache"]);
/** Top-level directories never scanned: what runs inside a target (init, the probe module). */
const SKIP_TOP = new Set(["target"]);

/** Replace comments with spaces (newlines kept), leaving strings, templates and regexes. */
export function blankComments(src: string): string {
  const out = src.split("");
  let i = 0;
  let prevSignificant = "";
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== "\n") out[k] = " ";
  };
  while (i < src.length) {
    const c = src[i];
    const d = src[i + 1];
    if (c === "/" && d === "/") {
      const end = src.indexOf("\n", i);
      const stop = end < 0 ? src.length : end;
      blank(i, stop);
      i = stop;
      continue;
    }
    if (c === "/" && d === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? src.length : end + 2;
      blank(i, stop);
      i = stop;
      continue;
    }
    if (c === '"' || c === "'" || c === "`") {
      i = skipString(src, i);
      prevSignificant = c;
      continue;
    }
    if (c === "/" && (prevSignificant === "" || /[(,=:[!&|?{};+\-*%<>~^]/.test(prevSignificant))) {
      // A regular expression literal.
      let k = i + 1;
      let inClass = false;
      while (k < src.length && src[k] !== "\n") {
        if (src[k] === "\\") k++;
        else if (src[k] === "[") inClass = true;
        else if (src[k] === "]") inClass = false;
        else if (src[k] === "/" && !inClass) break;
        k++;
      }
      i = k + 1;
      prevSignificant = "/";
      continue;
    }
    if (!/\s/.test(c)) prevSignificant = c;
    i++;
  }
  return out.join("");
}

/** Replace the inside of every string and template literal with spaces (newlines kept). */
function blankStrings(src: string): string {
  const out = src.split("");
  for (let i = 0; i < src.length;) {
    const c = src[i];
    if (c === '"' || c === "'" || c === "`") {
      const end = skipString(src, i);
      for (let k = i + 1; k < end - 1; k++) if (out[k] !== "\n") out[k] = " ";
      i = end;
    } else i++;
  }
  return out.join("");
}

/** Index just past the string or template literal starting at `i`. */
function skipString(src: string, i: number): number {
  const q = src[i];
  let k = i + 1;
  while (k < src.length) {
    const c = src[k];
    if (c === "\\") {
      k += 2;
      continue;
    }
    if (c === q) return k + 1;
    if (q === "`" && c === "$" && src[k + 1] === "{") {
      k = matchClose(src, k + 1, "{", "}");
      continue;
    }
    if (q !== "`" && c === "\n") return k; // unterminated
    k++;
  }
  return k;
}

/** Index just past the bracket closing the one at `open` (strings skipped). */
function matchClose(src: string, open: number, o: string, c: string): number {
  let depth = 0;
  let k = open;
  while (k < src.length) {
    const ch = src[k];
    if (ch === '"' || ch === "'" || ch === "`") {
      k = skipString(src, k);
      continue;
    }
    if (ch === o) depth++;
    else if (ch === c) {
      depth--;
      if (depth === 0) return k + 1;
    }
    k++;
  }
  return k;
}

/** Decode the body of a JS string literal; a template's `${…}` becomes a shell variable. */
function decodeLiteral(lit: string): string {
  const q = lit[0];
  const body = lit.slice(1, lit.endsWith(q) && lit.length > 1 ? -1 : undefined);
  let out = "";
  for (let k = 0; k < body.length; k++) {
    const c = body[k];
    if (c === "\\") {
      const n = body[++k] ?? "";
      out += n === "n" ? "\n" : n === "t" ? "\t" : n === "r" ? "\r" : n === "0" ? "\0" : n;
    } else if (q === "`" && c === "$" && body[k + 1] === "{") {
      const end = matchClose(body, k + 1, "{", "}");
      out += "${RKHIL_EXPR}";
      k = end - 1;
    } else out += c;
  }
  return out;
}

/** A literal (or a `+` concatenation of literals) at `i` after spaces: its value and end. */
function literalAt(src: string, i: number): { value: string; end: number } | undefined {
  let k = i;
  let value = "";
  let any = false;
  for (;;) {
    while (/\s/.test(src[k] ?? "")) k++;
    const q = src[k];
    if (q !== '"' && q !== "'" && q !== "`") break;
    const end = skipString(src, k);
    value += decodeLiteral(src.slice(k, end));
    any = true;
    k = end;
    const plus = /^\s*\+\s*/.exec(src.slice(k, k + 200));
    if (!plus || !/["'`]/.test(src[k + plus[0].length] ?? "")) break;
    k += plus[0].length;
  }
  return any ? { value, end: k } : undefined;
}

/** The value of `const NAME = <literal | [literals].join(sep)>` in `src`, if any. */
function constValue(src: string, name: string): string | undefined {
  const m = new RegExp(`\\bconst\\s+${name}\\s*(?::[^=]+)?=\\s*`).exec(src);
  if (!m) return undefined;
  const at = m.index + m[0].length;
  const lit = literalAt(src, at);
  if (lit) return lit.value;
  if (src[at] !== "[") return undefined;
  const close = matchClose(src, at, "[", "]");
  const parts: string[] = [];
  let k = at + 1;
  while (k < close - 1) {
    const l = literalAt(src, k);
    if (!l) break;
    parts.push(l.value);
    k = l.end;
    while (/[\s,]/.test(src[k] ?? "")) k++;
  }
  const join = /^\s*\.join\(\s*/.exec(src.slice(close, close + 40));
  const sep = join ? literalAt(src, close + join[0].length)?.value ?? "," : "\n";
  return parts.join(sep);
}

function lineOf(src: string, index: number): number {
  let n = 1;
  for (let k = 0; k < index && k < src.length; k++) if (src[k] === "\n") n++;
  return n;
}

/** Scan one TypeScript file (`file` is its path relative to the project root). */
export async function scanTypeScript(file: string, text: string): Promise<ScanResult> {
  const src = blankComments(text);
  // Patterns match code only (`code`); literals and arguments are read from `src`.
  const code = blankStrings(src);
  const sites: SpawnSite[] = [];
  const problems: ScanProblem[] = [];
  const helper = HELPER_FILES.includes(file);
  const add = (index: number, program: string, via: string) => {
    const line = lineOf(src, index);
    sites.push({ file, line, program, via });
    if (isHostProgram(program) && !isDeclared(program)) {
      problems.push({ file, line, message: `${via} starts undeclared host program "${program}"` });
    }
  };
  const scripts = async (index: number, argsText: string, via: string) => {
    const re = /(["'])-[a-zA-Z]*c\1\s*,\s*/g;
    for (let m; (m = re.exec(argsText));) {
      const at = m.index + m[0].length;
      let script = literalAt(argsText, at)?.value;
      const ident = /^[A-Za-z_$][\w$]*/.exec(argsText.slice(at))?.[0];
      if (script === undefined && ident) script = constValue(src, ident);
      if (script === undefined) continue;
      const r = await shellPrograms(script);
      if (r.error) {
        problems.push({
          file,
          line: lineOf(src, index),
          message: `${via}: the -c script does not parse: ${r.error}`,
        });
      }
      for (const p of r.programs) add(index, p.name, `${via} -c`);
    }
  };
  const callArgs = (open: number) => src.slice(open + 1, matchClose(src, open, "(", ")") - 1);

  for (const m of code.matchAll(/\bnew\s+Deno\.Command\s*\(/g)) {
    const open = m.index + m[0].length - 1;
    const args = callArgs(open);
    const first = args.trim();
    const lit = literalAt(args, 0);
    const isDeno = /^Deno\.execPath\(\)/.test(first) ||
      (/^deno\b/.test(first) && /\bconst\s+deno\s*=.*Deno\.execPath\(\)/.test(src));
    if (isDeno) {
      sites.push({ file, line: lineOf(src, m.index), program: "deno", via: "Deno.Command" });
      continue;
    }
    if (lit) add(m.index, lit.value, "new Deno.Command");
    if (!helper) {
      problems.push({
        file,
        line: lineOf(src, m.index),
        message: `new Deno.Command(${first.split(/[,\n]/)[0]}) bypasses the installing ` +
          "helpers: use hostCommand() or run() (Deno.Command is only for Deno.execPath())",
      });
    }
    await scripts(m.index, args, "new Deno.Command");
  }
  for (const m of code.matchAll(/(?<![\w$.])hostCommand\s*\(/g)) {
    if (/function\s+$/.test(src.slice(Math.max(0, m.index - 20), m.index))) continue;
    const args = callArgs(m.index + m[0].length - 1);
    const lit = literalAt(args, 0);
    if (lit) add(m.index, lit.value, "hostCommand()");
    await scripts(m.index, args, "hostCommand()");
  }
  const importsRun = /import\s*{[^}]*\brun\b[^}]*}\s*from\s*["'][^"']*\/proc\.ts["']/.test(src);
  if (importsRun) {
    for (const m of code.matchAll(/(?<![\w$.])run\s*\(/g)) {
      if (/function\s+$/.test(src.slice(Math.max(0, m.index - 20), m.index))) continue;
      const args = callArgs(m.index + m[0].length - 1);
      const lit = literalAt(args, 0);
      if (lit) add(m.index, lit.value, "run()");
      await scripts(m.index, args, "run()");
    }
  }
  for (const m of code.matchAll(/(?<![\w$.])ensureHostTools?\s*\(/g)) {
    if (/function\s+$/.test(src.slice(Math.max(0, m.index - 20), m.index))) continue;
    const args = callArgs(m.index + m[0].length - 1);
    const inner = args.trim().startsWith("[") ? args.trim().slice(1) : args;
    for (let k = 0;;) {
      while (/[\s,]/.test(inner[k] ?? "")) k++;
      const l = literalAt(inner, k);
      if (!l) break;
      add(m.index, l.value, "ensureHostTools()");
      k = l.end;
    }
  }
  const bypass: [RegExp, string][] = [
    [/\bDeno\.run\s*\(/g, "Deno.run() bypasses the installing helpers"],
  ];
  if (!helper) {
    bypass.push([/(?<![\w$.])runResolved\s*\(/g, "runResolved() installs nothing: use run()"]);
  }
  for (const [re, message] of bypass) {
    for (const m of code.matchAll(re)) problems.push({ file, line: lineOf(src, m.index), message });
  }
  // `from "node:child_process"` / `require("child_process")` / `import("node:child_process")`:
  // the module name is a string, so the keyword is found in `code` and the name in `src`.
  for (const m of code.matchAll(/(?:\bfrom|\brequire\s*\(|\bimport\s*\()\s*(?=["'])/g)) {
    const name = literalAt(src, m.index + m[0].length)?.value;
    if (name === "child_process" || name === "node:child_process") {
      problems.push({
        file,
        line: lineOf(src, m.index),
        message: "child_process bypasses the installing helpers",
      });
    }
  }
  return { sites, problems };
}

/** Scan one shell script: its shebang interpreter and every program it runs. */
export async function scanShellScript(file: string, text: string): Promise<ScanResult> {
  const sites: SpawnSite[] = [];
  const problems: ScanProblem[] = [];
  const add = (line: number, program: string, via: string) => {
    sites.push({ file, line, program, via });
    if (isHostProgram(program) && !isDeclared(program)) {
      problems.push({ file, line, message: `${via} runs undeclared host program "${program}"` });
    }
  };
  const shebang = /^#!\s*(\S+)(?:[ \t]+(\S+))?/.exec(text);
  if (shebang) {
    add(1, shebang[1], "shebang");
    if (shebang[1].endsWith("/env") && shebang[2]) add(1, shebang[2], "shebang");
  }
  const r = await shellPrograms(text);
  if (r.error) problems.push({ file, line: 1, message: `does not parse as shell: ${r.error}` });
  for (const p of r.programs) add(p.line, p.name, "script");
  return { sites, problems };
}

/** True for a file the scan reads as a shell script. */
function isShellScript(rel: string, head: string): boolean {
  if (rel.endsWith(".sh")) return true;
  return /^#!\s*\S*\/(?:env\s+)?(?:ba|da)?sh\b/.test(head);
}

/**
 * Scan the project at `root`: every `*.ts` file and every shell script outside `.git`, `.tools`,
 * `node_modules`, `runs`, `.cache` and `testdata` directories and the top-level `target/` (what
 * runs inside a target).
 */
export async function scanProject(root: string): Promise<ScanResult & { files: string[] }> {
  const sites: SpawnSite[] = [];
  const problems: ScanProblem[] = [];
  const files: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = [];
    for await (const e of Deno.readDir(dir)) entries.push(e);
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) {
        const skip = SKIP_DIRS.has(e.name) || (rel === "" && SKIP_TOP.has(e.name));
        if (!skip && e.name !== "testdata") await walk(`${dir}/${e.name}`, r);
        continue;
      }
      if (!e.isFile) continue;
      const path = `${dir}/${e.name}`;
      let res: ScanResult | undefined;
      if (e.name.endsWith(".ts")) res = await scanTypeScript(r, await Deno.readTextFile(path));
      else {
        const head = await readHead(path);
        if (isShellScript(r, head)) res = await scanShellScript(r, await Deno.readTextFile(path));
      }
      if (res) {
        files.push(r);
        sites.push(...res.sites);
        problems.push(...res.problems);
      }
    }
  };
  await walk(root, "");
  return { sites, problems, files };
}

async function readHead(path: string): Promise<string> {
  const f = await Deno.open(path);
  try {
    const buf = new Uint8Array(128);
    const n = await f.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  } finally {
    f.close();
  }
}
