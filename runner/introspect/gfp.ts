/**
 * gfp_t bit values of the running kernel. They are kernel-internal and have moved between
 * releases, so rkhil reads them from the kernel under test, in this order:
 *
 * 1. BTF: since v6.10 `include/linux/gfp_types.h` defines the bit numbers as an (anonymous)
 *    enum, `___GFP_DMA_BIT = 0, ___GFP_HIGHMEM_BIT, ___GFP_DMA32_BIT, …`, which is in vmlinux
 *    BTF: `__GFP_X = 1 << ___GFP_X_BIT`.
 * 2. tracefs: `events/kmem/mm_page_alloc/format` prints `show_gfp_flags()`, the table of
 *    `{(unsigned long)((gfp_t)0x04u), "GFP_DMA32"}` pairs (older kernels) or
 *    `{(unsigned long)((gfp_t)((((1UL))) << (2))), "GFP_DMA32"}` (v6.10+): the preprocessed
 *    values the kernel was built with. Debian 6.1 has no enum in BTF; this is its source.
 *
 * Pure: text or BTF in, a name → value table out.
 *
 * @module
 */
import type { GfpZone } from "../../oracle/types.ts";
import { type Btf, findEnumerator } from "./btf.ts";

/** gfp flag name (`__GFP_DMA32`, `GFP_DMA32`, `GFP_KERNEL`…) → value. */
export type GfpTable = Record<string, number>;

/**
 * `__GFP_<X>` values from the BTF enum holding `___GFP_DMA32_BIT`, or undefined when the kernel
 * has no such enum (before v6.10).
 */
export function gfpBitsFromBtf(btf: Btf): GfpTable | undefined {
  const hit = findEnumerator(btf, "___GFP_DMA32_BIT")[0];
  if (!hit) return undefined;
  const e = btf.get(hit.enumId);
  if (e.kind !== "ENUM" && e.kind !== "ENUM64") return undefined;
  const out: GfpTable = {};
  for (const v of e.values) {
    const m = /^___GFP_(\w+)_BIT$/.exec(v.name);
    if (!m || m[1] === "LAST" || v.value < 0n || v.value > 31n) continue;
    out[`__GFP_${m[1]}`] = 1 << Number(v.value);
  }
  return out;
}

/** Evaluate the constant C expressions tracefs prints for gfp flags. Undefined if unsupported. */
export function evalGfpExpr(src: string): number | undefined {
  const text = src.replace(/\(\s*(?:gfp_t|unsigned long|unsigned int|__force)\s*\)/g, " ");
  const toks = text.match(/0x[0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|<<|[()|&~]|\S/g) ?? [];
  let i = 0;
  const peek = () => toks[i];
  const num = (t: string): bigint | undefined => {
    const m = /^(0x[0-9a-fA-F]+|\d+)[uUlL]*$/.exec(t);
    return m ? BigInt(m[1]) : undefined;
  };
  // or := and ('|' and)* ; and := shift ('&' shift)* ; shift := unary ('<<' unary)* ;
  // unary := '~' unary | '(' or ')' | number
  const unary = (): bigint | undefined => {
    const t = toks[i++];
    if (t === undefined) return undefined;
    if (t === "~") {
      const v = unary();
      return v === undefined ? undefined : BigInt.asUintN(32, ~v);
    }
    if (t === "(") {
      const v = or();
      if (toks[i++] !== ")") return undefined;
      return v;
    }
    return num(t);
  };
  const shift = (): bigint | undefined => {
    let v = unary();
    while (v !== undefined && peek() === "<<") {
      i++;
      const r = unary();
      if (r === undefined || r > 63n) return undefined;
      v = v << r;
    }
    return v;
  };
  const and = (): bigint | undefined => {
    let v = shift();
    while (v !== undefined && peek() === "&") {
      i++;
      const r = shift();
      if (r === undefined) return undefined;
      v = v & r;
    }
    return v;
  };
  function or(): bigint | undefined {
    let v = and();
    while (v !== undefined && peek() === "|") {
      i++;
      const r = and();
      if (r === undefined) return undefined;
      v = v | r;
    }
    return v;
  }
  const v = or();
  if (v === undefined || i !== toks.length || v > 0xffffffffn) return undefined;
  return Number(v);
}

/**
 * The `{value, "NAME"}` pairs of a tracefs format's `__print_flags(…gfp_flags…)`. Pairs whose
 * value does not evaluate are left out. Empty when the text holds none.
 */
export function gfpTableFromTraceFormat(text: string): GfpTable {
  const out: GfpTable = {};
  const i = text.indexOf("__print_flags(");
  if (i < 0) return out;
  for (const part of text.slice(i).split("{").slice(1)) {
    const m = /^([\s\S]*),\s*"(\w+)"\s*\}/.exec(part);
    if (!m) continue;
    const expr = m[1].trim().replace(/^\(\s*unsigned long\s*\)/, "");
    const v = evalGfpExpr(expr);
    if (v !== undefined && !(m[2] in out)) out[m[2]] = v;
  }
  return out;
}

/** What a gfp value means. */
export interface GfpDecoded {
  raw: number;
  /** The zone modifier: none, GFP_DMA32, GFP_DMA, or other (HIGHMEM, MOVABLE, several). */
  zone: GfpZone | "other";
  /** Names of the single-bit flags set (`__GFP_DMA32`), then unknown bits as hex. */
  names: string[];
}

/** Decode a gfp value with a table that has at least `__GFP_DMA32` (or `GFP_DMA32`). */
export function decodeGfp(raw: number, table: GfpTable): GfpDecoded {
  const bit = (n: string) =>
    table[`__GFP_${n}`] ?? (n === "DMA32" || n === "DMA" ? table[`GFP_${n}`] : undefined);
  const dma32 = bit("DMA32"), dma = bit("DMA"), high = bit("HIGHMEM"), mov = bit("MOVABLE");
  const zoneMask = (dma32 ?? 0) | (dma ?? 0) | (high ?? 0) | (mov ?? 0);
  const z = raw & zoneMask;
  const zone: GfpDecoded["zone"] = z === 0
    ? "none"
    : z === dma32
    ? "GFP_DMA32"
    : z === dma
    ? "GFP_DMA"
    : "other";
  // One name per single bit: `__GFP_X` first, then others (6.1's table names DMA32 `GFP_DMA32`).
  const byBit = new Map<number, string>();
  const single = (v: number) => v > 0 && (v & (v - 1)) === 0;
  for (const pass of [true, false]) {
    for (const [n, v] of Object.entries(table)) {
      if (single(v) && n.startsWith("__GFP_") === pass && !byBit.has(v)) byBit.set(v, n);
    }
  }
  const singles = [...byBit.entries()].map(([v, n]) => [n, v] as const).sort((a, b) => a[1] - b[1]);
  const names: string[] = [];
  let left = raw >>> 0;
  for (const [n, v] of singles) {
    if ((left & v) !== 0) {
      names.push(n);
      left &= ~v;
    }
  }
  if (left) names.push(`0x${(left >>> 0).toString(16)}`);
  return { raw, zone, names };
}
