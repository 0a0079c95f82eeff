/**
 * The shape of a prediction: per IOMMU instance, where the tables land, whether they are bounced
 * and reachable, the outcome word, the kernel log lines to expect, the workload's verdict and
 * latency band, and the chain of facts and rules that led there. This is the stable `--json`
 * output of `rkhil predict` (see README, "Prediction JSON").
 *
 * @module
 */
import type { Confidence, EntryFormat, Fact, Outcome, PhysRange } from "./types.ts";

/** Version of the prediction JSON; bumped on any incompatible change. */
export const PREDICTION_SCHEMA_VERSION = 1;

/** One step of an explanation: a rule applied to facts, and what it concluded. */
export interface Step {
  rule: string;
  conclusion: string;
  facts: Fact<unknown>[];
}

/** A kernel log line to expect. `regex` matches the line without its printk prefix. */
export interface ExpectedLine {
  /** Human-readable line with `<…>` where a value varies. */
  template: string;
  /** Anchored regular expression (JavaScript syntax) for the varying line. */
  regex: string;
  confidence: Confidence;
  note?: string;
}

/** Where one table (directory or page table) lands. */
export interface TablePrediction {
  /** Zone the page comes from. */
  zone: "DMA" | "DMA32" | "NORMAL";
  /** Physical range of that zone. */
  range: PhysRange;
  /** True when the page is at or above 4 GiB. */
  above4G: boolean;
  /** True when `dma_map_single` bounces it through SWIOTLB. */
  bounced: boolean;
  /** Range the DMA address (what the hardware is given) falls in. */
  dmaRange: PhysRange;
  /** Whether the walker can reach the DMA address; `null` when unknown. */
  reachable: boolean | null;
}

/** Expected effect on a workload run through this IOMMU. */
export type WorkloadVerdict =
  | "correct-output"
  | "wrong-output"
  | "submit-failure-or-timeout"
  | "no-device"
  | "unknown";

/** Latency band for a workload, where a baseline exists. */
export interface LatencyBand {
  baselineMs: number;
  lowMs: number;
  highMs: number;
  source: string;
}

/** The prediction for one IOMMU instance. */
export interface InstancePrediction {
  unit: string;
  label: string;
  master: string;
  compatible: string[];
  status: "okay" | "disabled";
  /** Ops instance the compatible selects (`null` when none matches or the node is disabled). */
  ops: string | null;
  format: EntryFormat | null;
  outcome: Outcome;
  /** For UNCERTAIN: the outcomes still possible. Otherwise just `[outcome]`. */
  possible: Outcome[];
  /** What the outcome depends on, when it is conditional. */
  condition?: string;
  dt?: TablePrediction;
  pt?: TablePrediction;
  expectedLines: ExpectedLine[];
  workload?: { name: string; verdict: WorkloadVerdict; latency?: LatencyBand };
  explanation: Step[];
}

/** Memory facts the prediction was made with. */
export interface MemorySummary {
  banks: PhysRange[];
  zones: { dma: PhysRange | null; dma32: PhysRange | null; normal: PhysRange | null };
  swiotlb: { present: boolean; forced: boolean; sizeBytes: number; below: number | null };
  /**
   * The `cma=` area (oracle/cma.ts): `fixed` at `range`, `bounded` inside `range`, `failed` (not
   * reserved), `none` (no cma= given). Page tables never come from it.
   */
  cma?: { kind: "none" | "fixed" | "bounded" | "failed"; sizeBytes: number; range?: PhysRange };
}

/** A whole prediction. */
export interface Prediction {
  schema: number;
  board: string;
  soc: string;
  kernel: string;
  patches: string[];
  bootargs: string;
  memory: MemorySummary;
  instances: InstancePrediction[];
  /** Steps that apply to every instance (memory layout, probe order). */
  explanation: Step[];
  /** Where the inputs came from (kernel package, DTB). */
  notes: string[];
}
