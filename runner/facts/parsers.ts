/**
 * Pure parsers of what a target's kernel says about itself: `/proc/iomem`, `/proc/zoneinfo`,
 * `/proc/cmdline`, `/proc/meminfo`, `uname`, the kernel configuration, and the boot-log lines
 * that matter to the IOMMU oracle. No I/O here: {@link ./collect.ts} fetches the text.
 *
 * Every parser takes untrusted text, never throws, and returns what it could read together with
 * `problems` (lines that looked relevant but could not be read, or conditions such as hidden
 * addresses). Boot-log parsers read every line through the one prefix grammar of
 * oracle/kline.ts (printk `[    0.000000] `, `<6>`, caller ids, `dmesg -x`/`-T`, journald and
 * RFC 3339 syslog, `/dev/kmsg`, serial-terminal host stamps, ANSI).
 *
 * Formats, from the kernel sources (read through the code index; see runner/facts/README.md):
 * - `/proc/iomem`: kernel/resource.c `r_show`: `"%*s%0*llx-%0*llx : %s\n"`, indent 2 per level,
 *   width 4 or 8 digits (minimum), INCLUSIVE end; readers without CAP_SYS_ADMIN see zeros.
 * - `/proc/zoneinfo`: mm/vmstat.c `zoneinfo_show_print`: `Node %d, zone %8s`, `pages free %lu`,
 *   watermarks `min`/`low`/`high` (`promo` since v6.1-ish, `boost`), `spanned`, `present`,
 *   `managed`, `cma`, `protection: (%ld, ...)`, then (populated zones only) per-zone vmstat,
 *   `pagesets` with per-CPU `high:` lines (with a colon, not the watermark), `start_pfn:`.
 * - `Memory: %luK/%luK available (%luK kernel code, ..., %luK cma-reserved)` (mm/mm_init.c
 *   `mem_init_print_info`; mm/page_alloc.c before v6.2).
 * - CMA, mm/cma.c (`pr_fmt "cma: "`): `Reserved %ld MiB at %pa` (up to v6.5),
 *   `Reserved %ld MiB at %pa on node %d` (v6.6, "dma-contiguous: support numa CMA for specified
 *   node"), `Reserved %ld MiB at %pa` again from c009da4258f9 "mm, cma: support multiple
 *   contiguous ranges" (which printed base 0 for dynamically placed areas until "mm/cma: report
 *   base address of single range correctly"), `Reserved %lu MiB in %d range%s`,
 *   `Failed to reserve %ld MiB[ on node %d]`. kernel/dma/contiguous.c `rmem_cma_setup`:
 *   `Reserved memory: created CMA memory pool at %pa, size %ld MiB`.
 * - drivers/of/of_reserved_mem.c (`pr_fmt "OF: reserved mem: "`): `initialized node %s,
 *   compatible id %s`, `%pa..%pa (%lu KiB) %s %s %s` (nomap|map, reusable|non-reusable, name;
 *   INCLUSIVE end), later with a `no-dump|dump` word before the name.
 * - `Machine model: %s` (arch/arm64/kernel/setup.c; arm32 prefixes `OF: fdt: `),
 *   `Linux version %s ...` (init/version.c banner), `Kernel command line: %s` (init/main.c).
 * - Zone ranges / early memory nodes / SWIOTLB: oracle/memory_log.ts (reused, not re-parsed).
 * - rk_iommu lines: oracle/klog.ts `parseLog` (reused).
 *
 * @module
 */

import { type BootArgs, parseBootArgs } from "../../oracle/bootargs.ts";
import { type ParsedLog, parseLog } from "../../oracle/klog.ts";
import { splitPrintkPrefix } from "../../oracle/kline.ts";
import {
  type ParsedMemoryLog,
  type ParsedSwiotlbLine,
  parseSwiotlbLine,
  parseZoneRanges,
} from "../../oracle/memory.ts";
import { parseRelease, type Release } from "../../oracle/releases.ts";
import type { PhysRange } from "../../oracle/types.ts";

/** Lines longer than this are skipped (no kernel line the parsers want is anywhere near it). */
export const MAX_LINE = 4096;

/** Split text into lines; CR and CRLF tolerated, NUL bytes kept (they never match). */
function lines(text: unknown): string[] {
  return String(text ?? "").split(/\r?\n|\r/);
}

function hexNum(h: string): number | null {
  if (!/^(?:0x)?[0-9a-fA-F]{1,16}$/.test(h)) return null;
  const v = Number(BigInt(h.startsWith("0x") ? h : `0x${h}`));
  return Number.isSafeInteger(v) ? v : null;
}

function decNum(d: string): number | null {
  if (!/^-?[0-9]{1,16}$/.test(d)) return null;
  const v = Number(d);
  return Number.isSafeInteger(v) ? v : null;
}

function shorten(s: string, n = 200): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

// ---------------------------------------------------------------------------------------------
// printk prefixes

/** A log line with its printk/syslog prefix removed. */
export interface KernelMessage {
  /** The message text after the prefix. */
  text: string;
  /** Seconds since boot, when the line had a `[    1.234567]` stamp. */
  timestampSec?: number;
  /** Syslog priority `<N>` as printed. */
  priority?: number;
}

/** Remove the printk/syslog prefixes of one line (never throws); see `splitPrintkPrefix`. */
export function stripPrintkPrefix(line: string): KernelMessage {
  const { prefix, rest } = splitPrintkPrefix(String(line).replace(/\r$/, ""));
  const out: KernelMessage = { text: rest };
  if (prefix.timestampSec !== undefined) out.timestampSec = prefix.timestampSec;
  if (prefix.priority !== undefined) out.priority = prefix.priority;
  return out;
}

// ---------------------------------------------------------------------------------------------
// /proc/iomem

/** One `/proc/iomem` resource. */
export interface IomemResource {
  /** Half-open range (the file prints an inclusive end). */
  range: PhysRange;
  /** The resource's name (`System RAM`, a device name). */
  name: string;
  /** Nesting level: 0 for top-level resources. */
  depth: number;
  /** Resources nested inside it, in file order. */
  children: IomemResource[];
}

/** What {@link parseIomem} read. */
export interface ParsedIomem {
  /** Top-level resources, each with its children. */
  roots: IomemResource[];
  /** Number of resources read. */
  count: number;
  /**
   * Every address read as zero: the reader lacked CAP_SYS_ADMIN (kernel/resource.c prints
   * zeros to such readers). The names are real but no range is.
   */
  addressesHidden: boolean;
  /** What could not be read, per line, with why (empty when all was read). */
  problems: string[];
}

const RE_IOMEM = /^( *)([0-9a-fA-F]{1,16})-([0-9a-fA-F]{1,16}) : (.*)$/;

/** Parse `/proc/iomem`. */
export function parseIomem(text: string): ParsedIomem {
  const out: ParsedIomem = { roots: [], count: 0, addressesHidden: false, problems: [] };
  const stack: IomemResource[] = [];
  let zeros = 0;
  for (const raw of lines(text)) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") continue;
    if (line.length > MAX_LINE) {
      out.problems.push(`line longer than ${MAX_LINE} characters skipped`);
      continue;
    }
    const m = RE_IOMEM.exec(line);
    if (!m) {
      out.problems.push(`unreadable iomem line: ${shorten(line)}`);
      continue;
    }
    const start = hexNum(m[2]);
    const last = hexNum(m[3]);
    if (start === null || last === null || last < start) {
      out.problems.push(`iomem range not representable or reversed: ${shorten(line)}`);
      continue;
    }
    let depth = Math.floor(m[1].length / 2);
    if (m[1].length % 2 !== 0) out.problems.push(`odd indentation: ${shorten(line)}`);
    if (depth > stack.length) {
      out.problems.push(`indentation skips a level: ${shorten(line)}`);
      depth = stack.length;
    }
    const isZero = start === 0 && last === 0;
    if (isZero) zeros++;
    const res: IomemResource = {
      range: { start, end: last + 1 },
      name: m[4],
      depth,
      children: [],
    };
    stack.length = depth;
    if (depth === 0) out.roots.push(res);
    else stack[depth - 1].children.push(res);
    stack.push(res);
    out.count++;
  }
  if (out.count > 1 && zeros === out.count) {
    out.addressesHidden = true;
    out.problems.push(
      "every /proc/iomem address reads as zero: the reader lacks CAP_SYS_ADMIN (read it as root)",
    );
  }
  return out;
}

/** Every resource of a parsed iomem, depth first. */
export function iomemFlat(p: ParsedIomem): IomemResource[] {
  const out: IomemResource[] = [];
  const walk = (rs: IomemResource[]) => {
    for (const r of rs) {
      out.push(r);
      walk(r.children);
    }
  };
  walk(p.roots);
  return out;
}

/**
 * DRAM as `/proc/iomem` shows it: top-level `System RAM`, plus top-level `reserved` (lower
 * case: arm64 names memblock `nomap` regions so; they are DRAM in `memblock.memory`). x86's
 * capitalised `Reserved` (firmware, not RAM) is not counted. Empty when addresses are hidden.
 * Sorted, adjacent ranges merged.
 */
export function iomemRamBanks(p: ParsedIomem): PhysRange[] {
  if (p.addressesHidden) return [];
  const ram = p.roots.filter((r) => r.name === "System RAM" || r.name === "reserved").map((r) =>
    r.range
  ).sort((a, b) => a.start - b.start);
  const out: PhysRange[] = [];
  for (const r of ram) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// /proc/zoneinfo

/** One zone of `/proc/zoneinfo` (counts in pages). */
export interface ZoneInfo {
  /** NUMA node number. */
  node: number;
  /** Zone name as printed (`DMA`, `DMA32`, `Normal`, `Movable`). */
  zone: string;
  /** `pages free`. */
  free?: number;
  /** `boost` watermark. */
  boost?: number;
  /** `min` watermark. */
  min?: number;
  /** `low` watermark. */
  low?: number;
  /** `high` watermark. */
  high?: number;
  /** `promo` watermark (newer kernels). */
  promo?: number;
  /** `spanned` pages. */
  spanned?: number;
  /** `present` pages. */
  present?: number;
  /** `managed` pages. */
  managed?: number;
  /** `cma` pages. */
  cma?: number;
  /** `protection: (...)`: `lowmem_reserve[]`, one entry per zone of the node. */
  protection?: number[];
  /** `start_pfn:` (printed for populated zones only). */
  startPfn?: number;
}

/** What {@link parseZoneinfo} read. */
export interface ParsedZoneinfo {
  zones: ZoneInfo[];
  problems: string[];
}

const RE_ZONE_HEAD = /^Node\s+([0-9]{1,6}), zone\s+(\S{1,32})\s*$/;
const RE_WMARK = /^\s+(boost|min|low|high|promo|spanned|present|managed|cma)\s+([0-9]{1,20})\s*$/;
const ZONE_KEYS = new Set([
  "boost",
  "min",
  "low",
  "high",
  "promo",
  "spanned",
  "present",
  "managed",
  "cma",
]);

/** Parse `/proc/zoneinfo`. */
export function parseZoneinfo(text: string): ParsedZoneinfo {
  const out: ParsedZoneinfo = { zones: [], problems: [] };
  let cur: ZoneInfo | null = null;
  let inPagesets = false;
  for (const raw of lines(text)) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.length > MAX_LINE) continue;
    const head = RE_ZONE_HEAD.exec(line);
    if (head) {
      const node = decNum(head[1]);
      if (node === null) {
        out.problems.push(`bad node number: ${shorten(line)}`);
        cur = null;
        continue;
      }
      cur = { node, zone: head[2] };
      out.zones.push(cur);
      inPagesets = false;
      continue;
    }
    if (!cur) continue;
    let m = /^\s+pages free\s+([0-9]{1,20})\s*$/.exec(line);
    if (m) {
      cur.free = decNum(m[1]) ?? undefined;
      continue;
    }
    if (/^\s+pagesets\s*$/.test(line)) {
      inPagesets = true;
      continue;
    }
    m = /^\s+protection: \(([-0-9, ]{0,400})\)\s*$/.exec(line);
    if (m) {
      const vals = m[1].split(",").map((s) => decNum(s.trim()));
      if (vals.some((v) => v === null)) out.problems.push(`bad protection: ${shorten(line)}`);
      else cur.protection = vals as number[];
      continue;
    }
    if (/^\s+protection:/.test(line)) {
      out.problems.push(`bad protection: ${shorten(line)}`);
      continue;
    }
    m = /^\s+start_pfn:\s+([0-9]{1,20})\s*$/.exec(line);
    if (m) {
      cur.startPfn = decNum(m[1]) ?? undefined;
      inPagesets = false;
      continue;
    }
    if (inPagesets) continue;
    m = RE_WMARK.exec(line);
    if (m && ZONE_KEYS.has(m[1])) {
      const v = decNum(m[2]);
      if (v === null) out.problems.push(`number too large: ${shorten(line)}`);
      else cur[m[1] as "min"] = v;
    }
  }
  return out;
}

/**
 * Zone spans from zoneinfo (`[start_pfn, start_pfn + spanned)` pages, times `pageSize`), for
 * zones that print a `start_pfn`. Independent of the boot log, so it survives a wrapped dmesg.
 */
export function zoneinfoSpans(
  p: ParsedZoneinfo,
  pageSize = 4096,
): { node: number; zone: string; span: PhysRange | null }[] {
  return p.zones.map((z) => ({
    node: z.node,
    zone: z.zone,
    span: z.startPfn !== undefined && z.spanned !== undefined && z.spanned > 0
      ? { start: z.startPfn * pageSize, end: (z.startPfn + z.spanned) * pageSize }
      : null,
  }));
}

// ---------------------------------------------------------------------------------------------
// /proc/cmdline, uname

/** What {@link parseCmdline} read. */
export interface ParsedCmdline {
  /** The command line as read (trailing newline removed). */
  raw: string;
  /** `parseBootArgs(raw, {lenient: true})`: the kernel's own reading; warnings inside. */
  args: BootArgs | null;
  /** What could not be read (empty when all was read). */
  problems: string[];
}

/** Parse `/proc/cmdline` (one line; the trailing newline is dropped). */
export function parseCmdline(text: string): ParsedCmdline {
  const raw = String(text ?? "").replace(/\r?\n$/, "");
  const problems: string[] = [];
  if (/[\r\n]/.test(raw)) problems.push("command line text spans several lines");
  let args: BootArgs | null = null;
  try {
    args = parseBootArgs(raw, { lenient: true });
    problems.push(...args.warnings);
  } catch (e) {
    problems.push(`command line not parseable: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { raw, args, problems };
}

/** A kernel release read from `uname -r` or a banner. */
export interface KernelRelease {
  /** As printed, e.g. `6.12.118+deb13-arm64`. */
  text: string;
  /** Major and minor, when `text` is a release string. */
  parsed: Release | null;
}

/** Parse `uname -r` output. */
export function parseUnameR(text: string): { release: KernelRelease | null; problems: string[] } {
  const t = String(text ?? "").trim();
  if (t === "" || /\s/.test(t) || t.length > 256) {
    return { release: null, problems: [`not a release string: ${shorten(t)}`] };
  }
  const parsed = parseRelease(t) ?? null;
  return {
    release: { text: t, parsed },
    problems: parsed ? [] : [`release ${shorten(t)} has no major.minor`],
  };
}

/** `uname -a`, split. */
export interface UnameAll {
  /** The `uname -a` output, trimmed. */
  raw: string;
  /** Kernel name (`Linux`). */
  sysname: string;
  /** Host name. */
  nodename: string;
  /** Kernel release (`uname -r`). */
  release: string;
  /** The machine word (`aarch64`, `x86_64`, ...), when one was recognised. */
  machine: string | null;
}

const MACHINES =
  /^(aarch64|arm64|armv[5-8][a-z]*|x86_64|i[3-6]86|riscv64|ppc64le|ppc64|s390x|mips64|loongarch64)$/;

/** Parse `uname -a` output (GNU coreutils or busybox). */
export function parseUnameA(text: string): { uname: UnameAll | null; problems: string[] } {
  const raw = String(text ?? "").trim();
  const words = raw.split(/\s+/);
  if (raw === "" || words.length < 3 || raw.length > 4096) {
    return { uname: null, problems: [`not uname -a output: ${shorten(raw)}`] };
  }
  const machine = [...words].reverse().find((w) => MACHINES.test(w)) ?? null;
  return {
    uname: { raw, sysname: words[0], nodename: words[1], release: words[2], machine },
    problems: machine ? [] : ["no machine word recognised in uname -a"],
  };
}

// ---------------------------------------------------------------------------------------------
// kernel configuration

/**
 * A config value: `y`, `m`, `n` (written `=n` or `# CONFIG_X is not set`), a string without its
 * quotes and escapes, or a number as written.
 */
export type ConfigValue = string;

/** What {@link parseKernelConfig} read. */
export interface ParsedConfig {
  /** `CONFIG_*` name → value. Options absent from the file are absent here. */
  values: Record<string, ConfigValue>;
  /** From `# Linux/arm64 6.12.118 Kernel Configuration`, when present. */
  header: { arch: string; version: string } | null;
  problems: string[];
}

const RE_CFG_SET = /^(CONFIG_[A-Za-z0-9_]{1,200})=(.*)$/;
const RE_CFG_UNSET = /^# (CONFIG_[A-Za-z0-9_]{1,200}) is not set\s*$/;
const RE_CFG_HEAD = /^# Linux\/(\S{1,32}) (\S{1,64}) Kernel Configuration\s*$/;

function unquote(v: string): string | null {
  if (!(v.length >= 2 && v.startsWith('"') && v.endsWith('"'))) return null;
  const body = v.slice(1, -1);
  let out = "";
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "\\") {
      if (i + 1 >= body.length) return null;
      out += body[++i];
    } else if (c === '"') return null;
    else out += c;
  }
  return out;
}

/** Parse a kernel `.config` (`/proc/config.gz` decompressed, `/boot/config-*`). */
export function parseKernelConfig(text: string): ParsedConfig {
  const values = new Map<string, ConfigValue>();
  const out: ParsedConfig = { values: {}, header: null, problems: [] };
  for (const raw of lines(text)) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.length > MAX_LINE) continue;
    let m = RE_CFG_SET.exec(line);
    if (m) {
      const v = m[2];
      if (v.startsWith('"')) {
        const s = unquote(v);
        if (s === null) out.problems.push(`bad string value: ${shorten(line)}`);
        else values.set(m[1], s);
      } else if (/^(?:[ymn]|-?[0-9]{1,20}|0x[0-9a-fA-F]{1,16})$/.test(v)) values.set(m[1], v);
      else out.problems.push(`bad value: ${shorten(line)}`);
      continue;
    }
    m = RE_CFG_UNSET.exec(line);
    if (m) {
      values.set(m[1], "n");
      continue;
    }
    m = RE_CFG_HEAD.exec(line);
    if (m) {
      out.header = { arch: m[1], version: m[2] };
      continue;
    }
    if (line.startsWith("CONFIG_")) out.problems.push(`unreadable config line: ${shorten(line)}`);
  }
  out.values = Object.fromEntries(values);
  return out;
}

/** `true` for `y`/`m`, `false` for `n`, `undefined` when absent or not a tristate. */
export function configEnabled(
  values: Record<string, ConfigValue>,
  name: string,
): boolean | undefined {
  if (!Object.hasOwn(values, name)) return undefined;
  const v = values[name];
  return v === "y" || v === "m" ? true : v === "n" ? false : undefined;
}

// ---------------------------------------------------------------------------------------------
// /proc/meminfo

/** What {@link parseMeminfo} read. */
export interface ParsedMeminfo {
  /** Every `Key: N [kB]` line, in kB (or the bare count for lines without a unit). */
  fields: Record<string, number>;
  memTotalKb: number | null;
  cmaTotalKb: number | null;
  cmaFreeKb: number | null;
  problems: string[];
}

/** Parse `/proc/meminfo`. */
export function parseMeminfo(text: string): ParsedMeminfo {
  const fields = new Map<string, number>();
  const problems: string[] = [];
  for (const raw of lines(text)) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "" || line.length > MAX_LINE) continue;
    const m = /^([A-Za-z0-9_()]{1,64}):\s+([0-9]{1,20})(?: kB)?\s*$/.exec(line);
    if (!m) {
      problems.push(`unreadable meminfo line: ${shorten(line)}`);
      continue;
    }
    const v = decNum(m[2]);
    if (v === null) problems.push(`number too large: ${shorten(line)}`);
    else fields.set(m[1], v);
  }
  const get = (k: string) => fields.get(k) ?? null;
  return {
    fields: Object.fromEntries(fields),
    memTotalKb: get("MemTotal"),
    cmaTotalKb: get("CmaTotal"),
    cmaFreeKb: get("CmaFree"),
    problems,
  };
}

// ---------------------------------------------------------------------------------------------
// dmesg

/** A CMA line of the boot log. */
export type CmaLine =
  | {
    kind: "reserved";
    sizeMiB: number;
    /** Base as printed. `0` with `baseUnknown` on kernels with the c009da4258f9 print bug. */
    base: number;
    /** `on node %d` (v6.6 until the multi-range rework); -1 means NUMA_NO_NODE. */
    node?: number;
    /** The kernel printed base 0: the real base is not in the log. */
    baseUnknown: boolean;
    line: string;
  }
  | { kind: "reserved-ranges"; sizeMiB: number; ranges: number; line: string }
  | { kind: "failed"; sizeMiB: number; node?: number; line: string }
  | { kind: "dt-pool"; base: number; sizeMiB: number; name?: string; line: string };

/** An `OF: reserved mem:` line. */
export type ReservedMemLine =
  | {
    kind: "region";
    /** Half-open (the line prints an inclusive end). */
    range: PhysRange;
    sizeKiB: number;
    nomap: boolean;
    reusable: boolean;
    /** `no-dump`/`dump` word of newer kernels; absent on older ones. */
    dump?: boolean;
    name: string;
    line: string;
  }
  | { kind: "initialized"; name: string; compatible: string; line: string }
  | { kind: "other"; text: string; line: string };

/** The `Memory: ...K/...K available (...)` line. */
export interface MemoryLine {
  /** Available memory in kB. */
  availableKb: number;
  /** Total memory in kB. */
  totalKb: number;
  /** `kernel code`, `rwdata`, `rodata`, `init`, `bss`, `reserved`, `cma-reserved`, ... in kB. */
  parts: Record<string, number>;
  /** The line as read. */
  line: string;
}

/** Everything {@link parseDmesg} reads from a boot log. */
export interface DmesgFacts {
  /** `Linux version` banner: release word and the whole banner. */
  linuxVersion: { release: string; banner: string } | null;
  /** `Machine model:` as printed, or null. */
  machineModel: string | null;
  /** `Kernel command line:` as printed at boot. */
  bootCommandLine: string | null;
  /** Zone ranges and early memory node ranges (oracle/memory_log.ts). */
  memory: ParsedMemoryLog;
  /** The SWIOTLB line (oracle/memory_log.ts); null when none. */
  swiotlb: ParsedSwiotlbLine | null;
  /** The `cma:` reservation lines, in order. */
  cma: CmaLine[];
  /** The `Memory:` line, or null when absent. */
  memoryLine: MemoryLine | null;
  /** The `Reserved memory:` lines, in order. */
  reservedMem: ReservedMemLine[];
  /** rk_iommu lines and grouped faults (oracle/klog.ts). */
  rkIommu: ParsedLog;
  /** Number of lines read. */
  lineCount: number;
  /** What could not be read (empty when all was read). */
  problems: string[];
}

const HEXP = "0x[0-9a-fA-F]{1,16}";
const RE_CMA_AT = new RegExp(
  `^cma: Reserved ([0-9]{1,12}) MiB at (${HEXP})(?: on node (-?[0-9]{1,6}))?\\s*$`,
);
const RE_CMA_RANGES = /^cma: Reserved ([0-9]{1,12}) MiB in ([0-9]{1,4}) ranges?\s*$/;
const RE_CMA_FAIL = /^cma: Failed to reserve ([0-9]{1,12}) MiB(?: on node (-?[0-9]{1,6}))?\s*$/;
const RE_CMA_POOL = new RegExp(
  `^Reserved memory: created CMA memory pool at (${HEXP}),(?: name: (\\S{1,128}),)? size ([0-9]{1,12}) MiB\\s*$`,
);
const RE_RMEM_REGION = new RegExp(
  `^OF: reserved mem: (${HEXP})\\.\\.(${HEXP}) \\(([0-9]{1,16}) KiB\\) (nomap|map) ` +
    `(reusable|non-reusable)(?: (no-dump|dump))? (\\S{1,256})\\s*$`,
);
const RE_RMEM_INIT =
  /^OF: reserved mem: initialized node (\S{1,256}), compatible id (\S{1,256})\s*$/;
const RE_MEMORY = /^Memory: ([0-9]{1,16})K\/([0-9]{1,16})K available \((.{0,1000})\)\s*$/;
const RE_MODEL = /^(?:OF: fdt: )?Machine model: (.{1,512}?)\s*$/;
const RE_BANNER = /^Linux version (\S{1,256})(?: (.{0,2000}))?$/;
const RE_CMDLINE = /^Kernel command line: (.{0,4096})$/;

function parseMemoryParts(s: string): Record<string, number> | null {
  const parts = new Map<string, number>();
  for (const p of s.split(", ")) {
    const m = /^([0-9]{1,16})K ([A-Za-z][A-Za-z0-9 /_-]{0,40})$/.exec(p);
    if (!m) return null;
    parts.set(m[2], Number(m[1]));
  }
  return Object.fromEntries(parts);
}

/**
 * Read the boot-log facts from `dmesg` output or a captured console log. Later lines win for
 * single facts (a log holding two boots yields the last one's), lists keep every line.
 */
export function parseDmesg(text: string): DmesgFacts {
  const all = lines(text);
  const messages: string[] = [];
  const out: DmesgFacts = {
    linuxVersion: null,
    machineModel: null,
    bootCommandLine: null,
    memory: { zones: [], nodes: [], problems: [] },
    swiotlb: null,
    cma: [],
    memoryLine: null,
    reservedMem: [],
    rkIommu: { entries: [], faults: [] },
    lineCount: all.length,
    problems: [],
  };
  for (const raw of all) {
    // An empty line holds no fact (a flood of them cost ~1.5 µs each through every pattern).
    if (raw.length > MAX_LINE || raw === "") {
      messages.push("");
      continue;
    }
    const line = stripPrintkPrefix(raw).text;
    messages.push(line);
    let m: RegExpExecArray | null;
    if ((m = RE_BANNER.exec(line))) {
      out.linuxVersion = { release: m[1], banner: line };
    } else if ((m = RE_MODEL.exec(line))) {
      out.machineModel = m[1];
    } else if ((m = RE_CMDLINE.exec(line))) {
      out.bootCommandLine = m[1];
    } else if (line.startsWith("cma: ")) {
      if ((m = RE_CMA_AT.exec(line))) {
        const base = hexNum(m[2]);
        if (base === null) out.problems.push(`CMA base not representable: ${shorten(line)}`);
        else {
          const node = m[3] === undefined ? undefined : decNum(m[3]) ?? undefined;
          out.cma.push({
            kind: "reserved",
            sizeMiB: Number(m[1]),
            base,
            ...(node === undefined ? {} : { node }),
            baseUnknown: base === 0,
            line,
          });
        }
      } else if ((m = RE_CMA_RANGES.exec(line))) {
        out.cma.push({
          kind: "reserved-ranges",
          sizeMiB: Number(m[1]),
          ranges: Number(m[2]),
          line,
        });
      } else if ((m = RE_CMA_FAIL.exec(line))) {
        const node = m[2] === undefined ? undefined : decNum(m[2]) ?? undefined;
        out.cma.push({
          kind: "failed",
          sizeMiB: Number(m[1]),
          ...(node === undefined ? {} : { node }),
          line,
        });
      } else if (/^cma: (?:Reserved|Failed)/.test(line)) {
        out.problems.push(`unreadable CMA line: ${shorten(line)}`);
      }
    } else if ((m = RE_CMA_POOL.exec(line))) {
      const base = hexNum(m[1]);
      if (base === null) out.problems.push(`CMA pool base not representable: ${shorten(line)}`);
      else {
        out.cma.push({
          kind: "dt-pool",
          base,
          sizeMiB: Number(m[3]),
          ...(m[2] === undefined ? {} : { name: m[2] }),
          line,
        });
      }
    } else if (line.startsWith("OF: reserved mem: ")) {
      if ((m = RE_RMEM_REGION.exec(line))) {
        const start = hexNum(m[1]);
        const last = hexNum(m[2]);
        if (start === null || last === null || last < start) {
          out.problems.push(`reserved-mem range unreadable: ${shorten(line)}`);
        } else {
          out.reservedMem.push({
            kind: "region",
            range: { start, end: last + 1 },
            sizeKiB: Number(m[3]),
            nomap: m[4] === "nomap",
            reusable: m[5] === "reusable",
            ...(m[6] === undefined ? {} : { dump: m[6] === "dump" }),
            name: m[7],
            line,
          });
        }
      } else if ((m = RE_RMEM_INIT.exec(line))) {
        out.reservedMem.push({ kind: "initialized", name: m[1], compatible: m[2], line });
      } else {
        out.reservedMem.push({
          kind: "other",
          text: line.slice("OF: reserved mem: ".length),
          line,
        });
      }
    } else if (line.startsWith("Memory: ")) {
      m = RE_MEMORY.exec(line);
      const parts = m ? parseMemoryParts(m[3]) : null;
      if (m && parts) {
        out.memoryLine = {
          availableKb: Number(m[1]),
          totalKb: Number(m[2]),
          parts,
          line,
        };
      } else if (/^Memory: [0-9]+K\//.test(line)) {
        out.problems.push(`unreadable Memory: line: ${shorten(line)}`);
      }
    }
  }
  const joined = messages.join("\n");
  out.memory = parseZoneRanges(joined);
  out.problems.push(...out.memory.problems.map((l) => `unreadable zone line: ${shorten(l)}`));
  out.swiotlb = parseSwiotlbLine(joined);
  try {
    out.rkIommu = parseLog(all.join("\n"));
  } catch (e) {
    out.problems.push(`rk_iommu lines not parseable: ${e instanceof Error ? e.message : e}`);
  }
  return out;
}
