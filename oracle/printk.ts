/**
 * Linux `vsprintf` number formatting, as used by the rockchip-iommu driver's log lines, and its
 * inverse for parsing.
 *
 * This is a transcription of `number()`, `special_hex_number()` and `address_val()` of
 * `lib/vsprintf.c` (read in torvalds/linux `lib/vsprintf.c` @ 010e85f9e47c6a92740b7d73e0fca8f792573582,
 * read_file id 133339859; the same logic is in every later copy seen). Differences from ISO C
 * that matter here:
 * - With `#` and base 16 the `0x` prefix is printed even for zero (`need_pfx` with
 *   `spec.base == 16 || !is_zero` only guards the octal `0`), so `%#03x` of 0 is `0x0` and
 *   `%#08x` of 0 is `0x000000` (ISO C prints `000` and `00000000`).
 * - The field width includes the `0x` (`field_width -= 2`), zero padding goes after it.
 * - `%pa`/`%pad` take the address by reference and print `special_hex_number(num, size)` with
 *   width `2 + 2 * sizeof(phys_addr_t / dma_addr_t)`: `0x` + 16 digits on arm64.
 *
 * Only the conversions the driver uses are supported: `%d %i %u %x %X %s %%`, the `l`, `ll`,
 * `z`, `h`, `hh` qualifiers, flags `# 0 - + space`, width, precision, and `%pa %pap %pad`.
 *
 * @module
 */

const SIGN = 1;
const LEFT = 2;
const PLUS = 4;
const SPACE = 8;
const ZEROPAD = 16;
const SMALL = 32;
const SPECIAL = 64;

/** An argument of {@link ksprintf}: numbers for numeric conversions, strings for `%s`. */
export type PrintkArg = number | bigint | string;

/** A decoded conversion of a format string. */
interface Spec {
  flags: number;
  fieldWidth: number;
  precision: number;
  base: 10 | 16;
  /** Bits of the argument type: 8, 16, 32 or 64. */
  size: number;
}

/** One piece of a parsed format: literal text or a conversion. */
type Piece =
  | { kind: "text"; text: string }
  | { kind: "num"; spec: Spec }
  | { kind: "str"; spec: Spec }
  | { kind: "addr"; spec: Spec };

function toBig(x: PrintkArg): bigint {
  if (typeof x === "bigint") return x;
  if (typeof x === "number") {
    if (!Number.isSafeInteger(x)) throw new RangeError(`printk: not a safe integer: ${x}`);
    return BigInt(x);
  }
  throw new TypeError(`printk: expected a number, got string ${JSON.stringify(x)}`);
}

/** Transcription of `number()` in lib/vsprintf.c. `num` is the value after the C cast. */
function number(numIn: bigint, spec: Spec): string {
  let num = numIn;
  const needPfx = (spec.flags & SPECIAL) !== 0 && spec.base !== 10;
  const isZero = num === 0n;
  let fieldWidth = spec.fieldWidth;
  let precision = spec.precision;
  let flags = spec.flags;
  const small = (flags & SMALL) !== 0;
  if (flags & LEFT) flags &= ~ZEROPAD;
  let sign = "";
  if (flags & SIGN) {
    if (num < 0n) {
      sign = "-";
      num = -num;
      fieldWidth--;
    } else if (flags & PLUS) {
      sign = "+";
      fieldWidth--;
    } else if (flags & SPACE) {
      sign = " ";
      fieldWidth--;
    }
  }
  if (needPfx) {
    if (spec.base === 16) fieldWidth -= 2;
    else if (!isZero) fieldWidth--;
  }
  let digits = num.toString(spec.base);
  digits = small ? digits.toLowerCase() : digits.toUpperCase();
  const i = digits.length;
  if (i > precision) precision = i;
  fieldWidth -= precision;
  let out = "";
  if (!(flags & (ZEROPAD | LEFT))) {
    while (--fieldWidth >= 0) out += " ";
  }
  out += sign;
  if (needPfx) out += small ? "0x" : "0X";
  if (!(flags & LEFT)) {
    const c = flags & ZEROPAD ? "0" : " ";
    while (--fieldWidth >= 0) out += c;
  }
  out += "0".repeat(Math.max(0, precision - i));
  out += digits;
  while (--fieldWidth >= 0) out += " ";
  return out;
}

/** Apply the C conversion of a `va_arg` of the given size and signedness. */
function cast(x: bigint, size: number, signed: boolean): bigint {
  return signed ? BigInt.asIntN(size, x) : BigInt.asUintN(size, x);
}

const formatCache = new Map<string, Piece[]>();

/** Decode a format string, following `format_decode()` for the subset above. */
function decodeFormat(fmt: string): Piece[] {
  const cached = formatCache.get(fmt);
  if (cached) return cached;
  const pieces: Piece[] = [];
  let text = "";
  let p = 0;
  while (p < fmt.length) {
    const c = fmt[p];
    if (c !== "%") {
      text += c;
      p++;
      continue;
    }
    p++;
    let flags = 0;
    for (;; p++) {
      const f = fmt[p];
      if (f === "-") flags |= LEFT;
      else if (f === "+") flags |= PLUS;
      else if (f === " ") flags |= SPACE;
      else if (f === "#") flags |= SPECIAL;
      else if (f === "0") flags |= ZEROPAD;
      else break;
    }
    let fieldWidth = -1;
    const w = /^\d+/.exec(fmt.slice(p));
    if (w) {
      fieldWidth = Number(w[0]);
      p += w[0].length;
    }
    let precision = -1;
    if (fmt[p] === ".") {
      p++;
      const pr = /^\d+/.exec(fmt.slice(p));
      precision = pr ? Number(pr[0]) : 0;
      if (pr) p += pr[0].length;
    }
    // Qualifiers: the argument's C type (arm64: long, size_t and ptrdiff_t are 64-bit).
    const qual = /^(ll|hh|l|z|t|h)?/.exec(fmt.slice(p))?.[0] ?? "";
    p += qual.length;
    const size = qual === "hh" ? 8 : qual === "h" ? 16 : qual === "" ? 32 : 64;
    const conv = fmt[p++];
    const spec: Spec = { flags, fieldWidth, precision, base: 10, size };
    if (conv === "%") {
      text += "%";
      continue;
    }
    if (text) {
      pieces.push({ kind: "text", text });
      text = "";
    }
    if (conv === "s") pieces.push({ kind: "str", spec });
    else if (conv === "d" || conv === "i") {
      pieces.push({ kind: "num", spec: { ...spec, flags: flags | SIGN } });
    } else if (conv === "u") pieces.push({ kind: "num", spec });
    else if (conv === "x") {
      pieces.push({ kind: "num", spec: { ...spec, base: 16, flags: flags | SMALL } });
    } else if (conv === "X") pieces.push({ kind: "num", spec: { ...spec, base: 16 } });
    else if (conv === "p" && fmt[p] === "a") {
      p++;
      if (fmt[p] === "d" || fmt[p] === "p") p++;
      // phys_addr_t and dma_addr_t are 64-bit on arm64.
      pieces.push({
        kind: "addr",
        spec: {
          flags: SPECIAL | SMALL | ZEROPAD,
          fieldWidth: 2 + 2 * 8,
          precision: -1,
          base: 16,
          size: 64,
        },
      });
    } else {
      throw new SyntaxError(
        `printk: unsupported conversion %${conv ?? ""} in ${JSON.stringify(fmt)}`,
      );
    }
  }
  if (text) pieces.push({ kind: "text", text });
  formatCache.set(fmt, pieces);
  return pieces;
}

/**
 * Format like the kernel's `vsprintf` (for the supported subset). Numeric arguments are cast
 * as the C argument would be: `%x`/`%u` take an `unsigned int` (so values wrap modulo 2^32),
 * `%d` an `int`, `%pa`/`%pad` a 64-bit address. Throws on a type mismatch or a missing argument
 * (programming errors, not data errors).
 */
export function ksprintf(fmt: string, args: readonly PrintkArg[]): string {
  let out = "";
  let a = 0;
  for (const piece of decodeFormat(fmt)) {
    if (piece.kind === "text") {
      out += piece.text;
      continue;
    }
    if (a >= args.length) throw new RangeError(`printk: missing argument ${a} for ${fmt}`);
    const arg = args[a++];
    if (piece.kind === "str") {
      if (typeof arg !== "string") throw new TypeError(`printk: %s needs a string, got ${arg}`);
      let s = piece.spec.precision >= 0 ? arg.slice(0, piece.spec.precision) : arg;
      if (s.length < piece.spec.fieldWidth) {
        const pad = " ".repeat(piece.spec.fieldWidth - s.length);
        s = piece.spec.flags & LEFT ? s + pad : pad + s;
      }
      out += s;
      continue;
    }
    const { spec } = piece;
    out += number(cast(toBig(arg), spec.size, (spec.flags & SIGN) !== 0), spec);
  }
  return out;
}

/** `%pa` / `%pad` on arm64: `0x` followed by 16 lower-case hex digits. */
export function fmtPa(addr: number | bigint): string {
  return ksprintf("%pa", [addr]);
}

/** `%#0<width>x` with the kernel's semantics (width includes `0x`; zero prints `0x0...`). */
export function fmtHexSpecial(value: number | bigint, width: number): string {
  return ksprintf(`%#0${width}x`, [value]);
}

/** `%#x`: `0x` and the minimal lower-case hex digits (`0x0` for zero). */
export function fmtHex(value: number | bigint): string {
  return ksprintf("%#x", [value]);
}

/** `%u` of an `unsigned int`. */
export function fmtU(value: number | bigint): string {
  return ksprintf("%u", [value]);
}

/** `%d` of an `int`. */
export function fmtD(value: number | bigint): string {
  return ksprintf("%d", [value]);
}

/**
 * Parse `text` as the output of `ksprintf(fmt, args)` and return the arguments, or null when it
 * does not match. Numbers come back as `number` when they are safe integers, otherwise the whole
 * match fails (null) so callers can keep the raw text. The result is canonical: a match is only
 * returned when formatting the parsed arguments reproduces `text` byte for byte, so
 * non-canonical spellings (extra leading zeros, upper-case digits, values outside the C type)
 * are rejected. `%s` matches lazily and cannot contain a line break.
 */
export function kscanf(fmt: string, text: string): PrintkArg[] | null {
  const m = compile(fmt).exec(text);
  if (!m) return null;
  const args: PrintkArg[] = [];
  let g = 1;
  for (const piece of decodeFormat(fmt)) {
    if (piece.kind === "text") continue;
    if (piece.kind === "str") {
      args.push(m[g++]);
      continue;
    }
    const sign = m[g++];
    const digits = m[g++];
    let v = BigInt(piece.spec.base === 16 ? `0x${digits}` : digits);
    if (sign === "-") v = -v;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) return null;
    args.push(Number(v));
  }
  let again: string;
  try {
    again = ksprintf(fmt, args);
  } catch {
    return null;
  }
  return again === text ? args : null;
}

const reCache = new Map<string, RegExp>();

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Regex source for one numeric conversion: two groups, sign and digits. */
function numRe(spec: Spec): string {
  const pad = spec.fieldWidth > 0 ? ` {0,${spec.fieldWidth}}` : "";
  const lead = spec.flags & (LEFT | ZEROPAD) ? "" : pad;
  const trail = spec.flags & LEFT ? pad : "";
  const sign = spec.flags & SIGN ? "([-+ ]?)" : "()";
  const pfx = spec.flags & SPECIAL && spec.base === 16 ? "0[xX]" : "";
  const digits = spec.base === 16 ? "([0-9a-fA-F]{1,64})" : "([0-9]{1,64})";
  return lead + sign + pfx + digits + trail;
}

/**
 * Compile a format to an anchored regex. Every group is bounded or lazy and separated by
 * literal text, so matching stays linear on hostile input; the exact layout is then checked
 * by re-formatting in {@link kscanf}.
 */
function compile(fmt: string): RegExp {
  const hit = reCache.get(fmt);
  if (hit) return hit;
  let src = "^";
  for (const piece of decodeFormat(fmt)) {
    if (piece.kind === "text") src += escapeRe(piece.text);
    else if (piece.kind === "str") src += "([^\\r\\n]*?)";
    else src += numRe(piece.spec);
  }
  const re = new RegExp(src + "$");
  reCache.set(fmt, re);
  return re;
}

/** Result of {@link kscanfPrefix}. */
export interface PartialScan {
  /** One entry per conversion, in order: the value, or undefined when it was not read whole. */
  args: (PrintkArg | undefined)[];
  /** Conversions read whole (each followed by the format's next literal text). */
  complete: number;
  /** The number of the last conversion reached ran into the end of the text (may be cut). */
  lastCut: PrintkArg | undefined;
  /** The text a `%s` reached before the end of the text (it may be cut). */
  cutString?: string;
}

/**
 * Read `text` as a cut-off prefix of the output of `fmt` (a line truncated by a pager or a
 * console width): literal text must match as far as the text goes, numbers are read loosely.
 * A number that runs into the end of the text is not counted as read (its digits may be cut)
 * but is returned as `lastCut`. Null when the text leaves the format before it ends, so a line
 * whose wording drifted is never taken for a truncated one.
 */
export function kscanfPrefix(fmt: string, text: string): PartialScan | null {
  const pieces = decodeFormat(fmt);
  const args: (PrintkArg | undefined)[] = [];
  let pos = 0;
  let complete = 0;
  let lastCut: PrintkArg | undefined;
  let cutString: string | undefined;
  let ended = false;
  for (const piece of pieces) {
    if (ended) {
      if (piece.kind !== "text") args.push(undefined);
      continue;
    }
    if (piece.kind === "text") {
      const rest = text.slice(pos);
      if (rest.length >= piece.text.length) {
        if (!rest.startsWith(piece.text)) return null;
        pos += piece.text.length;
      } else {
        if (!piece.text.startsWith(rest)) return null;
        ended = true;
      }
      continue;
    }
    if (piece.kind === "str") {
      args.push(undefined);
      ended = true;
      cutString = text.slice(pos);
      pos = text.length;
      continue;
    }
    const re = new RegExp(`^${numRe(piece.spec)}`);
    const m = re.exec(text.slice(pos));
    if (!m || m[0].length === 0) {
      // Only the start of a number (padding, a sign, `0`, `0x`) may run into the end.
      if (!/^ *[-+]?(?:0[xX]?)?$/.test(text.slice(pos))) return null;
      args.push(undefined);
      ended = true;
      continue;
    }
    let v = BigInt(piece.spec.base === 16 ? `0x${m[2]}` : m[2]);
    if (m[1] === "-") v = -v;
    const safe = v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER);
    pos += m[0].length;
    // More digits than the C type holds: not a cut-off number but a different one.
    if (cast(v, piece.spec.size, (piece.spec.flags & SIGN) !== 0) !== v) return null;
    if (pos >= text.length) {
      args.push(undefined);
      lastCut = safe ? Number(v) : undefined;
      ended = true;
      continue;
    }
    if (!safe) return null;
    // A whole number must be spelled as the kernel spells it (no extra digits).
    if (number(cast(v, piece.spec.size, (piece.spec.flags & SIGN) !== 0), piece.spec) !== m[0]) {
      return null;
    }
    args.push(Number(v));
    complete++;
  }
  if (!ended && pos !== text.length) return null;
  return cutString === undefined
    ? { args, complete, lastCut }
    : { args, complete, lastCut, cutString };
}
