/**
 * Per kernel release × target × suite: what each test did on each release, the PASS/FAIL
 * transitions, the first bad release and the last good one, and the same for the oracle's
 * predicted outcome of each IOMMU unit.
 *
 * No false regressions:
 * - MISS, ERROR and SKIP never count (the harness broke or the test did not apply); DONE is a
 *   measurement, not a verdict on the kernel.
 * - A regression compares results that match in every parameter but the kernel: the same test
 *   of the same suite on the same target.
 * - A test that both passed and failed on one release (a retry that passed in the same run, or
 *   runs that disagree) is FLAKY there, and a FLAKY release is never the good or the bad end of a
 *   regression.
 *
 * Pure: no I/O.
 *
 * @module
 */
import type { CellRow, OutcomeRow } from "../history/query.ts";

/** What a test did on one release, over every run of it. */
export type ReleaseStatus = "PASS" | "FAIL" | "FLAKY" | "NONE";

/** One release's cell of a test's row. */
export interface ReleaseCell {
  /** Kernel release. */
  release: string;
  /** Sort key of the release. */
  order: number;
  /** PASS, FAIL, FLAKY (both seen), NONE (only MISS/ERROR/SKIP/DONE). */
  status: ReleaseStatus;
  /** Verdict counts over every run. */
  counts: Record<string, number>;
  /** The oracle's verdict, when the test records one (`AGREE`, `DISAGREE`, ...). */
  oracle?: string;
  /** Number of results (a retry counts again). */
  results: number;
}

/** A PASS → FAIL (regression) or FAIL → PASS (fix) between two consecutive evidenced releases. */
export interface Transition {
  /** `regression` or `fix`. */
  kind: "regression" | "fix";
  /** Last release with the old status (the last good one for a regression). */
  from: string;
  /** First release with the new status (the first bad one for a regression). */
  to: string;
}

/** One test of one suite on one target, across releases. */
export interface TestHistory {
  /** Target name. */
  target: string;
  /** Suite. */
  suite: string;
  /** Test id. */
  test: string;
  /** One cell per release that has a result, oldest first. */
  cells: ReleaseCell[];
  /** PASS/FAIL transitions, oldest first. */
  transitions: Transition[];
}

const key = (...parts: string[]) => parts.join("\0");

/**
 * The status of a release from its verdict counts over every run: a PASS and a FAIL (a retry
 * that passed in the same run, or runs that disagree) is FLAKY; MISS, ERROR, SKIP and DONE
 * alone are NONE (no evidence either way).
 */
export function statusOf(counts: Record<string, number>): ReleaseStatus {
  const pass = counts.PASS ?? 0, fail = counts.FAIL ?? 0;
  if (pass > 0 && fail > 0) return "FLAKY";
  if (fail > 0) return "FAIL";
  if (pass > 0) return "PASS";
  return "NONE";
}

/** Transitions over cells ordered by release: FLAKY and NONE cells are skipped, not ends. */
export function transitionsOf(cells: readonly ReleaseCell[]): Transition[] {
  const out: Transition[] = [];
  let prev: ReleaseCell | undefined;
  for (const c of cells) {
    if (c.status === "FLAKY") {
      prev = undefined; // a flaky release breaks the chain: neither good nor bad
      continue;
    }
    if (c.status === "NONE") continue;
    if (prev && prev.status !== c.status) {
      out.push({
        kind: c.status === "FAIL" ? "regression" : "fix",
        from: prev.release,
        to: c.release,
      });
    }
    prev = c;
  }
  return out;
}

/**
 * Group per-release cells (runner/history/query.ts `queryCells`) into test histories
 * (target × suite × test, releases oldest first) with their statuses and transitions.
 */
export function testHistories(cells: readonly CellRow[]): TestHistory[] {
  const tests = new Map<string, TestHistory>();
  for (const x of cells) {
    const tk = key(x.target, x.suite, x.test);
    let t = tests.get(tk);
    if (!t) {
      t = { target: x.target, suite: x.suite, test: x.test, cells: [], transitions: [] };
      tests.set(tk, t);
    }
    const c: ReleaseCell = {
      release: x.release,
      order: x.releaseOrder,
      status: statusOf(x.counts),
      counts: x.counts,
      results: x.results,
    };
    if (x.oracle) c.oracle = x.oracle;
    t.cells.push(c);
  }
  const out = [...tests.values()];
  for (const t of out) {
    t.cells.sort((a, b) => a.order - b.order);
    t.transitions = transitionsOf(t.cells);
  }
  return out.sort((a, b) =>
    a.target.localeCompare(b.target) || a.suite.localeCompare(b.suite) ||
    a.test.localeCompare(b.test)
  );
}

/** An IOMMU unit's predicted outcome across releases, and where it changed. */
export interface OutcomeHistory {
  /** The board the prediction is for (`rock-3b-8g`, from `oracle/predict BOARD`). */
  board: string;
  /** `outcome` (board file's device tree) or `outcome-dtb` (the kernel package's DTB). */
  kind: string;
  /** Unit address. */
  unit: string;
  /** Release → outcome (the first recorded when runs differ), oldest first. */
  cells: { release: string; order: number; outcome: string }[];
  /** Changes of outcome: `regression` (OK → a failure), `fix`, `change` (others). */
  transitions: {
    kind: "regression" | "fix" | "change";
    from: string;
    to: string;
    before: string;
    after: string;
  }[];
}

const NOT_A_FAILURE = new Set(["OK", "UNCERTAIN", "DISABLED"]);

/** Group predicted outcomes per board × kind × unit over releases and find their changes. */
export function outcomeHistories(rows: readonly OutcomeRow[]): OutcomeHistory[] {
  const byKey = new Map<string, OutcomeHistory>();
  for (const r of rows) {
    if (r.release === null || r.releaseOrder === null) continue;
    const board = r.test.startsWith("oracle/predict ")
      ? r.test.slice("oracle/predict ".length)
      : r.test;
    const k = key(board, r.kind, r.unit);
    let h = byKey.get(k);
    if (!h) byKey.set(k, h = { board, kind: r.kind, unit: r.unit, cells: [], transitions: [] });
    if (!h.cells.some((c) => c.release === r.release)) {
      h.cells.push({ release: r.release, order: r.releaseOrder, outcome: r.outcome });
    }
  }
  for (const h of byKey.values()) {
    h.cells.sort((a, b) => a.order - b.order);
    for (let i = 1; i < h.cells.length; i++) {
      const a = h.cells[i - 1], b = h.cells[i];
      if (a.outcome === b.outcome) continue;
      const kind = a.outcome === "OK" && !NOT_A_FAILURE.has(b.outcome)
        ? "regression"
        : b.outcome === "OK" && !NOT_A_FAILURE.has(a.outcome)
        ? "fix"
        : "change";
      h.transitions.push({
        kind,
        from: a.release,
        to: b.release,
        before: a.outcome,
        after: b.outcome,
      });
    }
  }
  return [...byKey.values()].sort((a, b) =>
    a.board.localeCompare(b.board) || a.kind.localeCompare(b.kind) || a.unit.localeCompare(b.unit)
  );
}
