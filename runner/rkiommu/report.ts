/**
 * The emulated Rockchip IOMMU module's report (`/proc/rkiommu_emu`, format in
 * target/rkiommu-emu/README.md) parsed, and what it shows per IOMMU instance as an oracle
 * {@linkcode InstanceObservation}: the real driver's outcome (from what the emulated device saw),
 * where its tables lie (from the hardware walker) and its `rk_iommu <unit>.iommu:` log lines.
 *
 * @module
 */

import type { InstanceObservation } from "../../oracle/compare.ts";
import type { Outcome } from "../../oracle/types.ts";
import { InfraError } from "../errors.ts";

/** The report format version this parser reads (the module's `EMU_FORMAT_VERSION`). */
export const EMU_REPORT_VERSION = 1;

/** One emulated IOMMU instance. */
export interface EmuInstance {
  /** `fde4b000` (unit address). */
  unit: string;
  /** Hardware revision the walker models (`1.0`, `2.0`). */
  revision: string;
  /** Register banks (0x100 bytes each). */
  banks: number;
  /** Linux irq number and GIC hwirq (SPI + 32). */
  virq: number;
  /** GIC hwirq (SPI + 32). */
  hwirq: number;
  /** Address bits the walker reads the directory / page tables and pages at. */
  dtReach: number;
  /** Address bits the walker reads page tables and pages at. */
  ptReach: number;
  /** DTE_ADDR encoding the block decodes (1 or 2). */
  dteAddr: number;
}

/** One master (a `rkhil,iommu-master` node bound by the module). */
export interface EmuMaster {
  /** The master's device name (`rkhil-npu-master`). */
  dev: string;
  /** Unit of its IOMMU (`fde4b000`). */
  iommu: string;
  /** True when that IOMMU is one the module emulates. */
  emulated: boolean;
  /** The IOMMU domain the core gave it (`dma`, `identity`, `unmanaged`, `none`). */
  domain: string;
}

/** A page a master mapped through the DMA API. */
export interface EmuMapping {
  /** The master's device name (`rkhil-npu-master`). */
  dev: string;
  /** The IOVA (32-bit). */
  iova: number;
  /** Physical address of the page (bytes). */
  phys: number;
}

/**
 * Results of one device access (`result`). `master_error`: the walk translated the IOVA, but the
 * page it gave is not memory, so the master's own transfer failed and the MMU raised nothing
 * (module parameter `page_bus_error=0`, the default).
 */
export type AccessResult =
  | "ok"
  | "bus_error"
  | "page_fault"
  | "not_paging"
  | "stalled"
  | "master_error";

/** One access of the emulated device, with the walk the hardware did. */
export interface EmuAccess {
  /** The master's device name (`rkhil-npu-master`). */
  dev: string;
  /** The IOVA (32-bit). */
  iova: number;
  /** Whether the device read or wrote. */
  op: "read" | "write";
  /** What the walk ended in. */
  result: AccessResult;
  /** What became of the interrupt: handled (the driver cleared it), unhandled, masked, none. */
  irq: string;
  /** How far the walk got: 0 DTE_ADDR, 1 directory entry, 2 page table entry, 3 page. */
  level: number;
  /** The DTE_ADDR register as read, and the directory address it decodes to. */
  dteAddr: number;
  /** Physical address of the directory the walker read (decoded DTE_ADDR). */
  dt: number;
  /** The directory entry read (0 when not reached). */
  dte: number;
  /** Physical address of the page table (0 when not reached). */
  pt: number;
  /** The page-table entry read (0 when not reached). */
  pte: number;
  /** Physical address of the page (0 when not reached). */
  page: number;
  /** `match` / `mismatch` (the data the device and the CPU saw), `-` without data. */
  data: "match" | "mismatch" | "-";
}

/** An error line of the module (`what`: dma_set_mask, pm_runtime, dma_map_page, instance). */
export interface EmuError {
  /** The master's device name (`rkhil-npu-master`). */
  dev?: string;
  /** What failed (`pm_runtime`, `dma_set_mask`, `dma_map_page`, `instance`). */
  what: string;
  /** The kernel's return code, when given. */
  ret?: number;
  /** The whole line (at most 300 characters). */
  line: string;
}

/** Counters of the register file (what the real driver asked of the hardware). */
export interface EmuStats {
  /** Unit address of the IOMMU (`fde4b000`). */
  unit: string;
  /** Counter name → value (commands, interrupts raised, register values). */
  counters: Record<string, number>;
}

/** A parsed report. */
export interface EmuReport {
  /** The running kernel's release (`uname -r`). */
  release: string;
  /** The module parameters it was loaded with. */
  params: Record<string, number>;
  /** The emulated IOMMU instances. */
  instances: EmuInstance[];
  /** The masters the module bound. */
  masters: EmuMaster[];
  /** Pages the masters mapped. */
  mappings: EmuMapping[];
  /** The device's accesses, in order. */
  accesses: EmuAccess[];
  /** IOVAs unmapped before a fault-path access (`unmapped=1`). */
  unmaps: { dev: string; iova: number }[];
  /** Error lines of the module. */
  errors: EmuError[];
  /** Register-file counters per instance. */
  stats: EmuStats[];
  /** The `end` line was there (`status=ok`). */
  complete: boolean;
}

const MAX_REPORT = 256 * 1024;

function fields(line: string, n: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const tok of line.split(" ").slice(1)) {
    const eq = tok.indexOf("=");
    if (eq <= 0) throw bad(n, `"${tok.slice(0, 40)}" is not key=value`);
    out[tok.slice(0, eq)] = tok.slice(eq + 1);
  }
  return out;
}

function bad(n: number, what: string): InfraError {
  return new InfraError(
    `rkiommu_emu report, line ${n}: ${what}`,
    "the module and this rkhil disagree on the report format: rebuild the module",
  );
}

function num(f: Record<string, string>, key: string, n: number, hex = false): number {
  const v = f[key];
  if (v === undefined) throw bad(n, `no ${key}=`);
  const re = hex ? /^0x[0-9a-f]{1,16}$/ : /^-?\d{1,12}$/;
  if (!re.test(v)) {
    throw bad(n, `${key}=${v.slice(0, 30)} is not a ${hex ? "hex" : "decimal"} number`);
  }
  const x = hex ? Number(BigInt(v)) : Number(v);
  if (!Number.isSafeInteger(x)) throw bad(n, `${key}=${v} is out of range`);
  return x;
}

function str(f: Record<string, string>, key: string, n: number, re = /^[\w.@,:-]{1,64}$/): string {
  const v = f[key];
  if (v === undefined) throw bad(n, `no ${key}=`);
  if (!re.test(v)) throw bad(n, `${key}= has an unexpected value`);
  return v;
}

const RESULTS: readonly AccessResult[] = [
  "ok",
  "bus_error",
  "page_fault",
  "not_paging",
  "stalled",
  "master_error",
];

/**
 * Parse `/proc/rkiommu_emu`.
 *
 * @throws {InfraError} on anything that is not the documented format (another version, an
 *   unknown line kind, a malformed field), naming the line.
 */
export function parseEmuReport(text: string): EmuReport {
  if (text.length > MAX_REPORT) throw bad(0, `report of ${text.length} bytes is too long`);
  const lines = text.split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l !== "");
  if (lines.length === 0) throw bad(1, "empty report");
  const head = lines[0].match(/^rkiommu-emu (\d+) /);
  if (!head) throw bad(1, "not an rkiommu_emu report");
  if (Number(head[1]) !== EMU_REPORT_VERSION) {
    throw bad(1, `format version ${head[1]}, this parser reads ${EMU_REPORT_VERSION}`);
  }
  const h = fields(lines[0].replace(/^rkiommu-emu \d+/, "x"), 1);
  const r: EmuReport = {
    release: str(h, "release", 1, /^[\w.+~-]{1,64}$/),
    params: {},
    instances: [],
    masters: [],
    mappings: [],
    accesses: [],
    unmaps: [],
    errors: [],
    stats: [],
    complete: false,
  };
  for (const k of ["npages", "dt_reach_v1", "pt_reach_v1", "dte_addr_v1", "unmapped"]) {
    r.params[k] = num(h, k, 1);
  }
  // Reports before the parameter existed raised BUS_ERROR for a page that is not memory.
  r.params.page_bus_error = h.page_bus_error === undefined ? 1 : num(h, "page_bus_error", 1);
  const unitOf = (name: string, n: number) => {
    const m = name.match(/^([0-9a-f]{1,16})\.iommu$/);
    if (!m) throw bad(n, `instance name ${name.slice(0, 30)} is not <unit>.iommu`);
    return m[1];
  };
  lines.slice(1).forEach((line, i) => {
    const n = i + 2;
    const kind = line.split(" ")[0];
    const f = kind === "error" ? {} : fields(line, n);
    switch (kind) {
      case "instance":
        r.instances.push({
          unit: unitOf(str(f, "name", n), n),
          revision: str(f, "revision", n, /^\d\.\d$/),
          banks: num(f, "banks", n),
          virq: num(f, "virq", n),
          hwirq: num(f, "hwirq", n),
          dtReach: num(f, "dt_reach", n),
          ptReach: num(f, "pt_reach", n),
          dteAddr: Number(str(f, "dte_addr", n, /^v[12]$/).slice(1)),
        });
        break;
      case "master":
        r.masters.push({
          dev: str(f, "dev", n),
          iommu: str(f, "iommu", n, /^[0-9a-f]{1,16}$/),
          emulated: num(f, "emulated", n) === 1,
          domain: str(f, "domain", n, /^(dma|identity|unmanaged|none)$/),
        });
        break;
      case "map":
        r.mappings.push({
          dev: str(f, "dev", n),
          iova: num(f, "iova", n, true),
          phys: num(f, "phys", n, true),
        });
        break;
      case "unmap":
        r.unmaps.push({ dev: str(f, "dev", n), iova: num(f, "iova", n, true) });
        break;
      case "access": {
        const result = str(f, "result", n) as AccessResult;
        if (!RESULTS.includes(result)) throw bad(n, `result=${result} is unknown`);
        const op = str(f, "op", n, /^(read|write)$/) as "read" | "write";
        const data = str(f, "data", n, /^(match|mismatch|-)$/) as EmuAccess["data"];
        r.accesses.push({
          dev: str(f, "dev", n),
          iova: num(f, "iova", n, true),
          op,
          result,
          irq: str(f, "irq", n, /^[a-z_]{1,16}$/),
          level: num(f, "level", n),
          dteAddr: num(f, "dte_addr", n, true),
          dt: num(f, "dt", n, true),
          dte: num(f, "dte", n, true),
          pt: num(f, "pt", n, true),
          pte: num(f, "pte", n, true),
          page: num(f, "page", n, true),
          data,
        });
        break;
      }
      case "error": {
        const what = line.match(/ what=([\w]{1,32})/)?.[1];
        if (!what) throw bad(n, "error line without what=");
        const ret = line.match(/ ret=(-?\d{1,6})/)?.[1];
        r.errors.push({
          dev: line.match(/ dev=([\w.@-]{1,64})/)?.[1],
          what,
          ret: ret === undefined ? undefined : Number(ret),
          line: line.slice(0, 300),
        });
        break;
      }
      case "stats": {
        const counters: Record<string, number> = {};
        for (const [k, v] of Object.entries(f)) {
          if (k === "name") continue;
          counters[k] = num(f, k, n, v.startsWith("0x"));
        }
        r.stats.push({ unit: unitOf(str(f, "name", n), n), counters });
        break;
      }
      case "end":
        if (f.status !== "ok") throw bad(n, `end status=${String(f.status).slice(0, 20)}`);
        r.complete = true;
        break;
      default:
        throw bad(n, `unknown line kind "${kind.slice(0, 20)}"`);
    }
  });
  if (!r.complete) throw bad(lines.length, "no end line (module init did not finish)");
  return r;
}

/**
 * The real driver's outcome on one instance, from what its master's device saw: BUS_ERROR if
 * any access raised one, else PAGE_FAULT, else WRONG_PAGE (data the CPU and the device disagree
 * on, or a translated page that is not memory: `master_error`), else OK; PROBE_FAILED when rk_iommu is not bound to the instance (`bound` false);
 * `undefined` when nothing was accessed or the emulation failed (not_paging, stalled, a
 * pm_runtime error): that is no outcome of the driver's.
 */
export function outcomeOf(r: EmuReport, unit: string, bound = true): Outcome | undefined {
  if (!bound) return "PROBE_FAILED";
  const devs = new Set(r.masters.filter((m) => m.iommu === unit).map((m) => m.dev));
  const acc = r.accesses.filter((a) => devs.has(a.dev) && !isUnmappedProbe(r, a));
  if (acc.length === 0) return undefined;
  if (acc.some((a) => a.result === "not_paging" || a.result === "stalled")) return undefined;
  if (acc.some((a) => a.result === "bus_error")) return "BUS_ERROR";
  if (acc.some((a) => a.result === "page_fault")) return "PAGE_FAULT";
  // The device read or wrote another page than the one mapped: the data check failed, or the
  // translated page was no memory at all (the master's own transfer failed; the MMU is silent).
  if (acc.some((a) => a.data === "mismatch" || a.result === "master_error")) return "WRONG_PAGE";
  return "OK";
}

/** The access after `unmap` (the fault path check), which is no part of the outcome. */
function isUnmappedProbe(r: EmuReport, a: EmuAccess): boolean {
  return r.unmaps.some((u) => u.dev === a.dev && u.iova === a.iova);
}

/** A physical range `[start, end)` (SWIOTLB's window from the kernel log). */
export interface Window {
  /** First byte (inclusive). */
  start: number;
  /** End (exclusive). */
  end: number;
}

/**
 * SWIOTLB's window from `software IO TLB: mapped [mem 0x...-0x...]` in the kernel log
 * (inclusive end), or undefined.
 */
export function swiotlbWindow(dmesg: string): Window | undefined {
  const m = dmesg.match(/software IO TLB: mapped \[mem (0x[0-9a-f]{1,16})-(0x[0-9a-f]{1,16})\]/);
  if (!m) return undefined;
  return { start: Number(BigInt(m[1])), end: Number(BigInt(m[2])) + 1 };
}

/**
 * The observation of one instance for `compare()` (oracle/compare.ts): outcome, the directory
 * (DTE_ADDR as the walker decoded it) and the page table of the first access that reached them,
 * whether each lies in SWIOTLB's window (bounced: then the table's own page is not known to the
 * device and is left out), and the driver's lines: `rk_iommu <unit>.iommu:`, others naming
 * `<unit>.iommu`, and rockchip-iommu.c's WARNING lines.
 */
export function observationOf(
  r: EmuReport,
  unit: string,
  dmesg: string,
  bound = true,
): InstanceObservation {
  const devs = new Set(r.masters.filter((m) => m.iommu === unit).map((m) => m.dev));
  const acc = r.accesses.filter((a) => devs.has(a.dev));
  const win = swiotlbWindow(dmesg);
  const inWin = (pa: number) => win ? pa >= win.start && pa < win.end : undefined;
  const withDt = acc.find((a) => a.dteAddr !== 0);
  const withPt = acc.find((a) => a.level >= 2);
  const own = `rk_iommu ${unit}.iommu: `;
  const dtBounced = withDt ? inWin(withDt.dt) : undefined;
  const ptBounced = withPt ? inWin(withPt.pt) : undefined;
  return {
    unit,
    outcome: outcomeOf(r, unit, bound),
    // The walker sees DMA addresses: a table's own page is known only when it was not bounced.
    dtPhys: withDt && !dtBounced ? withDt.dt : undefined,
    dtBounced,
    ptPhys: withPt && !ptBounced ? withPt.pt : undefined,
    ptBounced,
    // Its own lines, and the driver's probe warnings (`WARNING: ... rockchip-iommu.c ...`,
    // `probe of <unit>.iommu failed`), which carry no `rk_iommu <unit>.iommu:` prefix.
    logLines: dmesg.split("\n").filter((l) =>
      l.includes(own) || l.includes(`${unit}.iommu`) ||
      /WARNING: .* at drivers\/iommu\/rockchip-iommu\.c/.test(l)
    ),
    source: `rkiommu_emu on ${r.release}`,
  };
}
