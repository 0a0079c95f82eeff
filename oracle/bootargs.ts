/**
 * Kernel command-line parsing for the parameters that move memory on arm64: `mem=`, `swiotlb=`,
 * `cma=` and `iommu.passthrough=`. Everything else is kept verbatim.
 *
 * Transcribed from the kernel, read through the code index (kernel sources of several trees):
 * - Splitting: `next_arg()` and `parse_args()` (lib/cmdline.c, kernel/params.c). Quotes group
 *   words, a leading quote of a value is dropped, the trailing quote of a quoted word or value
 *   is dropped, `--` ends the kernel's parameters (the rest goes to init). The kernel works on
 *   bytes and its `isspace()` (lib/ctype.c) is true for `\t \n \v \f \r`, space and byte 0xA0
 *   (Latin-1 no-break space), so this module works on the UTF-8 bytes of the command line too:
 *   a character whose UTF-8 encoding contains byte 0xA0 splits a word, as it does in the kernel.
 * - Early parameters are matched with `parameq()` (`-` and `_` equivalent) and every occurrence
 *   is handed to the handler in order (`do_early_param`, init/main.c), so for `mem=` and `cma=`
 *   the last one wins while `swiotlb=` flags accumulate.
 * - Sizes: `memparse()` (lib/cmdline.c) = `simple_strtoull(s, &end, 0)` then one optional
 *   suffix K M G T P E (either case). Base 0: `0x` + hex digit is hex, another leading `0` is
 *   octal, else decimal (`_parse_integer_fixup_radix`, lib/kstrtox.c).
 *
 * The kernel is lenient: it stops at the first character it does not understand and silently
 * ignores the rest (`mem=3840MB` is 3840 MiB, `cma=12Q` is 12 bytes, `mem=abc` is 0, values
 * beyond 2^64 wrap). This parser is strict by default: such values raise {@link BootArgsError},
 * which says what a valid value looks like and what the kernel would have read. With
 * `{ lenient: true }` it reads what the kernel reads and records a warning instead.
 *
 * @module
 */
import { roundUpPow2 } from "./bits.ts";

/** Page size assumed for `mem=` rounding (arm64 Debian kernels use 4 KiB pages). */
export const PAGE_SIZE = 4096;
/** `IO_TLB_SHIFT` (include/linux/swiotlb.h): one SWIOTLB slab is 2 KiB. */
export const IO_TLB_SHIFT = 11;
/** `IO_TLB_SEGSIZE`: slabs are allocated in segments of 128; `swiotlb=<n>` is aligned up to it. */
export const IO_TLB_SEGSIZE = 128;
/**
 * `COMMAND_LINE_SIZE` on arm64 (arch/arm64/include/uapi/asm/setup.h: 2048 in Debian's 6.1
 * headers). The boot loader (QEMU's `-append` too) hands the line over in the device tree's
 * `/chosen/bootargs`; `early_init_dt_scan_chosen()` (drivers/of/fdt.c) copies it into
 * `boot_command_line[COMMAND_LINE_SIZE]` with `strscpy(cmdline, p, min(l, COMMAND_LINE_SIZE))`,
 * and `parse_early_param()` (init/main.c) parses that copy: the limit includes the terminating
 * NUL, so the kernel keeps {@link COMMAND_LINE_MAX_BYTES} bytes and never sees anything after
 * them (`mem=` there is not applied). Measured on Debian 6.1.0-57, 6.12.118 and 7.3.4 under QEMU
 * with a 2 kB `-append`: `/proc/cmdline` holds 2047 bytes and a `mem=3G` past them left all
 * 8 GiB in use.
 */
export const COMMAND_LINE_SIZE = 2048;
/** Bytes of the command line an arm64 kernel keeps: `COMMAND_LINE_SIZE` less the NUL. */
export const COMMAND_LINE_MAX_BYTES = COMMAND_LINE_SIZE - 1;

const U64_LIMIT = 1n << 64n;
const U32_LIMIT = 1n << 32n;

/** One `name[=value]` word of the command line, after the kernel's quote handling. */
export interface BootParam {
  /** Parameter name (`mem`, `iommu.passthrough`). */
  name: string;
  /** `null` when the word has no `=`. */
  value: string | null;
}

/** A size read by `memparse`. */
export interface MemSize {
  /** Bytes as a number (exact up to 2^53, which is far above any physical memory). */
  bytes: number;
  /** Bytes exactly, modulo 2^64 like the kernel's `unsigned long long`. */
  exact: bigint;
  /** The text it was read from. */
  text: string;
}

/** `mem=`: arm64 `early_mem()` keeps `memparse(p) & PAGE_MASK`. */
export interface MemArg {
  /** The size as written. */
  requested: MemSize;
  /** Page-aligned limit in bytes. 0 means the kernel applies no limit (but still logs it). */
  limit: number;
  /** The value as written. */
  raw: string;
}

/** `swiotlb=`: `setup_io_tlb_npages()` (kernel/dma/swiotlb.c). */
export interface SwiotlbArg {
  /** Requested number of 2 KiB slabs, as written. */
  slabsRequested?: number;
  /** Slabs after `ALIGN(n, IO_TLB_SEGSIZE)`. */
  slabs?: number;
  /** Requested number of areas (locks), as written. */
  areasRequested?: number;
  /** Areas after `swiotlb_adjust_nareas()`: 0 becomes 1, others round up to a power of two. */
  areas?: number;
  /** `force`: bounce every mapping. */
  force: boolean;
  /** `noforce`: no bounce buffer at all. */
  noforce: boolean;
  /** Every raw value given, in order. */
  raw: string[];
}

/** `cma=nn[MG]@[start[MG][-end[MG]]]`: `early_cma()` (kernel/dma/contiguous.c). */
export interface CmaArg {
  /** Size of the area. */
  size: MemSize;
  /** The `@start` base, when given. */
  base?: MemSize;
  /** Exclusive upper bound: the `-end` value, or `base + size` when only `@start` is given. */
  limit?: number;
  /** The value as written. */
  raw: string;
}

/** The parsed command line. */
export interface BootArgs {
  /** The command line as given. */
  raw: string;
  /** Every kernel parameter in order (before `--`). */
  params: BootParam[];
  /** The last `mem=`, when given (the kernel keeps the last). */
  mem?: MemArg;
  /** Every `swiotlb=` word, read in order into one, when given. */
  swiotlb?: SwiotlbArg;
  /** The last `cma=` that was read, when given. */
  cma?: CmaArg;
  /** `iommu.passthrough=`, read with `kstrtobool()`. */
  iommuPassthrough?: boolean;
  /** Parameters this module does not interpret, verbatim and in order. */
  others: BootParam[];
  /** Words after `--`, handed to init. */
  initArgs: string[];
  /** Things the kernel would do silently (truncation, ignored text in lenient mode). */
  warnings: string[];
  /**
   * When the line is longer than {@link COMMAND_LINE_MAX_BYTES}: what the kernel does not see.
   * Everything else in this object is what the kernel sees (the truncated line).
   */
  truncated?: TruncatedCmdline;
}

/** The part of an over-long command line an arm64 kernel never sees. */
export interface TruncatedCmdline {
  /** Length of the line as given, in bytes. */
  bytes: number;
  /** Arguments that start past the limit, as written (not seen at all). */
  dropped: string[];
  /** The argument that straddles the limit: as written and as the kernel sees it. */
  cut?: { written: string; seen: string };
}

/** Options of {@link parseBootArgs}. */
export interface ParseBootArgsOptions {
  /** Read malformed values as the kernel does and warn instead of throwing. Default false. */
  lenient?: boolean;
}

/** A malformed memory parameter. Carries what was wrong and what a valid value looks like. */
export class BootArgsError extends Error {
  /** Always `BootArgsError`. */
  override name = "BootArgsError";
  /** A malformed value of `param`; the message says what is wrong and what is expected. */
  constructor(
    /** Parameter name, e.g. `mem`. */
    readonly param: string,
    /** The offending value (`null` when the parameter had no `=`). */
    readonly value: string | null,
    /** What is wrong. */
    readonly problem: string,
    /** What a valid value looks like. */
    readonly expected: string,
    /** What the kernel itself would make of it, when it accepts it. */
    readonly kernelReading?: string,
  ) {
    super(
      `${param}=${value === null ? "(no value)" : JSON.stringify(value)}: ${problem}. ` +
        `Expected ${expected}.` +
        (kernelReading ? ` (The kernel would read it as ${kernelReading}.)` : ""),
    );
  }
}

const EXPECT_SIZE =
  "a size: decimal, 0x-hex or 0-octal digits with an optional K/M/G/T/P/E suffix, " +
  "e.g. 3840M or 0xf0000000";
const EXPECT_MEM = `mem=<size>, ${EXPECT_SIZE}`;
const EXPECT_SWIOTLB = "swiotlb={ <slabs>[,<areas>][,force|noforce] | force | noforce }, " +
  "slabs = number of 2 KiB slabs (e.g. 32768 = 64 MiB), areas = number of locks";
const EXPECT_CMA =
  "cma=nn[KMG]@[start[KMG][-end[KMG]]], e.g. cma=64M or cma=64M@0x40000000-0x80000000";
const EXPECT_BOOL =
  "iommu.passthrough=<bool>: 1/0, y/n, t/f, e/d, on/off (first letters, any case)";

// ---------------------------------------------------------------------------------------------
// Byte-level splitting (next_arg / parse_args)

/** `isspace()` of the kernel's lib/ctype.c: TAB..CR, space, and 0xA0. */
function kIsSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d) || b === 0xa0;
}

const decoder = new TextDecoder("utf-8", { fatal: false });
const encoder = new TextEncoder();

function text(bytes: Uint8Array, start: number, end: number): string {
  return end <= start ? "" : decoder.decode(bytes.subarray(start, end));
}

interface RawWord {
  name: string;
  value: string | null;
  /** Byte offsets of the word in the line: first byte, and one past the last. */
  start: number;
  end: number;
}

/** Split like `parse_args()`: returns the words before `--` and the text after it. */
function splitCmdline(bytes: Uint8Array): { words: RawWord[]; rest: string | null } {
  const n = bytes.length;
  const words: RawWord[] = [];
  let pos = 0;
  while (pos < n && kIsSpace(bytes[pos])) pos++;
  while (pos < n) {
    const start = pos;
    let args = pos;
    let inQuote = false;
    let quoted = false;
    if (bytes[args] === 0x22) {
      args++;
      inQuote = true;
      quoted = true;
    }
    let i = 0;
    let equals = 0;
    for (; args + i < n; i++) {
      const c = bytes[args + i];
      if (kIsSpace(c) && !inQuote) break;
      if (equals === 0 && c === 0x3d) equals = i;
      if (c === 0x22) inQuote = !inQuote;
    }
    const end = args + i; // exclusive end of this word
    let nameEnd = equals ? args + equals : end;
    let valStart = equals ? args + equals + 1 : -1;
    let valEnd = end;
    if (equals) {
      // "Don't include quotes in value."
      if (valStart < end && bytes[valStart] === 0x22) {
        valStart++;
        if (bytes[end - 1] === 0x22) valEnd = end - 1;
      }
    }
    // A quoted word loses its trailing quote (the kernel writes a NUL at args[i-1]).
    if (quoted && i > 0 && bytes[end - 1] === 0x22) {
      if (equals) valEnd = Math.min(valEnd, end - 1);
      else nameEnd = Math.min(nameEnd, end - 1);
    }
    const name = text(bytes, args, nameEnd);
    const value = equals ? text(bytes, valStart, Math.max(valStart, valEnd)) : null;
    let next = end < n ? end + 1 : end;
    while (next < n && kIsSpace(bytes[next])) next++;
    pos = next;
    if (value === null && name === "--") {
      return { words, rest: text(bytes, pos, n) };
    }
    words.push({ name, value, start, end });
  }
  return { words, rest: null };
}

// ---------------------------------------------------------------------------------------------
// Numbers (simple_strtoull base 0, memparse)

interface Scanned {
  value: bigint;
  /** Index after the last character used. */
  end: number;
  /** Number of digits read (0: nothing numeric at the start). */
  digits: number;
}

function digitValue(c: string): number {
  const code = c.charCodeAt(0);
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lc = code | 0x20; // ASCII lower-casing of a single character code; safe (< 2^8)
  if (lc >= 0x61 && lc <= 0x66) return lc - 0x61 + 10;
  return 99;
}

function isXDigit(c: string | undefined): boolean {
  return c !== undefined && digitValue(c) < 16;
}

/** `simple_strtoull(s + start, &end, 0)` without the silent wrap: the value is unbounded. */
function strtoullBase0(s: string, start: number): Scanned {
  let p = start;
  let base = 10;
  if (s[p] === "0") {
    if ((s[p + 1] === "x" || s[p + 1] === "X") && isXDigit(s[p + 2])) {
      base = 16;
      p += 2;
    } else {
      base = 8;
    }
  }
  let value = 0n;
  let digits = 0;
  const b = BigInt(base);
  while (p < s.length) {
    const v = digitValue(s[p]);
    if (v >= base) break;
    value = value * b + BigInt(v);
    digits++;
    p++;
  }
  return { value, end: p, digits };
}

const SUFFIX_SHIFT: Record<string, bigint> = {
  k: 10n,
  m: 20n,
  g: 30n,
  t: 40n,
  p: 50n,
  e: 60n,
};

function memparseAt(s: string, start: number): Scanned {
  const r = strtoullBase0(s, start);
  const c = s[r.end];
  const shift = c === undefined ? undefined : SUFFIX_SHIFT[c.toLowerCase()];
  if (shift !== undefined) return { value: r.value << shift, end: r.end + 1, digits: r.digits };
  return r;
}

function toMemSize(value: bigint, textRead: string): MemSize {
  const exact = value % U64_LIMIT;
  return { bytes: Number(exact), exact, text: textRead };
}

/**
 * `memparse()` of a whole value: a size with an optional suffix and nothing after it.
 * Throws {@link BootArgsError} (naming `param`) on anything else, unless `lenient`.
 */
export function parseSize(
  param: string,
  value: string,
  opts: { lenient?: boolean; warnings?: string[] } = {},
): MemSize {
  const r = memparseAt(value, 0);
  const kernel = toMemSize(r.value, value.slice(0, r.end));
  const kernelReading = `${kernel.exact} bytes`;
  let problem: string | undefined;
  if (r.digits === 0) problem = "no number at the start";
  else if (r.end < value.length) {
    problem = `unexpected ${JSON.stringify(value.slice(r.end))} after ${
      JSON.stringify(value.slice(0, r.end))
    }`;
  } else if (r.value >= U64_LIMIT) problem = "the size does not fit in 64 bits";
  if (problem !== undefined) {
    if (!opts.lenient) throw new BootArgsError(param, value, problem, EXPECT_SIZE, kernelReading);
    opts.warnings?.push(`${param}=${value}: ${problem}; read as ${kernelReading} like the kernel`);
  }
  return kernel;
}

// ---------------------------------------------------------------------------------------------
// Individual parameters

function parseMem(value: string | null, lenient: boolean, warnings: string[]): MemArg {
  if (value === null) {
    if (!lenient) {
      throw new BootArgsError(
        "mem",
        value,
        "missing value",
        EXPECT_MEM,
        "nothing (Malformed early option)",
      );
    }
    warnings.push(
      "mem without a value: the kernel prints \"Malformed early option 'mem'\" and ignores it",
    );
    return { requested: toMemSize(0n, ""), limit: 0, raw: "" };
  }
  const requested = parseSize("mem", value, { lenient, warnings });
  const limit = Math.floor(requested.bytes / PAGE_SIZE) * PAGE_SIZE;
  if (limit === 0) warnings.push(`mem=${value} is below one page: the kernel applies no limit`);
  return { requested, limit, raw: value };
}

function parseSwiotlb(
  value: string | null,
  prev: SwiotlbArg | undefined,
  lenient: boolean,
  warnings: string[],
): SwiotlbArg {
  const out: SwiotlbArg = prev
    ? { ...prev, raw: [...prev.raw] }
    : { force: false, noforce: false, raw: [] };
  if (value === null) {
    if (!lenient) throw new BootArgsError("swiotlb", value, "missing value", EXPECT_SWIOTLB);
    warnings.push("swiotlb without a value ignored");
    return out;
  }
  out.raw.push(value);
  const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";
  let p = 0;
  const bad = (problem: string, reading: string) => {
    if (!lenient) throw new BootArgsError("swiotlb", value, problem, EXPECT_SWIOTLB, reading);
    warnings.push(`swiotlb=${value}: ${problem}; ${reading}`);
  };
  if (isDigit(value[p])) {
    const r = strtoullBase0(value, p);
    if (r.value >= U64_LIMIT) bad("slab count does not fit in 64 bits", "it would wrap silently");
    const n = Number(r.value % U64_LIMIT);
    out.slabsRequested = n;
    out.slabs = Math.ceil(n / IO_TLB_SEGSIZE) * IO_TLB_SEGSIZE;
    p = r.end;
  }
  if (value[p] === ",") p++;
  if (isDigit(value[p])) {
    const r = strtoullBase0(value, p);
    if (r.value >= U32_LIMIT) bad("area count does not fit in 32 bits", "it would be truncated");
    const n = Number(r.value % U32_LIMIT);
    out.areasRequested = n;
    out.areas = n === 0 ? 1 : roundUpPow2(n);
    p = r.end;
  }
  if (value[p] === ",") p++;
  const rest = value.slice(p);
  if (rest === "force") out.force = true;
  else if (rest === "noforce") out.noforce = true;
  else if (rest !== "") {
    bad(
      `unknown option ${JSON.stringify(rest)}`,
      "the kernel ignores it silently (strcmp against force/noforce fails)",
    );
  }
  return out;
}

function parseCma(value: string | null, lenient: boolean, warnings: string[]): CmaArg | undefined {
  if (value === null) {
    if (!lenient) {
      throw new BootArgsError("cma", value, "missing value", EXPECT_CMA, "nothing (-EINVAL)");
    }
    warnings.push('cma without a value: the kernel logs "Config string not provided"');
    return undefined;
  }
  const fail = (problem: string, reading: string) => {
    if (!lenient) throw new BootArgsError("cma", value, problem, EXPECT_CMA, reading);
    warnings.push(`cma=${value}: ${problem}; ${reading}`);
  };
  const s = memparseAt(value, 0);
  const size = toMemSize(s.value, value.slice(0, s.end));
  if (s.digits === 0) fail("no size at the start", "a size of 0 bytes");
  if (s.value >= U64_LIMIT) fail("the size does not fit in 64 bits", "it would wrap silently");
  if (s.end === value.length) return { size, raw: value };
  if (value[s.end] !== "@") {
    fail(
      `unexpected ${JSON.stringify(value.slice(s.end))} after the size`,
      `a size of ${size.exact} bytes, the rest ignored`,
    );
    return { size, raw: value };
  }
  const b = memparseAt(value, s.end + 1);
  const base = toMemSize(b.value, value.slice(s.end + 1, b.end));
  if (b.value >= U64_LIMIT) fail("the base does not fit in 64 bits", "it would wrap silently");
  if (value[b.end] !== "-") {
    if (b.end !== value.length) {
      fail(`unexpected ${JSON.stringify(value.slice(b.end))} after the base`, "the rest ignored");
    }
    return { size, base, limit: base.bytes + size.bytes, raw: value };
  }
  const l = memparseAt(value, b.end + 1);
  const limit = toMemSize(l.value, value.slice(b.end + 1, l.end));
  if (l.digits === 0) fail("no number after '-'", "a limit of 0");
  if (l.value >= U64_LIMIT) fail("the limit does not fit in 64 bits", "it would wrap silently");
  if (l.end !== value.length) {
    fail(`unexpected ${JSON.stringify(value.slice(l.end))} after the limit`, "the rest ignored");
  }
  return { size, base, limit: limit.bytes, raw: value };
}

/** `kstrtobool()` (lib/kstrtox.c, current form): first letter, or `on`/`off`. */
export function kstrtobool(s: string | null): boolean | undefined {
  if (s === null || s.length === 0) return undefined;
  switch (s[0]) {
    case "e":
    case "E":
    case "y":
    case "Y":
    case "t":
    case "T":
    case "1":
      return true;
    case "d":
    case "D":
    case "n":
    case "N":
    case "f":
    case "F":
    case "0":
      return false;
    case "o":
    case "O":
      if (s[1] === "n" || s[1] === "N") return true;
      if (s[1] === "f" || s[1] === "F") return false;
      return undefined;
    default:
      return undefined;
  }
}

/**
 * An argument for a message: quoted, and when longer than 48 characters its first and last 20
 * with the length (a command line that overflows usually does so with one huge argument).
 */
export function briefArg(arg: string): string {
  const chars = [...arg];
  if (chars.length <= 48) return JSON.stringify(arg);
  const head = chars.slice(0, 20).join(""), tail = chars.slice(-20).join("");
  return `${JSON.stringify(`${head}…${tail}`)} (${chars.length} characters)`;
}

/**
 * What an over-long line loses (see {@link COMMAND_LINE_SIZE}), and the byte offset of the
 * argument the limit cuts (-1 when it falls between arguments). Words after `--` go to init and
 * are not listed.
 */
function truncation(bytes: Uint8Array): { truncated: TruncatedCmdline; cutStart: number } {
  const full = splitCmdline(bytes);
  const word = (w: RawWord, end: number) => text(bytes, w.start, Math.min(w.end, end));
  const dropped = full.words.filter((w) => w.start >= COMMAND_LINE_MAX_BYTES)
    .map((w) => word(w, w.end));
  const straddling = full.words.find((w) =>
    w.start < COMMAND_LINE_MAX_BYTES && w.end > COMMAND_LINE_MAX_BYTES
  );
  const truncated: TruncatedCmdline = {
    bytes: bytes.length,
    dropped,
    ...(straddling
      ? {
        cut: {
          written: word(straddling, straddling.end),
          seen: word(straddling, COMMAND_LINE_MAX_BYTES),
        },
      }
      : {}),
  };
  return { truncated, cutStart: straddling?.start ?? -1 };
}

/** `parameq()`: parameter names compare with `-` and `_` equivalent. */
function canon(name: string): string {
  return name.replaceAll("-", "_");
}

// ---------------------------------------------------------------------------------------------

/**
 * Parse a kernel command line (for example `/proc/cmdline`). Never throws anything but
 * {@link BootArgsError}, and only for malformed `mem=`, `swiotlb=`, `cma=` or
 * `iommu.passthrough=` values (unless `opts.lenient`).
 */
export function parseBootArgs(cmdline: string, opts: ParseBootArgsOptions = {}): BootArgs {
  const warnings: string[] = [];
  let bytes = encoder.encode(String(cmdline));
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    warnings.push(`command line contains a NUL byte at ${nul}: the kernel stops there`);
    bytes = bytes.subarray(0, nul);
  }
  let truncated: TruncatedCmdline | undefined;
  let cutStart = -1;
  if (bytes.length > COMMAND_LINE_MAX_BYTES) {
    ({ truncated, cutStart } = truncation(bytes));
    bytes = bytes.subarray(0, COMMAND_LINE_MAX_BYTES);
    const lost = truncated.dropped.length;
    warnings.push(
      `command line is ${truncated.bytes} bytes; an arm64 kernel keeps only the first ` +
        `${COMMAND_LINE_MAX_BYTES} (COMMAND_LINE_SIZE ${COMMAND_LINE_SIZE} with its NUL) and ` +
        `never sees the rest` +
        (truncated.cut
          ? `: ${briefArg(truncated.cut.written)} is cut to ${briefArg(truncated.cut.seen)}`
          : "") +
        (lost
          ? `${truncated.cut ? ";" : ":"} ${lost} argument${lost === 1 ? "" : "s"} past the ` +
            `limit ${lost === 1 ? "is" : "are"} ignored (${
              truncated.dropped.slice(0, 8).map(briefArg).join(" ")
            }${lost > 8 ? " …" : ""})`
          : ""),
    );
  }
  const { words, rest } = splitCmdline(bytes);
  const out: BootArgs = {
    raw: String(cmdline),
    params: [],
    others: [],
    initArgs: rest === null || rest === ""
      ? []
      : rest.split(/[\t\n\v\f\r ]+/).filter((w) => w !== ""),
    warnings,
    ...(truncated ? { truncated } : {}),
  };
  for (const w of words) {
    const param: BootParam = { name: w.name, value: w.value };
    out.params.push(param);
    // The argument the limit cuts is read as the kernel reads it, whatever its new form: the
    // warning above says what happened to it.
    const lenient = opts.lenient === true || w.start === cutStart;
    switch (canon(w.name)) {
      case "mem":
        out.mem = parseMem(w.value, lenient, warnings);
        break;
      case "swiotlb":
        out.swiotlb = parseSwiotlb(w.value, out.swiotlb, lenient, warnings);
        break;
      case "cma": {
        const c = parseCma(w.value, lenient, warnings);
        if (c) out.cma = c;
        break;
      }
      case "iommu.passthrough": {
        const b = kstrtobool(w.value);
        if (b === undefined) {
          if (!lenient) {
            throw new BootArgsError(
              "iommu.passthrough",
              w.value,
              "not a boolean",
              EXPECT_BOOL,
              "ignored (-EINVAL)",
            );
          }
          warnings.push(`iommu.passthrough=${w.value ?? ""}: not a boolean; ignored by the kernel`);
        } else {
          out.iommuPassthrough = b;
        }
        break;
      }
      default:
        out.others.push(param);
    }
  }
  return out;
}
