/**
 * Load a farm file (`rkhil run --farm lab.yaml`, schema in `farm_schema.ts`) and resolve its
 * targets: each board through its board file (by id in `boards_dirs`, or by path), with the
 * group's lab host as its SSH jump host; each embedded QEMU target with its memory and CPUs.
 *
 * Every problem is a `BoardFileError` naming `file:line:column: field: message` with a hint,
 * whatever the input (empty, binary, huge, an alias bomb, a board that does not exist, two
 * targets with one id, a board whose own jump host differs from its group's).
 *
 * @module
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, type Node as YamlNode, parseDocument } from "yaml";
import type { z } from "zod";
import {
  BoardFileError,
  type BoardIssue,
  findBoard,
  loadBoardFile,
  type LoadedBoard,
  MAX_ALIAS_COUNT,
} from "./load.ts";
import { DEFAULT_LEASE_TTL_S, type FarmLimits, FarmSchema, type FarmSpec } from "./farm_schema.ts";
import { describeInput } from "./schema.ts";

/** Largest farm file accepted. */
export const MAX_FARM_FILE_BYTES = 1024 * 1024;

/** What one job of a target takes from the rkhil host. */
export interface HostCost {
  /** Cores (may be fractional). */
  cpus: number;
  /** Bytes of memory. */
  memory: number;
}

/** One target of a farm, resolved. */
export type FarmTarget =
  | {
    kind: "qemu";
    /** Target id (unique in the farm). */
    id: string;
    /** Guest memory, QEMU syntax (`8G`). */
    memory: string;
    /** Guest CPUs. */
    cpus: number;
    /** Host cost of one job. */
    cost: HostCost;
  }
  | {
    kind: "board";
    /** Target id: the board's id (unique in the farm). */
    id: string;
    /** The board file, the group's jump host filled in. */
    board: LoadedBoard;
    /** The group (lab host) the board is behind. */
    group: string;
    /** Host cost of one job. */
    cost: HostCost;
  };

/** A loaded farm. */
export interface Farm {
  /** The farm's name. */
  name: string;
  /** The farm file, absolute. */
  path: string;
  /** Lease directory, absolute. */
  leaseDir: string;
  /** Lease time-to-live in seconds. */
  leaseTtlS: number;
  /**
   * PostgreSQL URL (`database:`): leases and the job queue in its tables
   * (runner/farm/pg_store.ts) and the farm's results history there, instead of lease files.
   */
  database?: string;
  /** Targets in file order: QEMU targets first, then each group's boards. */
  targets: FarmTarget[];
}

type Seg = string | number;

/** Position of the node at `path` (or of the deepest part of it that exists). */
function locate(
  root: unknown,
  path: readonly Seg[],
  lines: LineCounter,
): { line: number; column: number } {
  let node: unknown = root;
  let at: number | undefined = (root as YamlNode | undefined)?.range?.[0];
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      node = pair.value ?? pair.key;
      at = (pair.value as YamlNode | null)?.range?.[0] ?? (pair.key as YamlNode).range?.[0];
    } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
      node = node.items[seg];
      at = (node as YamlNode).range?.[0] ?? at;
    } else break;
  }
  const { line, col } = lines.linePos(at ?? 0);
  return line === 0 ? { line: 1, column: 1 } : { line, column: col };
}

function fieldOf(path: readonly Seg[]): string {
  return path.map((s, i) => typeof s === "number" ? `[${s}]` : i ? `.${s}` : s).join("");
}

function issueAt(
  file: string,
  pos: { line: number; column: number },
  path: readonly Seg[],
  message: string,
  hint: string,
): BoardIssue {
  return { file, ...pos, field: fieldOf(path), message, hint };
}

function valueAt(raw: unknown, path: readonly Seg[]): unknown {
  let v = raw;
  for (const seg of path) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, seg)) return undefined;
    v = (v as Record<Seg, unknown>)[seg];
  }
  return v;
}

function zodIssues(
  e: z.ZodError,
  file: string,
  raw: unknown,
  root: unknown,
  lines: LineCounter,
): BoardIssue[] {
  const out: BoardIssue[] = [];
  for (const i of e.issues) {
    const path = i.path.filter((p): p is Seg => typeof p !== "symbol");
    if (i.code === "unrecognized_keys") {
      for (const k of i.keys) {
        out.push(
          issueAt(
            file,
            locate(root, [...path, k], lines),
            [...path, k],
            `unknown key "${k}"`,
            path.length === 0
              ? "remove it; the keys of a farm file are: name, database, leases, boards_dirs, qemu, groups"
              : "remove it (README: The board farm shows every key)",
          ),
        );
      }
      continue;
    }
    const message = i.code === "invalid_type"
      ? `expected ${i.expected} (got ${describeInput(valueAt(raw, path))})`
      : i.message;
    out.push(
      issueAt(
        file,
        locate(root, path, lines),
        path,
        message,
        "see boards/farm_schema.ts and README: The board farm",
      ),
    );
  }
  return out;
}

/**
 * Parse and validate a farm file's text (no board is loaded).
 *
 * @throws {BoardFileError} with every problem, `file:line:column: field: message`.
 */
export function parseFarm(text: string, file: string): { spec: FarmSpec; locate: Locate } {
  const fileIssue = (message: string, hint: string): never => {
    throw new BoardFileError([{ file, line: 1, column: 1, field: "", message, hint }]);
  };
  if (text.length > MAX_FARM_FILE_BYTES) {
    fileIssue(`file is ${text.length} characters; a farm file is at most 1 MiB`, "check the path");
  }
  const lines = new LineCounter();
  let raw: unknown;
  let root: unknown;
  try {
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    root = doc.contents;
    if (doc.errors.length) {
      const err = doc.errors[0];
      const { line, col } = lines.linePos(err.pos[0]);
      throw new BoardFileError([{
        file,
        line: Math.max(1, line),
        column: Math.max(1, col),
        field: "",
        message: `YAML syntax: ${err.message.split("\n")[0]}`,
        hint: "fix the YAML here (indentation, quoting, a missing ':' or closing bracket)",
      }]);
    }
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (err instanceof BoardFileError) throw err;
    fileIssue(
      `cannot read as YAML: ${(err as Error).message.split("\n")[0].slice(0, 120)}`,
      "a farm file is a small YAML mapping (README: The board farm)",
    );
  }
  if (raw === null || raw === undefined) {
    fileIssue(
      "file is empty",
      "a farm file names the farm and its targets (README: The board farm)",
    );
  }
  const parsed = FarmSchema.safeParse(raw);
  if (!parsed.success) throw new BoardFileError(zodIssues(parsed.error, file, raw, root, lines));
  const spec: FarmSpec = parsed.data;
  return { spec, locate: (path) => locate(root, path, lines) };
}

/** Position (1-based line and column) of a field of the parsed farm file, by its path. */
export type Locate = (path: readonly (string | number)[]) => { line: number; column: number };

function cost(limits: FarmLimits | undefined, dflt: HostCost): HostCost {
  return { cpus: limits?.host_cpus ?? dflt.cpus, memory: limits?.host_memory ?? dflt.memory };
}

/** Default host cost of one embedded QEMU job: one core and 1 GiB. */
export const QEMU_DEFAULT_COST: HostCost = { cpus: 1, memory: 2 ** 30 };
/** Default host cost of one board job: nothing (the board is its own hardware). */
export const BOARD_DEFAULT_COST: HostCost = { cpus: 0, memory: 0 };

/**
 * Read a farm file and resolve its targets (board files loaded and their jump hosts filled in).
 *
 * @throws {BoardFileError} naming the farm file's line and field of every problem; a board file
 *   that is itself bad is reported with its own issues.
 */
export async function loadFarm(path: string): Promise<Farm> {
  const abs = resolve(path);
  let text: string;
  try {
    const info = await Deno.stat(abs);
    if (!info.isFile) throw new Error("not a regular file");
    if (info.size > MAX_FARM_FILE_BYTES) throw new Error(`${info.size} bytes, more than 1 MiB`);
    text = new TextDecoder("utf-8", { fatal: true }).decode(await Deno.readFile(abs));
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message;
    throw new BoardFileError([{
      file: path,
      line: 0,
      column: 0,
      field: "",
      message: `cannot read the farm file: ${why}`,
      hint: "check the path given to --farm",
    }]);
  }
  const { spec, locate } = parseFarm(text, path);
  const base = dirname(abs);
  const rel = (p: string) => isAbsolute(p) ? p : resolve(base, p);
  const issues: BoardIssue[] = [];
  const targets: FarmTarget[] = [];
  const seen = new Map<string, string>();
  const claim = (id: string, where: Seg[]) => {
    const first = seen.get(id);
    if (first) {
      issues.push(
        issueAt(
          path,
          locate(where),
          where,
          `target id ${id} is already used at ${first}`,
          "give every target of the farm its own id",
        ),
      );
      return false;
    }
    const pos = locate(where);
    seen.set(id, `line ${pos.line}`);
    return true;
  };
  spec.qemu.forEach((q, i) => {
    if (!claim(q.id, ["qemu", i, "id"])) return;
    targets.push({
      kind: "qemu",
      id: q.id,
      memory: q.memory,
      cpus: q.cpus,
      cost: cost(q.limits, QEMU_DEFAULT_COST),
    });
  });
  const dirs = spec.boards_dirs.map(rel);
  for (const [g, group] of spec.groups.entries()) {
    for (const [b, entry] of group.boards.entries()) {
      const where: Seg[] = ["groups", g, "boards", b, entry.id ? "id" : "file"];
      let loaded: LoadedBoard;
      try {
        loaded = entry.id ? await findBoard(entry.id, dirs) : await (async () => {
          const p = rel(entry.file!);
          const board = await loadBoardFile(p);
          return { id: board.id, path: p, board };
        })();
      } catch (err) {
        if (err instanceof BoardFileError) {
          issues.push(...err.issues);
          issues.push(
            issueAt(path, locate(where), where, "its board file is not valid", "fix it (above)"),
          );
        } else {
          issues.push(
            issueAt(
              path,
              locate(where),
              where,
              (err as Error).message.split("\n")[0],
              (err as { hint?: string }).hint ?? "check boards_dirs and the id",
            ),
          );
        }
        continue;
      }
      if (!claim(loaded.id, where)) continue;
      const ssh = loaded.board.ssh;
      if (group.jump) {
        const own = ssh?.jump;
        if (!ssh) {
          issues.push(
            issueAt(
              path,
              locate(where),
              where,
              `board ${loaded.id} has no ssh section, so it cannot be reached through ${group.name}`,
              "add ssh: to its board file, or move it out of the group",
            ),
          );
          continue;
        }
        if (
          own && (own.host !== group.jump.host || own.port !== group.jump.port ||
            own.user !== group.jump.user)
        ) {
          issues.push(
            issueAt(
              path,
              locate(where),
              where,
              `board ${loaded.id} names jump host ${own.user}@${own.host}:${own.port}, ` +
                `not the group's ${group.jump.user}@${group.jump.host}:${group.jump.port}`,
              "remove ssh.jump from the board file (the group gives it) or move the board",
            ),
          );
          continue;
        }
        loaded = { ...loaded, board: { ...loaded.board, ssh: { ...ssh, jump: group.jump } } };
      }
      targets.push({
        kind: "board",
        id: loaded.id,
        board: loaded,
        group: group.name,
        cost: cost(entry.limits, BOARD_DEFAULT_COST),
      });
    }
  }
  if (!targets.length && !issues.length) {
    issues.push(
      issueAt(path, locate([]), [], "the farm has no targets", "add qemu: or groups: entries"),
    );
  }
  if (issues.length) throw new BoardFileError(issues);
  const home = Deno.env.get("HOME") ?? "/root";
  return {
    name: spec.name,
    path: abs,
    leaseDir: spec.leases.dir ? rel(spec.leases.dir) : `${home}/.cache/rkhil/leases`,
    leaseTtlS: spec.leases.ttl_s ?? DEFAULT_LEASE_TTL_S,
    ...(spec.database ? { database: spec.database } : {}),
    targets,
  };
}
