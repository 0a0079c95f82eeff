/**
 * The rockchip-iommu driver's kernel log lines: render them exactly as the driver prints them,
 * parse them back (after the line prefixes of the one grammar in `kline.ts`), group the three
 * lines of a page fault into one report, and match lines against expectations whose addresses
 * may vary. Damaged and older lines still count: a line cut short (pager, console width) is read
 * up to the cut (`truncated`, `missing`), a 32-bit kernel's 8-digit `%pad` is read (`addr32`).
 * Walk decoding and `log_iova` live in `klog_walk.ts` and are re-exported here.
 *
 * Format strings are verbatim from `drivers/iommu/rockchip-iommu.c` (research/rockchip-iommu.md
 * §1.6–§1.8, checked again in microsoft/WSL2-Linux-Kernel @ d1b51b130d32080f42c568f24f5cb4445265600a;
 * identical in S-66, S-612, S-618L and S-7x per the research). `dev_err` lines carry the prefix
 * `rk_iommu <dev_name>: `; the "already mapped" line is a `pr_err` without a device prefix.
 * Number formatting follows Linux vsprintf (see `printk.ts`).
 *
 * Pure: no I/O, no clocks.
 *
 * @module
 */

import type { EntryFormat } from "./types.ts";
import { kscanf, kscanfPrefix, ksprintf, type PrintkArg } from "./printk.ts";
import type { PteOptions } from "./entries.ts";
import { type LinePrefix, splitPrintkPrefix } from "./kline.ts";
import { decodeWalk, logIova, type WalkDecoding } from "./klog_walk.ts";

export { decodeWalk, logIova, type WalkDecoding };

export { type LinePrefix, splitPrintkPrefix };

/** The driver name `dev_err` prints before the device name. */
export const RK_IOMMU_DRIVER = "rk_iommu";

/** Direction of a page fault, from STATUS bit 5. */
export type Access = "read" | "write";

/** Fields common to every line printed with `dev_err(iommu->dev, ...)`. */
export interface DeviceEvent<K extends string> {
  /** Discriminant: the line's format. */
  kind: K;
  /** `dev_name()` of the IOMMU, e.g. `fde4b000.iommu`. */
  device: string;
  /**
   * The line was cut (by a pager, a console width, a paste): only what was there was read.
   * Fields named in `missing` were not on the line; they hold placeholders (0, false, `read`)
   * that mean nothing.
   */
  truncated?: true;
  /** With `truncated`: the fields that were not on the line. */
  missing?: string[];
  /** With `truncated`: the message as it was on the line (after the device prefix). */
  cutText?: string;
  /**
   * Printed by a kernel whose `dma_addr_t`/`phys_addr_t` are 32 bits (arm32 without LPAE,
   * e.g. RK3288 vendor kernels): `%pad`/`%pa` are `0x` and 8 hex digits.
   */
  addr32?: true;
}

/** `Page fault at %pad of type %s` (rk_iommu_irq). */
export interface PageFaultEvent extends DeviceEvent<"page_fault"> {
  /** Faulting IO virtual address. */
  iova: number;
  /** `read` or `write`, as printed. */
  access: Access;
}

/** `iova = %pad: dte_index: %#03x pte_index: %#03x page_offset: %#03x` (log_iova, line 1). */
export interface IovaSplitEvent extends DeviceEvent<"iova_split"> {
  /** The IO virtual address split. */
  iova: number;
  /** Directory entry index (IOVA bits 31:22). */
  dteIndex: number;
  /** Page-table entry index (IOVA bits 21:12). */
  pteIndex: number;
  /** Offset in the 4 KiB page (IOVA bits 11:0). */
  pageOffset: number;
}

/**
 * `mmu_dte_addr: %pa dte@%pa: %#08x valid: %u pte@%pa: %#08x valid: %u page@%pa flags: %#03x`
 * (log_iova, line 2). Fields after the first invalid level are 0.
 */
export interface WalkEvent extends DeviceEvent<"walk"> {
  /** The DTE_ADDR register, decoded by the driver. */
  mmuDteAddr: number;
  /** Physical address of the DTE read. */
  dteAddr: number;
  /** The DTE value read. */
  dte: number;
  /** The DTE's valid bit. */
  dteValid: boolean;
  /** Physical address of the PTE read (0 when the DTE is invalid). */
  pteAddr: number;
  /** The PTE value read (0 when the DTE is invalid). */
  pte: number;
  /** The PTE's valid bit. */
  pteValid: boolean;
  /** Page address + page offset (0 when the PTE is invalid). */
  pageAddr: number;
  /** `pte & 0x1fe` (0 when the PTE is invalid). */
  flags: number;
}

/** `BUS_ERROR occurred at %pad`. */
export interface BusErrorEvent extends DeviceEvent<"bus_error"> {
  /** The IO virtual address of the bus error. */
  iova: number;
}

/** `unexpected int_status: %#08x`. */
export interface UnexpectedIntStatusEvent extends DeviceEvent<"unexpected_int_status"> {
  /** The INT_STATUS register value printed. */
  intStatus: number;
}

/** Kinds of the `... request timed out, status: %#08x` lines (one per bank). */
export type StatusTimeoutKind =
  | "enable_stall_timeout"
  | "disable_stall_timeout"
  | "enable_paging_timeout"
  | "disable_paging_timeout";

/** A `... request timed out, status: %#08x` line. */
export interface StatusTimeoutEvent<K extends StatusTimeoutKind> extends DeviceEvent<K> {
  /** The STATUS register value printed. */
  status: number;
}

/** Kinds of the fixed-text device lines. */
export type PlainKind =
  | "not_attached"
  | "raw_reset_error"
  | "force_reset_timeout"
  | "dt_map_error"
  | "pt_map_error";

/** A fixed-text device line. */
export type PlainEvent<K extends PlainKind> = DeviceEvent<K>;

/** `iova: %pad already mapped to %pa cannot remap to phys: %pa prot: %#x` (pr_err, no device). */
export interface AlreadyMappedEvent {
  /** Discriminant. */
  kind: "already_mapped";
  /** The IO virtual address already mapped. */
  iova: number;
  /** The page the existing PTE points to. */
  existingPhys: number;
  /** The physical address being mapped. */
  phys: number;
  /** `IOMMU_READ` (1) | `IOMMU_WRITE` (2) | ... */
  prot: number;
}

/**
 * A line that carries the rk_iommu prefix (or looks like the "already mapped" pr_err) but
 * matches no known format. `device` is null when even the `rk_iommu <dev>: ` prefix is broken;
 * then `text` is everything after the line prefix, otherwise everything after `<dev>: `.
 */
export interface UnknownEvent {
  /** Discriminant. */
  kind: "unknown";
  /** Device name from the prefix, or null when the prefix is broken. */
  device: string | null;
  /** The unmatched text (see above). */
  text: string;
}

/** Every rk_iommu kernel log line, as a discriminated union on `kind`. */
export type RkIommuEvent =
  | PageFaultEvent
  | IovaSplitEvent
  | WalkEvent
  | BusErrorEvent
  | UnexpectedIntStatusEvent
  | StatusTimeoutEvent<"enable_stall_timeout">
  | StatusTimeoutEvent<"disable_stall_timeout">
  | StatusTimeoutEvent<"enable_paging_timeout">
  | StatusTimeoutEvent<"disable_paging_timeout">
  | PlainEvent<"not_attached">
  | PlainEvent<"raw_reset_error">
  | PlainEvent<"force_reset_timeout">
  | PlainEvent<"dt_map_error">
  | PlainEvent<"pt_map_error">
  | AlreadyMappedEvent
  | UnknownEvent;

/** Kinds of known (non-unknown) events. */
export type KnownKind = Exclude<RkIommuEvent["kind"], "unknown">;

/** The driver's format strings (without the trailing `\n`), by event kind. */
export const RK_IOMMU_FORMATS: Readonly<Record<KnownKind, string>> = {
  page_fault: "Page fault at %pad of type %s",
  iova_split: "iova = %pad: dte_index: %#03x pte_index: %#03x page_offset: %#03x",
  walk: "mmu_dte_addr: %pa dte@%pa: %#08x valid: %u pte@%pa: %#08x valid: %u page@%pa flags: %#03x",
  bus_error: "BUS_ERROR occurred at %pad",
  not_attached: "Page fault while iommu not attached to domain?",
  unexpected_int_status: "unexpected int_status: %#08x",
  enable_stall_timeout: "Enable stall request timed out, status: %#08x",
  disable_stall_timeout: "Disable stall request timed out, status: %#08x",
  enable_paging_timeout: "Enable paging request timed out, status: %#08x",
  disable_paging_timeout: "Disable paging request timed out, status: %#08x",
  raw_reset_error: "Error during raw reset. MMU_DTE_ADDR is not functioning",
  force_reset_timeout: "FORCE_RESET command timed out",
  dt_map_error: "DMA map error for DT",
  pt_map_error: "DMA mapping error while allocating page table",
  already_mapped: "iova: %pad already mapped to %pa cannot remap to phys: %pa prot: %#x",
};

/** The event fields filled by each format's conversions, in order. */
const FIELDS: Readonly<Record<KnownKind, readonly string[]>> = {
  page_fault: ["iova", "access"],
  iova_split: ["iova", "dteIndex", "pteIndex", "pageOffset"],
  walk: [
    "mmuDteAddr",
    "dteAddr",
    "dte",
    "dteValid",
    "pteAddr",
    "pte",
    "pteValid",
    "pageAddr",
    "flags",
  ],
  bus_error: ["iova"],
  not_attached: [],
  unexpected_int_status: ["intStatus"],
  enable_stall_timeout: ["status"],
  disable_stall_timeout: ["status"],
  enable_paging_timeout: ["status"],
  disable_paging_timeout: ["status"],
  raw_reset_error: [],
  force_reset_timeout: [],
  dt_map_error: [],
  pt_map_error: [],
  already_mapped: ["iova", "existingPhys", "phys", "prot"],
};

const BOOL_FIELDS = new Set(["dteValid", "pteValid"]);
const DEVICE_KINDS = (Object.keys(RK_IOMMU_FORMATS) as KnownKind[]).filter(
  (k) => k !== "already_mapped",
);

/** Literal text before the first conversion: a cheap filter before running the regex. */
const LEADS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(RK_IOMMU_FORMATS).map((
    [k, f],
  ) => [k, f.includes("%") ? f.slice(0, f.indexOf("%")) : f]),
);

/** The `dev_err` prefix for an IOMMU device: `rk_iommu <device>: `. */
export function devicePrefix(device: string): string {
  return `${RK_IOMMU_DRIVER} ${device}: `;
}

/** A format as a kernel with 32-bit addresses prints it (`%pa`/`%pad`: 8 digits). */
function fmt32(fmt: string): string {
  return fmt.replaceAll("%pad", "%#010x").replaceAll("%pa", "%#010x");
}

/** The message text of an event, without any device prefix. */
function renderMessage(ev: Exclude<RkIommuEvent, UnknownEvent>): string {
  if ("truncated" in ev && ev.truncated && ev.cutText !== undefined) return ev.cutText;
  const rec = ev as unknown as Record<string, unknown>;
  const args: PrintkArg[] = FIELDS[ev.kind].map((f) => {
    const v = rec[f];
    if (typeof v === "boolean") return v ? 1 : 0;
    if (typeof v === "number" || typeof v === "string") return v;
    throw new TypeError(`renderEvent: field ${f} of ${ev.kind} is ${String(v)}`);
  });
  const fmt = RK_IOMMU_FORMATS[ev.kind];
  return ksprintf("addr32" in ev && ev.addr32 ? fmt32(fmt) : fmt, args);
}

/**
 * The kernel log line (without the dmesg/syslog prefix and without the newline) the driver
 * prints for `ev`. Numbers are formatted as the C arguments would be (`%#08x` of a u32,
 * `%pad` of a 64-bit address).
 */
export function renderEvent(ev: RkIommuEvent): string {
  if (ev.kind === "unknown") {
    return ev.device === null ? ev.text : devicePrefix(ev.device) + ev.text;
  }
  if (ev.kind === "already_mapped") return renderMessage(ev);
  return devicePrefix(ev.device) + renderMessage(ev);
}

/** Build an event of `kind` from scanned arguments (undefined: missing), or null. */
function build(
  kind: KnownKind,
  args: readonly (PrintkArg | undefined)[],
  device: string | null,
): Record<string, unknown> | null {
  const ev: Record<string, unknown> = { kind };
  if (device !== null) ev.device = device;
  const fields = FIELDS[kind];
  const missing: string[] = [];
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const v = args[i];
    if (v === undefined) {
      missing.push(f);
      ev[f] = f === "access" ? "read" : BOOL_FIELDS.has(f) ? false : 0;
    } else if (f === "access") {
      if (v !== "read" && v !== "write") return null;
      ev[f] = v;
    } else if (BOOL_FIELDS.has(f)) {
      if (v !== 0 && v !== 1) return null;
      ev[f] = v === 1;
    } else {
      ev[f] = v;
    }
  }
  if (missing.length > 0) ev.missing = missing;
  return ev;
}

/** Parse a message (after the device prefix) as one known kind, or null. */
function parseAs(kind: KnownKind, message: string, device: string | null): RkIommuEvent | null {
  if (!message.startsWith(LEADS[kind])) return null;
  const args = kscanf(RK_IOMMU_FORMATS[kind], message);
  if (args === null) return null;
  return build(kind, args, device) as unknown as RkIommuEvent | null;
}

/** Marks a pager or terminal leaves where it cut a line (`less -S` prints `>`). */
const RE_CUT_MARK = /(?:>|\$|…|\.\.\.)$/;

/**
 * Parse a device message that no format matches exactly: numbers in another width (32-bit
 * kernels), or a line cut short. Null when the wording itself drifted.
 */
function parseDamaged(body: string, device: string): RkIommuEvent | null {
  for (const kind of DEVICE_KINDS) {
    const fmt = RK_IOMMU_FORMATS[kind];
    if (!body.startsWith(LEADS[kind]) || !fmt.includes("%pa")) continue;
    const args = kscanf(fmt32(fmt), body);
    const ev = args ? build(kind, args, device) : null;
    if (ev) return { ...ev, addr32: true } as unknown as RkIommuEvent;
  }
  const cut = body.replace(RE_CUT_MARK, "");
  for (const kind of DEVICE_KINDS) {
    const fmt = RK_IOMMU_FORMATS[kind];
    const hasFields = FIELDS[kind].length > 0;
    if (hasFields ? !cut.startsWith(LEADS[kind]) : cut.length < 16) continue;
    const scan = kscanfPrefix(fmt, cut);
    if (!scan) continue;
    // `of type %s`: what is left must be the start of "read" or "write".
    if (
      scan.cutString !== undefined && !["read", "write"].some((w) => w.startsWith(scan.cutString!))
    ) {
      continue;
    }
    const args = [...scan.args];
    // A 0/1 flag cannot be a cut-off prefix of another value: keep it.
    const at = args.indexOf(undefined);
    if (
      at >= 0 && BOOL_FIELDS.has(FIELDS[kind][at]) && (scan.lastCut === 0 || scan.lastCut === 1)
    ) {
      args[at] = scan.lastCut;
    }
    const ev = build(kind, args, device);
    if (!ev) continue;
    ev.truncated = true;
    if (!ev.missing) ev.missing = [];
    ev.cutText = body;
    return ev as unknown as RkIommuEvent;
  }
  return null;
}

/** Words that make an unreadable rk_iommu line a fault report rather than information. */
const RE_FAULT_WORDS = /fault|error|timed out|time ?out|fail|abort|not attached|BUS_ERROR/i;

/**
 * True when an event reports something wrong: every known kind but none of them is harmless,
 * and an `unknown` line whose text speaks of a fault, an error, a time-out or a failure (a
 * fault line whose format drifted must never be filed as information).
 */
export function isFaultLike(ev: RkIommuEvent): boolean {
  return ev.kind !== "unknown" || RE_FAULT_WORDS.test(ev.text);
}

/** One parsed log line: the prefix, the event, and whether the line ended in CR. */
export interface ParsedLine {
  /** The line's prefixes (timestamp, syslog, console), per kline.ts. */
  prefix: LinePrefix;
  /** The rk_iommu event the message holds. */
  event: RkIommuEvent;
  /** True when the line ended with `\r` (CRLF captures, serial consoles). */
  cr: boolean;
  /** The captured line, when it held ANSI escapes (left out of `prefix.raw` and the event). */
  ansiLine?: string;
}

const RE_DEVICE = /^rk_iommu (\S+?): /;

/** Classify a message (the line after its prefix) as an rk_iommu event, or null. */
export function parseMessage(message: string): RkIommuEvent | null {
  if (message.startsWith(`${RK_IOMMU_DRIVER} `)) {
    const m = RE_DEVICE.exec(message);
    if (!m) return { kind: "unknown", device: null, text: message };
    const device = m[1];
    const body = message.slice(m[0].length);
    for (const kind of DEVICE_KINDS) {
      const ev = parseAs(kind, body, device);
      if (ev) return ev;
    }
    return parseDamaged(body, device) ?? { kind: "unknown", device, text: body };
  }
  if (message.startsWith(LEADS.already_mapped)) {
    const ev = parseAs("already_mapped", message, null);
    if (ev) return ev;
    if (message.includes(" already mapped to ")) {
      return { kind: "unknown", device: null, text: message };
    }
  }
  return null;
}

/**
 * Parse one captured line. Tolerates, in this order and each optional: a journald/syslog
 * `Mon DD HH:MM:SS host kernel: ` stamp, a syslog `<N>` priority, a `dmesg -x`
 * `kern  :err   : ` facility/level, a dmesg `[   12.345678]` or `dmesg -T` timestamp with an
 * optional `[T123]` caller id, and a trailing `\r`. Returns null for lines that are not
 * rk_iommu lines; never throws. `renderLine(parseLine(l))` reproduces `l` exactly.
 */
export function parseLine(line: string): ParsedLine | null {
  const cr = line.endsWith("\r");
  const body = cr ? line.slice(0, -1) : line;
  const { prefix, rest } = splitPrintkPrefix(body);
  const event = parseMessage(rest);
  if (event === null) return null;
  return body.includes("\x1b") ? { prefix, event, cr, ansiLine: line } : { prefix, event, cr };
}

/** Reassemble a parsed line: prefix + rendered event (+ `\r`). */
export function renderLine(p: ParsedLine): string {
  if (p.ansiLine !== undefined) return p.ansiLine;
  return p.prefix.raw + renderEvent(p.event) + (p.cr ? "\r" : "");
}

/** An event with the 1-based line number it was found on. */
export interface LogEntry {
  /** 1-based line number in the log. */
  line: number;
  /** The parsed line. */
  parsed: ParsedLine;
}

/** The lines of one page fault report, grouped. */
export interface FaultReport {
  /** Device name (`fde4b000.iommu`). */
  device: string;
  /** Access type of the fault. */
  access: Access;
  /** Faulting IO virtual address. */
  iova: number;
  /** Timestamp of the `Page fault at` line, if it had one. */
  timestampSec?: number;
  /** 1-based line numbers of the lines that make up the report. */
  lines: {
    pageFault: number;
    split?: number;
    walk?: number;
    notAttached?: number;
    busError?: number;
  };
  /** The `iova = …` log_iova line, when found. */
  split?: IovaSplitEvent;
  /** The `mmu_dte_addr: …` log_iova line, when found. */
  walk?: WalkEvent;
  /** A `Page fault while iommu not attached to domain?` line followed. */
  notAttached: boolean;
  /** A `BUS_ERROR occurred at` line for the same IOVA followed (both IRQ bits set). */
  busError: boolean;
  /** Both log_iova lines were found, neither cut short. */
  complete: boolean;
  /** A line of the report was cut short (see `truncated` on the events). */
  truncated: boolean;
  /** Present when `parseLog` was given an entry format and the walk line was found. */
  decoded?: WalkDecoding;
}

/** Result of {@link parseLog}. */
export interface ParsedLog {
  /** Every rk_iommu line, in order. */
  entries: LogEntry[];
  /** Page faults, each with its log_iova lines attached. */
  faults: FaultReport[];
}

/**
 * Parse a captured log (any of the prefixes {@link parseLine} accepts, LF or CRLF) and group
 * each `Page fault at` line with the `iova =` and `mmu_dte_addr:` lines that follow it for the
 * same device (other lines may be interleaved). With `opts.format`, each complete report gets a
 * {@link WalkDecoding}.
 */
export function parseLog(
  text: string,
  opts: PteOptions & { format?: EntryFormat } = {},
): ParsedLog {
  const entries: LogEntry[] = [];
  const faults: FaultReport[] = [];
  const open = new Map<string, FaultReport>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const parsed = parseLine(lines[i]);
    if (!parsed) continue;
    const line = i + 1;
    entries.push({ line, parsed });
    const ev = parsed.event;
    if (ev.kind === "unknown" || ev.kind === "already_mapped") continue;
    const cur = open.get(ev.device);
    if (ev.kind === "page_fault") {
      const report: FaultReport = {
        device: ev.device,
        access: ev.access,
        iova: ev.iova,
        lines: { pageFault: line },
        notAttached: false,
        busError: false,
        complete: false,
        truncated: ev.truncated === true,
      };
      if (parsed.prefix.timestampSec !== undefined) {
        report.timestampSec = parsed.prefix.timestampSec;
      }
      faults.push(report);
      open.set(ev.device, report);
    } else if (ev.kind === "iova_split") {
      if (cur && !cur.split && !cur.walk && ev.iova === cur.iova) {
        cur.split = ev;
        cur.lines.split = line;
        if (ev.truncated) cur.truncated = true;
      }
    } else if (ev.kind === "walk") {
      if (cur && !cur.walk) {
        cur.walk = ev;
        cur.lines.walk = line;
        if (ev.truncated) cur.truncated = true;
        cur.complete = cur.split !== undefined && !cur.truncated;
        if (opts.format) {
          cur.decoded = decodeWalk(opts.format, ev, { ...opts, split: cur.split });
        }
      }
    } else if (ev.kind === "not_attached") {
      if (cur && !cur.notAttached) {
        cur.notAttached = true;
        cur.lines.notAttached = line;
      }
    } else if (ev.kind === "bus_error") {
      if (cur && ev.iova === cur.iova && !cur.busError) {
        cur.busError = true;
        cur.lines.busError = line;
      }
      open.delete(ev.device);
    } else {
      open.delete(ev.device);
    }
  }
  return { entries, faults };
}

/** A half-open numeric range `[start, end)`, like `PhysRange`. */
export interface NumberRange {
  start: number;
  end: number;
}

/** What one field of an expected line may be: a fixed value, `"any"`, or a numeric range. */
export type FieldPattern<T> = T | "any" | (T extends number ? NumberRange : never);

type PatternOf<E> = E extends { kind: infer K }
  ? { kind: K } & { [F in Exclude<keyof E, "kind">]?: FieldPattern<E[F]> }
  : never;

/**
 * An expected rk_iommu line where some fields may vary: `kind` is fixed, every other field is
 * optional (omitted means any) and may be a value, `"any"`, or a `{start, end}` range.
 */
export type FaultLinePattern = PatternOf<RkIommuEvent>;

/**
 * The first field where `event` does not match `pattern`, as a short description, or null
 * when it matches.
 */
export function patternMismatch(pattern: FaultLinePattern, event: RkIommuEvent): string | null {
  if (pattern.kind !== event.kind) return `kind: expected ${pattern.kind}, got ${event.kind}`;
  const ev = event as unknown as Record<string, unknown>;
  for (const [field, want] of Object.entries(pattern)) {
    if (field === "kind" || want === undefined || want === "any") continue;
    const got = ev[field];
    if (typeof want === "object" && want !== null) {
      const r = want as NumberRange;
      if (typeof got !== "number" || got < r.start || got >= r.end) {
        return `${field}: expected [${r.start}, ${r.end}), got ${String(got)}`;
      }
    } else if (got !== want) {
      return `${field}: expected ${String(want)}, got ${String(got)}`;
    }
  }
  return null;
}

/** True when `event` matches `pattern` (see {@link FaultLinePattern}). */
export function matchesPattern(pattern: FaultLinePattern, event: RkIommuEvent): boolean {
  return patternMismatch(pattern, event) === null;
}
