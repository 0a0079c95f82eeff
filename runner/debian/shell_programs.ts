/**
 * Which programs a shell script runs: the command names of every simple command in it (also
 * inside `$(...)`, pipelines, subshells, functions, `if`/`while`/`case` bodies), parsed with
 * mvdan/sh's real shell parser (POSIX and bash), minus shell builtins, the script's own
 * functions, and words whose value is only known at run time (`"$DENO"`, `"$@"`).
 *
 * Used at run time by {@linkcode hostCommand} (a `sh -c SCRIPT` on the host installs what SCRIPT
 * runs before it starts) and by the source scan of `runner/debian/host_tools_test.ts`.
 *
 * @module
 */

/** One program a script runs. */
export interface ShellProgram {
  /** The command word as written: a name (`grep`) or a path (`/usr/sbin/dropbear`). */
  name: string;
  /** 1-based line of the command in the script. */
  line: number;
}

/** The result of {@linkcode shellPrograms}. */
export interface ShellPrograms {
  /** Programs in order of first appearance, each name once. */
  programs: ShellProgram[];
  /** The parser's message when the script is not valid shell (then `programs` is empty). */
  error?: string;
}

/**
 * Builtins of bash, dash and busybox ash: they never start a program. (`[`, `test`, `echo`,
 * `printf`, `kill`, `true`, `false`, `pwd` also exist as programs, but a shell runs its own.)
 */
const BUILTINS = new Set([
  ":",
  ".",
  "[",
  "alias",
  "bg",
  "break",
  "builtin",
  "caller",
  "cd",
  "command",
  "compgen",
  "complete",
  "continue",
  "declare",
  "dirs",
  "disown",
  "echo",
  "enable",
  "eval",
  "exec",
  "exit",
  "export",
  "false",
  "fc",
  "fg",
  "getopts",
  "hash",
  "help",
  "history",
  "jobs",
  "kill",
  "let",
  "local",
  "logout",
  "mapfile",
  "popd",
  "printf",
  "pushd",
  "pwd",
  "read",
  "readarray",
  "readonly",
  "return",
  "set",
  "shift",
  "shopt",
  "source",
  "suspend",
  "test",
  "times",
  "trap",
  "true",
  "type",
  "typeset",
  "ulimit",
  "umask",
  "unalias",
  "unset",
  "wait",
]);

/** Prefix commands whose operand is the program that runs (`exec prog`, `command prog`). */
const PREFIXES = new Set(["exec", "command", "nohup", "env"]);

/** Largest script analysed (a longer one is refused with an error, not parsed). */
export const MAX_SCRIPT_BYTES = 1 << 20;

// Minimal typing of the parts of mvdan-sh (GopherJS build of mvdan/sh) used here.
interface ShNode {
  Pos(): { Line(): number };
}
interface ShWordPart extends ShNode {
  Value?: string;
  Parts?: ShWordPart[];
}
interface ShWord extends ShNode {
  Parts: ShWordPart[];
}
interface ShCall extends ShNode {
  Args: ShWord[];
}
interface ShSyntax {
  NewParser(): { Parse(src: string, name: string): unknown };
  Walk(node: unknown, fn: (node: unknown) => boolean): void;
  NodeType(node: unknown): string;
}

let syntaxModule: Promise<ShSyntax> | undefined;

function loadSyntax(): Promise<ShSyntax> {
  syntaxModule ??= import("mvdan-sh").then((m) => (m.default ?? m).syntax as ShSyntax);
  return syntaxModule;
}

/** The literal value of a word, or undefined when part of it is expanded at run time. */
function literal(syntax: ShSyntax, w: ShWord): string | undefined {
  let out = "";
  for (const p of w.Parts) {
    const t = syntax.NodeType(p);
    if (t === "Lit" || t === "SglQuoted") out += p.Value ?? "";
    else if (t === "DblQuoted") {
      for (const q of p.Parts ?? []) {
        if (syntax.NodeType(q) !== "Lit") return undefined;
        out += q.Value ?? "";
      }
    } else return undefined;
  }
  return out;
}

/** The program a simple command runs (after prefixes and their options), if known. */
function commandName(syntax: ShSyntax, args: ShWord[]): string | undefined {
  let i = 0;
  while (i < args.length) {
    const word = literal(syntax, args[i]);
    if (word === undefined) return undefined;
    if (!PREFIXES.has(word)) return word;
    i++;
    if (word === "command") {
      const opt = literal(syntax, args[i] ?? { Parts: [] } as unknown as ShWord);
      if (opt === "-v" || opt === "-V") return undefined; // a lookup, not a run
      if (opt === "-p") i++;
    } else if (word === "env") {
      while (i < args.length) {
        const a = literal(syntax, args[i]);
        if (a === undefined || !(a.startsWith("-") || /^[A-Za-z_][A-Za-z0-9_]*=/.test(a))) break;
        i++;
      }
    }
  }
  return undefined;
}

/**
 * The programs `script` runs, in order of first appearance. Never throws on bad input: a
 * script the parser rejects (or one over {@linkcode MAX_SCRIPT_BYTES}) gives no programs and
 * the reason in `error`.
 */
export async function shellPrograms(script: string): Promise<ShellPrograms> {
  if (script.length > MAX_SCRIPT_BYTES) {
    return { programs: [], error: `script of ${script.length} bytes is too long to analyse` };
  }
  const syntax = await loadSyntax();
  let file: unknown;
  try {
    file = syntax.NewParser().Parse(script, "script");
  } catch (err) {
    const e = err as { Error?: () => string; message?: string };
    const msg = typeof e?.Error === "function" ? e.Error() : String(e?.message ?? err);
    return { programs: [], error: msg };
  }
  const functions = new Set<string>();
  const found: ShellProgram[] = [];
  syntax.Walk(file, (node) => {
    const t = syntax.NodeType(node);
    if (t === "FuncDecl") {
      const name = (node as { Name?: { Value?: string } }).Name?.Value;
      if (name) functions.add(name);
    } else if (t === "CallExpr") {
      const call = node as ShCall;
      const name = commandName(syntax, call.Args);
      if (name) found.push({ name, line: call.Pos().Line() });
    }
    return true;
  });
  const seen = new Set<string>();
  const programs = found.filter((p) => {
    if (BUILTINS.has(p.name) || functions.has(p.name) || seen.has(p.name)) return false;
    seen.add(p.name);
    return true;
  });
  return { programs };
}
