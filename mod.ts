/**
 * rkhil: a hardware-in-the-loop test runner for Rockchip NPU boards, with an IOMMU oracle.
 *
 * The oracle is a pure model of the Linux `rockchip-iommu` driver, the arm64 memory zones and
 * SWIOTLB, and the Rockchip IOMMU hardware revisions. Build a {@link Scenario} with
 * {@link buildScenario}, ask {@link predict} what happens, and hold an observation against it
 * with {@link compare}:
 *
 * ```ts
 * import { boardFacts, buildScenario, compare, findBoard, predict } from "./mod.ts";
 *
 * const { board, path } = await findBoard("rock-3b-8g");
 * const p = predict(buildScenario({ board: boardFacts(board, path), kernel: "6.12" }));
 * p.instances.find((i) => i.unit === "fde4b000")?.outcome; // "BUS_ERROR"
 * compare(p, { instances: [{ unit: "fde4b000", outcome: "OK", source: "my board" }] }).verdict;
 * // "disagree"
 * ```
 *
 * @module
 */

// --- The oracle: scenarios, predictions, comparisons -------------------------------------

/** Predict every IOMMU instance of a scenario. */
export { predict } from "./oracle/predict.ts";
/** Compare a prediction with an observation: agree, disagree (first differing fact) or inconclusive. */
export { compare, compareInstance } from "./oracle/compare.ts";
export type {
  Comparison,
  Difference,
  InstanceComparison,
  InstanceObservation,
  Observation,
} from "./oracle/compare.ts";
/** Build a scenario from a board, a release (or driver facts), patch sets and boot arguments. */
export {
  buildScenario,
  OracleInputError,
  resolvePatches,
  resolveRelease,
} from "./oracle/scenario.ts";
export type {
  BoardFacts,
  BufferSource,
  DtIommuNode,
  Scenario,
  ScenarioInput,
  Workload,
} from "./oracle/scenario.ts";
export { PREDICTION_SCHEMA_VERSION } from "./oracle/prediction.ts";
export type {
  ExpectedLine,
  InstancePrediction,
  LatencyBand,
  MemorySummary,
  Prediction,
  Step,
  TablePrediction,
  WorkloadVerdict,
} from "./oracle/prediction.ts";
export { fact, OUTCOMES } from "./oracle/types.ts";
export type {
  Confidence,
  EntryFormat,
  Fact,
  GfpZone,
  HwRevision,
  Outcome,
  PhysRange,
  Provenance,
} from "./oracle/types.ts";

// --- Knowledge: releases, patch sets, SoCs -----------------------------------------------

/** Driver facts per mainline release, 5.14 … 7.3. */
export {
  compareRelease,
  isKnownRelease,
  mainlineFacts,
  parseRelease,
  releaseKey,
  RELEASES,
} from "./oracle/releases.ts";
export type { DriverFacts, OpsSpec, Release } from "./oracle/releases.ts";
/** Named downstream patch sets (`--patch`). */
export { getPatch, patchNames } from "./oracle/patches.ts";
export type { PatchSet } from "./oracle/patches.ts";
/** The SoC catalog: IOMMU instances, hardware revisions and walker reach. */
export { findInstance, getSoc, socIds, walkerReach } from "./oracle/soc.ts";
export type { IommuInstance, Soc, WalkerReach } from "./oracle/soc.ts";

// --- Driver details: entries, log lines, memory ------------------------------------------

/** v1/v2 DTE and PTE codecs and the DTE_ADDR register layouts. */
export {
  decodeDte,
  decodeDteAddrRegister,
  decodePte,
  dteAddrRegister,
  invalidate,
  mkDte,
  mkPte,
  ptAddress,
  truncatedBy,
} from "./oracle/entries.ts";
export type { DecodedDte, DecodedPte, DteAddrLayout, PteOptions } from "./oracle/entries.ts";
/** IOVA geometry (10/10/12). */
export { joinIova, splitIova } from "./oracle/iova.ts";
export type { IovaParts } from "./oracle/iova.ts";
/** Render and parse the driver's kernel log lines. */
export { logIova, parseLine, parseLog, renderEvent, renderLine } from "./oracle/klog.ts";
export type {
  Access,
  AlreadyMappedEvent,
  BusErrorEvent,
  FaultReport,
  IovaSplitEvent,
  LinePrefix,
  LogEntry,
  PageFaultEvent,
  ParsedLine,
  ParsedLog,
  PlainEvent,
  RkIommuEvent,
  StatusTimeoutEvent,
  UnexpectedIntStatusEvent,
  UnknownEvent,
  WalkDecoding,
  WalkEvent,
} from "./oracle/klog.ts";
/** The one grammar of kernel-line prefixes every reader uses (dmesg, syslog, kmsg, consoles). */
export { findConsoleStamp, splitPrintkPrefix, stripAnsi } from "./oracle/kline.ts";
export type { ConsoleStamp } from "./oracle/kline.ts";
/** Explain the rk_iommu faults of a parsed log (SoC, entry format, tables, what was reached). */
export { explainFaults, inferFormat, socOfDevice } from "./oracle/explain.ts";
export type {
  FaultExplanation,
  FormatInference,
  FormatReading,
  Placed,
  SocMatch,
} from "./oracle/explain.ts";
/** Where a cma= area lands (page tables never come from it). */
export { placeCma } from "./oracle/cma.ts";
export type { CmaPlacement } from "./oracle/cma.ts";
/** Linux printk number formatting as the driver uses it. */
export { ksprintf } from "./oracle/printk.ts";
export type { PrintkArg } from "./oracle/printk.ts";
/** Kernel command line (mem=, swiotlb=, cma=). */
export { BootArgsError, parseBootArgs } from "./oracle/bootargs.ts";
export type {
  BootArgs,
  BootParam,
  CmaArg,
  MemArg,
  MemSize,
  ParseBootArgsOptions,
  SwiotlbArg,
  TruncatedCmdline,
} from "./oracle/bootargs.ts";
/** arm64 zones, allocation placement, SWIOTLB and dma_map_single. */
export {
  applyMemLimit,
  computeZones,
  dmaMapSingle,
  parseSwiotlbLine,
  parseZoneRanges,
  placeAllocation,
  renderZoneRanges,
  swiotlbWindow,
} from "./oracle/memory.ts";
export type {
  DmaMapOptions,
  DmaMapOutcome,
  MemLimitResult,
  ParsedMemoryLog,
  ParsedSwiotlbLine,
  Placement,
  SwiotlbKernelFacts,
  SwiotlbWindow,
  Zone,
  ZoneLayout,
  ZoneOptions,
} from "./oracle/memory.ts";

// --- Boards ---------------------------------------------------------------------------

/** Board files: load, list, find; refused with file, line and field on error. */
export { BoardFileError, findBoard, listBoards, loadBoardFile, parseBoard } from "./boards/load.ts";
export type { BoardIssue, LoadedBoard } from "./boards/load.ts";
export type { BoardSpec } from "./boards/schema.ts";
/** A board file as the oracle's `BoardFacts`. */
export { boardFacts } from "./boards/facts.ts";

// --- Runner errors ----------------------------------------------------------------------

/** Typed errors with a hint on what to do, classified PASS/FAIL/ERROR/MISS/SKIP/DONE. */
export {
  describeError,
  InfraError,
  RkhilError,
  TimeoutError,
  UserInputError,
} from "./runner/errors.ts";
export type { Verdict } from "./runner/errors.ts";

// --- What each release changes ------------------------------------------------------------

/** Per-release timeline of outcome regressions and fixes, with the driver facts behind them. */
export { driverFactChanges, releaseTimeline } from "./oracle/changes.ts";
export type { FactChange, OutcomeChange, ReleaseStep } from "./oracle/changes.ts";

/** A patch's blast radius: parse a patch (mail, mailbox, quoted reply), map it onto the model. */
export { parsePatchText, PatchTextError } from "./oracle/patch_text.ts";
export type { Hunk, HunkLine, ParsedPatch, PatchFile } from "./oracle/patch_text.ts";
export { patchEffect } from "./oracle/patch_model.ts";
export { applyPatchSeries } from "./oracle/patch_apply.ts";
export type { SeriesApplication } from "./oracle/patch_apply.ts";
export type { ModelChange, NotModelled, OpsField, PatchEffect } from "./oracle/patch_model.ts";
export { blastRadius, instanceDelta, patchSetApplier, seriesApplier } from "./oracle/blast.ts";
export type {
  Applier,
  BlastBoard,
  BlastCell,
  ChangeClass,
  InstanceDelta,
  InstanceFacts,
} from "./oracle/blast.ts";
export { blastOfPatchFiles, blastOfPatchSets } from "./runner/blast.ts";
export type { BlastJson, BlastOptions } from "./runner/blast.ts";
export type { BlastReport } from "./runner/report/blast_report.ts";

/** The atlas of every Rockchip RK356x/RK3588 DTB in Debian's kernels. */
export { atlasLayout, generalBanks, predictDtb } from "./oracle/atlas.ts";
export type {
  AtlasDtb,
  AtlasLayout,
  DtbChange,
  DtbOutcomes,
  ReferenceLayout,
} from "./oracle/atlas.ts";
export { buildAtlas } from "./runner/atlas.ts";
export type { Atlas, AtlasOptions, AtlasRelease } from "./runner/atlas.ts";
export { renderAtlasHtml, renderAtlasMarkdown } from "./runner/report/atlas_report.ts";

// --- The runner: transports, targets, facts, watchers, results -----------------------------

/** SSH to a target: pinned host keys, exec channels, a shell byte stream, verified uploads. */
export { connect, HostKeyError, SshSession, waitForSsh } from "./runner/ssh/mod.ts";
/** serialport's BindingInterface on Deno (FFI termios), and consoles over serial, TCP and ptys. */
export { DenoSerialBinding, listPorts } from "./runner/serial/deno_binding.ts";
export {
  openSerialConsole,
  openTcpConsole,
  SerialConsole,
  TcpConsole,
  TtyConsole,
} from "./runner/serial/port.ts";
export type { ConsoleStream } from "./runner/serial/port.ts";
/** Marker-framed commands over any byte stream (serial console, SSH shell channel). */
export { FramedShell } from "./runner/shell/framed.ts";
/** Console watchers: panics, Oopses, BUG, WARNING, IOMMU and NPU faults, silent resets. */
export { attachToConsole, ConsoleWatcher, kernelLineAdapter } from "./runner/watch/watchers.ts";
export type { WatchEvent } from "./runner/watch/watchers.ts";
/** Kernel facts read from a live target, and the oracle's memory model held against them. */
export { collectKernelFacts, compareWithModel, predictMemory } from "./runner/facts/collect.ts";
export type { KernelFacts } from "./runner/facts/collect.ts";
/** Results of a run: append-only, flushed JSON lines. */
export { parseResults, RunStore, tally } from "./runner/results/store.ts";
export type { Measurement, TestResult } from "./runner/results/store.ts";
/**
 * `rkhil run`: the suites of `tests/` (each a {@linkcode Suite}: name, capabilities, steps
 * written once for every target) × kernels × targets, every step recorded through the one
 * {@linkcode runStep} into the run's one store.
 */
export { runJob } from "./runner/suite/run_job.ts";
export { runStep } from "./runner/suite/run_step.ts";
export { closeOpenTargets, missingCapability, runSuites } from "./runner/suite/runner.ts";
export { boardPlans, DEFAULT_KERNELS, qemuPlans } from "./runner/suite/plans.ts";
export { selectSuites, SUITES } from "./tests/mod.ts";
export type {
  PredictContext,
  StepContext,
  StepOutcome,
  Suite,
  SuiteStep,
  Variant,
} from "./runner/suite/types.ts";
export type { HistorySink, RunStepContext, StopState } from "./runner/suite/run_step.ts";
export type { SuiteRunOptions, TargetPlan } from "./runner/suite/runner.ts";
export type { RunJobOptions, RunJobResult } from "./runner/suite/run_job.ts";
/** SIGINT/SIGTERM for jobs: the running step MISS "interrupted", targets off, exit 130. */
export { Interrupt, INTERRUPT_EXIT, InterruptedError } from "./runner/jobs/interrupt.ts";
export type { InterruptSignal } from "./runner/jobs/interrupt.ts";
/** A run's `report.md`, rendered from its `results.jsonl` alone (`rkhil report`). */
export { renderRunReport, writeRunReport } from "./runner/report/run_report.ts";
export type { RunRecord } from "./runner/report/run_report.ts";
/**
 * The results history (node:sqlite, `runs/history.sqlite`, or PostgreSQL: `openHistory` of a
 * `postgres://` URL): a versioned schema with migrations, `HistoryWriter.record` as a run goes,
 * `importRunDir` for run directories, filtered queries.
 */
export {
  ddlFor,
  HistorySchemaError,
  migrate,
  openHistory,
  SCHEMA_VERSION,
  schemaVersion,
  tableNames,
} from "./runner/history/schema.ts";
export {
  checkPostgresUrl,
  isPostgresUrl,
  openPostgres,
  PostgresError,
  redactUrl,
  toPositional,
} from "./runner/history/postgres.ts";
export type { PostgresOptions } from "./runner/history/postgres.ts";
export { HistoryWriter, importRunDir, parseRunDirName } from "./runner/history/writer.ts";
export type { ImportReport, RunInfo } from "./runner/history/writer.ts";
export type { Database, SQLValue, Statement } from "./runner/history/sqlite.ts";
export {
  listRuns,
  queryCells,
  queryFirstBad,
  queryOutcomes,
  queryResults,
  querySamples,
  queryTotals,
} from "./runner/history/query.ts";
export type {
  CellRow,
  HistoryFilter,
  HistoryRow,
  OutcomeRow,
  RunRow,
  SampleRow,
} from "./runner/history/query.ts";
export { predictionResults, recordPredictions } from "./runner/history/predictions.ts";
/**
 * Per-kernel-release reports over the history: regressions with their driver facts, predicted
 * outcomes, latency judged statistically; as text, Markdown, HTML, JUnit and KCIDB v5.3.
 */
export { buildHistoryReport } from "./runner/report/history_report.ts";
export type {
  HistoryReport,
  LatencySeries,
  OutcomeChangeReport,
  TestChange,
} from "./runner/report/history_report.ts";
export { renderHistoryText } from "./runner/report/history_text.ts";
export { renderHistoryHtml } from "./runner/report/history_html.ts";
export { renderJUnit } from "./runner/report/junit.ts";
export { kcidbPath, renderKcidb } from "./runner/report/kcidb.ts";
export type { KcidbDocument } from "./runner/report/kcidb.ts";
export { bootstrapMedian, judgeReleases, mannWhitney } from "./runner/report/latency.ts";
export type {
  LatencyCriteria,
  LatencyJudgement,
  MedianInterval,
  RankTest,
  ReleaseLatency,
} from "./runner/report/latency.ts";
export { explainReleaseChange } from "./runner/report/explain_change.ts";
export type { ChangeExplanation, ExplainingFact } from "./runner/report/explain_change.ts";
export type {
  OutcomeHistory,
  ReleaseCell,
  ReleaseStatus,
  TestHistory,
  Transition as ReleaseTransition,
} from "./runner/report/regressions.ts";
export { consoleExcerpt, pickExcerpt } from "./runner/report/console_excerpt.ts";
export type { ConsoleExcerpt } from "./runner/report/console_excerpt.ts";
/**
 * Targets: the Target interface and its protocols (Console, Command, FileTransfer, Power,
 * Boot), the one implementation over a kind-specific driver (`DriverTarget`: the strategy to a
 * ready shell, commands over serial, SSH exec or a framed SSH shell, file transfer, fault
 * watching), the embedded QEMU target and its driver, reuse of booted QEMU guests.
 */
export {
  acquireQemuTarget,
  DriverTarget,
  isInfraFailure,
  KernelFaultError,
  releaseQemuTargets,
  VIAS,
} from "./runner/target/mod.ts";
export { QEMU_HOST_TOOLS, qemuBoardId, QemuTarget, withQemuTarget } from "./runner/qemu/target.ts";
export { QemuDriver, QmpPower } from "./runner/qemu/driver.ts";
export type {
  BootProtocol,
  BootStage,
  BootTimes,
  BootWaitOptions,
  ByteDuplex,
  CommandOptions,
  CommandProtocol,
  CommandResult,
  ConsoleProtocol,
  FileTransferProtocol,
  PowerKind,
  PowerProtocol,
  ReadyOptions,
  Target,
  TargetState,
  TransferOptions,
  TransferResult,
  Transition,
  Via,
} from "./runner/protocol/mod.ts";
export type { DriverBounds, OpenConsole, TargetDriver } from "./runner/target/driver.ts";
export type { DriverTargetOptions } from "./runner/target/target.ts";
export type { QemuDriverOptions } from "./runner/qemu/driver.ts";
/** The running driver read through BTF, kallsyms and /proc/kcore, held against the knowledge base. */
export { compareDriverWithKb, introspectDriver } from "./runner/introspect/driver.ts";
/** The probe-module scenarios (suites `probe` and `probe-boot`). */
export { SCENARIOS as PROBE_SCENARIOS } from "./runner/probe/scenarios.ts";
export { predictProbe } from "./oracle/probe_model.ts";

// --- Types the exported functions and classes above name in their signatures -----------------

export type { PlainKind, StatusTimeoutKind } from "./oracle/klog.ts";
export type { Side4G, ZoneCandidate, ZoneName, ZoneRule } from "./oracle/memory.ts";
export type { ParsedZone } from "./oracle/memory_log.ts";
export type { ContraryReport } from "./oracle/patches.ts";
export type { ProbeModelParams, ProbePrediction } from "./oracle/probe_model.ts";
export type { SwiotlbPlacement } from "./oracle/swiotlb.ts";
export type {
  CollectOptions,
  CommandRecord,
  CompareOptions,
  ConfigSubset,
  DeviceTreeSummary,
  MemoryPrediction,
  MissingFact,
  ModelComparison,
  RunCommand,
} from "./runner/facts/collect.ts";
export type {
  CmaLine,
  DmesgFacts,
  KernelRelease,
  MemoryLine,
  ParsedCmdline,
  ParsedIomem,
  ReservedMemLine,
  UnameAll,
  ZoneInfo,
} from "./runner/facts/parsers.ts";
export type {
  DriverComparison,
  DriverIntrospection,
  IntrospectOptions,
} from "./runner/introspect/driver.ts";
export type { ValidateScenario } from "./runner/probe/scenarios.ts";
/** Capabilities a suite may ask of a target (DESIGN.md boundary 4). */
export { CAPABILITIES } from "./boards/schema.ts";
export type { Capability } from "./boards/schema.ts";
export type { ConsoleRecorder, RecordedLine } from "./runner/qemu/console.ts";
export type { QemuTargetOptions } from "./runner/qemu/target.ts";
export type { DenoBindingPort, DenoPortInfo } from "./runner/serial/deno_binding.ts";
export type { SerialConsoleOptions, TcpConsoleOptions } from "./runner/serial/port.ts";
export type { RunOptions, RunResult } from "./runner/shell/framed.ts";
export type {
  ConnectOptions,
  ExecOptions,
  ExecResult,
  ShellChannelOptions,
  UploadOptions,
  WaitOptions,
} from "./runner/ssh/client.ts";
export type { KernelFault } from "./runner/target/faults.ts";
export type { ConsoleLine } from "./runner/watch/console_lines.ts";
export type {
  AttachOptions,
  BootState,
  DetachWatcher,
  EventDetail,
  EventLine,
  EventPhase,
  Severity,
  TestWatchResult,
  WatcherOptions,
  WatchKind,
  WatchVerdict,
} from "./runner/watch/watchers.ts";

// NPU workloads (issue 9): vendor RKNN tool output, librknnrt and rknpu lines.
export {
  parseRknnOutput,
  RKNN_MAX_INPUT_CHARS,
  RKNN_MAX_ITEMS,
  RKNN_MAX_LINE_CHARS,
} from "./runner/workload/rknn_output.ts";
export type {
  RknnClass,
  RknnDetection,
  RknnError,
  RknnErrorKind,
  RknnErrorSource,
  RknnOutput,
  RknnRun,
  RknnTopK,
  RknnVersion,
  RknpuProbe,
} from "./runner/workload/rknn_output.ts";
// The workload program (target/workload/rkwl.c): its build and bundle, its output, the YOLOv5
// decode, the published references and the judgement, the vendored models, the NPU line formats.
export {
  buildWorkload,
  bundleCommand,
  runUserMode,
  WORKLOAD_PACKAGES,
  WORKLOAD_SUITE,
} from "./runner/workload/build.ts";
export type { BuildOptions, UserModeRun, WorkloadBundle } from "./runner/workload/build.ts";
export { noDeviceReason, parseRkwlOutput, runTimes } from "./runner/workload/rkwl_output.ts";
export type {
  RkwlBox,
  RkwlFit,
  RkwlInvoke,
  RkwlOutcome,
  RkwlRun,
  RkwlTensor,
  RkwlTop,
} from "./runner/workload/rkwl_output.ts";
export { decodeYolo, iou, matchDetections } from "./runner/workload/yolo.ts";
export type {
  Box,
  DecodeOptions,
  Detection,
  ExpectedObject,
  MatchResult,
} from "./runner/workload/yolo.ts";
export { judgeAgainstCpu, judgeClassification, judgeDetection } from "./runner/workload/judge.ts";
export type { Judgement } from "./runner/workload/judge.ts";
export { MOBILENET_V1_REFERENCES, YOLOV5_BUS_REFERENCE } from "./runner/workload/references.ts";
export type { ClassificationReference, DetectionReference } from "./runner/workload/references.ts";
export {
  MOBILENET_V1,
  modelFile,
  modelFiles,
  readLabels,
  readManifest,
  YOLOV5N,
} from "./runner/workload/models.ts";
export type { ManifestEntry, WorkloadModel } from "./runner/workload/models.ts";
export { installBundle, installModels, runOnTarget } from "./runner/workload/on_target.ts";
// What the workload suites conclude from a run (issue 9): backends, the oracle's workload
// verdict against what happened, latency against the oracle's band and the target's baseline.
export {
  assessLatency,
  BACKEND_CAPABILITY,
  BACKENDS,
  compareWithOracle,
  failureEvidence,
  judgeDetectionsAgainstCpu,
  observeRknn,
  observeRkwl,
  oracleExpectation,
  rknnDetections,
  rknnTop,
} from "./runner/workload/assess.ts";
export type {
  Backend,
  Expectation,
  LatencyAssessment,
  LatencyRules,
  Observation as WorkloadObservation,
  ObservedVerdict,
  OracleComparison,
  WorkloadScene,
} from "./runner/workload/assess.ts";
export { baselineSamples } from "./runner/history/baseline.ts";
export type { BaselineQuery } from "./runner/history/baseline.ts";
export { renderWorkloadSection, workloadRows } from "./runner/report/workload_report.ts";
export type { WorkloadRow } from "./runner/report/workload_report.ts";
export type { TargetRun, WorkloadTarget } from "./runner/workload/on_target.ts";
export {
  parseNpuDriverInit,
  parseRknnApiFail,
  parseRknnLog,
  parseRknpuMessage,
} from "./runner/watch/npu_lines.ts";
export type {
  NpuDriverInit,
  RknnLogLine,
  RknpuKind,
  RknpuMessage,
} from "./runner/watch/npu_lines.ts";

// --- Types those types name in turn ------------------------------------------------------------

export type { DeviceEvent } from "./oracle/klog.ts";
export type { ProbeTablePrediction, ProbeWalkResult } from "./oracle/probe_model.ts";
export type { FetchedKernel } from "./runner/debian/kernel.ts";
export type { Finding } from "./runner/facts/collect.ts";
export type { ConfigValue, IomemResource } from "./runner/facts/parsers.ts";
export type { GfpTable } from "./runner/introspect/gfp.ts";
export type { DriverFinding, IntrospectedOps, MeasuredLayout } from "./runner/introspect/driver.ts";
export type { ValidateRow } from "./runner/probe/scenarios.ts";
export type { ProbeParams } from "./runner/probe/run.ts";
export type { Initramfs, InitramfsOptions } from "./runner/qemu/initramfs.ts";
export type { QemuMachine } from "./runner/qemu/machine.ts";
export type { TtyFd } from "./runner/serial/deno_binding.ts";
export type { BaseConsole, ConsoleOptions } from "./runner/serial/port.ts";
export type { FramedShellOptions } from "./runner/shell/framed.ts";
export type { SshEndpoint } from "./runner/ssh/client.ts";
export type { LineEnd, LineSplitterOptions } from "./runner/watch/console_lines.ts";
export type { BootBannerStage, NpuWhat } from "./runner/watch/watchers.ts";
export type { ResolvedKernel } from "./runner/debian/kernel.ts";
export type { MeasuredGfpZone, MeasuredMember } from "./runner/introspect/driver.ts";
export type { ProbeMapping } from "./runner/probe/run.ts";
export type { ModulePlan } from "./runner/qemu/initramfs.ts";
export type { QmpClient, QmpEvent } from "./runner/qemu/qmp.ts";
export { HANGUP } from "./runner/serial/deno_binding.ts";
export type { TermiosInfo } from "./runner/serial/deno_binding.ts";
export type { UploadResult } from "./runner/ssh/client.ts";

// --- Board targets and the lab (issue 8) -------------------------------------------------------

/**
 * Board targets from board files (`runner/board/`): the board driver under the shared
 * `DriverTarget`, its power adapters, console openers and serial login, `rkhil boards --check`;
 * telnet TCP consoles; the lab of QEMU guests reached only through board files (`runner/lab/`).
 */
export {
  BOARD_BOUNDS,
  BoardDriver,
  checkBoardTarget,
  keyFilePath,
  openBoardTarget,
} from "./runner/board/target.ts";
export type { BoardDriverOptions } from "./runner/board/target.ts";
export {
  BasePower,
  checkPowerUsable,
  CommandPower,
  createPower,
  ManualPower,
  manualRefusal,
  NoPower,
  QmpSocketPower,
} from "./runner/board/power.ts";
export type { PowerOptions } from "./runner/board/power.ts";
export { openBoardConsole } from "./runner/board/console.ts";
export type { BoardConsoleOptions } from "./runner/board/console.ts";
export { lastLine, waitForShell } from "./runner/board/login.ts";
export type { ShellWaitOptions, ShellWaitResult } from "./runner/board/login.ts";
export { checkBoard, CHECKED_PROTOCOLS, formatHealth } from "./runner/board/check.ts";
export type { CheckedProtocol, CheckOptions, ProtocolHealth } from "./runner/board/check.ts";
/**
 * Kernel deployment on boards through U-Boot with a known-good fallback (board file `deploy:`):
 * the extlinux.conf parser and one-shot writer, `deployKernel`, and the U-Boot lab guest that
 * proves it on QEMU.
 */
export {
  EXTLINUX_MAX_BYTES,
  ExtlinuxError,
  parseExtlinux,
  RKHIL_LABEL_PREFIX,
  withOneShotEntry,
} from "./runner/board/extlinux.ts";
export type {
  ExtlinuxConfig,
  ExtlinuxLabel,
  OneShotEntry,
  OneShotOptions,
} from "./runner/board/extlinux.ts";
export { deployKernel } from "./runner/board/deploy.ts";
export type { DeployDetails, DeployKernel, DeployOptions } from "./runner/board/deploy.ts";
export {
  deployKernelOf,
  isDirKernelSpec,
  parseDirKernelSpec,
  readDirKernel,
} from "./runner/board/deploy_kernel.ts";
export { DEPLOY_METHODS } from "./boards/deploy_schema.ts";
export type { DeploySpec } from "./boards/deploy_schema.ts";
export {
  BOOT_DISK_MODULES,
  buildBootDisk,
  KNOWN_GOOD_LABEL,
  labExtlinuxConf,
  startUbootLab,
  UBOOT_LAB_APPEND,
  UBOOT_QEMU_ARM64,
} from "./runner/lab/uboot.ts";
export type { UbootLab, UbootLabOptions } from "./runner/lab/uboot.ts";
export {
  MAX_SUBNEGOTIATION,
  openTelnetConsole,
  TELNET,
  TELNET_OPTION,
  TelnetCodec,
  TelnetConsole,
} from "./runner/serial/telnet.ts";
export type { TelnetDecoded } from "./runner/serial/telnet.ts";
export { labPowerLine, RKHIL_BIN, startLab } from "./runner/lab/lab.ts";
export type { Lab, LabConsoleKind, LabGuest, LabOptions } from "./runner/lab/lab.ts";
export { LAB_POWER_ACTIONS, labPower, PTY_SETTLE_MS } from "./runner/lab/power.ts";
export type { LabPowerAction } from "./runner/lab/power.ts";
export { ser2netConfig, startSer2net } from "./runner/lab/ser2net.ts";
export type { Ser2net, Ser2netPort } from "./runner/lab/ser2net.ts";

// --- The board farm (issue 10) ------------------------------------------------------------------
/**
 * Farm files (targets, groups behind a lab host, per-target limits), the farm scheduler
 * (`rkhil run --farm`, `--resume`), leases on targets, the host gate and the progress display.
 */
export { loadFarm, parseFarm } from "./boards/farm_load.ts";
export type { Farm, FarmTarget, HostCost, Locate } from "./boards/farm_load.ts";
export type { FarmLimits, FarmSpec } from "./boards/farm_schema.ts";
export { checkFarm, farmJobs, readFarmRunSpec, runFarm } from "./runner/farm/run_farm.ts";
export type {
  FarmJob,
  FarmRunOptions,
  FarmRunResult,
  FarmRunSpec,
} from "./runner/farm/run_farm.ts";
export { LeaseDir, LeaseHeldError, LeaseKeeper, staleReason } from "./runner/farm/lease.ts";
export type { Lease, LeaseStore } from "./runner/farm/lease.ts";
export { leaseHost, PgFarmStore } from "./runner/farm/pg_store.ts";
export type { QueuedJob, RunQueueState, SharedRun, SharedRunSpec } from "./runner/farm/pg_store.ts";
export { hostCapacity, HostGate, parseMeminfo } from "./runner/farm/capacity.ts";
export { PlainProgress, TerminalProgress } from "./runner/farm/progress.ts";
export type { FarmProgress } from "./runner/farm/progress.ts";
export { labBoardYaml } from "./runner/lab/board_file.ts";
export type { LabBoardFile, LabConsole, LabPower } from "./runner/lab/board_file.ts";
export { DEFAULT_SHELL_PROMPT, TCP_CONSOLE_PROTOCOLS } from "./boards/schema.ts";
/** Emulated Rockchip IOMMUs for the real rk_iommu driver (issue 15). */
export {
  addEmuIommus,
  emuRamRefusal,
  resolveEmuIommus,
  ROCK3B_IOMMUS,
  VIRT_RAM_BASE,
  writeEmuIommuDtb,
} from "./runner/qemu/iommu_dtb.ts";
export type { EmuIommu, VirtShape } from "./runner/qemu/iommu_dtb.ts";
export { buildEmuModule, EMU_SOURCE_DIR, EMU_SOURCES } from "./runner/rkiommu/build.ts";
export type { EmuModule } from "./runner/rkiommu/build.ts";
export {
  EMU_REPORT_VERSION,
  observationOf,
  outcomeOf,
  parseEmuReport,
  swiotlbWindow as emuSwiotlbWindow,
} from "./runner/rkiommu/report.ts";
export type {
  AccessResult,
  EmuAccess,
  EmuError,
  EmuInstance,
  EmuMapping,
  EmuMaster,
  EmuReport,
  EmuStats,
  Window,
} from "./runner/rkiommu/report.ts";
export { emuInsmodArgs, runEmu } from "./runner/rkiommu/run.ts";
export type { EmuParams, EmuRun, EmuShell } from "./runner/rkiommu/run.ts";
export { judgeEmu } from "./runner/rkiommu/judge.ts";
export type { JudgeInput, Judgement as EmuJudgement } from "./runner/rkiommu/judge.ts";
export { emulatedRows, isEmulatedResult, renderEmulatedSection } from "./runner/rkiommu/table.ts";
export type { EmulatedRow } from "./runner/rkiommu/table.ts";
