/**
 * Introspection of the running `rockchip-iommu` driver (DESIGN.md boundary 2): what the kernel
 * under test actually has, read from the kernel itself, held against the knowledge base.
 *
 * {@link introspectDriver} reads, through any command channel (SSH exec as root):
 * - `/sys/kernel/btf/vmlinux`: the layout of `struct rk_iommu_ops` (which fields exist at all:
 *   no `gfp_flags` means GFP_DMA32 is hard-coded; `dte_addr_phys` means the vendor DTE_ADDR
 *   layout) and of `struct of_device_id`; the gfp bit enum where the kernel has one;
 * - `/proc/kallsyms`: text symbols (every kernel) and, with KALLSYMS_ALL (Debian 6.12+), the
 *   driver's data symbols `rk_iommu_dt_ids` and `iommu_data_ops_v*`;
 * - `/proc/kcore`: the driver's `of_device_id` table — found by symbol, or, where data symbols
 *   are not exported (Debian 6.1), by scanning the kernel's read-only data for the compatible
 *   strings and checking that the bytes around them are a table of `struct of_device_id` —
 *   then each entry's `data` pointer to its ops struct, and the ops' fields: the function
 *   pointers (resolved to symbol names, which name the entry format), `dma_bit_mask`,
 *   `gfp_flags`;
 * - tracefs `events/kmem/mm_page_alloc/format` for the gfp bit values when BTF lacks them.
 *
 * Every value is a `Fact` with provenance `{source: "<release>: …", confidence: "measured"}`.
 * {@link compareDriverWithKb} holds the result against `mainlineFacts(release)`; each
 * disagreement is a finding with both values and both sources.
 *
 * @module
 */
import { gunzipSync } from "node:zlib";
import { Buffer } from "node:buffer";
import type { DriverFacts } from "../../oracle/releases.ts";
import { type EntryFormat, type Fact, fact, type GfpZone } from "../../oracle/types.ts";
import { RkhilError } from "../errors.ts";
import type { RunCommand } from "../facts/collect.ts";
import { type Btf, BtfError, parseBtf, type StructLayout, structLayout } from "./btf.ts";
import {
  decodeGfp,
  gfpBitsFromBtf,
  type GfpDecoded,
  type GfpTable,
  gfpTableFromTraceFormat,
} from "./gfp.ts";
import { formatSym, type Kallsyms, KallsymsError, parseKallsyms } from "./kallsyms.ts";
import {
  cString,
  decodeBase64Lines,
  hex,
  Kcore,
  KcoreError,
  scanKcoreStrings,
  segmentFor,
  sshKcoreReader,
  uintLe,
} from "./kcore.ts";

/** Introspection could not run (a file is missing or unreadable, the driver is not there). */
export class IntrospectError extends RkhilError {
  constructor(message: string, hint: string, options?: { cause?: unknown }) {
    super(message, hint, "ERROR", options);
  }
}

/** The compatibles of mainline `rk_iommu_dt_ids` (research/rockchip-iommu.md §1.5). */
export const KNOWN_COMPATIBLES = ["rockchip,iommu", "rockchip,rk3568-iommu"] as const;

/** The ops function pointers and the symbol names that say which entry format they are. */
const FORMAT_FUNCTIONS: Record<string, Record<string, EntryFormat>> = {
  pt_address: { rk_dte_pt_address: "v1", rk_dte_pt_address_v2: "v2" },
  mk_dtentries: { rk_mk_dte: "v1", rk_mk_dte_v2: "v2" },
  mk_ptentries: { rk_mk_pte: "v1", rk_mk_pte_v2: "v2" },
};

/** A member of a measured struct layout. */
export interface MeasuredMember {
  /** Member name. */
  name: string;
  /** Offset in bytes from the start of the struct. */
  offset: number;
  /** Size in bytes. */
  size: number;
  /** Type name as BTF gives it. */
  type: string;
}

/** A measured struct layout. */
export interface MeasuredLayout {
  /** Struct name (`rk_iommu_ops`). */
  name: string;
  /** Struct size in bytes. */
  size: number;
  /** Members with their offsets, in order. */
  members: MeasuredMember[];
}

/** Zone the driver's table allocations use, as measured; `hard-coded` = no `gfp_flags` field. */
export type MeasuredGfpZone = GfpZone | "other" | "hard-coded";

/** What one compatible's ops look like in the running kernel. */
export interface IntrospectedOps {
  /** The compatible string of the match-table entry. */
  compatible: string;
  /** Address of the ops struct (`0xffff…`): the entry's `data` pointer. */
  opsAddress: Fact<string>;
  /** Symbol of the ops struct, when kallsyms lists data symbols. */
  opsSymbol?: Fact<string>;
  /** Fields of `struct rk_iommu_ops` (from BTF; the same for every compatible). */
  fields: Fact<string[]>;
  /** `dma_bit_mask` as a bit count (-1 when the mask is not of the form 2^n-1). */
  dmaMaskBits: Fact<number>;
  /** `dma_bit_mask` as hex. */
  dmaMask: Fact<string>;
  /** `gfp_flags` value; null when the field does not exist. */
  gfpFlags: Fact<number | null>;
  /** The table allocation zone the ops say. */
  gfpZone: Fact<MeasuredGfpZone>;
  /** Flag names set in `gfp_flags`. */
  gfpNames: string[];
  /** Function pointer fields → `symbol` (or `symbol+0xoff`, or `0x…` when unresolved). */
  functions: Record<string, Fact<string>>;
  /** Entry format named by the functions. */
  format: Fact<EntryFormat | "mixed" | "unknown">;
}

/** The running driver's parameters. */
export interface DriverIntrospection {
  /** `uname -r`. */
  release: string;
  /** `struct rk_iommu_ops` as BTF has it. */
  opsLayout: Fact<MeasuredLayout>;
  /** `struct of_device_id` as BTF has it. */
  ofDeviceIdLayout: Fact<MeasuredLayout>;
  /** How DTE_ADDR is written: `vendor` when the ops still have `dte_addr_phys`. */
  dteAddrLayout: Fact<"vendor" | "dte">;
  /**
   * Per-device ops (414cb6f3ac62): `struct rk_iommu` has a pointer to `struct rk_iommu_ops`;
   * otherwise one global `rk_ops`. Undefined when BTF has no `struct rk_iommu`.
   */
  perDeviceOps?: Fact<boolean>;
  /** `struct rk_iommu_domain` has `dma_dev` (dcde1c4aa7ce, v6.15): per-domain table device. */
  dmaDev?: Fact<"global-first-probed" | "per-domain">;
  /** The driver's `of_device_id` table. */
  table: Fact<{ address: string; entries: number; foundBy: "kallsyms" | "kcore-scan" }>;
  /** Per table entry, in table order. */
  compatibles: IntrospectedOps[];
  /** gfp flag values used to decode `gfp_flags`, with where they came from. */
  gfpBits?: Fact<GfpTable>;
  /** True when kallsyms lists data symbols (CONFIG_KALLSYMS_ALL). */
  kallsymsAll: boolean;
  /** kcore round trips made. */
  kcoreReads: number;
  /** Things that went wrong without stopping the introspection. */
  problems: string[];
}

/** Options of {@link introspectDriver}. */
export interface IntrospectOptions {
  /**
   * How to find the `of_device_id` table: `auto` (kallsyms symbol if exported, else scan),
   * `scan` (always scan kcore, even when the symbol is there: a cross-check), `kallsyms`.
   */
  tableBy?: "auto" | "scan" | "kallsyms";
  /** Per-command timeout (default 120 s). */
  timeoutMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  /**
   * Where the target's files are (defaults: the kernel's). For tests and for saved copies;
   * provenance still names the kernel's files.
   */
  paths?: { btf?: string; kallsyms?: string; kcore?: string; traceFormat?: string };
}

const M = "measured" as const;
const TRACE_FORMATS = [
  "/sys/kernel/tracing/events/kmem/mm_page_alloc/format",
  "/sys/kernel/debug/tracing/events/kmem/mm_page_alloc/format",
];

/** Read a file from the target (gzip+base64 when gzip works, plain base64 otherwise). */
export async function fetchTargetFile(
  run: RunCommand,
  path: string,
  timeoutMs = 120_000,
): Promise<Uint8Array> {
  const q = `'${path.replace(/'/g, `'\\''`)}'`;
  const z = await run(`gzip -c ${q} 2>/dev/null | base64`, { timeoutMs });
  if (z.stdout.trim()) {
    try {
      return new Uint8Array(gunzipSync(Buffer.from(decodeBase64Lines(z.stdout))));
    } catch {
      // fall through to plain base64
    }
  }
  const p = await run(`base64 ${q} 2>/dev/null`, { timeoutMs });
  const bytes = p.exitStatus === 0 ? decodeBase64Lines(p.stdout) : new Uint8Array(0);
  if (!bytes.length) {
    throw new IntrospectError(
      `${path} is missing, empty or unreadable on the target`,
      "introspection needs root, CONFIG_DEBUG_INFO_BTF, CONFIG_KALLSYMS and CONFIG_PROC_KCORE",
    );
  }
  return bytes;
}

function measuredLayout(l: StructLayout): MeasuredLayout {
  return {
    name: l.name,
    size: l.size,
    members: l.members.map((m) => ({ name: m.name, offset: m.offset, size: m.size, type: m.type })),
  };
}

/** Bits of a mask `2^n - 1`, or -1. */
export function maskBits(mask: bigint): number {
  if (mask === 0n) return 0;
  const n = mask.toString(2).length;
  return mask === (1n << BigInt(n)) - 1n ? n : -1;
}

/** One decoded `struct of_device_id`. */
interface OfEntry {
  vaddr: bigint;
  name?: string;
  type?: string;
  compatible?: string;
  data: bigint;
  zero: boolean;
}

function decodeOfEntry(b: Uint8Array, at: number, vaddr: bigint, l: StructLayout): OfEntry {
  const f = (n: string) => {
    const m = l.members.find((x) => x.name === n);
    if (!m) throw new IntrospectError(`struct of_device_id has no ${n}`, "unexpected BTF");
    return m;
  };
  const name = f("name"), type = f("type"), compat = f("compatible"), data = f("data");
  const slice = b.subarray(at, at + l.size);
  return {
    vaddr,
    name: cString(b, at + name.offset, name.size),
    type: cString(b, at + type.offset, type.size),
    compatible: cString(b, at + compat.offset, compat.size),
    data: uintLe(b, at + data.offset, data.size),
    zero: slice.length === l.size && slice.every((x) => x === 0),
  };
}

/** Printable, non-empty, NUL-terminated: what a real compatible looks like. */
function plausible(e: OfEntry): boolean {
  return e.compatible !== undefined && e.name !== undefined && e.type !== undefined &&
    /^[\x20-\x7e]+$/.test(e.compatible) && /^[\x20-\x7e]*$/.test(e.name + e.type);
}

/**
 * Introspect the `rockchip-iommu` driver of the kernel behind `run` (a root shell).
 * Throws {@link IntrospectError} when it cannot (no BTF, no kallsyms addresses, no kcore, the
 * driver not built in); other trouble is listed in `problems`.
 */
export async function introspectDriver(
  run: RunCommand,
  opts: IntrospectOptions = {},
): Promise<DriverIntrospection> {
  const log = opts.log ?? (() => {});
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const problems: string[] = [];
  const paths = opts.paths ?? {};
  const rel = (await run("uname -r", { timeoutMs })).stdout.trim();
  if (!rel) throw new IntrospectError("uname -r printed nothing", "check the target shell");
  const src = (what: string) => `${rel}: ${what}`;

  // BTF: the layouts and (6.10+) the gfp bit enum.
  log("reading BTF");
  let btf: Btf;
  try {
    btf = parseBtf(await fetchTargetFile(run, paths.btf ?? "/sys/kernel/btf/vmlinux", timeoutMs));
  } catch (e) {
    if (e instanceof BtfError) {
      throw new IntrospectError(
        `/sys/kernel/btf/vmlinux: ${e.message}`,
        "the kernel's BTF is unusable",
        {
          cause: e,
        },
      );
    }
    throw e;
  }
  let opsL: StructLayout, odL: StructLayout;
  try {
    opsL = structLayout(btf, "rk_iommu_ops");
    odL = structLayout(btf, "of_device_id");
  } catch (e) {
    throw new IntrospectError(
      `${rel}: ${(e as Error).message}`,
      "the rockchip-iommu driver is not built into this kernel (CONFIG_ROCKCHIP_IOMMU=y needed; " +
        "a module's BTF is not read)",
      { cause: e },
    );
  }
  const fields = opsL.members.map((m) => m.name);
  const btfSrc = src("BTF struct rk_iommu_ops");
  const fieldsFact = fact("struct rk_iommu_ops fields", fields, btfSrc, M);
  const hasDteAddrPhys = fields.includes("dte_addr_phys");
  const dteAddrLayout = fact(
    "DTE_ADDR layout",
    hasDteAddrPhys ? "vendor" as const : "dte" as const,
    btfSrc,
    M,
    hasDteAddrPhys
      ? "dte_addr_phys/dma_addr_dte present: before 6df63b7ebdaf"
      : "no dte_addr_phys/dma_addr_dte: 6df63b7ebdaf (DTE_ADDR written with mk_dtentries)",
  );

  // Per-device ops and per-domain dma_dev, from the driver's private structs.
  let perDeviceOps: Fact<boolean> | undefined;
  let dmaDev: Fact<"global-first-probed" | "per-domain"> | undefined;
  try {
    const rk = structLayout(btf, "rk_iommu");
    const m = rk.members.find((x) =>
      x.type === "const struct rk_iommu_ops *" || x.type === "struct rk_iommu_ops *"
    );
    perDeviceOps = fact(
      "per-device ops",
      m !== undefined,
      src("BTF struct rk_iommu"),
      M,
      m
        ? `struct rk_iommu.${m.name} (${m.type})`
        : "no ops pointer in struct rk_iommu: one global rk_ops",
    );
  } catch (e) {
    if (!(e instanceof BtfError)) throw e;
    problems.push(`per-device ops: ${e.message}`);
  }
  try {
    const d = structLayout(btf, "rk_iommu_domain");
    const has = d.members.some((x) => x.name === "dma_dev");
    dmaDev = fact(
      "table dma_dev",
      has ? "per-domain" : "global-first-probed",
      src("BTF struct rk_iommu_domain"),
      M,
      has
        ? "struct rk_iommu_domain.dma_dev"
        : "no dma_dev in struct rk_iommu_domain: the global dma_dev",
    );
  } catch (e) {
    if (!(e instanceof BtfError)) throw e;
    problems.push(`table dma_dev: ${e.message}`);
  }

  // gfp bit values.
  let gfpBits: Fact<GfpTable> | undefined;
  const fromBtf = gfpBitsFromBtf(btf);
  let fromTrace: GfpTable = {};
  const tr = await run(
    (paths.traceFormat ? [paths.traceFormat] : TRACE_FORMATS).map((f) => `cat '${f}' 2>/dev/null`)
      .join(" || "),
    { timeoutMs },
  );
  fromTrace = gfpTableFromTraceFormat(tr.stdout);
  if (fromBtf && fromBtf.__GFP_DMA32 !== undefined) {
    gfpBits = fact("gfp bits", fromBtf, src("BTF enum ___GFP_*_BIT"), M);
    const t = fromTrace.GFP_DMA32 ?? fromTrace.__GFP_DMA32;
    if (t !== undefined && t !== fromBtf.__GFP_DMA32) {
      problems.push(
        `GFP_DMA32 is 0x${fromBtf.__GFP_DMA32.toString(16)} in BTF but 0x${
          t.toString(16)
        } in tracefs`,
      );
    }
  } else if (fromTrace.GFP_DMA32 !== undefined || fromTrace.__GFP_DMA32 !== undefined) {
    gfpBits = fact(
      "gfp bits",
      fromTrace,
      src("tracefs events/kmem/mm_page_alloc/format (show_gfp_flags)"),
      M,
      "this kernel's BTF has no ___GFP_*_BIT enum (before v6.10)",
    );
  } else {
    problems.push("gfp bit values: neither BTF nor tracefs has them; gfp_flags not decoded");
  }

  // kallsyms.
  log("reading kallsyms");
  let ks: Kallsyms;
  try {
    ks = parseKallsyms(
      new TextDecoder().decode(
        await fetchTargetFile(run, paths.kallsyms ?? "/proc/kallsyms", timeoutMs),
      ),
    );
  } catch (e) {
    if (e instanceof KallsymsError) {
      throw new IntrospectError(
        `/proc/kallsyms: ${e.message}`,
        "log in as root; sysctl kernel.kptr_restrict=0",
        {
          cause: e,
        },
      );
    }
    throw e;
  }

  // kcore.
  log("opening /proc/kcore");
  let kcore: Kcore;
  try {
    kcore = await Kcore.open(sshKcoreReader(run, { timeoutMs, path: paths.kcore }));
  } catch (e) {
    if (e instanceof KcoreError) {
      throw new IntrospectError(
        `/proc/kcore: ${e.message}`,
        "introspection needs root, CONFIG_PROC_KCORE and no kernel lockdown (confidentiality)",
        { cause: e },
      );
    }
    throw e;
  }
  const anchor = ks.lookup("rk_dte_pt_address") ?? ks.lookup("_stext") ?? ks.lookup("_text");
  const image = anchor ? segmentFor(kcore.segments, anchor.addr) : undefined;
  if (!image) {
    throw new IntrospectError(
      `${rel}: no kcore segment holds the kernel image (${
        anchor ? "0x" + hex(anchor.addr) : "no anchor symbol"
      })`,
      "is this kernel's /proc/kcore complete?",
    );
  }
  const inImage = (a: bigint) => a >= image.vaddr && a < image.vaddr + image.size;

  // The of_device_id table.
  const entrySize = odL.size;
  const compatOff = odL.members.find((m) => m.name === "compatible")?.offset ?? 64;
  const tableBy = opts.tableBy ?? "auto";
  let tableAddr: bigint | undefined;
  let foundBy: "kallsyms" | "kcore-scan" = "kallsyms";
  let tableSrc = "";
  const sym = ks.lookup("rk_iommu_dt_ids");
  if (tableBy !== "scan" && sym) {
    tableAddr = sym.addr;
    tableSrc = src(`kallsyms rk_iommu_dt_ids @0x${hex(sym.addr)}`);
  } else if (tableBy === "kallsyms") {
    throw new IntrospectError(
      `${rel}: kallsyms has no rk_iommu_dt_ids (no CONFIG_KALLSYMS_ALL)`,
      "use the kcore scan (tableBy: auto or scan)",
    );
  }
  let entries: OfEntry[] = [];
  if (tableAddr === undefined) {
    // Scan read-only data (_etext.._sinittext, else the whole image) for the compatibles.
    foundBy = "kcore-scan";
    const lo = ks.lookup("__start_rodata") ?? ks.lookup("_etext");
    const hi = ks.lookup("__end_rodata") ?? ks.lookup("_sinittext") ?? ks.lookup("__init_begin");
    let start = image.vaddr, end = image.vaddr + image.size, what = "the kernel image";
    if (lo && hi && inImage(lo.addr) && inImage(hi.addr - 1n) && hi.addr > lo.addr) {
      start = lo.addr;
      end = hi.addr;
      what = `${lo.name}..${hi.name}`;
    }
    log(`scanning ${what} (${(Number(end - start) / 1048576).toFixed(1)} MiB) in kcore`);
    const hits = await scanKcoreStrings(run, kcore, start, end, KNOWN_COMPATIBLES, {
      timeoutMs: Math.max(timeoutMs, 180_000),
      path: paths.kcore,
    });
    // Each hit that sits at `compatible` of an entry: read entries around it in one batch.
    const AROUND = 6;
    const windows = hits.map((h) => {
      const e0 = h.vaddr - BigInt(compatOff);
      return { hit: h, start: e0 - BigInt(AROUND * entrySize), e0 };
    }).filter((w) => inImage(w.start) && inImage(w.e0 + BigInt((AROUND + 1) * entrySize)));
    const bufs = await kcore.readVirt(
      windows.map((w) => ({ vaddr: w.start, length: (2 * AROUND + 1) * entrySize })),
    );
    const tables = new Map<bigint, OfEntry[]>();
    windows.forEach((w, wi) => {
      const b = bufs[wi];
      const at = (k: number) =>
        decodeOfEntry(b, k * entrySize, w.start + BigInt(k * entrySize), odL);
      const hitEntry = at(AROUND);
      if (!plausible(hitEntry) || hitEntry.compatible !== w.hit.text) return;
      if (hitEntry.data !== 0n && !inImage(hitEntry.data)) return;
      let first = AROUND;
      while (first > 0) {
        const p = at(first - 1);
        if (p.zero || !plausible(p) || (p.data !== 0n && !inImage(p.data))) break;
        first--;
      }
      const list: OfEntry[] = [];
      for (let k = first; k < 2 * AROUND + 1; k++) {
        const e = at(k);
        if (e.zero) {
          tables.set(at(first).vaddr, list);
          return;
        }
        if (!plausible(e)) return;
        list.push(e);
      }
      problems.push(`of_device_id table at 0x${hex(at(first).vaddr)}: no sentinel within reach`);
    });
    const found = [...tables.entries()].filter(([, l]) =>
      l.some((e) => KNOWN_COMPATIBLES.includes(e.compatible as typeof KNOWN_COMPATIBLES[number])) &&
      l.every((e) => e.data !== 0n)
    );
    if (!found.length) {
      throw new IntrospectError(
        `${rel}: no of_device_id table with ${KNOWN_COMPATIBLES.join(" or ")} found in ${what} ` +
          `(${hits.length} string hits)`,
        "the rockchip-iommu driver is not built into this kernel, or its table has moved",
      );
    }
    if (found.length > 1) {
      problems.push(
        `${found.length} candidate tables (${found.map(([a]) => "0x" + hex(a)).join(", ")}); ` +
          "using the one with the most known compatibles",
      );
      found.sort((a, b) => b[1].length - a[1].length);
    }
    [tableAddr, entries] = found[0];
    tableSrc = src(
      `kcore @0x${hex(tableAddr)}: of_device_id table found by scanning ${what} for the ` +
        `compatible strings`,
    );
    if (sym && sym.addr !== tableAddr) {
      problems.push(
        `kcore scan found the table at 0x${hex(tableAddr)}, kallsyms says rk_iommu_dt_ids is ` +
          `at 0x${hex(sym.addr)}`,
      );
    }
  } else {
    const MAXE = 16;
    const b = await kcore.readOne(tableAddr, MAXE * entrySize);
    for (let k = 0; k < MAXE; k++) {
      const e = decodeOfEntry(b, k * entrySize, tableAddr + BigInt(k * entrySize), odL);
      if (e.zero) break;
      if (!plausible(e)) {
        problems.push(`rk_iommu_dt_ids entry ${k} does not look like an of_device_id`);
        break;
      }
      entries.push(e);
    }
  }
  const table = fact(
    "of_device_id table",
    { address: `0x${hex(tableAddr)}`, entries: entries.length, foundBy },
    tableSrc,
    M,
  );

  // The ops structs, one batch.
  const opsAddrs = [...new Set(entries.map((e) => e.data).filter((d) => d !== 0n))];
  log(`reading ${opsAddrs.length} ops structs`);
  const opsBufs = await kcore.readVirt(opsAddrs.map((a) => ({ vaddr: a, length: opsL.size })));
  const opsBuf = new Map(opsAddrs.map((a, i) => [a, opsBufs[i]]));
  const compatibles: IntrospectedOps[] = [];
  for (const e of entries) {
    const compatible = e.compatible!;
    const b = opsBuf.get(e.data);
    const at = (what: string) => src(`kcore @0x${hex(e.data)} ${what}`);
    if (!b) {
      problems.push(`${compatible}: no ops (data is NULL)`);
      continue;
    }
    const member = (n: string) => opsL.members.find((m) => m.name === n);
    const functions: Record<string, Fact<string>> = {};
    const formats: (EntryFormat | undefined)[] = [];
    for (const m of opsL.members.filter((m) => m.kind === "PTR")) {
      const ptr = uintLe(b, m.offset, m.size);
      const r = ptr === 0n ? undefined : ks.symbolize(ptr);
      const name = ptr === 0n ? "NULL" : r && inImage(ptr) ? formatSym(r) : `0x${hex(ptr)}`;
      functions[m.name] = fact(m.name, name, at(`.${m.name} = 0x${hex(ptr)}, via kallsyms`), M);
      const map = FORMAT_FUNCTIONS[m.name];
      if (map) formats.push(map[name]);
    }
    const known = formats.filter((f): f is EntryFormat => f !== undefined);
    const fmt: EntryFormat | "mixed" | "unknown" = known.length !== formats.length || !known.length
      ? "unknown"
      : known.every((f) => f === known[0])
      ? known[0]
      : "mixed";
    const fnNames = Object.keys(FORMAT_FUNCTIONS).filter((k) => functions[k])
      .map((k) => `${k}=${functions[k].value}`).join(", ");
    const maskM = member("dma_bit_mask");
    let dmaMaskBits: Fact<number>, dmaMask: Fact<string>;
    if (maskM) {
      const mask = uintLe(b, maskM.offset, maskM.size);
      const s = at(`+${maskM.offset} dma_bit_mask (u${maskM.size * 8})`);
      dmaMask = fact("dma_bit_mask", `0x${hex(mask)}`, s, M);
      const bits = maskBits(mask);
      dmaMaskBits = fact(
        "dma_bit_mask",
        bits,
        s,
        M,
        bits < 0 ? "not of the form 2^n-1" : undefined,
      );
    } else {
      dmaMask = fact("dma_bit_mask", "absent", btfSrc, M);
      dmaMaskBits = fact("dma_bit_mask", -1, btfSrc, M, "struct rk_iommu_ops has no dma_bit_mask");
    }
    const gfpM = member("gfp_flags");
    let gfpFlags: Fact<number | null>, gfpZone: Fact<MeasuredGfpZone>;
    let gfpNames: string[] = [];
    if (gfpM) {
      const raw = Number(uintLe(b, gfpM.offset, Math.min(gfpM.size, 4)));
      const s = at(`+${gfpM.offset} gfp_flags`);
      gfpFlags = fact("gfp_flags", raw, s, M);
      if (gfpBits) {
        const d: GfpDecoded = decodeGfp(raw, gfpBits.value);
        gfpNames = d.names;
        gfpZone = fact("table gfp zone", d.zone, `${s}; bits from ${gfpBits.provenance.source}`, M);
      } else {
        gfpZone = fact("table gfp zone", raw === 0 ? "none" : "other", s, M, "gfp bits unknown");
      }
    } else {
      gfpFlags = fact("gfp_flags", null, btfSrc, M, "no gfp_flags field");
      gfpZone = fact(
        "table gfp zone",
        "hard-coded",
        btfSrc,
        M,
        "no gfp_flags field: the allocation calls carry the zone themselves (GFP_DMA32 before " +
          "2a7e6400f72b); the calls are not disassembled",
      );
    }
    const dsym = ks.hasDataSymbols ? ks.symbolize(e.data) : undefined;
    const io: IntrospectedOps = {
      compatible,
      opsAddress: fact(
        "ops address",
        `0x${hex(e.data)}`,
        at(`of_device_id @0x${hex(e.vaddr)} .data`),
        M,
      ),
      fields: fieldsFact,
      dmaMaskBits,
      dmaMask,
      gfpFlags,
      gfpZone,
      gfpNames,
      functions,
      format: fact("entry format", fmt, at(`functions ${fnNames}`), M),
    };
    if (dsym && dsym.offset === 0n && !/^[tTwW]$/.test(dsym.sym.type)) {
      io.opsSymbol = fact("ops symbol", dsym.sym.name, src(`kallsyms @0x${hex(e.data)}`), M);
    }
    compatibles.push(io);
  }

  if (ks.hasDataSymbols && perDeviceOps) {
    const g = ks.lookup("rk_ops");
    if (perDeviceOps.value && g && !g.module) {
      problems.push("BTF says per-device ops, but kallsyms still lists a global rk_ops");
    }
    if (!perDeviceOps.value && !g) problems.push("BTF says global rk_ops, kallsyms has no rk_ops");
  }

  return {
    release: rel,
    perDeviceOps,
    dmaDev,
    opsLayout: fact("struct rk_iommu_ops", measuredLayout(opsL), btfSrc, M),
    ofDeviceIdLayout: fact(
      "struct of_device_id",
      measuredLayout(odL),
      src("BTF struct of_device_id"),
      M,
    ),
    dteAddrLayout,
    table,
    compatibles,
    gfpBits,
    kallsymsAll: ks.hasDataSymbols,
    kcoreReads: kcore.reads,
    problems,
  };
}

// ---------------------------------------------------------------------------------------------
// Against the knowledge base

/** A disagreement between the kernel and the knowledge base. */
export interface DriverFinding {
  /** What differs (`dma_bit_mask`, `table gfp zone`, `compatible`…). */
  fact: string;
  /** The compatible string concerned, when the fact is per compatible. */
  compatible?: string;
  /** The value read from the running kernel. */
  measured: unknown;
  /** The knowledge base's value. */
  kb: unknown;
  /** Where the measured value was read (BTF, kallsyms, /proc/kcore). */
  measuredSource: string;
  /** Where the knowledge base's value comes from. */
  kbSource: string;
  /** A caveat, when there is one. */
  note?: string;
}

/** Result of {@link compareDriverWithKb}. */
export interface DriverComparison {
  /** The KB release compared against. */
  release: string;
  /** Facts that agree, as `compatible: fact = value`. */
  agreed: string[];
  /** Facts where the running driver and the knowledge base differ. */
  findings: DriverFinding[];
}

/**
 * Hold introspected driver parameters against the knowledge base (`mainlineFacts(release)`).
 * A kernel without `gfp_flags` agrees with a KB that says the zone is hard-coded; a kernel with
 * the field agrees when the decoded zone equals the KB's and the KB does not say hard-coded.
 */
export function compareDriverWithKb(intro: DriverIntrospection, kb: DriverFacts): DriverComparison {
  const agreed: string[] = [];
  const findings: DriverFinding[] = [];
  const check = <T>(
    name: string,
    compatible: string | undefined,
    measured: Fact<T>,
    kbFact: Fact<unknown>,
    same: boolean,
    note?: string,
  ) => {
    const label = `${compatible ? compatible + ": " : ""}${name} = ${
      JSON.stringify(measured.value)
    }`;
    if (same) agreed.push(label);
    else {
      findings.push({
        fact: name,
        compatible,
        measured: measured.value,
        kb: kbFact.value,
        measuredSource: measured.provenance.source,
        kbSource: kbFact.provenance.source,
        ...(note ? { note } : {}),
      });
    }
  };
  const seen = new Set<string>();
  for (const o of intro.compatibles) {
    seen.add(o.compatible);
    const spec = kb.compatibles[o.compatible];
    if (!spec) {
      findings.push({
        fact: "compatible",
        compatible: o.compatible,
        measured: "in the driver's of_device_id table",
        kb: "not in the knowledge base",
        measuredSource: intro.table.provenance.source,
        kbSource: `oracle/releases.ts mainlineFacts(${kb.release})`,
      });
      continue;
    }
    check(
      "entry format",
      o.compatible,
      o.format,
      fact(
        "entry format",
        spec.format,
        `oracle/releases.ts mainlineFacts(${kb.release}): ${spec.name}`,
        "verified",
      ),
      o.format.value === spec.format,
    );
    check(
      "dma_bit_mask",
      o.compatible,
      o.dmaMaskBits,
      spec.dmaMaskBits,
      o.dmaMaskBits.value === spec.dmaMaskBits.value,
    );
    const kbHardCoded = /hard-coded/i.test(spec.gfpZone.provenance.source);
    const z = o.gfpZone.value;
    if (z === "hard-coded") {
      check(
        "table gfp zone",
        o.compatible,
        o.gfpZone,
        spec.gfpZone,
        kbHardCoded,
        kbHardCoded
          ? undefined
          : "the kernel has no gfp_flags field, the knowledge base expects one",
      );
    } else {
      check(
        "table gfp zone",
        o.compatible,
        o.gfpZone,
        spec.gfpZone,
        !kbHardCoded && z === spec.gfpZone.value,
        kbHardCoded
          ? "the kernel has a gfp_flags field, the knowledge base says the zone is hard-coded"
          : undefined,
      );
    }
    if (o.opsSymbol) {
      check(
        "ops instance",
        o.compatible,
        o.opsSymbol,
        fact(
          "ops instance",
          spec.name,
          `oracle/releases.ts mainlineFacts(${kb.release})`,
          "verified",
        ),
        o.opsSymbol.value === spec.name,
      );
    }
  }
  for (const c of Object.keys(kb.compatibles)) {
    if (seen.has(c)) continue;
    findings.push({
      fact: "compatible",
      compatible: c,
      measured: "not in the driver's of_device_id table",
      kb: kb.compatibles[c].name,
      measuredSource: intro.table.provenance.source,
      kbSource: kb.compatibles[c].dmaMaskBits.provenance.source,
    });
  }
  check(
    "DTE_ADDR layout",
    undefined,
    intro.dteAddrLayout,
    kb.dteAddrLayout,
    intro.dteAddrLayout.value === kb.dteAddrLayout.value,
  );
  if (intro.perDeviceOps) {
    check(
      "per-device ops",
      undefined,
      intro.perDeviceOps,
      kb.perDeviceOps,
      intro.perDeviceOps.value === kb.perDeviceOps.value,
    );
  }
  if (intro.dmaDev) {
    check(
      "table dma_dev",
      undefined,
      intro.dmaDev,
      kb.dmaDev,
      intro.dmaDev.value === kb.dmaDev.value,
    );
  }
  return { release: kb.release, agreed, findings };
}
