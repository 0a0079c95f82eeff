/**
 * Parsers for what the vendor RKNN stack prints: the SDK programs `rknn_benchmark`,
 * `rknn_common_test`, `rknn_mobilenet_demo`, `rknn_yolov5_demo` and the model zoo demos, the
 * librknnrt log lines (`I/W/E RKNN: ...`) and the downstream `rknpu` kernel driver's lines
 * (`RKNPU: ...`), all of which can be interleaved in one console capture.
 *
 * Formats and sources: ../shared/research/npu-workloads.md §1.2–1.6 and §4 (rockchip-linux/rknpu2
 * SDK 1.4–1.5.2, airockchip/rknn-toolkit2 2.3.2, airockchip/rknn_model_zoo 2.3.2, vendor
 * `drivers/rknpu` 0.8.x–0.9.8). The real samples and the format-derived ones are in
 * runner/workload/testdata/ with their sources.
 *
 * Pure: no I/O. Never throws. Time is linear in the input: only the first
 * {@link RKNN_MAX_INPUT_CHARS} characters are read, lines longer than
 * {@link RKNN_MAX_LINE_CHARS} are skipped (counted), and every list stops at
 * {@link RKNN_MAX_ITEMS} entries (the rest counted).
 *
 * @module
 */

import { findConsoleStamp, stripAnsi } from "../../oracle/kline.ts";
import {
  parseNpuDriverInit,
  parseRknnApiFail,
  parseRknnLog,
  parseRknpuMessage,
} from "../watch/npu_lines.ts";

/** Only this many characters of an input are read (64 MiB). */
export const RKNN_MAX_INPUT_CHARS = 64 * 1024 * 1024;
/** Lines longer than this (in characters) are skipped and counted in `skippedLongLines`. */
export const RKNN_MAX_LINE_CHARS = 4096;
/** Each result list keeps at most this many entries; the rest are counted in `droppedItems`. */
export const RKNN_MAX_ITEMS = 100_000;

/** One timed `rknn_run` of `rknn_benchmark` / `rknn_common_test`: `%4d: Elapse Time = %.2fms, FPS = %.2f`. */
export interface RknnRun {
  /** The index the program printed (restarts at 0 after `Begin perf ...`). */
  index: number;
  /** Wall time of the run in milliseconds (`gettimeofday` around `rknn_run`, 2 decimals). */
  elapsedMs: number;
  /** Frames per second the program derived from that time. */
  fps: number;
  /** 1-based line number in the input. */
  line: number;
}

/** One class of a top-k list. */
export interface RknnClass {
  /** Class index into the model's label list (0..1000 for MobileNetV1's 1001 classes). */
  classIndex: number;
  /** Score as printed: a probability in 0..1 for the SDK demos. */
  score: number;
  /** Label text, only printed by the model zoo demos (`class=...`). */
  label?: string;
}

/**
 * One top-k list: `rknn_benchmark`'s `---- Top5 ----` + `%8.6f - %d` (score - index),
 * `rknn_mobilenet_demo`'s ` --- Top5 ---` + `%3d: %8.6f` (index: score), or the model zoo's
 * `[%d] score=%.6f class=%s` (C) / `-----TOP 5-----` + `[%d] score=%.2f class="%s"` (Python).
 */
export interface RknnTopK {
  /** Which program's line format the classes were printed in. */
  style: "benchmark" | "demo" | "model-zoo";
  /** k from the header (`Top5` → 5); absent when the lines came without a header. */
  headerK?: number;
  /** The classes in printed order (best first in every known program). */
  classes: RknnClass[];
  /** 1-based line number of the header, or of the first class line when there is none. */
  line: number;
}

/** One YOLOv5 demo detection: `%s @ (%d %d %d %d) %f` (name @ (left top right bottom) score). */
export interface RknnDetection {
  /** Class name as printed (may contain spaces, e.g. `traffic light`). */
  className: string;
  /** Box left edge in pixels of the original image. */
  leftPx: number;
  /** Box top edge in pixels. */
  topPx: number;
  /** Box right edge in pixels. */
  rightPx: number;
  /** Box bottom edge in pixels. */
  bottomPx: number;
  /** Confidence 0..1 as printed (6 decimals in rknpu2, 3 in the model zoo). */
  score: number;
  /** 1-based line number in the input. */
  line: number;
}

/** A version string split into its number and the build part in parentheses, if any. */
export interface RknnVersion {
  /** The version as printed, e.g. `1.5.2 (c6b7b351a@2023-08-23T15:28:22)`. */
  raw: string;
  /** Leading dotted number, e.g. `1.5.2`; absent when the text does not start with one. */
  version?: string;
  /** Text inside the trailing parentheses, e.g. `c6b7b351a@2023-08-23T15:28:22`. */
  build?: string;
}

/**
 * Where an error or warning line came from: `librknnrt` (`E RKNN:` / `W RKNN:`), `program`
 * (a demo's own `rknn_run fail! ret=-1`), `kernel` (the `rknpu` driver's `RKNPU:` lines).
 */
export type RknnErrorSource = "librknnrt" | "program" | "kernel";

/**
 * What an error line says:
 * - `driver-missing`: librknnrt `failed to open rknpu module, need to insmod rknpu dirver!`
 * - `device-open-failed`: librknnrt `failed to open rknn device!`
 * - `submit-failed`: librknnrt `failed to submit` (fields `opId`, `opName`, `flags`, `taskStart`,
 *   `taskNumber`, `runTaskCounter`, `intStatus` when printed)
 * - `npu-malloc-failed`: librknnrt `failed to malloc npu memory!` (fields `sizeBytes` [unit not
 *   documented by the source; assumed bytes], `flags`)
 * - `driver-outdated`: librknnrt warning `Current driver version: X, recommend to upgrade ...`
 *   (fields `driverVersion`, `recommended`)
 * - `api-call-failed`: a demo's `rknn_xxx fail! ret=N` (fields `call`, `ret`)
 * - `job-timeout`: kernel `RKNPU: job timeout` (fields `flags`, and on 0.8.x one-liners or the
 *   following core line `core`, `irqStatus`, `rawStatus`, `requireMask`, `taskCounter`, `elapsedTimeUs`)
 * - `wait-failed`: kernel `RKNPU: failed to wait job` (`taskCounter`, `flags`, `ret`, `elapsedTimeUs`)
 * - `job-abort`: kernel `RKNPU: job abort` (`flags`, `ret`, `elapsedTimeUs`)
 * - `soft-reset`: kernel `RKNPU: soft reset` (`num` on newer drivers)
 * - `invalid-irq-status`, `job-commit-failed`: kernel lines of those words (format not captured)
 * - `other`: any other `E RKNN:` line
 */
export type RknnErrorKind =
  | "driver-missing"
  | "device-open-failed"
  | "submit-failed"
  | "npu-malloc-failed"
  | "driver-outdated"
  | "api-call-failed"
  | "job-timeout"
  | "wait-failed"
  | "job-abort"
  | "soft-reset"
  | "invalid-irq-status"
  | "job-commit-failed"
  | "other";

/** An error (or warning) line. */
export interface RknnError {
  /** Where it came from. */
  source: RknnErrorSource;
  /** What it says. */
  kind: RknnErrorKind;
  /** `error` for E lines and kernel failures, `warning` for W lines and soft resets. */
  severity: "error" | "warning";
  /** The message (prefixes and ANSI removed). */
  text: string;
  /** 1-based line number in the input. */
  line: number;
  /**
   * Numbers and words the line carried, by name (see {@link RknnErrorKind}); hex values
   * (`flags: 0x5`) are numbers; names ending in `Us` are microseconds.
   */
  fields: Record<string, number | string>;
}

/** Facts the `rknpu` driver printed at probe (informational, not errors). */
export interface RknpuProbe {
  /** `rknpu iommu is enabled, using iommu mode` → `iommu`; the two non-iommu lines → `non-iommu`. */
  mode?: "iommu" | "non-iommu";
  /** Driver version from `[drm] Initialized rknpu X ...` or `Initialized RKNPU driver: vX`. */
  driverVersion?: string;
  /** Initial NPU clock from `devfreq enabled, initial freq: %d Hz, volt: %d uV`, in Hz. */
  initialFreqHz?: number;
  /** Initial NPU voltage from the same line, in microvolts. */
  initialVoltUv?: number;
}

/** Everything found in one capture. Lists are empty (never absent) when nothing was found. */
export interface RknnOutput {
  /**
   * `result` when the capture holds a result (runs, an average, top-k or detections) and no
   * error line; `error` when it holds error lines and no result; `both`; `nothing` when neither
   * (e.g. empty or unrelated output). Warnings alone do not make it `error`.
   */
  status: "result" | "error" | "both" | "nothing";
  /** librknnrt version: `rknn_api/rknnrt version:`, `sdk version:` or `librknnrt version:`. */
  runtimeVersion?: RknnVersion;
  /** rknpu driver version as librknnrt reports it (`driver version:`, `RKNN Driver Information`). */
  driverVersion?: string;
  /** `model input num: %d, output num: %d`. */
  inputCount?: number;
  /** See `inputCount`. */
  outputCount?: number;
  /** Runs before `Begin perf ...` (rknn_benchmark's 5 warm-up runs). */
  warmupRuns: RknnRun[];
  /** Runs after `Begin perf ...` (or all runs when there was no marker). */
  perfRuns: RknnRun[];
  /** `Avg Time %.2fms` in ms (SDK ≥ 1.5; absent in SDK 1.4, which prints only `Avg FPS`). */
  avgTimeMs?: number;
  /** `Avg FPS = %.3f`. */
  avgFps?: number;
  /** rknn_yolov5_demo `once run use %f ms`: the first inputs_set + run + outputs_get, in ms. */
  onceRunMs?: number;
  /** rknn_yolov5_demo `loop count = %d , average run  %f ms` (includes post-processing). */
  loop?: { count: number; averageMs: number };
  /** Top-k lists, one per output tensor in printed order. */
  topK: RknnTopK[];
  /** YOLOv5 detections in printed order. */
  detections: RknnDetection[];
  /** Error and warning lines from librknnrt, the program and the kernel driver. */
  errors: RknnError[];
  /** rknpu probe facts when the capture holds the driver's probe lines. */
  probe: RknpuProbe;
  /** Lines longer than {@link RKNN_MAX_LINE_CHARS} that were not read. */
  skippedLongLines: number;
  /** Entries not kept because a list reached {@link RKNN_MAX_ITEMS}. */
  droppedItems: number;
  /** True when the input was longer than {@link RKNN_MAX_INPUT_CHARS} and cut there. */
  truncatedInput: boolean;
}

const NUM = "([0-9]+(?:\\.[0-9]+)?)";
const RE_RUN = new RegExp(`^\\s*([0-9]{1,9}): Elapse Time = ${NUM} ?ms, FPS = ${NUM}\\s*$`);
const RE_AVG_TIME = new RegExp(`^\\s*Avg Time ${NUM} ?ms, Avg FPS = ${NUM}\\s*$`);
const RE_AVG_FPS = new RegExp(`^\\s*Avg FPS = ${NUM}\\s*$`);
const RE_VERSION_BENCH =
  /^\s*rknn_api\/rknnrt version: (.{0,500}?), driver version: (.{0,200}?)\s*$/;
const RE_VERSION_DEMO = /^\s*sdk version: (.{0,500}?) driver version: (.{0,200}?)\s*$/;
const RE_IO_NUM = /^\s*model input num: ([0-9]{1,6}), output num: ([0-9]{1,6})\s*$/;
const RE_ONCE = new RegExp(`^\\s*once run use ${NUM} ?ms\\s*$`);
const RE_LOOP = new RegExp(`^\\s*loop count = ([0-9]{1,9}) ?, average run +${NUM} ?ms\\s*$`);
const RE_TOP_HEADER = /^\s*-{3,} ?top ?([0-9]{1,4}) ?-{3,}\s*$/i;
const RE_TOP_BENCH = new RegExp(`^\\s*${NUM} - ([0-9]{1,9})\\s*$`);
const RE_TOP_DEMO = new RegExp(`^\\s*([0-9]{1,9}): ${NUM}\\s*$`);
const RE_TOP_ZOO = new RegExp(`^\\s*\\[([0-9]{1,9})\\] score=${NUM} class=(.{0,300}?)\\s*$`);
const RE_DETECTION = new RegExp(
  `^\\s*(\\S(?:[^@]{0,200}\\S)?) @ \\((-?[0-9]{1,9}) (-?[0-9]{1,9}) (-?[0-9]{1,9}) (-?[0-9]{1,9})\\) ${NUM}\\s*$`,
);
const RE_RUNTIME_INFO =
  /RKNN Runtime Information[:,] librknnrt version: (\S{1,100}(?: \([^)]{0,200}\))?)/;
const RE_DRIVER_INFO = /RKNN Driver Information[:,] version: (\S{1,100})/;
const RE_DRIVER_OLD =
  /Current driver version: ([^,\s]{1,100}), recommend to upgrade the driver to the new version: >= ?(\S{1,100})/;
const RE_VERSION_SPLIT = /^([0-9]+(?:\.[0-9]+)*)(?:\s*\(([^)]*)\))?/;
const RE_FIELD =
  /([A-Za-z][A-Za-z ]{0,40}?) ?(?::|=) ?(-?0x[0-9a-fA-F]{1,16}|-?[0-9]{1,20})(us)?(?=[,:\s]|$)/g;

/** Field names of `name: value` pairs, from the printed words to camelCase; `us` values get `Us`. */
function fieldsOf(text: string): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const m of text.matchAll(RE_FIELD)) {
    const words = m[1].trim().toLowerCase().split(/ +/);
    let name = words[0] + words.slice(1).map((w) => w[0].toUpperCase() + w.slice(1)).join("");
    if (m[3]) name += "Us";
    const v = m[2].startsWith("-0x")
      ? -parseInt(m[2].slice(3), 16)
      : m[2].startsWith("0x")
      ? parseInt(m[2].slice(2), 16)
      : Number(m[2]);
    if (Number.isFinite(v) && !(name in out)) out[name] = v;
  }
  return out;
}

function splitVersion(raw: string): RknnVersion {
  const v: RknnVersion = { raw };
  const m = RE_VERSION_SPLIT.exec(raw);
  if (m) {
    v.version = m[1];
    if (m[2] !== undefined) v.build = m[2];
  }
  return v;
}

function num(s: string): number {
  return Number(s);
}

/** The parts of one librknnrt `E RKNN:` / `W RKNN:` message. */
function librknnrtError(
  level: string,
  msg: string,
  line: number,
): RknnError | null {
  let kind: RknnErrorKind | null = null;
  let fields: Record<string, number | string> = {};
  let m: RegExpExecArray | null;
  if ((m = RE_DRIVER_OLD.exec(msg))) {
    kind = "driver-outdated";
    fields = { driverVersion: m[1], recommended: m[2] };
  } else if (level !== "E") return null;
  else if (/failed to open rknpu module/.test(msg)) kind = "driver-missing";
  else if (/failed to open rknn device/.test(msg)) kind = "device-open-failed";
  else if (/failed to submit/.test(msg)) {
    kind = "submit-failed";
    fields = fieldsOf(msg);
    const op = /op name: ([^,]{1,200})/.exec(msg);
    if (op) fields.opName = op[1];
  } else if (/failed to malloc npu memory/.test(msg)) {
    kind = "npu-malloc-failed";
    fields = fieldsOf(msg);
    if (typeof fields.size === "number") {
      fields.sizeBytes = fields.size;
      delete fields.size;
    }
  } else kind = "other";
  return {
    source: "librknnrt",
    kind,
    severity: level === "E" ? "error" : "warning",
    text: msg,
    line,
    fields,
  };
}

/**
 * A `rknpu` driver message (after the printk prefix): its error, `info` for a recognised
 * non-error line (probe, timeout detail), or null when it is no `rknpu` line.
 */
function kernelMessage(
  msg: string,
  line: number,
  probe: RknpuProbe,
  lastTimeout: RknnError | undefined,
): RknnError | "info" | null {
  const init = parseNpuDriverInit(msg);
  if (init?.driver === "rknpu") {
    probe.driverVersion = init.version;
    return "info";
  }
  const k = parseRknpuMessage(msg);
  if (!k) return null;
  const body = k.body;
  if (k.kind === "probe-iommu") probe.mode = k.fields.iommu === "enabled" ? "iommu" : "non-iommu";
  else if (k.kind === "devfreq") {
    probe.initialFreqHz = k.fields.freqHz as number;
    probe.initialVoltUv = k.fields.voltUv as number;
  }
  let kind: RknnErrorKind | null = null;
  let severity: "error" | "warning" = "error";
  if (k.kind === "job-timeout") kind = "job-timeout";
  else if (k.kind === "wait-failed") kind = "wait-failed";
  else if (k.kind === "job-abort") kind = "job-abort";
  else if (k.kind === "soft-reset") {
    kind = "soft-reset";
    severity = "warning";
  } else if (k.kind === "invalid-irq-status") kind = "invalid-irq-status";
  else if (k.kind === "commit-failed") kind = "job-commit-failed";
  else if (k.kind === "timeout-core" && lastTimeout) {
    // The second line of a ≥ 0.9 `job timeout, flags: %#x:` report.
    const trimmed = body.replace(/^(?:\s|\\t|\\x09)+/, "");
    lastTimeout.fields.core = k.fields.core as number;
    for (const [key, v] of Object.entries(fieldsOf(trimmed))) {
      if (!(key in lastTimeout.fields)) lastTimeout.fields[key] = v;
    }
    return "info";
  }
  if (!kind) return "info";
  return { source: "kernel", kind, severity, text: body, line, fields: fieldsOf(body) };
}

/**
 * Parse a capture of RKNN program output, librknnrt log lines and `rknpu` kernel lines (any mix,
 * any order, CRLF or LF, ANSI colours, printk prefixes at line start or mid-line). Never throws;
 * unknown lines are ignored. See {@link RknnOutput} for what `status` means.
 *
 * @param text the capture (only the first {@link RKNN_MAX_INPUT_CHARS} characters are read)
 * @returns the typed findings; empty lists and `status: "nothing"` for unrelated input
 */
export function parseRknnOutput(text: string): RknnOutput {
  const out: RknnOutput = {
    status: "nothing",
    warmupRuns: [],
    perfRuns: [],
    topK: [],
    detections: [],
    errors: [],
    probe: {},
    skippedLongLines: 0,
    droppedItems: 0,
    truncatedInput: false,
  };
  if (typeof text !== "string") return out;
  if (text.length > RKNN_MAX_INPUT_CHARS) {
    text = text.slice(0, RKNN_MAX_INPUT_CHARS);
    out.truncatedInput = true;
  }
  const push = <T>(list: T[], item: T) => {
    if (list.length < RKNN_MAX_ITEMS) list.push(item);
    else out.droppedItems++;
  };
  let phase: "none" | "warmup" | "perf" = "none";
  let top: RknnTopK | null = null;
  let lastTimeout: RknnError | undefined;
  let lineNo = 0;
  let start = 0;
  while (start <= text.length) {
    let end = start;
    while (end < text.length && text.charCodeAt(end) !== 10 && text.charCodeAt(end) !== 13) end++;
    lineNo++;
    const raw = text.slice(start, Math.min(end, start + RKNN_MAX_LINE_CHARS + 1));
    const next = end < text.length && text.charCodeAt(end) === 13 && text.charCodeAt(end + 1) === 10
      ? end + 2
      : end + 1;
    start = next;
    if (raw.length > RKNN_MAX_LINE_CHARS) {
      out.skippedLongLines++;
      top = null;
      if (end >= text.length) break;
      continue;
    }
    let line = stripAnsi(raw);
    // A kernel line, at the start or in the middle of program output.
    // A prefix at the start may also be a serial terminal's host stamp in front of program
    // output: then the rest is program output when it is no rknpu line.
    const stamp = findConsoleStamp(line);
    const kmsg = stamp ? stamp.rest : line;
    const k = kernelMessage(kmsg, lineNo, out.probe, lastTimeout);
    const p = stamp?.prefix;
    const kernelLine = k !== null ||
      (p !== undefined && (p.timestampSec !== undefined || p.priority !== undefined ||
        p.wallClock !== undefined || p.humanTime !== undefined || p.facility !== undefined));
    if (k !== null && k !== "info") {
      push(out.errors, k);
      lastTimeout = k.kind === "job-timeout" ? k : undefined;
    }
    if (kernelLine) line = stamp ? line.slice(0, stamp.index) : "";
    else if (stamp) line = stamp.rest; // only a serial terminal's host stamp: program output
    if (line.trim() === "") {
      // A kernel line between a top-k header and its classes does not end the block.
      if (!kernelLine) top = null;
      if (end >= text.length) break;
      continue;
    }
    parseProgramLine(line, lineNo);
    if (end >= text.length) break;
  }

  function parseProgramLine(line: string, n: number): void {
    let m: RegExpExecArray | null;
    let fail: { api: string; ret: number } | null;
    const log = parseRknnLog(line);
    if (log) {
      const msg = log.message;
      let v: RegExpExecArray | null;
      if ((v = RE_RUNTIME_INFO.exec(msg))) out.runtimeVersion = splitVersion(v[1]);
      else if ((v = RE_DRIVER_INFO.exec(msg))) out.driverVersion = v[1];
      const err = librknnrtError(log.level, msg, n);
      if (err) push(out.errors, err);
      top = null;
      return;
    }
    if ((m = RE_RUNTIME_INFO.exec(line))) {
      out.runtimeVersion = splitVersion(m[1]);
      return;
    }
    if ((m = RE_DRIVER_INFO.exec(line))) {
      out.driverVersion = m[1];
      return;
    }
    if ((m = RE_TOP_HEADER.exec(line))) {
      // `---- Top5 ----` rknn_benchmark, ` --- Top5 ---` the mobilenet demo, `-----TOP 5-----`
      // the model zoo's Python script; the first class line confirms or corrects it.
      const style: RknnTopK["style"] = /TOP /.test(line)
        ? "model-zoo"
        : /^\s*---- ?top/i.test(line)
        ? "benchmark"
        : "demo";
      top = { style, headerK: num(m[1]), classes: [], line: n };
      push(out.topK, top);
      return;
    }
    const cls = topLine(line);
    if (cls) {
      if (!top || (top.classes.length > 0 && top.style !== cls.style)) {
        top = { style: cls.style, classes: [], line: n };
        push(out.topK, top);
      }
      if (top.classes.length === 0) top.style = cls.style;
      push(top.classes, cls.cls);
      return;
    }
    top = null;
    if ((m = RE_RUN.exec(line))) {
      const run = { index: num(m[1]), elapsedMs: num(m[2]), fps: num(m[3]), line: n };
      push(phase === "warmup" ? out.warmupRuns : out.perfRuns, run);
    } else if (/^\s*Warmup \.\.\.\s*$/.test(line)) phase = "warmup";
    else if (/^\s*Begin perf \.\.\.\s*$/.test(line)) phase = "perf";
    else if ((m = RE_AVG_TIME.exec(line))) {
      out.avgTimeMs = num(m[1]);
      out.avgFps = num(m[2]);
    } else if ((m = RE_AVG_FPS.exec(line))) out.avgFps = num(m[1]);
    else if ((m = RE_VERSION_BENCH.exec(line) ?? RE_VERSION_DEMO.exec(line))) {
      out.runtimeVersion = splitVersion(m[1]);
      out.driverVersion = m[2];
    } else if ((m = RE_IO_NUM.exec(line))) {
      out.inputCount = num(m[1]);
      out.outputCount = num(m[2]);
    } else if ((m = RE_ONCE.exec(line))) out.onceRunMs = num(m[1]);
    else if ((m = RE_LOOP.exec(line))) out.loop = { count: num(m[1]), averageMs: num(m[2]) };
    else if ((m = RE_DETECTION.exec(line))) {
      push(out.detections, {
        className: m[1],
        leftPx: num(m[2]),
        topPx: num(m[3]),
        rightPx: num(m[4]),
        bottomPx: num(m[5]),
        score: num(m[6]),
        line: n,
      });
    } else if (/failed to open rknn device/.test(line)) {
      // Quoted without a prefix after librknnrt's `failed to open rknpu module`; which program
      // prints it is not known, so it counts as the program's.
      push(out.errors, {
        source: "program",
        kind: "device-open-failed",
        severity: "error",
        text: line.trim(),
        line: n,
        fields: {},
      });
    } else if ((fail = parseRknnApiFail(line))) {
      push(out.errors, {
        source: "program",
        kind: "api-call-failed",
        severity: "error",
        text: line.trim(),
        line: n,
        fields: { call: fail.api, ret: fail.ret },
      });
    }
  }

  function topLine(line: string): { style: RknnTopK["style"]; cls: RknnClass } | null {
    let m: RegExpExecArray | null;
    if ((m = RE_TOP_BENCH.exec(line))) {
      return { style: "benchmark", cls: { classIndex: num(m[2]), score: num(m[1]) } };
    }
    if ((m = RE_TOP_ZOO.exec(line))) {
      let label = m[3];
      if (label.length >= 2 && label.startsWith('"') && label.endsWith('"')) {
        label = label.slice(1, -1);
      }
      return { style: "model-zoo", cls: { classIndex: num(m[1]), score: num(m[2]), label } };
    }
    // `%3d: %8.6f` only inside a header's block or a run of such lines: a bare `12: 3` elsewhere
    // is too common to be a class on its own, so it needs the decimal point the demo prints.
    if ((m = RE_TOP_DEMO.exec(line)) && (top !== null || m[2].includes("."))) {
      return { style: "demo", cls: { classIndex: num(m[1]), score: num(m[2]) } };
    }
    return null;
  }

  const hasResult = out.perfRuns.length > 0 || out.warmupRuns.length > 0 ||
    out.avgTimeMs !== undefined || out.avgFps !== undefined || out.onceRunMs !== undefined ||
    out.loop !== undefined || out.topK.some((t) => t.classes.length > 0) ||
    out.detections.length > 0;
  const hasError = out.errors.some((e) => e.severity === "error");
  out.status = hasResult ? (hasError ? "both" : "result") : hasError ? "error" : "nothing";
  return out;
}
