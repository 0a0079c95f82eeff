/**
 * `rkhil explain-log FILE [--board ID] [--kernel REL] [--json]`: read a kernel log a user pastes
 * (any capture format of oracle/kline.ts), decode each rk_iommu fault (oracle/explain.ts), list
 * the NPU and runtime lines and console crashes around it (the console watchers, fed the log's
 * line numbers as their clock), and, with a board and kernel, set the oracle's prediction for
 * that IOMMU beside what the log shows.
 *
 * @module
 */
import { boardFacts } from "../boards/facts.ts";
import { findBoard } from "../boards/load.ts";
import { explainFaults, type FaultExplanation } from "../oracle/explain.ts";
import { parseLog } from "../oracle/klog.ts";
import { splitPrintkPrefix } from "../oracle/kline.ts";
import { predict } from "../oracle/predict.ts";
import type { InstancePrediction, Prediction } from "../oracle/prediction.ts";
import { buildScenario } from "../oracle/scenario.ts";
import { UserInputError } from "./errors.ts";
import { splitConsoleText } from "./watch/console_lines.ts";
import { ConsoleWatcher, type WatchEvent } from "./watch/watchers.ts";

/** Logs larger than this are refused (cut the part around the fault). */
export const MAX_LOG_BYTES = 64 * 1024 * 1024;
/** Events within this many lines of a fault are "around" it. */
export const NEARBY_LINES = 40;

/** A console-watcher event of the log, by line. */
export interface LogEvent {
  /** The console watcher's event kind (`npu`, `panic`, `oops`, ...). */
  kind: WatchEvent["kind"];
  /** The console watcher's severity of the event. */
  severity: WatchEvent["severity"];
  /** 1-based line of its first line. */
  line: number;
  /** What the watcher saw, in one line. */
  reason: string;
  /** Kind-specific fields (NPU: driver, what and the numbers on the line). */
  detail: Record<string, unknown>;
}

/** The oracle's word on one fault's IOMMU, and whether the log agrees. */
export interface FaultVerdict {
  /** The fault's `index` in the explanation (1-based, log order). */
  fault: number;
  /** IOMMU unit address from the fault's device name, 8 hex digits (`fdd97e00`). */
  unit: string;
  /** The oracle's prediction for that unit; absent for `not-predicted`. */
  predicted?: Pick<InstancePrediction, "outcome" | "possible" | "condition" | "format" | "ops">;
  /** `agree`: the observed fault kind is a predicted outcome; `disagree`: it is not, or the directory table lies on the other side of 4 GiB; `unrelated`: predicted OK and the fault is at an IOVA with no page table; `not-predicted`: the board has no IOMMU at that unit. */
  verdict: "agree" | "disagree" | "unrelated" | "not-predicted";
  /** The reason for the verdict, in one sentence. */
  why: string;
}

/** Everything explain-log says about a log. */
export interface LogExplanation {
  /** Path of the log file (absent when text was given). */
  file?: string;
  /** Number of lines of the log. */
  lineCount: number;
  /** Capture formats seen (by prefix), most frequent first. */
  formats: string[];
  /** Every rk_iommu fault, explained; `nearby` holds the lines of `npu` and `crashes` events within `NEARBY_LINES` of its `Page fault at` line. */
  faults: (FaultExplanation & { nearby: number[] })[];
  /** NPU driver and runtime events (`npu`), in order. */
  npu: LogEvent[];
  /** Kernel crashes and other non-IOMMU events (panic, oops, bug, warning, ...). */
  crashes: LogEvent[];
  /** When a prediction was given (`--board` with `--kernel`): its board, SoC, release, one verdict per fault. */
  prediction?: { board: string; soc: string; kernel: string; verdicts: FaultVerdict[] };
  /** Caveats in words (e.g. faults on SoCs the oracle does not catalogue). */
  notes: string[];
}

/**
 * Read a log file for explain-log. Throws UserInputError (exit 2) for a missing, empty, huge or
 * binary file, before any work.
 */
export async function readLogFile(path: string): Promise<string> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new UserInputError(`no such file: ${path}`, "give the path of a saved kernel log");
  }
  if (!info.isFile) throw new UserInputError(`${path} is not a file`, "give a kernel log file");
  if (info.size === 0) {
    throw new UserInputError(
      `${path} is empty`,
      "save the log first, e.g. dmesg > log.txt, journalctl -k > log.txt or a console capture",
    );
  }
  if (info.size > MAX_LOG_BYTES) {
    throw new UserInputError(
      `${path} is ${Math.ceil(info.size / 2 ** 20)} MiB, more than explain-log reads (64 MiB)`,
      "cut the part around the fault, e.g. grep -n -B200 -A200 rk_iommu log.txt > cut.txt",
    );
  }
  const bytes = await Deno.readFile(path);
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new UserInputError(
      `${path} is binary (a NUL byte at offset ${nul}), not a text log`,
      "give the text of the log (dmesg, journalctl -k, /var/log/kern.log, a console capture)",
    );
  }
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
}

function formatsOf(lines: string[]): string[] {
  const count = new Map<string, number>();
  const bump = (k: string) => count.set(k, (count.get(k) ?? 0) + 1);
  for (const l of lines.slice(0, 20000)) {
    if (l.trim() === "") continue;
    const p = splitPrintkPrefix(l).prefix;
    if (p.hostStamp) bump("serial-terminal host stamps");
    if (p.wallClock) bump(/^\d/.test(p.wallClock) ? "RFC 3339 syslog" : "syslog/journald");
    if (p.kmsgSeq !== undefined) bump("/dev/kmsg records");
    if (p.facility) bump("dmesg -x");
    if (p.humanTime) bump("dmesg -T / --time-format");
    if (p.priority !== undefined && p.kmsgSeq === undefined) bump("<N> levels");
    if (p.timestampSec !== undefined && p.kmsgSeq === undefined) bump("printk time stamps");
    if (p.caller) bump("printk caller ids");
    if (p.raw === "") bump("no prefix");
  }
  return [...count.entries()].sort((a, b) => b[1] - a[1]).map(([k]) => k);
}

function summarize(e: WatchEvent): LogEvent {
  const { kind: _k, ...detail } = e.detail as unknown as Record<string, unknown>;
  delete detail.parsed;
  return {
    kind: e.kind,
    severity: e.severity,
    line: e.atMs,
    reason: e.reason,
    detail,
  };
}

function verdictFor(f: FaultExplanation, p: Prediction): FaultVerdict {
  const unit = f.device.split(".")[0].toLowerCase().padStart(8, "0");
  const inst = p.instances.find((i) => i.unit === unit);
  const base = { fault: f.index, unit };
  if (!inst) {
    return {
      ...base,
      verdict: "not-predicted",
      why: `board ${p.board}'s device tree has no IOMMU at ${unit}` +
        (f.soc.soc && f.soc.soc !== p.soc ? ` (the log's device is on ${f.soc.name})` : ""),
    };
  }
  const predicted = {
    outcome: inst.outcome,
    possible: inst.possible,
    format: inst.format,
    ops: inst.ops,
    ...(inst.condition ? { condition: inst.condition } : {}),
  };
  const observed = f.busError ? "BUS_ERROR" : "PAGE_FAULT";
  const dir = f.tables.directory;
  const placement = inst.dt && dir && inst.dt.above4G === dir.above4G
    ? `; the directory table lies ${dir.above4G ? "above" : "below"} 4 GiB as predicted`
    : "";
  if (inst.dt && dir) {
    const inRange = dir.address >= inst.dt.dmaRange.start && dir.address < inst.dt.dmaRange.end;
    if (!inRange && inst.dt.above4G !== dir.above4G && !inst.condition) {
      return {
        ...base,
        predicted,
        verdict: "disagree",
        why: `the oracle puts the directory table in ZONE_${inst.dt.zone} ` +
          `(${inst.dt.above4G ? "above" : "below"} 4 GiB); the log shows it at 0x${
            dir.address.toString(16)
          } (${dir.above4G ? "above" : "below"} 4 GiB)`,
      };
    }
  }
  if (inst.outcome === "DISABLED") {
    return { ...base, predicted, verdict: "disagree", why: "the node is disabled, yet it faulted" };
  }
  if (inst.possible.includes(observed)) {
    return {
      ...base,
      predicted,
      verdict: "agree",
      why: inst.outcome === "UNCERTAIN"
        ? `${observed} is one of the possible outcomes (${inst.possible.join(", ")}): ` +
          (inst.condition ?? "")
        : `the oracle predicts ${observed} for ${inst.label}${placement}`,
    };
  }
  if (inst.outcome === "OK" && observed === "PAGE_FAULT" && f.decoded?.invalidAt === "dte") {
    return {
      ...base,
      predicted,
      verdict: "unrelated",
      why: `the oracle predicts ${inst.outcome} for ${inst.label} (its tables work); this fault ` +
        "is at an IOVA with no page table at all, which table placement does not explain",
    };
  }
  return {
    ...base,
    predicted,
    verdict: "disagree",
    why: `the oracle predicts ${inst.outcome} for ${inst.label}; the log shows ${observed}` +
      placement,
  };
}

/**
 * Explain a log's text. With `prediction`, each fault's entry format comes from the predicted
 * instance (when it has one) and its outcome is set beside the log.
 */
export function explainLogText(text: string, prediction?: Prediction): LogExplanation {
  const lines = text.split(/\r?\n/);
  const log = parseLog(text);
  const notes: string[] = [];
  const formatOf = (device: string) =>
    prediction?.instances.find((i) => i.unit === device.split(".")[0].padStart(8, "0"))?.format ??
      undefined;
  const faults = log.faults.map((r, i) => {
    const one = explainFaults({ entries: [], faults: [r] }, formatOf(r.device))[0];
    return { ...one, index: i + 1 };
  });
  // The console watchers, with line numbers as their clock (so `atMs` is a line number).
  const w = new ConsoleWatcher({ blockIdleMs: 2000, initialBootState: "booting" });
  // One split of the whole text; a line ends at LF (CRLF), as in `lines` above.
  let lineNo = 1;
  for (const cl of splitConsoleText(text, 0)) {
    w.feed({ ...cl, atMs: lineNo });
    if (cl.end === "lf" || cl.end === "crlf") lineNo++;
  }
  w.flush();
  const npu = w.events.filter((e) => e.kind === "npu").map(summarize);
  const crashes = w.events.filter((e) =>
    !["npu", "rk_iommu", "rk_iommu_fault", "boot_banner", "unexpected_boot"].includes(e.kind)
  ).map(summarize);
  const nearbyOf = (line: number) =>
    [...npu, ...crashes].filter((e) => Math.abs(e.line - line) <= NEARBY_LINES).map((e) => e.line)
      .sort((a, b) => a - b);
  const unknownSocs = new Set(
    faults.filter((f) => !f.soc.catalogued).map((f) => `${f.device}: ${f.soc.name}`),
  );
  for (const u of unknownSocs) {
    notes.push(`${u} is not in the oracle's catalogue: decoded, but not predicted`);
  }
  const out: LogExplanation = {
    // A final newline ends the last line; it does not start another.
    lineCount: lines.length - (lines.at(-1) === "" ? 1 : 0),
    formats: formatsOf(lines),
    faults: faults.map((f) => ({ ...f, nearby: nearbyOf(f.lines.pageFault) })),
    npu,
    crashes,
    notes,
  };
  if (prediction) {
    out.prediction = {
      board: prediction.board,
      soc: prediction.soc,
      kernel: prediction.kernel,
      verdicts: faults.map((f) => verdictFor(f, prediction)),
    };
  }
  return out;
}

/** Options of {@link explainLog}. */
export interface ExplainLogOptions {
  /** Board id to hold the faults against (needs `kernel` too). */
  board?: string;
  /** Kernel release to predict for (needs `board` too). */
  kernel?: string;
  /** Extra directories searched for the board file. */
  boardsDir?: string[];
}

/** Read, check and explain a log file (see the module documentation). */
export async function explainLog(path: string, o: ExplainLogOptions = {}): Promise<LogExplanation> {
  if ((o.board === undefined) !== (o.kernel === undefined)) {
    throw new UserInputError(
      `explain-log needs --board and --kernel together (only ${o.board ? "--board" : "--kernel"})`,
      "e.g. rkhil explain-log dmesg.txt --board rock-3b-8g --kernel 6.12",
    );
  }
  const text = await readLogFile(path);
  let prediction: Prediction | undefined;
  if (o.board && o.kernel) {
    const loaded = await findBoard(o.board, o.boardsDir ?? []);
    const board = boardFacts(loaded.board, loaded.path);
    prediction = predict(buildScenario({ board, kernel: o.kernel, bootargs: "" }));
  }
  return { file: path, ...explainLogText(text, prediction) };
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** The explanation as text for a terminal. */
export function renderExplanation(e: LogExplanation): string {
  const out: string[] = [];
  out.push(
    `rkhil explain-log: ${e.file ?? "log"} (${e.lineCount} lines; read as: ${
      e.formats.join(", ") || "nothing"
    })`,
  );
  if (e.faults.length === 0) out.push("", "No rk_iommu page fault in this log.");
  for (const f of e.faults) {
    out.push(
      "",
      `Fault ${f.index} (line ${f.lines.pageFault}${
        f.timestampSec !== undefined ? `, ${f.timestampSec.toFixed(6)} s` : ""
      }): ${f.device} ${f.access} at IOVA ${hex(f.iova)}${f.truncated ? " [lines cut short]" : ""}`,
    );
    out.push(
      `  IOMMU:     ${f.soc.label ?? f.device} on ${f.soc.name}` +
        (f.soc.master ? `, master ${f.soc.master}` : "") +
        (f.soc.catalogued ? "" : " (not in the oracle's catalogue)") + ` [${f.soc.source}]`,
    );
    out.push(`  format:    ${f.format.format ?? "undetermined"}: ${f.format.why}`);
    const t = f.tables;
    const pl = (name: string, p?: { address: number; above4G: boolean }) =>
      p && out.push(`  ${name}${hex(p.address)} (${p.above4G ? "above" : "below"} 4 GiB)`);
    pl("directory: ", t.directory);
    pl("page table:", t.pageTable);
    pl("page:      ", t.page);
    if (f.decoded) {
      out.push(
        `  walk:      DTE ${f.decoded.dteIndex ?? "?"}, invalid at ${f.decoded.invalidAt}` +
          (f.decoded.consistent ? "" : `; inconsistent: ${f.decoded.problems.join("; ")}`),
      );
    }
    out.push(`  reached:   ${f.reached}`);
    for (const l of f.nearby) {
      const ev = [...e.npu, ...e.crashes].find((x) => x.line === l)!;
      out.push(`  nearby:    line ${l}: ${ev.kind}: ${ev.reason}`);
    }
  }
  if (e.prediction) {
    const p = e.prediction;
    out.push("", `Oracle (board ${p.board}, ${p.soc}, kernel ${p.kernel}):`);
    for (const v of p.verdicts) {
      out.push(
        `  fault ${v.fault} ${v.unit}: ${v.verdict.toUpperCase()}` +
          (v.predicted
            ? ` (predicted ${v.predicted.outcome}, ${v.predicted.ops ?? "no ops"})`
            : "") +
          `: ${v.why}`,
      );
    }
  }
  if (e.npu.length) {
    out.push("", "NPU and runtime lines:");
    for (const n of e.npu) out.push(`  line ${n.line}: ${n.reason}`);
  }
  if (e.crashes.length) {
    out.push("", "Console crashes and kernel errors:");
    for (const c of e.crashes) out.push(`  line ${c.line}: ${c.kind}: ${c.reason}`);
  }
  if (e.notes.length) out.push("", ...e.notes.map((n) => `Note: ${n}`));
  return out.join("\n");
}
