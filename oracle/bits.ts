/**
 * Bit helpers for values wider than 32 bits held in plain JavaScript numbers.
 *
 * JavaScript's bitwise operators (`&`, `|`, `<<`, `>>>`) convert their operands to 32-bit
 * integers first, so `0x1_0000_1000 & 0xfffff000` silently yields `0x1000`. Every address in the
 * oracle may be up to 40 bits wide, so code that may see such a value goes through these
 * helpers: they split it into a high and a low 32-bit word (exact for any non-negative integer up
 * to 2^53) and only ever apply 32-bit operators to one word at a time.
 *
 * @module
 */

/** 2^32 as a number. */
export const TWO_POW_32 = 0x1_0000_0000;

/** Throw unless `x` is a non-negative safe integer (the domain of every helper here). */
export function assertWide(x: number, what = "value"): void {
  if (!Number.isSafeInteger(x) || x < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${x}`);
  }
}

/** The high word of `x`: bits 52..32, i.e. `x >> 32` in C on a u64. */
export function hi(x: number): number {
  assertWide(x);
  return Math.floor(x / TWO_POW_32);
}

/** The low 32 bits of `x` as an unsigned number, i.e. `(u32)x` in C. */
export function lo32(x: number): number {
  assertWide(x);
  return x % TWO_POW_32;
}

/** Build `hiWord * 2^32 + loWord` from two 32-bit words (C: `((u64)hi << 32) | lo`). */
export function join64(hiWord: number, loWord: number): number {
  if (!Number.isInteger(loWord) || loWord < 0 || loWord >= TWO_POW_32) {
    throw new RangeError(`low word must be a u32, got ${loWord}`);
  }
  const x = hiWord * TWO_POW_32 + loWord;
  assertWide(x, "joined value");
  return x;
}

/**
 * C's conversion to `u32` of any integer (negative values wrap modulo 2^32, as a cast of a
 * signed value does). Non-integers throw.
 */
export function toU32(x: number): number {
  if (!Number.isSafeInteger(x)) throw new RangeError(`toU32 needs a safe integer, got ${x}`);
  const r = x % TWO_POW_32;
  return r < 0 ? r + TWO_POW_32 : r + 0; // `+ 0` turns -0 into 0
}

/** True when `x` is an integer in `[0, 2^32)`. */
export function isU32(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x < TWO_POW_32;
}

/**
 * Bits `hiBit..loBit` (inclusive, like Linux `GENMASK(hi, lo)`) of `x`, shifted down to bit 0.
 * Works for any bit positions below 53.
 */
export function bitsField(x: number, hiBit: number, loBit: number): number {
  assertWide(x);
  if (!(Number.isInteger(hiBit) && Number.isInteger(loBit) && 0 <= loBit && loBit <= hiBit)) {
    throw new RangeError(`bad bit range ${hiBit}:${loBit}`);
  }
  if (hiBit > 52) throw new RangeError(`bit ${hiBit} is beyond a safe integer`);
  return Math.floor(x / 2 ** loBit) % 2 ** (hiBit - loBit + 1);
}

/** `x & GENMASK_ULL(hiBit, loBit)`: the bits stay in place. */
export function maskBits(x: number, hiBit: number, loBit: number): number {
  return bitsField(x, hiBit, loBit) * 2 ** loBit;
}

/** Bitwise AND of two wide values, word by word. */
export function and64(a: number, b: number): number {
  return join64((hi(a) & hi(b)) >>> 0, (lo32(a) & lo32(b)) >>> 0);
}

/** Bitwise OR of two wide values, word by word. */
export function or64(a: number, b: number): number {
  return join64((hi(a) | hi(b)) >>> 0, (lo32(a) | lo32(b)) >>> 0);
}

/**
 * Lower-case hexadecimal of a non-negative integer, zero-padded to at least `digits`
 * characters, without a `0x` prefix (use `printk.ts` for kernel-style prefixes).
 */
export function hex(x: number, digits = 1): string {
  assertWide(x);
  return x.toString(16).padStart(digits, "0");
}

/** The smallest power of two at or above `n` (1 for n <= 1), like the kernel's roundup_pow_of_two. */
export function roundUpPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
