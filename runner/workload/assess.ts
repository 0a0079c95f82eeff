/**
 * What the workload suites (`tests/npu_*.ts`) conclude from one run, pure so it is tested on
 * real captured outputs: the backends and the capability each needs, what the oracle expects a
 * workload to do on a board and kernel (its workload verdict), what a run did (the same four
 * words, with the console lines as evidence), the two held against each other, an RKNN demo's
 * output as classes or detections, an NPU detection run against the cpu run, and latency
 * samples against the oracle's expectation and the target's own baseline
 * (runner/report/latency.ts: bootstrap median interval, Mann-Whitney, effect floor).
 *
 * @module
 */
import { boardFacts } from "../../boards/facts.ts";
import type { BoardSpec, Capability } from "../../boards/schema.ts";
import { stripPrintkPrefix } from "../../oracle/compare.ts";
import { predict } from "../../oracle/predict.ts";
import type { LatencyBand, WorkloadVerdict } from "../../oracle/prediction.ts";
import { isKnownRelease, parseRelease, releaseKey } from "../../oracle/releases.ts";
import { buildScenario } from "../../oracle/scenario.ts";
import {
  bootstrapMedian,
  mannWhitney,
  type MedianInterval,
  type RankTest,
} from "../report/latency.ts";
import { parseRknpuMessage } from "../watch/npu_lines.ts";
import type { Judgement } from "./judge.ts";
import type { RknnOutput } from "./rknn_output.ts";
import type { RkwlRun } from "./rkwl_output.ts";
import { type Detection, matchDetections } from "./yolo.ts";

/** A workload backend: the vendor stack, Mesa Teflon on the mainline driver, or the CPU. */
export type Backend = "cpu" | "rocket" | "rknn";

/** The backends in the order a suite runs them (the cpu first: NPU runs are held against it). */
export const BACKENDS: readonly Backend[] = ["cpu", "rknn", "rocket"];

/** The capability a target needs for each backend. */
export const BACKEND_CAPABILITY: Readonly<Record<Backend, Capability>> = {
  cpu: "cpu-workload",
  rknn: "rknn",
  rocket: "rocket",
};

/** A workload verdict that happened (the oracle's words without `unknown`). */
export type ObservedVerdict = Exclude<WorkloadVerdict, "unknown">;

/** What the oracle expects of one workload run. */
export interface Expectation {
  /** The oracle's workload verdict (`unknown`: it cannot say, or the release is not known). */
  verdict: WorkloadVerdict;
  /** Why, in one line (the IOMMU, its predicted outcome, or why there is none). */
  why: string;
  /** The latency band the oracle gives for this workload (NPU backends on RK356x only). */
  latency?: LatencyBand;
}

/** The board and kernel a workload runs on, as the oracle needs them. */
export interface WorkloadScene {
  /** The board file. */
  board: BoardSpec;
  /** Its path (the provenance of the board facts). */
  boardPath: string;
  /** The running release (`uname -r`). */
  release: string;
  /** The kernel command line (`/proc/cmdline`). */
  bootargs: string;
}

/**
 * The oracle's workload verdict for `workload` (`mobilenet_v1`, `yolov5s`: the names its
 * latency baselines have) through `backend` on this board and kernel. The cpu backend's buffers
 * go through no IOMMU: `correct-output` on any board. An NPU backend goes through the SoC's NPU
 * MMU: the verdict of that IOMMU's predicted outcome (OK → correct-output, WRONG_PAGE →
 * wrong-output, BUS_ERROR/PAGE_FAULT → submit-failure-or-timeout, PROBE_FAILED/DISABLED →
 * no-device); a board with no NPU MMU (qemu-virt) → no-device.
 */
export function oracleExpectation(
  scene: WorkloadScene,
  workload: string,
  backend: Backend,
): Expectation {
  if (backend === "cpu") {
    return {
      verdict: "correct-output",
      why: "the cpu backend's buffers go through no IOMMU",
    };
  }
  const rel = parseRelease(scene.release);
  if (!rel || !isKnownRelease(rel)) {
    return {
      verdict: "unknown",
      why: `release ${scene.release} is not in the driver knowledge base`,
    };
  }
  const board = boardFacts(scene.board, scene.boardPath);
  const p = predict(buildScenario({
    board,
    kernel: releaseKey(rel),
    bootargs: scene.bootargs,
    workload: { name: workload, buffers: "all-memory" },
  }));
  const through = p.instances.find((i) => i.workload);
  if (!through?.workload) {
    return {
      verdict: "no-device",
      why: `the oracle predicts no NPU MMU on ${board.soc} (${board.id}): no NPU to run on`,
    };
  }
  return {
    verdict: through.workload.verdict,
    why: `${through.unit} (${through.master}) ${through.outcome} on ${releaseKey(rel)}${
      through.condition ? ` (${through.condition})` : ""
    }`,
    ...(through.workload.latency ? { latency: through.workload.latency } : {}),
  };
}

/** RKNPU driver messages that tell a job failed. */
const RKNPU_FAILURES: ReadonlySet<string> = new Set([
  "job-timeout",
  "timeout-core",
  "wait-failed",
  "job-abort",
  "soft-reset",
  "commit-failed",
  "invalid-irq-status",
]);

/**
 * The kernel lines among `lines` that tell a submit failure or a timeout: `rk_iommu` faults and
 * the RKNPU driver's error lines (runner/watch/npu_lines.ts), printk prefixes removed, each once.
 */
export function failureEvidence(lines: readonly string[]): string[] {
  const out = new Set<string>();
  for (const raw of lines) {
    const l = stripPrintkPrefix(raw).trim();
    if (/\brk_iommu\b/.test(l) && /Page fault|BUS_ERROR|mmu_dte_addr|Enable stall/.test(l)) {
      out.add(l);
      continue;
    }
    const at = l.search(/\bRKNPU\b/);
    const msg = at >= 0 ? parseRknpuMessage(l.slice(at)) : null;
    if (msg && RKNPU_FAILURES.has(msg.kind)) out.add(l);
    else if (/failed to submit/.test(l)) out.add(l);
  }
  return [...out];
}

/** What a run did, as a workload verdict, with the lines that show it. */
export interface Observation {
  /** The verdict; undefined when the run says nothing about the workload (bad input, a bug). */
  verdict?: ObservedVerdict;
  /** Why, in one line. */
  why: string;
  /** Console or program lines that show it (at most 10). */
  evidence: string[];
}

/**
 * What an rkwl run did: `no-device` (the delegate found none), `submit-failure-or-timeout` (the
 * run failed, timed out or the kernel printed a fault meanwhile), `correct-output` or
 * `wrong-output` (done, as the correctness judgement says); nothing for bad input or a
 * delegate that does not load.
 */
export function observeRkwl(
  run: RkwlRun,
  correctness: Judgement | undefined,
  kernelLines: readonly string[],
  timedOut = false,
): Observation {
  const evidence = failureEvidence(kernelLines).slice(0, 10);
  if (run.outcome === "no-device") {
    return {
      verdict: "no-device",
      why: `${run.noDevice?.reason ?? "no device"}`,
      evidence: run.noDevice
        ? [`rkwl no-device ${run.noDevice.delegate}: ${run.noDevice.reason}`]
        : [],
    };
  }
  if (timedOut || evidence.length || run.outcome === "failed" || run.outcome === "truncated") {
    const err = run.errors[0];
    return {
      verdict: "submit-failure-or-timeout",
      why: timedOut
        ? "the run timed out"
        : evidence.length
        ? `the kernel printed ${evidence.length} fault line${evidence.length === 1 ? "" : "s"}`
        : err
        ? `rkwl ${err.stage}: ${err.message}`
        : `rkwl ${run.outcome}`,
      evidence: evidence.length ? evidence : err ? [`rkwl error ${err.stage}: ${err.message}`] : [],
    };
  }
  if (run.outcome !== "done" || !correctness) {
    return { why: `rkwl ${run.outcome}`, evidence: [] };
  }
  return {
    verdict: correctness.verdict === "PASS" ? "correct-output" : "wrong-output",
    why: correctness.reason,
    evidence: [],
  };
}

/**
 * What an RKNN SDK program's run did (its output and the kernel lines meanwhile, parsed by
 * runner/workload/rknn_output.ts): `no-device` (no rknpu driver or device), `submit-failure-or-
 * timeout` (a failed submit, a job timeout or abort, an rk_iommu fault), else by correctness.
 */
export function observeRknn(
  out: RknnOutput,
  correctness: Judgement | undefined,
  kernelLines: readonly string[],
): Observation {
  const noDev = out.errors.find((e) =>
    e.kind === "driver-missing" || e.kind === "device-open-failed"
  );
  if (noDev) return { verdict: "no-device", why: noDev.text, evidence: [noDev.text] };
  const failed = out.errors.filter((e) =>
    ["submit-failed", "job-timeout", "wait-failed", "job-abort", "job-commit-failed"].includes(
      e.kind,
    )
  );
  const kernel = failureEvidence(kernelLines);
  if (failed.length || kernel.length) {
    const evidence = [...failed.map((e) => e.text), ...kernel].slice(0, 10);
    return {
      verdict: "submit-failure-or-timeout",
      why: failed[0]?.text ?? kernel[0],
      evidence,
    };
  }
  if (!correctness) {
    const e = out.errors.find((x) => x.severity === "error");
    return { why: e ? e.text : `no result (${out.status})`, evidence: e ? [e.text] : [] };
  }
  return {
    verdict: correctness.verdict === "PASS" ? "correct-output" : "wrong-output",
    why: correctness.reason,
    evidence: [],
  };
}

/** The oracle's expectation held against what happened. */
export interface OracleComparison {
  /** AGREE, DISAGREE, or UNCERTAIN (the oracle cannot say, or the run says nothing). */
  verdict: "AGREE" | "DISAGREE" | "UNCERTAIN";
  /** One line: predicted against observed. */
  summary: string;
}

/** Compare the oracle's workload verdict with what happened. */
export function compareWithOracle(e: Expectation, o: Observation): OracleComparison {
  if (e.verdict === "unknown" || !o.verdict) {
    return {
      verdict: "UNCERTAIN",
      summary: `uncertain: the oracle predicts ${e.verdict} (${e.why}), the run gave ${
        o.verdict ?? `nothing to judge (${o.why})`
      }`,
    };
  }
  const agree = e.verdict === o.verdict;
  return {
    verdict: agree ? "AGREE" : "DISAGREE",
    summary: `${agree ? "agree" : "disagree"}: the oracle predicts ${e.verdict} (${e.why}), ` +
      `the run gave ${o.verdict}${o.evidence.length ? ` (${o.evidence[0]})` : ""}`,
  };
}

/**
 * An RKNN demo's top-k as rkwl's (class index and score per rank), so the same classification
 * judgement (judge.ts) reads both. The first top-k list is the model's (one output tensor).
 */
export function rknnTop(out: RknnOutput): Pick<RkwlRun, "top"> {
  const list = out.topK[0];
  return {
    top: (list?.classes ?? []).map((c, i) => ({
      rank: i + 1,
      classIndex: c.classIndex,
      score: c.score,
    })),
  };
}

/**
 * `rknn_yolov5_demo`'s detections as decoded ones (class names looked up in `labels`, COCO);
 * a name not in the labels is dropped and counted.
 */
export function rknnDetections(
  out: RknnOutput,
  labels: readonly string[],
): { detections: Detection[]; unknownClasses: number } {
  const index = new Map(labels.map((l, i) => [l.trim(), i]));
  const detections: Detection[] = [];
  let unknownClasses = 0;
  for (const d of out.detections) {
    const classIndex = index.get(d.className.trim());
    if (classIndex === undefined) {
      unknownClasses++;
      continue;
    }
    detections.push({
      classIndex,
      score: d.score,
      box: [d.leftPx, d.topPx, d.rightPx, d.bottomPx],
    });
  }
  return { detections, unknownClasses };
}

/**
 * Hold an NPU detection run against the cpu run of the same image: every cpu detection scored
 * at least `minScore` (default 0.5) must be found by the NPU (same class, IoU ≥ 0.5).
 */
export function judgeDetectionsAgainstCpu(
  npu: readonly Detection[],
  cpu: readonly Detection[],
  minScore = 0.5,
  labels?: readonly string[],
): Judgement {
  const strong = cpu.filter((d) => d.score >= minScore);
  const m = matchDetections(
    strong.map((d) => ({ classIndex: d.classIndex, box: d.box, required: true })),
    [...npu],
  );
  if (m.missing.length) {
    return {
      verdict: "FAIL",
      reason: `${m.missing.length} of the cpu's ${strong.length} detections at ≥ ${minScore} ` +
        `not found: ${
          m.missing.map((o) => `${labels?.[o.classIndex] ?? o.classIndex} (${o.box.join(" ")})`)
            .join(", ")
        }`,
    };
  }
  return {
    verdict: "PASS",
    reason: `all ${strong.length} of the cpu's detections at ≥ ${minScore} found`,
  };
}

/** How a run's latency compares with its expectation and with the target's own baseline. */
export interface LatencyAssessment {
  /** Median and its 95 % bootstrap interval of the samples (ms). */
  interval: MedianInterval;
  /** Against the oracle's band: `within`, `slower` (interval above the band), `faster`. */
  expectation?: { band: LatencyBand; judgement: "within" | "slower" | "faster" };
  /** Against the baseline: the rank test, the change of the median, the judgement. */
  baseline?: {
    n: number;
    median: number;
    test?: RankTest;
    change: number;
    judgement: "slower" | "faster" | "same" | "too few samples";
  };
  /** One line for the report. */
  summary: string;
}

/** When a latency difference counts (as runner/report/latency.ts judges releases). */
export interface LatencyRules {
  /** Significance level of the rank test (default 0.05). */
  alpha?: number;
  /** Smallest relative change of the median that counts (default 0.10). */
  effectFloor?: number;
  /** Fewest samples on each side for a rank test (default 3). */
  minSamples?: number;
}

const ms = (x: number) => x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);

/**
 * Judge latency samples (ms, warm-up already left out) against the oracle's band (when it gives
 * one) and against the target's own baseline samples (when the history has some): the median
 * with its bootstrap interval; `slower`/`faster` than the band only when the whole interval
 * lies outside it; against the baseline, a Mann-Whitney test AND a change of the median over
 * the effect floor.
 *
 * @throws {RangeError} for no samples.
 */
export function assessLatency(
  samples: readonly number[],
  opts: { band?: LatencyBand; baseline?: readonly number[]; rules?: LatencyRules } = {},
): LatencyAssessment {
  const interval = bootstrapMedian(samples);
  const parts = [`median ${ms(interval.median)} ms [${ms(interval.low)}, ${ms(interval.high)}]`];
  const a: LatencyAssessment = { interval, summary: "" };
  if (opts.band) {
    const b = opts.band;
    const judgement = interval.low > b.highMs
      ? "slower"
      : interval.high < b.lowMs
      ? "faster"
      : "within";
    a.expectation = { band: b, judgement };
    parts.push(
      `${
        judgement === "within" ? "within" : `${judgement} than`
      } the expected ${b.lowMs}–${b.highMs} ms`,
    );
  }
  if (opts.baseline?.length) {
    const alpha = opts.rules?.alpha ?? 0.05;
    const floor = opts.rules?.effectFloor ?? 0.10;
    const min = opts.rules?.minSamples ?? 3;
    const base = [...opts.baseline];
    const bm = bootstrapMedian(base).median;
    const change = bm === 0 ? 0 : (interval.median - bm) / Math.abs(bm);
    if (samples.length < min || base.length < min) {
      a.baseline = { n: base.length, median: bm, change, judgement: "too few samples" };
    } else {
      const test = mannWhitney(samples, base);
      const judgement = test.p < alpha && Math.abs(change) > floor
        ? (change > 0 ? "slower" : "faster")
        : "same";
      a.baseline = { n: base.length, median: bm, test, change, judgement };
    }
    const pct = `${change >= 0 ? "+" : ""}${(change * 100).toFixed(0)} %`;
    const jd = a.baseline.judgement;
    const rel = jd === "same"
      ? "same as"
      : jd === "too few samples"
      ? "too few samples for"
      : `${jd} than`;
    const p = a.baseline.test ? `, p=${a.baseline.test.p.toPrecision(2)}` : "";
    parts.push(`${rel} the baseline ${ms(bm)} ms (${pct}, ${base.length} samples${p})`);
  }
  a.summary = parts.join("; ");
  return a;
}
