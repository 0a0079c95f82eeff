/**
 * The per-release report over the results history: the model every output (terminal text,
 * Markdown, HTML, JUnit, KCIDB) renders from. {@linkcode buildHistoryReport} reads the history
 * (filtered), groups results per target × suite × test across kernel releases
 * (runner/report/regressions.ts), explains each regression with the knowledge-base driver facts
 * that changed between the last good and the first bad release (runner/report/explain_change.ts),
 * attaches the first relevant console lines, and judges latency per release
 * (runner/report/latency.ts).
 *
 * @module
 */
import type { Database } from "../history/sqlite.ts";
import { findBoard } from "../../boards/load.ts";
import { boardFacts } from "../../boards/facts.ts";
import type { ScenarioInput } from "../../oracle/scenario.ts";
import {
  type HistoryFilter,
  queryCells,
  queryFirstBad,
  queryOutcomes,
  querySamples,
  queryTotals,
} from "../history/query.ts";
import { type ConsoleExcerpt, consoleExcerpt } from "./console_excerpt.ts";
import { type ChangeExplanation, explainReleaseChange } from "./explain_change.ts";
import { judgeReleases, type LatencyCriteria, type ReleaseLatency } from "./latency.ts";
import {
  outcomeHistories,
  type OutcomeHistory,
  testHistories,
  type TestHistory,
  type Transition,
} from "./regressions.ts";

/** A regression (or fix) of a test, with why. */
export interface TestChange {
  /** The test's history. */
  test: TestHistory;
  /** The transition. */
  transition: Transition;
  /** The knowledge-base driver facts that changed between the two releases. */
  explanation?: ChangeExplanation;
  /** The first bad result's reason. */
  reason?: string;
  /** Its console excerpt. */
  excerpt?: ConsoleExcerpt;
}

/** A change of a unit's predicted outcome, with the facts behind it. */
export interface OutcomeChangeReport {
  /** The unit's history. */
  history: OutcomeHistory;
  /** The change. */
  transition: OutcomeHistory["transitions"][number];
  /** The driver facts the unit's new prediction rests on that changed. */
  explanation?: ChangeExplanation;
}

/** Latency of one measurement of one test, per release. */
export interface LatencySeries {
  /** Target. */
  target: string;
  /** Suite. */
  suite: string;
  /** Test id. */
  test: string;
  /** Measurement name (`boot to ssh`). */
  name: string;
  /** Unit (`s`, `ms`). */
  unit: string;
  /** Per release, oldest first. */
  releases: ReleaseLatency[];
}

/** Everything a history report shows. */
export interface HistoryReport {
  /** The filter it was made with. */
  filter: HistoryFilter;
  /** Number of runs that contributed. */
  runs: number;
  /** Number of matching results. */
  results: number;
  /** Releases on the axis, oldest first. */
  releases: string[];
  /** Per target × suite × test. */
  tests: TestHistory[];
  /** Regressions and fixes of tests. */
  changes: TestChange[];
  /** Predicted outcomes per board × unit. */
  outcomes: OutcomeHistory[];
  /** Changes of predicted outcomes (regressions, fixes, other changes). */
  outcomeChanges: OutcomeChangeReport[];
  /** Latency per release. */
  latency: LatencySeries[];
  /** Verdict counts over every matching result. */
  counts: Record<string, number>;
}

/** Measurement units that are times (latency). */
const TIME_UNITS = new Set(["s", "ms", "us", "µs", "ns"]);

/** Read the history and build the report (see the module documentation). */
export async function buildHistoryReport(
  db: Database,
  filter: HistoryFilter = {},
  opts: { latency?: LatencyCriteria; boardsDirs?: string[] } = {},
): Promise<HistoryReport> {
  const totals = queryTotals(db, filter);
  const tests = testHistories(queryCells(db, filter));
  const releaseOrder = new Map<string, number>();
  for (const t of tests) for (const c of t.cells) releaseOrder.set(c.release, c.order);
  const outcomes = outcomeHistories(queryOutcomes(db, filter));
  for (const h of outcomes) for (const c of h.cells) releaseOrder.set(c.release, c.order);
  const releases = [...releaseOrder.entries()].sort((a, b) => a[1] - b[1]).map(([r]) => r);

  const changes: TestChange[] = [];
  for (const t of tests) {
    for (const tr of t.transitions) {
      const release = tr.kind === "regression" ? tr.to : tr.from;
      const first = queryFirstBad(db, { ...t, release }, filter);
      const c: TestChange = { test: t, transition: tr };
      const ex = explainReleaseChange(tr.from, tr.to);
      if (ex) c.explanation = ex;
      if (first?.reason) c.reason = first.reason;
      if (first) {
        const e = consoleExcerpt(first.runDir, first.kernel, first.reason);
        if (e) c.excerpt = e;
      }
      changes.push(c);
    }
  }

  const boards = new Map<string, ScenarioInput["board"] | undefined>();
  const boardOf = async (id: string) => {
    if (!boards.has(id)) {
      try {
        const b = await findBoard(id, opts.boardsDirs ?? []);
        boards.set(id, boardFacts(b.board, b.path));
      } catch {
        boards.set(id, undefined); // a board file gone since: changes stay unattributed
      }
    }
    return boards.get(id);
  };
  const outcomeChanges: OutcomeChangeReport[] = [];
  for (const h of outcomes) {
    for (const tr of h.transitions) {
      const board = await boardOf(h.board);
      const ex = explainReleaseChange(tr.from, tr.to, board && { board, unit: h.unit });
      outcomeChanges.push(
        ex ? { history: h, transition: tr, explanation: ex } : {
          history: h,
          transition: tr,
        },
      );
    }
  }

  const groups = new Map<
    string,
    {
      s: Omit<LatencySeries, "releases">;
      by: { release: string; order: number; samples: number[] }[];
    }
  >();
  for (const m of querySamples(db, filter)) {
    if (!TIME_UNITS.has(m.unit)) continue;
    const k = [m.target, m.suite, m.test, m.name, m.unit].join("\0");
    let g = groups.get(k);
    if (!g) {
      g = {
        s: { target: m.target, suite: m.suite, test: m.test, name: m.name, unit: m.unit },
        by: [],
      };
      groups.set(k, g);
    }
    g.by.push({ release: m.release, order: m.releaseOrder, samples: m.values });
  }
  const latency: LatencySeries[] = [];
  for (const { s, by } of groups.values()) {
    by.sort((a, b) => a.order - b.order);
    latency.push({
      ...s,
      releases: judgeReleases(
        by.map(({ release, samples }) => ({ release, samples })),
        opts.latency,
      ),
    });
  }
  latency.sort((a, b) =>
    a.target.localeCompare(b.target) || a.test.localeCompare(b.test) ||
    a.name.localeCompare(b.name)
  );

  return {
    filter,
    runs: totals.runs,
    results: totals.results,
    releases,
    tests,
    changes,
    outcomes,
    outcomeChanges,
    latency,
    counts: totals.counts,
  };
}
