/**
 * The driver fact that explains a change between two kernel releases: the knowledge-base
 * difference (oracle/changes.ts, as `rkhil changes` shows it) between the last good and the
 * first bad release, with each fact's source and the commit it names. With a board and an IOMMU
 * unit, only the facts the oracle's prediction for that unit rests on are kept (at 6.6 on a
 * ROCK 3B the NPU MMU's BUS_ERROR rests on the v2 table gfp zone, 2a7e6400f72b, not on the
 * DTE_ADDR layout that changed in the same release).
 *
 * Pure: no I/O (the board facts are given).
 *
 * @module
 */
import { driverFactChanges, releaseTimeline } from "../../oracle/changes.ts";
import { predict } from "../../oracle/predict.ts";
import {
  compareRelease,
  isKnownRelease,
  mainlineFacts,
  parseRelease,
  releaseKey,
  RELEASES,
} from "../../oracle/releases.ts";
import { buildScenario, type ScenarioInput } from "../../oracle/scenario.ts";

/** One driver fact that changed between the two releases. */
export interface ExplainingFact {
  /** Where in the driver facts (`rockchip,rk3568-iommu gfp zone`). */
  path: string;
  /** Value in the last good release. */
  before: unknown;
  /** Value in the first bad release. */
  after: unknown;
  /** The knowledge base's source for the new value. */
  source: string;
  /** How sure the knowledge base is (`verified`, `reported`, ...). */
  confidence: string;
  /** The commit the source names (12 hex digits), when it names one. */
  commit?: string;
}

/** Why a result changed between two releases. */
export interface ChangeExplanation {
  /** Knowledge-base release of the last good run (`6.5`). */
  from: string;
  /** Knowledge-base release of the first bad run (`6.6`). */
  to: string;
  /** The facts that changed (those the unit's prediction rests on, when `attributed`). */
  facts: ExplainingFact[];
  /** True when the facts were narrowed to the ones the unit's prediction uses. */
  attributed: boolean;
  /**
   * With a unit: true when `from`/`to` were narrowed to the two consecutive knowledge-base
   * releases between the given ones where the unit's predicted outcome changes (runs on 6.1 and
   * 6.12 → the change at 6.5 → 6.6).
   */
  bisected: boolean;
}

/** The knowledge-base key (`6.12`) of a release string, when the knowledge base covers it. */
export function kbRelease(release: string | null | undefined): string | undefined {
  if (!release) return undefined;
  const r = parseRelease(release);
  return r && isKnownRelease(r) ? releaseKey(r) : undefined;
}

/** The first 12-digit hexadecimal commit id in `text`. */
export function commitIn(text: string): string | undefined {
  return /\b([0-9a-f]{12,40})\b/.exec(text)?.[1]?.slice(0, 12);
}

/**
 * Explain the change from `lastGood` to `firstBad` (any release strings the knowledge base
 * covers, `6.1.0-57-arm64` included). Undefined when either release is outside the knowledge
 * base or they are the same series.
 */
export function explainReleaseChange(
  lastGood: string,
  firstBad: string,
  focus?: { board: ScenarioInput["board"]; unit: string },
): ChangeExplanation | undefined {
  let from = kbRelease(lastGood), to = kbRelease(firstBad);
  if (!from || !to || from === to) return undefined;
  if (compareRelease(parseRelease(from)!, parseRelease(to)!) > 0) [from, to] = [to, from];
  let bisected = false;
  if (focus) {
    const a = parseRelease(from)!, b = parseRelease(to)!;
    const between = RELEASES.filter((r) => {
      const x = parseRelease(r)!;
      return compareRelease(x, a) >= 0 && compareRelease(x, b) <= 0;
    });
    const steps = releaseTimeline({ board: focus.board }, between);
    const base = steps[0]?.outcomes[focus.unit];
    const step = steps.find((s, i) => i > 0 && s.outcomes[focus.unit] !== base);
    if (step?.previous && (step.previous !== from || step.release !== to)) {
      from = step.previous;
      to = step.release;
      bisected = true;
    }
  }
  const changes = driverFactChanges(
    mainlineFacts(parseRelease(from)!),
    mainlineFacts(parseRelease(to)!),
  );
  let facts: ExplainingFact[] = changes.map((c) => {
    const f: ExplainingFact = {
      path: c.path,
      before: c.before,
      after: c.after,
      source: c.fact.provenance.source,
      confidence: c.fact.provenance.confidence,
    };
    const commit = commitIn(c.fact.provenance.source);
    if (commit) f.commit = commit;
    return f;
  });
  let attributed = false;
  if (focus) {
    const p = predict(buildScenario({ board: focus.board, kernel: to }));
    const inst = p.instances.find((i) => i.unit === focus.unit);
    if (inst) {
      const used = new Set(
        inst.explanation.flatMap((s) => s.facts.map((f) => f.provenance.source)),
      );
      const narrowed = facts.filter((f) => used.has(f.source));
      if (narrowed.length) {
        facts = narrowed;
        attributed = true;
      }
    }
  }
  return { from, to, facts, attributed, bisected };
}
