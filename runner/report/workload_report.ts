/**
 * The NPU workloads part of a run's report (`report.md`): per target, kernel, workload and
 * backend, what the workload suites (`npu/*`, tests/_npu.ts) found: the top-1 per image or the
 * detections, the latency median and its interval, and the oracle's workload verdict against
 * what happened. Read from the results alone, like the rest of the report.
 *
 * @module
 */
import type { TestResult } from "../results/store.ts";

/** One row: a backend of one workload on one target and kernel. */
export interface WorkloadRow {
  /** Target name. */
  target: string;
  /** Kernel under test as results name it. */
  kernel: string;
  /** Running release, when known. */
  release?: string;
  /** Workload (`mobilenet_v1`, `yolov5`): the suite's test id prefix. */
  workload: string;
  /** Backend (`cpu`, `rknn`, `rocket`). */
  backend: string;
  /** `4/4 PASS: grace_hopper 653 military uniform 0.87, ...` or `SKIP: why`. */
  result: string;
  /** `median 1432 ms [1390, 1500]` (and its judgements), or `-`. */
  latency: string;
  /** `AGREE (correct-output)`, `DISAGREE: predicted ..., happened ...`, `predicts no-device`. */
  oracle: string;
}

const first = (s: string | undefined) => (s ?? "").split("\n")[0];
const str = (v: unknown) => typeof v === "string" ? v : undefined;

/** The rows of a run's workload results, in the order the run met them. */
export function workloadRows(results: readonly TestResult[]): WorkloadRow[] {
  const rows = new Map<string, { row: WorkloadRow; steps: TestResult[] }>();
  for (const r of results) {
    if (!r.suite?.startsWith("npu/")) continue;
    const [workload, backend, what] = r.test.split("/");
    if (!workload || !backend) continue;
    const key = JSON.stringify([r.target, r.kernel, workload, backend]);
    let g = rows.get(key);
    if (!g) {
      g = {
        row: {
          target: r.target,
          kernel: r.kernel,
          release: r.release,
          workload,
          backend,
          result: "-",
          latency: "-",
          oracle: "-",
        },
        steps: [],
      };
      rows.set(key, g);
    }
    if (!what) {
      // The backend as a whole: missing capability (with the oracle's expectation).
      g.row.result = `${r.verdict}: ${first(r.reason)}`;
      const e = r.details?.expectation as { verdict?: unknown } | undefined;
      if (typeof e?.verdict === "string") g.row.oracle = `predicts ${e.verdict}`;
    } else if (what === "latency") {
      g.row.latency = r.verdict === "SKIP" || r.verdict === "MISS" || r.verdict === "ERROR"
        ? r.verdict
        : `${r.verdict === "FAIL" ? "FAIL: " : ""}${str(r.details?.summary) ?? "-"}`;
    } else g.steps.push(r);
  }
  for (const { row, steps } of rows.values()) {
    if (!steps.length) continue;
    const name = (r: TestResult) => r.test.split("/").slice(2).join("/");
    if (steps.every((r) => r.verdict === "SKIP")) {
      row.result = `SKIP: ${first(steps[0].reason)}`;
    } else {
      const pass = steps.filter((r) => r.verdict === "PASS").length;
      const each = steps.map((r) => {
        const s = str(r.details?.summary)?.replace(/; oracle \w+$/, "");
        return `${name(r)} ${r.verdict === "PASS" && s ? s : r.verdict}`;
      });
      row.result = `${pass}/${steps.length} PASS: ${each.join(", ")}`;
    }
    const verdicts = new Map<string, number>();
    let disagree: TestResult | undefined;
    for (const r of steps) {
      const v = str(r.details?.verdict);
      if (!v) continue;
      const label = `${v} (${str(r.details?.predicted) ?? "?"})`;
      verdicts.set(label, (verdicts.get(label) ?? 0) + 1);
      if (v === "DISAGREE") disagree ??= r;
    }
    if (disagree) {
      row.oracle = `DISAGREE: predicted ${str(disagree.details?.predicted)}, happened ${
        str(disagree.details?.observed)
      }`;
    } else if (verdicts.size) {
      row.oracle = [...verdicts].map(([l, n]) => verdicts.size > 1 ? `${n} ${l}` : l).join(", ");
    }
  }
  return [...rows.values()].map((g) => g.row);
}

/** Escape a value for a Markdown table cell. */
function md(s: string): string {
  return s.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/**
 * The `## NPU workloads` section (lines), or nothing when the run has no workload result. One
 * table; a target column only when the run had several targets.
 */
export function renderWorkloadSection(results: readonly TestResult[]): string[] {
  const rows = workloadRows(results);
  if (!rows.length) return [];
  const many = new Set(rows.map((r) => r.target)).size > 1;
  const head = [
    ...(many ? ["target"] : []),
    "kernel",
    "release",
    "workload",
    "backend",
    "result (top-1 / detections)",
    "latency (median, 95 % interval)",
    "oracle",
  ];
  return [
    "## NPU workloads",
    "",
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) =>
      `| ${
        [
          ...(many ? [r.target] : []),
          r.kernel,
          r.release ?? "-",
          r.workload,
          r.backend,
          r.result,
          r.latency,
          r.oracle,
        ].map(md).join(" | ")
      } |`
    ),
  ];
}
