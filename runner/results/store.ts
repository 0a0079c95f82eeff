/**
 * The results store of a run: one directory per run under `runs/`, with `results.jsonl`
 * written as results happen (one JSON object a line, flushed to disk before `record` returns),
 * so a crash of the runner, the target or the transport leaves every finished result readable
 * (DESIGN.md boundary 5). A reader tolerates a truncated last line.
 *
 * @module
 */
import { RkhilError, type Verdict } from "../errors.ts";

/** One measurement (DONE results carry one, others may). */
export interface Measurement {
  /** What was measured, e.g. `boot to ssh`. */
  name: string;
  /** The value, in `unit`. */
  value: number;
  /** `s`, `ms`, `MiB`, ... */
  unit: string;
}

/** One test result. */
export interface TestResult {
  /** Test id, e.g. `boot`, `facts`, `oracle/memory`. */
  test: string;
  /** The suite (`tests/<suite>.ts`) the test belongs to; absent in records of older runs. */
  suite?: string;
  /** Target the test ran on (board id, or QEMU guest name). */
  target: string;
  /**
   * Kernel under test: the spec for the embedded target (`debian:trixie`), the running release
   * for a board target.
   */
  kernel: string;
  /** The running kernel's release (`uname -r`), once known; absent in older records. */
  release?: string;
  /** PASS, FAIL, ERROR, MISS, SKIP or DONE (DESIGN.md boundary 3). */
  verdict: Verdict;
  /** Why, for anything but PASS and DONE: the first line a human should read. */
  reason?: string;
  /** Timings and sizes the step measured. */
  measurements?: Measurement[];
  /** Anything the report shows (predicted/observed, findings). Must be JSON. */
  details?: Record<string, unknown>;
  /** When the step started (ISO 8601). */
  startedAt: string;
  /** How long it ran, in milliseconds. */
  durationMs: number;
}

/** A run directory and its append-only result log. */
export class RunStore {
  private constructor(readonly dir: string, private readonly file: Deno.FsFile) {}

  /**
   * Create `dir` and its `results.jsonl`, or open an existing run to add to it. A last line
   * torn by a kill mid-write is ended first, so new results start on their own line (the torn
   * one stays, and readers count it as damaged).
   */
  static async open(dir: string): Promise<RunStore> {
    await Deno.mkdir(dir, { recursive: true });
    const path = `${dir}/results.jsonl`;
    const file = await Deno.open(path, { append: true, create: true });
    try {
      const size = (await file.stat()).size;
      if (size > 0) {
        const last = new Uint8Array(1);
        const r = await Deno.open(path, { read: true });
        try {
          await r.seek(size - 1, Deno.SeekMode.Start);
          await r.read(last);
        } finally {
          r.close();
        }
        if (last[0] !== 0x0a) {
          await file.write(new TextEncoder().encode("\n"));
          await file.syncData();
        }
      }
    } catch (err) {
      file.close();
      throw err;
    }
    return new RunStore(dir, file);
  }

  /**
   * A fresh run directory name under `root`: `2026-11-24T20-01-02Z-<name>-<4 hex>`; the random
   * suffix keeps two runs started in the same second apart.
   */
  static newDir(root: string, name: string, now: Date = new Date()): string {
    const stamp = now.toISOString().replace(/\.\d+Z$/, "Z").replaceAll(":", "-");
    const suffix = crypto.getRandomValues(new Uint8Array(2)).reduce(
      (a, b) => a + b.toString(16).padStart(2, "0"),
      "",
    );
    return `${root}/${stamp}-${name}-${suffix}`;
  }

  /**
   * Append one result and flush it to disk. A result that cannot be written whole (the
   * filesystem is full, an I/O error) is cut off again, so the log never holds half a line.
   *
   * @throws {RkhilError} (ERROR) naming the file, the test and the system's reason, with a hint.
   */
  async record(r: TestResult): Promise<void> {
    const bytes = new TextEncoder().encode(JSON.stringify(r) + "\n");
    const start = (await this.file.stat()).size;
    let off = 0;
    try {
      while (off < bytes.length) off += await this.file.write(bytes.subarray(off));
      await this.file.syncData();
    } catch (err) {
      if (off > 0) await this.file.truncate(start).catch(() => {});
      const why = err instanceof Error ? err.message : String(err);
      throw new RkhilError(
        `cannot record ${r.test} in ${this.dir}/results.jsonl: ${why}`,
        err instanceof Error && /No space left|os error 28/.test(why)
          ? "the run directory's filesystem is full: free space there or choose another " +
            "runs directory (--runs-dir)"
          : "check that the run directory is writable",
        "ERROR",
        { cause: err },
      );
    }
  }

  /** Close the log file (results already recorded are on disk). Idempotent. */
  close(): void {
    try {
      this.file.close();
    } catch { /* already closed */ }
  }
}

const VERDICTS = new Set(["PASS", "FAIL", "ERROR", "MISS", "SKIP", "DONE"]);

/** True when `r` has the shape of a {@linkcode TestResult} (the fields readers rely on). */
function isResult(r: unknown): r is TestResult {
  if (!r || typeof r !== "object" || Array.isArray(r)) return false;
  const x = r as Record<string, unknown>;
  const optional = (v: unknown, ok: (v: unknown) => boolean) => v === undefined || ok(v);
  return typeof x.test === "string" && typeof x.kernel === "string" &&
    typeof x.target === "string" && typeof x.verdict === "string" && VERDICTS.has(x.verdict) &&
    optional(x.reason, (v) => typeof v === "string") &&
    optional(x.suite, (v) => typeof v === "string") &&
    optional(x.release, (v) => typeof v === "string") &&
    optional(x.details, (v) => !!v && typeof v === "object" && !Array.isArray(v)) &&
    optional(
      x.measurements,
      (v) =>
        Array.isArray(v) &&
        v.every((m) => m && typeof m.name === "string" && typeof m.value === "number"),
    );
}

/**
 * Read a results log; a truncated or garbled line (a crash mid-write), or one that is not a
 * result (unknown verdict, fields of the wrong type), is skipped and counted.
 */
export function parseResults(text: string): { results: TestResult[]; damagedLines: number } {
  const results: TestResult[] = [];
  let damagedLines = 0;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line);
      if (isResult(r)) results.push(r);
      else damagedLines++;
    } catch {
      damagedLines++;
    }
  }
  return { results, damagedLines };
}

/** Count verdicts. */
export function tally(results: readonly TestResult[]): Record<Verdict, number> {
  const t: Record<Verdict, number> = { PASS: 0, FAIL: 0, ERROR: 0, MISS: 0, SKIP: 0, DONE: 0 };
  for (const r of results) t[r.verdict]++;
  return t;
}
