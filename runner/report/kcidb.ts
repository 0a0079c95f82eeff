/**
 * KCIDB v5.3 JSON (the kernel CI common reporting format; schema in
 * `runner/report/kcidb/v5.3.schema.json`): one checkout per kernel release, one build per
 * release × kernel package (Debian arm64), one test per result with `path` (`suite.test`, in
 * KCIDB's dot-path alphabet), `status` (rkhil's verdicts are KCIDB's), `start_time`,
 * `duration` (seconds), `environment.misc` with the board and the target, and the reason and
 * the first console lines as `log_excerpt`.
 *
 * @module
 */
import type { HistoryRow, RunRow } from "../history/query.ts";
import { consoleExcerpt } from "./console_excerpt.ts";

/** KCIDB origin of rkhil's objects. */
export const KCIDB_ORIGIN = "rkhil";

/** A KCIDB v5.3 document (the parts rkhil fills). */
export interface KcidbDocument {
  /** Schema version. */
  version: { major: 5; minor: 3 };
  /** Source checkouts (one per kernel release). */
  checkouts: Record<string, unknown>[];
  /** Builds (one per release × kernel package). */
  builds: Record<string, unknown>[];
  /** Test runs (one per result). */
  tests: Record<string, unknown>[];
}

/** An id part in KCIDB's id alphabet (anything but NUL; kept readable). */
const idPart = (s: string) => s.replace(/\s+/g, "_");

/** `validate/v2-6.6` in suite `validate` → `validate.v2-6_6`; `oracle/predict rock-3b-8g` → `oracle.predict_rock-3b-8g`. */
export function kcidbPath(suite: string, test: string): string {
  const part = (s: string) => s.replace(/[^a-zA-Z0-9_-]+/g, "_").replace(/^_+|_+$/g, "") || "_";
  if (test === suite) return part(suite);
  const rest = test.startsWith(`${suite}/`) ? test.slice(suite.length + 1) : test;
  return [part(suite), ...rest.split("/").map(part)].join(".");
}

/**
 * The KCIDB document of `rows`. `runs` gives each run's directory, for console excerpts.
 * The board of a result is its target name (a board id for board targets).
 */
export function renderKcidb(rows: readonly HistoryRow[], runs: readonly RunRow[]): KcidbDocument {
  const dirs = new Map(runs.map((r) => [r.id, r.dir]));
  const checkouts = new Map<string, Record<string, unknown>>();
  const builds = new Map<string, Record<string, unknown>>();
  const tests: Record<string, unknown>[] = [];
  for (const r of rows) {
    const release = r.release ?? `unknown-${r.kernel}`;
    const checkoutId = `${KCIDB_ORIGIN}:${idPart(release)}`;
    if (!checkouts.has(checkoutId)) {
      const c: Record<string, unknown> = {
        id: checkoutId,
        origin: KCIDB_ORIGIN,
        comment: r.release ? `Linux ${r.release}` : `kernel ${r.kernel}, release not recorded`,
        misc: { release: r.release ?? null },
      };
      if (r.kernel.startsWith("debian:")) c.tree_name = "debian";
      checkouts.set(checkoutId, c);
    }
    const buildId = `${checkoutId}:${idPart(r.kernel)}`;
    if (!builds.has(buildId)) {
      builds.set(buildId, {
        id: buildId,
        checkout_id: checkoutId,
        origin: KCIDB_ORIGIN,
        architecture: "arm64",
        config_name: r.kernel,
        comment: r.kernel.startsWith("debian:")
          ? `Debian arm64 kernel package (${r.kernel})`
          : `kernel ${r.kernel}`,
        status: "PASS",
      });
    }
    const t: Record<string, unknown> = {
      id: `${KCIDB_ORIGIN}:${idPart(r.runId)}:${r.seq}`,
      build_id: buildId,
      origin: KCIDB_ORIGIN,
      path: kcidbPath(r.suite, r.test),
      status: r.verdict,
      start_time: r.startedAt,
      duration: Math.max(0, r.durationMs / 1000),
      environment: {
        comment: `target ${r.target}`,
        misc: { board: r.target, target: r.target, run: r.runId },
      },
      misc: { test: r.test, suite: r.suite, kernel: r.kernel, release: r.release ?? null },
    };
    if (r.reason) {
      t.comment = r.reason.split("\n")[0].slice(0, 1000);
      const ex = r.verdict === "PASS" || r.verdict === "DONE"
        ? undefined
        : consoleExcerpt(dirs.get(r.runId) ?? null, r.kernel, r.reason);
      const excerpt = [r.reason, ...(ex?.lines ?? [])].join("\n").replaceAll("\0", "");
      t.log_excerpt = excerpt.slice(0, 16384);
    }
    tests.push(t);
  }
  // KCIDB forbids NUL in every string (ids, comments, names): a NUL in a recorded name or
  // reason would make the whole document invalid, so it is dropped everywhere.
  return withoutNul({
    version: { major: 5, minor: 3 },
    checkouts: [...checkouts.values()],
    builds: [...builds.values()],
    tests,
  });
}

/** `v` with every NUL character removed from its strings (keys included), deeply. */
function withoutNul<T>(v: T): T {
  if (typeof v === "string") return v.replaceAll("\0", "") as T;
  if (Array.isArray(v)) return v.map(withoutNul) as T;
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k.replaceAll("\0", ""), withoutNul(x)]),
    ) as T;
  }
  return v;
}
