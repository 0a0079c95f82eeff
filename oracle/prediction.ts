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
  /** Name of the rule applied (`table dma_dev`, `kernel command line`, ...). */
  rule: string;
  /** What the rule concluded, in words. */
  conclusion: string;
  /** The facts it used, each with its value and source. */
  facts: Fact<unknown>[];
}

/** A kernel log line to expect. `regex` matches the line without its printk prefix. */
export interface ExpectedLine {
  /** Human-readable line with `<…>` where a value varies. */
  template: string;
  /** Anchored regular expression (JavaScript syntax) for the varying line. */
  regex: string;
  /** How sure the oracle is of the line. */
  confidence: Confidence;
  /** Why the line may differ or be absent, when it may. */
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
  /** Measured or reported baseline latency in milliseconds. */
  baselineMs: number;
  /** Lowest expected latency in milliseconds. */
  lowMs: number;
  /** Highest expected latency in milliseconds. */
  highMs: number;
  /** Where the baseline comes from. */
  source: string;
}

/** The prediction for one IOMMU instance. */
export interface InstancePrediction {
  /** Unit address of the IOMMU node (`fde4b000`). */
  unit: string;
  /** Devicetree label of the node (`rknpu_mmu`). */
  label: string;
  /** The block the IOMMU serves (`RKNN`, `VOP2`). */
  master: string;
  /** The node's `compatible` strings, in devicetree order. */
  compatible: string[];
  /** The node's devicetree `status`. */
  status: "okay" | "disabled";
  /** Ops instance the compatible selects (`null` when none matches or the node is disabled). */
  ops: string | null;
  /** Page-table entry format of the selected ops; `null` without ops. */
  format: EntryFormat | null;
  /** The predicted outcome (`UNCERTAIN` when more than one is possible; see `possible`). */
  outcome: Outcome;
  /** For UNCERTAIN: the outcomes still possible. Otherwise just `[outcome]`. */
  possible: Outcome[];
  /** What the outcome depends on, when it is conditional. */
  condition?: string;
  /** Where the directory table lands; absent when it is not predicted (e.g. a disabled node). */
  dt?: TablePrediction;
  /** Where a page table lands; absent when it is not predicted (e.g. a disabled node). */
  pt?: TablePrediction;
  /** Kernel log lines to expect from this instance. */
  expectedLines: ExpectedLine[];
  /** With a workload: its name, the expected effect and, where a baseline exists, latency. */
  workload?: { name: string; verdict: WorkloadVerdict; latency?: LatencyBand };
  /** The rules and facts that lead to the outcome, in order. */
  explanation: Step[];
}

/** Memory facts the prediction was made with. */
export interface MemorySummary {
  /** Memory banks after any `mem=` limit (physical ranges, bytes). */
  banks: PhysRange[];
  /** Span of each memory zone (physical range, bytes); `null` when the zone is empty. */
  zones: { dma: PhysRange | null; dma32: PhysRange | null; normal: PhysRange | null };
  /** SWIOTLB: whether it exists, whether every mapping bounces, its size in bytes, and the exclusive end address it lies below (`null` when unknown). */
  swiotlb: { present: boolean; forced: boolean; sizeBytes: number; below: number | null };
  /**
   * The `cma=` area (oracle/cma.ts): `fixed` at `range`, `bounded` inside `range`, `failed` (not
   * reserved), `none` (no cma= given). Page tables never come from it.
   */
  cma?: { kind: "none" | "fixed" | "bounded" | "failed"; sizeBytes: number; range?: PhysRange };
}

/** A whole prediction. */
export interface Prediction {
  /** Version of this JSON shape (`PREDICTION_SCHEMA_VERSION`). */
  schema: number;
  /** Board id. */
  board: string;
  /** SoC id (`rk3568`). */
  soc: string;
  /** Kernel release of the knowledge base (`6.12`). */
  kernel: string;
  /** Downstream patch sets applied, in order. */
  patches: string[];
  /** The kernel command line assumed. */
  bootargs: string;
  /** The memory facts the prediction was made with. */
  memory: MemorySummary;
  /** One prediction per IOMMU node of the devicetree, in devicetree order. */
  instances: InstancePrediction[];
  /** Steps that apply to every instance (memory layout, probe order). */
  explanation: Step[];
  /** Where the inputs came from (kernel package, DTB). */
  notes: string[];
}
