/**
 * `/proc/kallsyms`: `<address> <type> <name>[\t[module]]` per line. Read as root with
 * `kptr_restrict` ≤ 1 the addresses are real; otherwise they are all zero and
 * {@link parseKallsyms} says so. Kernels without `CONFIG_KALLSYMS_ALL` (Debian 6.1) list text
 * symbols only (types t/T/w/W and a few section markers).
 *
 * Pure; addresses are bigints (kernel addresses do not fit a JavaScript number).
 *
 * @module
 */

/** A kallsyms problem: nothing parseable, or addresses hidden. */
export class KallsymsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KallsymsError";
  }
}

/** One symbol. */
export interface KSym {
  addr: bigint;
  /** nm-style type letter: t/T text, d/D data, r/R rodata, b/B bss, w/W weak… */
  type: string;
  name: string;
  /** Module name for module symbols. */
  module?: string;
}

/** Parsed kallsyms, sorted by address, with lookups. */
export interface Kallsyms {
  symbols: KSym[];
  /** True when data symbols (d/D/r/R/b/B) of the kernel image are listed: KALLSYMS_ALL. */
  hasDataSymbols: boolean;
  /** Lines that did not parse. */
  skipped: number;
  /** First symbol with this name (kernel image before modules). */
  lookup(name: string): KSym | undefined;
  /** The symbol containing `addr`: the last symbol at or below it, with the offset into it. */
  symbolize(addr: bigint): { sym: KSym; offset: bigint } | undefined;
}

const LINE = /^([0-9a-fA-F]{8,16})\s+([A-Za-z?])\s+(\S+)(?:\s+\[([^\]]+)\])?\s*$/;

/** Parse `/proc/kallsyms` text. Throws {@link KallsymsError} when nothing usable is in it. */
export function parseKallsyms(text: string): Kallsyms {
  const symbols: KSym[] = [];
  let skipped = 0;
  let zero = 0;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const m = LINE.exec(line);
    if (!m) {
      skipped++;
      continue;
    }
    const addr = BigInt("0x" + m[1]);
    if (addr === 0n) zero++;
    const s: KSym = { addr, type: m[2], name: m[3] };
    if (m[4]) s.module = m[4];
    symbols.push(s);
  }
  if (!symbols.length) throw new KallsymsError("no kallsyms lines parsed");
  if (zero === symbols.length) {
    throw new KallsymsError(
      "every kallsyms address is 0: addresses are hidden (read it as root, kptr_restrict <= 1)",
    );
  }
  symbols.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
  const byName = new Map<string, KSym>();
  for (const s of symbols) {
    const cur = byName.get(s.name);
    if (!cur || (cur.module && !s.module)) byName.set(s.name, s);
  }
  const hasDataSymbols = symbols.some((s) =>
    !s.module && /^[dDbB]$/.test(s.type) &&
    !/^(_etext|_sdata|_edata|__bss_start|__bss_stop|_end|__start_rodata|__end_rodata)$/.test(
      s.name,
    )
  );
  // Symbolize against the kernel image and modules, ignoring absolute zero-address symbols.
  const located = symbols.filter((s) => s.addr !== 0n && !s.name.startsWith("$"));
  const symbolize = (addr: bigint) => {
    let lo = 0, hi = located.length - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (located[mid].addr <= addr) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (best < 0) return undefined;
    // Prefer a text symbol when several share the address (markers such as _stext).
    let i = best;
    while (i > 0 && located[i - 1].addr === located[best].addr) i--;
    const same = located.slice(i, best + 1);
    const sym = same.find((s) => /^[tT]$/.test(s.type) && !s.name.startsWith("__")) ??
      same[same.length - 1];
    return { sym, offset: addr - sym.addr };
  };
  return {
    symbols,
    hasDataSymbols,
    skipped,
    lookup: (n) => byName.get(n),
    symbolize,
  };
}

/** `name+0x10` or `name` for a symbolize result. */
export function formatSym(r: { sym: KSym; offset: bigint } | undefined): string {
  if (!r) return "?";
  return r.offset === 0n ? r.sym.name : `${r.sym.name}+0x${r.offset.toString(16)}`;
}
