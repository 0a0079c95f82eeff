/**
 * Parser of the probe module's report (format version 1, documented in target/probe/README.md).
 *
 * Input is any text holding the lines: `/proc/rkprobe`, `dmesg` output (with `[ time]` or
 * `<level>` prefixes), or a console log. Every line whose text contains `rkprobe: ` is a report
 * line; the part after it is `<kind> key=value ...`. A report runs from a `begin` line to an
 * `end` line; `leak` lines printed at unload attach to the report before them.
 *
 * The parser is strict inside a report (a malformed line of a known kind, an unknown kind, a
 * value that is not what its key needs, or a number beyond 2^53 throws a
 * {@linkcode ProbeReportError} naming the line), so that a garbled capture can never be read as a
 * result. Lines outside begin..end other than `leak`/`unloaded` are ignored.
 *
 * @module
 */

/** The report format this parser reads. */
export const PROBE_REPORT_VERSION = 1;

/** What the walker found for one IOVA. */
export type WalkResult = "ok" | "BUS_ERROR" | "PAGE_FAULT" | "WRONG_PAGE";

/** Where a table or page landed relative to 4 GiB. */
export type Placement = "low" | "high";

/** Module parameters as echoed by the `begin` line. */
export interface ProbeParams {
  format: "v1" | "v2";
  gfp: "none" | "dma32" | "dma";
  maskBits: number;
  dtReach: number;
  ptReach: number;
  perm: number;
  pageSize: number;
}

/** The dummy device the tables were mapped for. */
export interface ProbeDevice {
  name: string;
  dmaMask: number;
  /** Return value of dma_set_mask_and_coherent (0 = accepted). */
  setMask: number;
  coherent: boolean;
  swiotlb: boolean;
}

/** A directory table or page table. */
export interface ProbeTable {
  kind: "dt" | "pt";
  /** DTE index (page tables only). */
  dte?: number;
  /** Physical address of the page the driver allocated. */
  phys: number;
  /** DMA address dma_map_single returned, or null if the mapping failed. */
  dma: number | null;
  /** True when the DMA address is not the page (SWIOTLB bounce slot). */
  bounced: boolean;
  zone: Placement;
  /** DTE written for this page table. */
  dteValue?: number;
  /** The CPU address the driver derives from the DTE (`pt_address(dte)`), page tables only. */
  cpu?: number;
  /** The derived CPU address is neither the page nor its bounce slot (probe did not write). */
  unsafe?: boolean;
}

/** A backing page of an IOVA. */
export interface ProbePage {
  iova: number;
  phys: number;
  want: Placement;
  zone: Placement;
}

/** One `rk_iommu_map` replay. */
export interface ProbeMap {
  iova: number;
  pages: number;
  written: number;
  pteDma?: number;
  firstPte?: number;
  /** Why nothing (or not everything) was written. */
  reason?: string;
}

/** The walk of one IOVA. */
export interface ProbeWalk {
  iova: number;
  result: WalkResult;
  /** The page the walker translated to (ok, WRONG_PAGE). */
  page?: number;
  /** The page the IOVA was mapped to. */
  expected: number;
  /** Level of a fault: dt/pt (BUS_ERROR), dte/pte (PAGE_FAULT). */
  level?: "dt" | "pt" | "dte" | "pte";
  /** Address the walker could not read (BUS_ERROR). */
  addr?: number;
  /** `reach` (beyond the walker's address bits) or `no_ram` (BUS_ERROR). */
  reason?: "reach" | "no_ram";
  dteValue?: number;
  pteValue?: number;
}

/** An `encode` line: the C encoders applied to one address (`encode` parameter). */
export interface ProbeEncoding {
  addr: number;
  v1Dte: number;
  v2Dte: number;
  v1Pte: number;
  v2Pte: number;
  /** `rk_dte_pt_address(v1Pte)`. */
  v1Addr: number;
  /** `rk_dte_pt_address_v2(v2Pte)`. */
  v2Addr: number;
  /** `rk_dte_pt_address_v2((u32)addr)`: the v2 decoder on an arbitrary entry. */
  v2Decode: number;
}

/** A `leak` line printed at unload. */
export interface ProbeLeak {
  kind: "pt";
  dte: number;
  phys: number;
  dma: number;
  driverFrees: number;
}

/** An `error` line. */
export interface ProbeErrorLine {
  fields: Record<string, string>;
}

/** One parsed report. */
export interface ProbeReport {
  version: number;
  release: string;
  params: ProbeParams;
  device?: ProbeDevice;
  tables: ProbeTable[];
  pages: ProbePage[];
  maps: ProbeMap[];
  walks: ProbeWalk[];
  encodings: ProbeEncoding[];
  errors: ProbeErrorLine[];
  leaks: ProbeLeak[];
  /** From the `end` line: `ok` or `error` (with the module's return value). */
  status: "ok" | "error";
  ret?: number;
  /** Counts from the `end` line (checked against the lines). */
  end: { tables?: number; iovas?: number; ok?: number; faults?: number; lines: number };
}

/** A report line that cannot be trusted. */
export class ProbeReportError extends Error {
  constructor(message: string, readonly lineNo: number, readonly line: string) {
    super(`probe report line ${lineNo}: ${message}: ${JSON.stringify(line.slice(0, 200))}`);
    this.name = "ProbeReportError";
  }
}

const MARK = "rkprobe: ";
const KINDS = new Set([
  "begin",
  "encode",
  "error",
  "device",
  "table",
  "page",
  "map",
  "walk",
  "end",
]);

/** Split `kind k=v k=v` into the kind and its fields (no duplicates, no empty keys). */
export function splitFields(
  body: string,
  lineNo: number,
  line: string,
): { kind: string; fields: Record<string, string> } {
  const parts = body.trim().split(/ +/);
  const kind = parts.shift() ?? "";
  const fields: Record<string, string> = Object.create(null);
  for (const p of parts) {
    const m = p.match(/^([a-z][a-z0-9_]*)=([^\s=]+)$/);
    if (!m) throw new ProbeReportError(`malformed field "${p.slice(0, 40)}"`, lineNo, line);
    if (m[1] in fields) throw new ProbeReportError(`duplicate field ${m[1]}`, lineNo, line);
    fields[m[1]] = m[2];
  }
  return { kind, fields };
}

class Fields {
  constructor(
    readonly f: Record<string, string>,
    readonly lineNo: number,
    readonly line: string,
  ) {}
  #bad(key: string, why: string): never {
    throw new ProbeReportError(`${key}: ${why}`, this.lineNo, this.line);
  }
  str(key: string): string {
    const v = this.f[key];
    if (v === undefined) this.#bad(key, "missing");
    return v;
  }
  has(key: string): boolean {
    return key in this.f;
  }
  oneOf<T extends string>(key: string, allowed: readonly T[]): T {
    const v = this.str(key);
    if (!(allowed as readonly string[]).includes(v)) {
      this.#bad(key, `"${v}" is not one of ${allowed}`);
    }
    return v as T;
  }
  /** A 0x hex number (addresses, entries). */
  hex(key: string): number {
    const v = this.str(key);
    if (!/^0x[0-9a-f]{1,16}$/.test(v)) this.#bad(key, `"${v}" is not a 0x hex number`);
    const n = BigInt(v);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) this.#bad(key, `${v} is beyond 2^53`);
    return Number(n);
  }
  /** A 0x hex number that must fit 32 bits (entries, IOVAs). */
  hex32(key: string): number {
    const n = this.hex(key);
    if (n > 0xffffffff) this.#bad(key, "does not fit 32 bits");
    return n;
  }
  /** A decimal integer (optionally negative). */
  int(key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.str(key);
    if (!/^-?\d{1,16}$/.test(v)) this.#bad(key, `"${v}" is not a decimal integer`);
    const n = Number(v);
    if (n < min || n > max) this.#bad(key, `${n} is outside ${min}..${max}`);
    return n;
  }
  bool(key: string): boolean {
    return this.oneOf(key, ["0", "1"]) === "1";
  }
}

/** Extract the report lines (text after `rkprobe: `) with their line numbers. */
export function reportLines(text: string): { lineNo: number; line: string; body: string }[] {
  const out: { lineNo: number; line: string; body: string }[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const at = line.indexOf(MARK);
    if (at < 0) continue;
    out.push({ lineNo: i + 1, line, body: line.slice(at + MARK.length) });
  }
  return out;
}

interface Draft extends Omit<ProbeReport, "status" | "end"> {
  lines: number;
}

/** Parse every report in `text`, in order. Incomplete reports (no `end`) are an error. */
export function parseProbeReports(text: string): ProbeReport[] {
  const reports: ProbeReport[] = [];
  let cur: Draft | undefined;
  let beginLine = 0;
  for (const { lineNo, line, body } of reportLines(text)) {
    const { kind, fields } = splitFields(body, lineNo, line);
    const f = new Fields(fields, lineNo, line);
    if (!cur) {
      if (kind === "begin") {
        const version = f.int("version", 0, 1_000_000);
        if (version !== PROBE_REPORT_VERSION) {
          throw new ProbeReportError(
            `report format version ${version} is not supported (this rkhil reads ${PROBE_REPORT_VERSION})`,
            lineNo,
            line,
          );
        }
        const release = f.str("release");
        cur = {
          version,
          release,
          params: {
            format: f.oneOf("format", ["v1", "v2"] as const),
            gfp: f.oneOf("gfp", ["none", "dma32", "dma"] as const),
            maskBits: f.int("mask_bits", 0, 64),
            dtReach: f.int("dt_reach", 0, 64),
            ptReach: f.int("pt_reach", 0, 64),
            perm: f.int("perm", 0, 3),
            pageSize: f.int("page_size", 1, 1 << 30),
          },
          tables: [],
          pages: [],
          maps: [],
          walks: [],
          encodings: [],
          errors: [],
          leaks: [],
          lines: 1,
        };
        beginLine = lineNo;
      } else if (kind === "leak") {
        const last = reports[reports.length - 1];
        if (last) {
          last.leaks.push({
            kind: f.oneOf("kind", ["pt"] as const),
            dte: f.int("dte", 0, 1023),
            phys: f.hex("phys"),
            dma: f.hex("dma"),
            driverFrees: f.hex("driver_frees"),
          });
        }
      }
      // Anything else outside a report (`unloaded`, stray lines) is not part of a result.
      continue;
    }
    cur.lines++;
    switch (kind) {
      case "begin":
        throw new ProbeReportError(
          `a new report begins before the one from line ${beginLine} ended`,
          lineNo,
          line,
        );
      case "encode":
        cur.encodings.push({
          addr: f.hex("addr"),
          v1Dte: f.hex32("v1_dte"),
          v2Dte: f.hex32("v2_dte"),
          v1Pte: f.hex32("v1_pte"),
          v2Pte: f.hex32("v2_pte"),
          v1Addr: f.hex("v1_addr"),
          v2Addr: f.hex("v2_addr"),
          v2Decode: f.hex("v2_decode"),
        });
        break;
      case "error":
        cur.errors.push({ fields: { ...fields } });
        break;
      case "device":
        cur.device = {
          name: f.str("name"),
          dmaMask: f.hex("dma_mask"),
          setMask: f.int("set_mask", -4096, 0),
          coherent: f.bool("coherent"),
          swiotlb: f.bool("swiotlb"),
        };
        break;
      case "table": {
        const tkind = f.oneOf("kind", ["dt", "pt"] as const);
        const map = f.oneOf("map", ["ok", "error"] as const);
        const dma = map === "ok" ? f.hex("dma") : (f.oneOf("dma", ["none"] as const), null);
        const t: ProbeTable = {
          kind: tkind,
          phys: f.hex("phys"),
          dma,
          bounced: f.bool("bounced"),
          zone: map === "ok"
            ? f.oneOf("zone", ["low", "high"] as const)
            : (f.hex("phys") >= 2 ** 32 ? "high" : "low"),
        };
        if (tkind === "pt") {
          t.dte = f.int("dte", 0, 1023);
          if (map === "ok") {
            t.dteValue = f.hex32("dte_value");
            t.cpu = f.hex("cpu");
            t.unsafe = f.bool("unsafe");
          }
        }
        cur.tables.push(t);
        break;
      }
      case "page":
        cur.pages.push({
          iova: f.hex32("iova"),
          phys: f.hex("phys"),
          want: f.oneOf("want", ["low", "high"] as const),
          zone: f.oneOf("zone", ["low", "high"] as const),
        });
        break;
      case "map": {
        const m: ProbeMap = {
          iova: f.hex32("iova"),
          pages: f.int("pages", 1, 1024),
          written: f.int("written", 0, 1024),
        };
        if (f.has("pte_dma")) m.pteDma = f.hex("pte_dma");
        if (f.has("first_pte")) m.firstPte = f.hex32("first_pte");
        if (f.has("reason")) m.reason = f.str("reason");
        if (m.written > m.pages) {
          throw new ProbeReportError("written exceeds pages", lineNo, line);
        }
        cur.maps.push(m);
        break;
      }
      case "walk": {
        const result = f.oneOf("result", ["ok", "BUS_ERROR", "PAGE_FAULT", "WRONG_PAGE"] as const);
        const w: ProbeWalk = { iova: f.hex32("iova"), result, expected: f.hex("expected") };
        if (result === "ok" || result === "WRONG_PAGE") w.page = f.hex("page");
        if (result === "BUS_ERROR") {
          w.level = f.oneOf("level", ["dt", "pt"] as const);
          w.addr = f.hex("addr");
          w.reason = f.oneOf("reason", ["reach", "no_ram"] as const);
        }
        if (result === "PAGE_FAULT") w.level = f.oneOf("level", ["dte", "pte"] as const);
        if (f.has("dte")) w.dteValue = f.hex32("dte");
        if (f.has("pte")) w.pteValue = f.hex32("pte");
        if (result === "ok" && w.page !== w.expected) {
          throw new ProbeReportError("result=ok but page differs from expected", lineNo, line);
        }
        cur.walks.push(w);
        break;
      }
      case "end": {
        const lines = f.int("lines", 1, 1_000_000);
        if (lines !== cur.lines) {
          throw new ProbeReportError(
            `the report has ${cur.lines} lines but its end line says ${lines} (lost or extra lines)`,
            lineNo,
            line,
          );
        }
        const status = f.has("status") ? f.oneOf("status", ["ok", "error"] as const) : "ok";
        const { lines: _l, ...rest } = cur;
        const report: ProbeReport = { ...rest, status, end: { lines } };
        if (status === "error") report.ret = f.int("ret", -4096, 0);
        else {
          report.end = {
            lines,
            tables: f.int("tables", 0, 1025),
            iovas: f.int("iovas", 0, 1_000_000),
            ok: f.int("ok", 0, 1_000_000),
            faults: f.int("faults", 0, 1_000_000),
          };
          const ok = cur.walks.filter((w) => w.result === "ok").length;
          if (ok !== report.end.ok || cur.walks.length - ok !== report.end.faults) {
            throw new ProbeReportError("walk counts do not match the walk lines", lineNo, line);
          }
          if (cur.tables.filter((t) => t.dma !== null).length !== report.end.tables) {
            throw new ProbeReportError("table count does not match the table lines", lineNo, line);
          }
        }
        reports.push(report);
        cur = undefined;
        break;
      }
      default:
        throw new ProbeReportError(
          KINDS.has(kind) ? `unexpected ${kind}` : `unknown line kind "${kind.slice(0, 20)}"`,
          lineNo,
          line,
        );
    }
  }
  if (cur) {
    throw new ProbeReportError(
      "the report has no end line (truncated capture, or the module is still running)",
      beginLine,
      "begin",
    );
  }
  return reports;
}

/** Parse exactly one report (the last one if the text holds several). */
export function parseProbeReport(text: string): ProbeReport {
  const all = parseProbeReports(text);
  if (all.length === 0) {
    throw new ProbeReportError("no probe report (no `rkprobe: begin` line)", 0, "");
  }
  return all[all.length - 1];
}

/** The walk of `iova`, if reported. */
export function walkOf(report: ProbeReport, iova: number): ProbeWalk | undefined {
  return report.walks.find((w) => w.iova === iova);
}

/** The page table covering `iova` (by DTE index), if reported. */
export function pageTableOf(report: ProbeReport, iova: number): ProbeTable | undefined {
  const dte = Math.floor(iova / 2 ** 22);
  return report.tables.find((t) => t.kind === "pt" && t.dte === dte);
}

/** The directory table, if reported. */
export function directoryTable(report: ProbeReport): ProbeTable | undefined {
  return report.tables.find((t) => t.kind === "dt");
}
