/**
 * `predict(scenario)`: for each IOMMU node of the scenario's device tree, where the driver's tables
 * land, whether they are bounced and reachable by that instance's walker, and so the outcome, the
 * kernel log lines, the workload verdict and latency band, with the explanation chain.
 *
 * Pure: no I/O, no clock, no randomness.
 *
 * @module
 */
import { renderEvent } from "./klog.ts";
import {
  type ExpectedLine,
  type InstancePrediction,
  type LatencyBand,
  type Prediction,
  PREDICTION_SCHEMA_VERSION,
  type Step,
  type TablePrediction,
  type WorkloadVerdict,
} from "./prediction.ts";
import { memoryView, type MemView, type Placement } from "./memview.ts";
import type { OpsSpec } from "./releases.ts";
import { type DtIommuNode, OracleInputError, type Scenario } from "./scenario.ts";
import { findInstance, getSoc, type Soc, socIds, walkerReach } from "./soc.ts";
import { getPatch } from "./patches.ts";
import { type Fact, fact, type HwRevision, type Outcome, type PhysRange } from "./types.ts";

const FOUR_GIB = 0x1_0000_0000;
const R16 = "research/rockchip-iommu.md §1.6";
const R54 = "research/rockchip-iommu.md §5.4";
const SEED = "seed/rockchip-iommu-thread.txt";

/** Predict every IOMMU instance of a scenario. Throws OracleInputError for an unknown SoC. */
export function predict(s: Scenario): Prediction {
  const soc = getSoc(s.board.soc);
  if (!soc) {
    throw new OracleInputError(
      `unknown SoC "${s.board.soc}" in board ${s.board.id}`,
      `use one of: ${socIds().join(", ")}`,
      socIds(),
    );
  }
  const mem = memoryView(s);
  const probe = probeOrder(s);
  const instances = s.devicetree.map((node) =>
    withContraryReports(s, soc, predictInstance(s, soc, mem, probe, node))
  );
  return {
    schema: PREDICTION_SCHEMA_VERSION,
    board: s.board.id,
    soc: soc.id,
    kernel: s.driver.release,
    patches: s.driver.patches,
    bootargs: s.bootargs,
    memory: mem.summary,
    instances,
    explanation: [...mem.steps, probe.step],
    notes: [...s.notes, ...mem.notes],
  };
}

/**
 * Carry public reports that contradict this prediction (patches.ts `contrary`): a condition
 * naming the source, an explanation step with the reasoning, and an unknown workload verdict.
 */
function withContraryReports(s: Scenario, soc: Soc, p: InstancePrediction): InstancePrediction {
  const reports = s.driver.patches.flatMap((name) => getPatch(name)?.contrary ?? [])
    .filter((c) => c.unit === p.unit && c.socs.includes(soc.id));
  if (reports.length === 0 || p.outcome === "DISABLED" || p.outcome === "PROBE_FAILED") return p;
  const out: InstancePrediction = { ...p, explanation: [...p.explanation] };
  for (const c of reports) {
    out.condition = joinConditions([
      ...(out.condition ? [out.condition] : []),
      `unless the contrary report holds (${c.source}: ${c.report})`,
    ]);
    out.explanation.push({
      rule: "contrary report",
      conclusion: `${c.report}; weighed: ${c.reasoning}`,
      facts: [fact("contrary report", c.report, c.source, "reported", c.reasoning)],
    });
  }
  if (out.workload && out.workload.verdict === "correct-output") {
    out.workload = { name: out.workload.name, verdict: "unknown" };
    out.explanation.push({
      rule: "workload",
      conclusion: `${out.workload.name}: unknown (a public report contradicts correct-output)`,
      facts: [],
    });
  }
  return out;
}

/** Ops the driver binds to a node: the node's compatibles in order, first one the table has. */
export function opsFor(
  s: Scenario,
  node: DtIommuNode,
): { compatible: string; ops: OpsSpec } | null {
  for (const c of node.compatible) {
    const ops = s.driver.compatibles[c];
    if (ops) return { compatible: c, ops };
  }
  return null;
}

interface ProbeOrder {
  /** Ops of the first IOMMU to probe (global `rk_ops` and global `dma_dev` come from it). */
  first: { unit: string; ops: OpsSpec } | null;
  step: Step;
}

/** Probe order is device-tree order, i.e. ascending unit address in these SoC trees [D]. */
function probeOrder(s: Scenario): ProbeOrder {
  const okay = s.devicetree
    .filter((n) => n.status === "okay" && opsFor(s, n))
    .sort((a, b) => a.unit.localeCompare(b.unit));
  const head = okay[0];
  const first = head ? { unit: head.unit, ops: opsFor(s, head)!.ops } : null;
  return {
    first,
    step: {
      rule: "probe order",
      conclusion: first
        ? `${first.unit}.iommu probes first (device-tree order); with global ops its ` +
          `${first.ops.name} becomes rk_ops, and before v6.15 its device maps every table`
        : "no enabled IOMMU node matches the driver",
      facts: [
        s.driver.perDeviceOps,
        s.driver.dmaDev,
        fact(
          "probe order",
          okay.map((n) => n.unit),
          "of_platform_populate creates devices in device-tree order; nodes sort by unit address",
          "derived",
        ),
      ],
    },
  };
}

function predictInstance(
  s: Scenario,
  soc: Soc,
  mem: MemView,
  probe: ProbeOrder,
  node: DtIommuNode,
): InstancePrediction {
  const hw = findInstance(soc, node.unit);
  const base = {
    unit: node.unit,
    label: node.label && !node.label.includes("@") ? node.label : hw?.label ?? node.label,
    master: hw?.master ?? "unknown master",
    compatible: node.compatible,
    status: node.status,
  };
  const nodeFact = fact(
    `${node.unit} device-tree node`,
    { compatible: node.compatible, status: node.status },
    node.source,
    node.confidence,
  );
  if (node.status !== "okay") {
    return finish(s, base, "DISABLED", {}, [{
      rule: "status",
      conclusion: "node is disabled: the driver never probes it",
      facts: [nodeFact],
    }]);
  }
  const bound = opsFor(s, node);
  if (!bound) {
    return finish(s, base, "PROBE_FAILED", {}, [{
      rule: "compatible match",
      conclusion: `no compatible of the node is in ${s.driver.release}'s driver table ` +
        `(${Object.keys(s.driver.compatibles).join(", ")}): rk_iommu never binds, and the ` +
        "master's probe waits for its IOMMU forever",
      facts: [nodeFact],
    }]);
  }
  const ops = bound.ops;
  const steps: Step[] = [{
    rule: "compatible match",
    conclusion: `"${bound.compatible}" selects ${ops.name}: ${ops.format} entries, ` +
      `${ops.dmaMaskBits.value}-bit DMA mask, table gfp ${
        ops.gfpZone.value === "none" ? "without zone modifier (all memory)" : ops.gfpZone.value
      }`,
    facts: [nodeFact, ops.dmaMaskBits, ops.gfpZone],
  }];

  if (!s.driver.perDeviceOps.value && probe.first && probe.first.ops !== ops) {
    steps.push({
      rule: "global ops",
      conclusion: `rk_ops is already ${probe.first.ops.name} from ${probe.first.unit}.iommu: ` +
        "WARN_ON(rk_ops != ops) and probe returns -EINVAL",
      facts: [
        s.driver.perDeviceOps,
        fact(
          "rk_iommu_probe",
          "WARN_ON(rk_ops != ops)",
          "research/rockchip-iommu.md §1.5",
          "verified",
        ),
      ],
    });
    return finish(s, base, "PROBE_FAILED", { ops, lines: probeFailedLines(node.unit) }, steps);
  }

  // The device that maps the tables, and so the DMA mask that decides bouncing.
  const maskOps = s.driver.dmaDev.value === "global-first-probed" && probe.first
    ? probe.first.ops
    : ops;
  const maskBits = maskOps.dmaMaskBits.value;
  steps.push({
    rule: "table dma_dev",
    conclusion: maskOps === ops
      ? `tables are mapped for a device with a ${maskBits}-bit mask`
      : `tables are mapped through the first-probed IOMMU ${probe.first!.unit}.iommu, ` +
        `whose mask is ${maskBits} bits`,
    facts: [s.driver.dmaDev, maskOps.dmaMaskBits],
  });

  const hwRev = hw?.revision ??
    fact("hardware revision", "unknown" as const, `not in the ${soc.id} catalog`, "unknown");
  const ctx: WalkContext = { s, soc, mem, node, ops, maskBits, hwRev, reach: walkerReach(hwRev) };
  const place = mem.place(ops.gfpZone);
  const walk = evaluate(ctx, place);
  steps.push(...walk.steps);
  const conditions = [...walk.conditions];
  if (place.condition && place.alternative) {
    // The placement depends on free memory: when the other zone changes the outcome, say so.
    const alt = evaluate(ctx, place.alternative);
    if (alt.outcome !== walk.outcome) {
      conditions.unshift(place.condition);
      conditions.push(
        `if the tables come from ZONE_${place.alternative.zone} instead: ${alt.outcome}`,
      );
    }
  }
  return finish(
    s,
    base,
    walk.outcome,
    { ops, lines: walk.lines, condition: joinConditions(conditions), dt: walk.dt, pt: walk.pt },
    steps,
    walk.possible,
  );
}

interface WalkContext {
  s: Scenario;
  soc: Soc;
  mem: MemView;
  node: DtIommuNode;
  ops: OpsSpec;
  maskBits: number;
  hwRev: Fact<HwRevision>;
  reach: ReturnType<typeof walkerReach>;
}

interface Walk {
  outcome: Outcome;
  possible: Outcome[];
  lines: ExpectedLine[];
  conditions: string[];
  steps: Step[];
  dt?: TablePrediction;
  pt?: TablePrediction;
}

/**
 * Follow what the driver and the walker do with tables placed in `place`: map them, program
 * the DTE, walk the directory and the page table, then the pages. The directory and every page
 * table come from the same GFP flags, so they share one placement.
 */
function evaluate(ctx: WalkContext, place: Placement): Walk {
  const { s, node, ops, maskBits, hwRev, reach } = ctx;
  const steps: Step[] = [];
  const map = ctx.mem.map(place, maskBits);
  for (const what of ["directory table", "page table"]) {
    steps.push(placementStep(what, place, map.kind, map.dmaRange, s.driver.allocCall));
  }
  const done = (outcome: Outcome, extra: Partial<Walk> = {}): Walk => ({
    outcome,
    possible: [outcome],
    lines: [],
    conditions: [],
    steps,
    ...extra,
  });

  if (map.kind === "failed") {
    steps.push({
      rule: "dma_map_single",
      conclusion: "mapping the directory table fails: domain allocation returns NULL, the master " +
        "cannot attach",
      facts: [ops.dmaMaskBits],
    });
    return done("PROBE_FAILED", { lines: [line(node.unit, "DMA map error for DT", "verified")] });
  }

  const bounced = map.kind === "bounced";
  const dt = table(place, bounced, map.dmaRange, reachable(map.dmaRange, reach.dt));
  const pt = table(place, bounced, map.dmaRange, reachable(map.dmaRange, reach.pt));
  const possible = new Set<Outcome>();
  const lines: ExpectedLine[] = [];
  const conditions: string[] = [];

  // 1. DTE_ADDR written in the vendor layout: hardware that expects DTE encoding misreads a
  //    directory above 4 GiB.
  if (
    ops.format === "v2" && s.driver.dteAddrLayout.value === "vendor" && dt.dmaRange.end > FOUR_GIB
  ) {
    steps.push({
      rule: "DTE_ADDR layout",
      conclusion:
        "the directory can lie above 4 GiB but DTE_ADDR is written in the vendor layout " +
        "(fixed by 6df63b7ebdaf): the walker would start from a wrong address",
      facts: [s.driver.dteAddrLayout],
    });
    possible.add("BUS_ERROR").add("PAGE_FAULT");
  }

  // 2. The walker reads the directory table.
  walkStep(steps, "directory table", dt, reach.dt, hwRev);
  if (dt.reachable === false) {
    return done("BUS_ERROR", { lines: busErrorLines(node.unit), dt, pt });
  }
  if (dt.reachable === null) possible.add("BUS_ERROR");

  // 3. It reads the page table the DTE points to.
  if (ops.format === "v1" && pt.dmaRange.end > FOUR_GIB) {
    steps.push({
      rule: "v1 DTE truncation",
      conclusion: "a v1 DTE keeps address bits 31:12 only: a page table above 4 GiB is read " +
        "from its alias below 4 GiB",
      facts: [
        fact("v1 DTE", "(pt_dma & 0xfffff000) | 1", "research/rockchip-iommu.md §1.3", "verified"),
      ],
    });
    possible.add("PAGE_FAULT").add("WRONG_PAGE");
  }
  walkStep(steps, "page table", pt, reach.pt, hwRev);
  let settled: Outcome | null = null;
  if (pt.reachable === false) {
    settled = "BUS_ERROR";
    lines.push(...busErrorLines(node.unit));
  } else if (pt.reachable === null) {
    possible.add("BUS_ERROR");
  }

  // 4. Bounce poisoning: the CPU writes PTEs into the bounce copy and every flush copies the
  //    zero original over them.
  if (!settled && pt.bounced) {
    steps.push({
      rule: "bounce poisoning",
      conclusion: "the DTE holds the bounce address; rk_dte_get_page_table() returns " +
        "phys_to_virt(bounce), PTEs are written there, and dma_sync_single_for_device copies " +
        "the zeroed original back over them: every PTE reads as zero",
      facts: [
        fact("PT CPU pointer", "phys_to_virt(pt_address(dte))", R16, "verified"),
        fact(
          "swiotlb sync for device",
          "copies original → bounce for the synced range",
          R54,
          "verified",
        ),
        fact("failure mode 2", "PTEs zeroed after bounce", SEED, "reported"),
      ],
    });
    settled = "PAGE_FAULT";
    lines.push(...pageFaultLines(node.unit, dt.dmaRange, pt.dmaRange));
  }

  // 5. Pages: what the device's buffers are, and what the entries encode.
  const pages = pagePlacement(s, ctx.mem, node.unit, ctx.soc);
  if (!settled && ops.format === "v1" && pages.mayBeAbove4G) {
    steps.push({
      rule: "v1 PTE truncation",
      conclusion: "v1 PTEs keep address bits 31:12 only: a buffer page at or above 4 GiB is " +
        "silently replaced by its alias below 4 GiB (no fault, wrong data)",
      facts: [
        fact(
          "v1 PTE",
          "(page & 0xfffff000) | prot | 1",
          "research/rockchip-iommu.md §1.3",
          "verified",
        ),
        pages.fact,
      ],
    });
    settled = "WRONG_PAGE";
    conditions.push(
      `for buffer pages at or above 4 GiB${pages.condition ? `; ${pages.condition}` : ""}`,
    );
  }
  if (!settled && ops.format === "v2" && s.driver.v2PermSwapped.value) {
    steps.push({
      rule: "v2 permission bits",
      conclusion: "v2 PTEs carry R and W swapped: a read-only mapping is written as write-only, " +
        "so the device faults when it reads it",
      facts: [s.driver.v2PermSwapped],
    });
    settled = "PAGE_FAULT";
    conditions.push("for read-only or write-only mappings; read-write mappings are unaffected");
    lines.push(
      line(node.unit, "Page fault at 0x<iova> of type read", "derived", pageFaultRegex(node.unit)),
    );
  }

  const outcome: Outcome = settled ?? "OK";
  if (possible.size > 0) {
    possible.add(outcome);
    return done("UNCERTAIN", {
      possible: [...possible],
      lines,
      conditions: [uncertainCondition(hwRev, dt, pt), ...conditions],
      dt,
      pt,
    });
  }
  return done(outcome, { lines, conditions, dt, pt });
}

function uncertainCondition(
  rev: Fact<string>,
  dt: TablePrediction,
  pt: TablePrediction,
): string {
  const what = dt.reachable === null
    ? "directory table"
    : pt.reachable === null
    ? "page table"
    : "";
  if (!what) return "depends on facts the model does not have (see explanation)";
  return `the ${what} lies above 4 GiB and the walker's reach is unknown (hardware revision ` +
    `${rev.value}): BUS_ERROR if it cannot reach 4 GiB and up`;
}

function joinConditions(c: string[]): string | undefined {
  return c.length ? c.join("; ") : undefined;
}

function table(
  p: Placement,
  bounced: boolean,
  dmaRange: PhysRange,
  reach: boolean | null,
): TablePrediction {
  return { zone: p.zone, range: p.range, above4G: p.above4G, bounced, dmaRange, reachable: reach };
}

/** Whether every address of `r` is reachable with `bits` address bits; null when unknown. */
export function reachable(r: PhysRange, bits: Fact<number | null>): boolean | null {
  if (r.end <= FOUR_GIB) return true; // every revision reaches below 4 GiB
  if (bits.value === null) return null;
  const limit = 2 ** bits.value;
  if (r.end <= limit) return true;
  if (r.start >= limit) return false;
  return null;
}

function placementStep(
  what: string,
  p: Placement,
  kind: "direct" | "bounced" | "failed",
  dma: PhysRange,
  alloc: Fact<string>,
): Step {
  const where = p.above4G ? "above 4 GiB" : "below 4 GiB";
  const how = kind === "bounced"
    ? `bounced through SWIOTLB to ${fmtRange(dma)}`
    : kind === "failed"
    ? "cannot be mapped"
    : "mapped directly (DMA address = physical address)";
  return {
    rule: `${what} placement`,
    conclusion: `${what} page comes from ZONE_${p.zone} ${fmtRange(p.range)} (${where}), ${how}` +
      (p.condition ? `; ${p.condition}` : ""),
    facts: [alloc, ...p.facts],
  };
}

function walkStep(
  steps: Step[],
  what: string,
  t: TablePrediction,
  bits: Fact<number | null>,
  rev: Fact<string>,
): void {
  const verdict = t.reachable === true
    ? "can reach it"
    : t.reachable === false
    ? "cannot reach it: the first DMA through this IOMMU raises a bus error"
    : "may not reach it: its reach is unknown";
  steps.push({
    rule: `${what} reach`,
    conclusion: `the walker (revision ${rev.value}) ${verdict} at ${fmtRange(t.dmaRange)}`,
    facts: [rev, bits],
  });
}

function fmtRange(r: PhysRange): string {
  const h = (x: number) => "0x" + x.toString(16);
  return `[${h(r.start)}, ${h(r.end)})`;
}

interface PagePlacement {
  mayBeAbove4G: boolean;
  condition?: string;
  fact: Fact<unknown>;
}

/** Where the buffer pages of the master come from. */
function pagePlacement(s: Scenario, mem: MemView, unit: string, soc: Soc): PagePlacement {
  const w = s.workload && workloadUnit(s, soc) === unit ? s.workload : undefined;
  const source = w?.buffers ?? "all-memory";
  if (source === "below-4g") {
    return {
      mayBeAbove4G: false,
      fact: fact("buffer pages", "below 4 GiB", "workload definition", "input"),
    };
  }
  const p = mem.place(
    fact("buffer gfp zone", "none", "DMA-API and GEM buffers: no zone limit", "derived"),
  );
  return {
    mayBeAbove4G: p.above4G || mem.summary.zones.normal !== null,
    condition: p.condition,
    fact: fact(
      "buffer pages",
      mem.summary.zones.normal ? "may come from ZONE_NORMAL (above 4 GiB)" : "below 4 GiB",
      "DMA-API (iommu-dma) and GEM shmem pages are allocated without a zone limit",
      "derived",
    ),
  };
}

/** The IOMMU a workload goes through: given, or the SoC's first NPU MMU. */
function workloadUnit(s: Scenario, soc: Soc): string | undefined {
  if (!s.workload) return undefined;
  if (s.workload.iommu) return s.workload.iommu;
  const npu = soc.instances.find((i) => /npu|rknn/.test(i.label));
  return npu?.unit;
}

const DEV = (unit: string) => `rk_iommu ${unit}.iommu: `;
const HEX16 = "0x[0-9a-f]{16}";
const LOW16 = "0x00000000[0-9a-f]{8}";

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function line(
  unit: string,
  text: string,
  confidence: ExpectedLine["confidence"],
  regex?: string,
): ExpectedLine {
  return { template: DEV(unit) + text, regex: regex ?? `^${esc(DEV(unit) + text)}$`, confidence };
}

function busErrorLines(unit: string): ExpectedLine[] {
  return [{
    template: `${DEV(unit)}BUS_ERROR occurred at 0x<iova, 16 hex digits>`,
    regex: `^${esc(DEV(unit))}BUS_ERROR occurred at ${HEX16}$`,
    confidence: "reported",
    note: "seed failure mode 1: the walker's bus error on the first DMA; the iova printed is " +
      "whatever PAGE_FAULT_ADDR holds",
  }];
}

function pageFaultRegex(unit: string): string {
  return `^${esc(DEV(unit))}Page fault at ${HEX16} of type (read|write)$`;
}

function pageFaultLines(unit: string, dtDma: PhysRange, ptDma: PhysRange): ExpectedLine[] {
  const dtHex = dtDma.end <= FOUR_GIB ? LOW16 : HEX16;
  const ptHex = ptDma.end <= FOUR_GIB ? LOW16 : HEX16;
  // The shape of the walk line comes from log_iova; render one with zeros to stay in step with
  // the renderer, then open up the varying fields.
  const sample = renderEvent({
    kind: "walk",
    device: `${unit}.iommu`,
    mmuDteAddr: 0,
    dteAddr: 0,
    dte: 0,
    dteValid: true,
    pteAddr: 0,
    pte: 0,
    pteValid: false,
    pageAddr: 0,
    flags: 0,
  });
  const walkTemplate = sample
    .replace(/mmu_dte_addr: 0x0{16}/, "mmu_dte_addr: 0x<bounced directory>")
    .replace(/dte@0x0{16}: 0x0{6}/, "dte@0x<…>: 0x<dte>")
    .replace(/pte@0x0{16}/, "pte@0x<bounced page table + 4*pte_index>");
  return [
    {
      template: `${DEV(unit)}Page fault at 0x<iova> of type <read|write>`,
      regex: pageFaultRegex(unit),
      confidence: "derived",
    },
    {
      template: `${DEV(unit)}iova = 0x<iova>: dte_index: 0x<…> pte_index: 0x<…> page_offset: 0x<…>`,
      regex: `^${esc(DEV(unit))}iova = ${HEX16}: dte_index: 0x[0-9a-f]+ pte_index: 0x[0-9a-f]+ ` +
        "page_offset: 0x[0-9a-f]+$",
      confidence: "derived",
    },
    {
      template: walkTemplate,
      regex: `^${esc(DEV(unit))}mmu_dte_addr: ${dtHex} dte@${dtHex}: 0x[0-9a-f]{6,8} valid: 1 ` +
        `pte@${ptHex}: 0x000000 valid: 0 page@0x0{16} flags: 0x0$`,
      confidence: "derived",
      note: "PTEs read as zero: the walk stops at the page table (research §5.4)",
    },
  ];
}

function probeFailedLines(unit: string): ExpectedLine[] {
  return [
    {
      template:
        "WARNING: CPU: <n> PID: <n> at drivers/iommu/rockchip-iommu.c:<line> rk_iommu_probe+<…>",
      regex:
        "^WARNING: CPU: \\d+ PID: \\d+ at drivers/iommu/rockchip-iommu\\.c:\\d+ rk_iommu_probe\\+",
      confidence: "derived",
      note: "the WARN_ON(rk_ops != ops) splat",
    },
    {
      template: `${DEV(unit)}probe with driver rk_iommu failed with error -22 ` +
        `(older kernels: rk_iommu: probe of ${unit}.iommu failed with error -22)`,
      regex: `^(${esc(DEV(unit))}probe with driver rk_iommu failed with error -22|` +
        `rk_iommu: probe of ${esc(unit)}\\.iommu failed with error -22)$`,
      confidence: "derived",
      note: "drivers/base/dd.c call_driver_probe; the release that switched pr_warn to dev_err " +
        "is not pinned down",
    },
  ];
}

/** Latency baselines (RK356x, RKNN, IOMMU mode). Band: published minimum −10 % to maximum +10 %. */
const BASELINES: Record<string, { baselineMs: number; published: number[]; source: string }> = {
  mobilenet_v1: {
    baselineMs: 5.8,
    published: [5.8, 4.79, 4.95],
    source: "seed (ROCK 3B 8 GB, RKNN, IOMMU mode: 5.8 ms); research/npu-workloads.md §1.9 " +
      "(RK3568 mobilenet_v1.rknn 4.79–4.95 ms)",
  },
  yolov5s: {
    baselineMs: 57,
    published: [57, 52, 49.1, 42.4],
    source: "seed (ROCK 3B 8 GB, RKNN, IOMMU mode: ~57 ms); research/npu-workloads.md §1.9 " +
      "(model zoo 52 ms; ODROID-M1 49.1 ms at 600 MHz, 42.4 ms at 1 GHz)",
  },
};

function latencyBand(s: Scenario, name: string): LatencyBand | undefined {
  if (s.board.soc !== "rk3568" && s.board.soc !== "rk3566") return undefined;
  const b = BASELINES[name];
  if (!b) return undefined;
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    baselineMs: b.baselineMs,
    lowMs: round(Math.min(...b.published) * 0.9),
    highMs: round(Math.max(...b.published) * 1.1),
    source: b.source,
  };
}

const VERDICTS: Record<Outcome, WorkloadVerdict> = {
  OK: "correct-output",
  WRONG_PAGE: "wrong-output",
  BUS_ERROR: "submit-failure-or-timeout",
  PAGE_FAULT: "submit-failure-or-timeout",
  PROBE_FAILED: "no-device",
  DISABLED: "no-device",
  UNCERTAIN: "unknown",
};

interface Detail {
  ops?: OpsSpec;
  lines?: ExpectedLine[];
  condition?: string;
  dt?: TablePrediction;
  pt?: TablePrediction;
}

function finish(
  s: Scenario,
  base: Pick<InstancePrediction, "unit" | "label" | "master" | "compatible" | "status">,
  outcome: Outcome,
  detail: Detail,
  explanation: Step[],
  possible?: Outcome[],
): InstancePrediction {
  const soc = getSoc(s.board.soc);
  const p: InstancePrediction = {
    ...base,
    ops: detail.ops?.name ?? null,
    format: detail.ops?.format ?? null,
    outcome,
    possible: possible ?? [outcome],
    expectedLines: detail.lines ?? [],
    explanation,
  };
  if (detail.dt) p.dt = detail.dt;
  if (detail.pt) p.pt = detail.pt;
  if (detail.condition) p.condition = detail.condition;
  if (s.workload && soc && workloadUnit(s, soc) === base.unit) {
    const verdict = VERDICTS[outcome];
    const latency = outcome === "OK" ? latencyBand(s, s.workload.name) : undefined;
    p.workload = latency
      ? { name: s.workload.name, verdict, latency }
      : { name: s.workload.name, verdict };
    explanation.push({
      rule: "workload",
      conclusion: `${s.workload.name}: ${verdict}` +
        (latency ? `, ${latency.lowMs}–${latency.highMs} ms per inference` : ""),
      facts: latency
        ? [fact("latency baseline", latency.baselineMs, latency.source, "reported")]
        : [],
    });
  }
  return p;
}
