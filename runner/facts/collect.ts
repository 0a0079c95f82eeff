/**
 * Kernel facts from a live target (DESIGN.md boundary 2: the kernel under test is the truth; a
 * disagreement with the model is a finding). {@link collectKernelFacts} runs a fixed list of
 * shell commands through any command channel (SSH exec, the framed serial shell, a local
 * `sh -c`), parses the output with `parsers.ts`, and returns {@link KernelFacts}: every value a
 * `Fact` with provenance `{source: "<target>: <file or command>", confidence: "measured"}`.
 * A command that fails, times out or prints nonsense becomes a {@link MissingFact} with the
 * reason; nothing here throws because of what a target does.
 *
 * {@link compareWithModel} holds the measured zones, SWIOTLB window and CMA against the oracle's
 * memory prediction (`oracle/memview.ts`), and {@link predictMemory} makes that prediction
 * from the measured banks, command line, release and config.
 *
 * The commands and the busybox applets they need are in {@link COMMANDS} and README.md.
 *
 * @module
 */

import { BootArgsError } from "../../oracle/bootargs.ts";
import { normalizeBanks } from "../../oracle/memory.ts";
import type { ParsedSwiotlbLine, ParsedZone } from "../../oracle/memory_log.ts";
import { memoryView } from "../../oracle/memview.ts";
import type { MemorySummary } from "../../oracle/prediction.ts";
import { mainlineFacts, releaseKey } from "../../oracle/releases.ts";
import { type DtIommuNode, OracleInputError } from "../../oracle/scenario.ts";
import { type Fact, fact, type PhysRange } from "../../oracle/types.ts";
import { iommuNodes, memoryBanks, parseFdt } from "../fdt/mod.ts";
import type { CommandResult } from "../protocol/command.ts";
import {
  type CmaLine,
  configEnabled,
  type ConfigValue,
  type DmesgFacts,
  iomemRamBanks,
  type KernelRelease,
  type MemoryLine,
  parseCmdline,
  type ParsedCmdline,
  type ParsedIomem,
  parseDmesg,
  parseIomem,
  parseKernelConfig,
  parseMeminfo,
  parseUnameA,
  parseUnameR,
  parseZoneinfo,
  type ReservedMemLine,
  type UnameAll,
  type ZoneInfo,
  zoneinfoSpans,
} from "./parsers.ts";

// ---------------------------------------------------------------------------------------------
// The command channel

/**
 * Runs one shell command on the target and returns the part of the Command protocol's result
 * (runner/protocol/command.ts) the collectors read: `stdout` (stderr merged) and `exitStatus`.
 * `target.command.run` is one as it is; `FramedShell.run` fits too. Must honour `timeoutMs`
 * itself if it can; the collector also stops waiting after `timeoutMs` plus a grace period.
 */
export type RunCommand = (
  cmd: string,
  opts: { timeoutMs: number },
) => Promise<Pick<CommandResult, "stdout" | "exitStatus">>;

/** One command the collector runs. */
export interface CommandSpec {
  /** Key of the command (also the fact group it feeds). */
  id: string;
  /** The exact shell text sent to the target (POSIX sh; busybox ash and dash tested). */
  cmd: string;
  /** Busybox applets (or coreutils) it needs. */
  applets: string[];
  /** What it reads, for provenance. */
  reads: string;
}

/** Exit status the config command uses when no config file exists. */
const NO_CONFIG = 44;
/** Exit status the fdt commands use when `/sys/firmware/fdt` is unreadable. */
const NO_FDT = 45;
/** First line the config command prints: where the config came from. */
const CONFIG_SOURCE_TAG = "# rkhil-config-source: ";

const CONFIG_CMD = [
  `r=$(uname -r)`,
  `if [ -r /proc/config.gz ]; then echo '${CONFIG_SOURCE_TAG}/proc/config.gz'; zcat /proc/config.gz`,
  `else for f in /boot/config-$r /lib/modules/$r/config /usr/lib/modules/$r/config; do`,
  `if [ -r "$f" ]; then echo "${CONFIG_SOURCE_TAG}$f"; cat "$f"; exit $?; fi; done; exit ${NO_CONFIG}; fi`,
].join("\n");

/**
 * Every command {@link collectKernelFacts} may run, in order. stderr is discarded on the target
 * so that channels which merge it into stdout (the serial framed shell) stay parseable; a
 * failure is reported by exit status.
 */
export const COMMANDS: readonly CommandSpec[] = [
  { id: "release", cmd: "uname -r", applets: ["uname"], reads: "uname -r" },
  { id: "uname", cmd: "uname -a", applets: ["uname"], reads: "uname -a" },
  {
    id: "cmdline",
    cmd: "cat /proc/cmdline 2>/dev/null",
    applets: ["cat"],
    reads: "/proc/cmdline",
  },
  {
    id: "config",
    cmd: `{ ${CONFIG_CMD}\n} 2>/dev/null`,
    applets: ["sh", "uname", "[", "zcat", "cat"],
    reads: "/proc/config.gz, /boot/config-$(uname -r), /lib/modules/$(uname -r)/config, " +
      "/usr/lib/modules/$(uname -r)/config (first readable)",
  },
  { id: "dmesg", cmd: "dmesg 2>/dev/null", applets: ["dmesg"], reads: "dmesg" },
  { id: "iomem", cmd: "cat /proc/iomem 2>/dev/null", applets: ["cat"], reads: "/proc/iomem" },
  {
    id: "zoneinfo",
    cmd: "cat /proc/zoneinfo 2>/dev/null",
    applets: ["cat"],
    reads: "/proc/zoneinfo",
  },
  {
    id: "meminfo",
    cmd: "cat /proc/meminfo 2>/dev/null",
    applets: ["cat"],
    reads: "/proc/meminfo",
  },
  {
    id: "fdt-gzip-base64",
    cmd: `[ -r /sys/firmware/fdt ] || exit ${NO_FDT}; gzip -c /sys/firmware/fdt 2>/dev/null | ` +
      `base64 2>/dev/null`,
    applets: ["[", "gzip", "base64"],
    reads: "/sys/firmware/fdt",
  },
  {
    id: "fdt-base64",
    cmd: `[ -r /sys/firmware/fdt ] || exit ${NO_FDT}; base64 /sys/firmware/fdt 2>/dev/null`,
    applets: ["[", "base64"],
    reads: "/sys/firmware/fdt",
  },
  {
    id: "fdt-od",
    cmd: `[ -r /sys/firmware/fdt ] || exit ${NO_FDT}; od -An -v -tx1 /sys/firmware/fdt 2>/dev/null`,
    applets: ["[", "od"],
    reads: "/sys/firmware/fdt",
  },
];

function spec(id: string): CommandSpec {
  const s = COMMANDS.find((c) => c.id === id);
  if (!s) throw new Error(`internal: no command ${id}`);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Kernel facts

/** A fact that could not be measured, and why. */
export interface MissingFact {
  /** Name of the fact (`release`, `iomem`, ...). */
  name: string;
  /** Where it was to be read from (`uname -r`, `/proc/iomem`, ...). */
  source: string;
  /** Why it could not be measured. */
  reason: string;
}

/** How one command went. */
export interface CommandRecord {
  /** Id of the command (`release`, `uname`, `cmdline`, ...). */
  id: string;
  /** The shell command run on the target. */
  cmd: string;
  /** `ok`: exit 0; `failed`: another exit status or a signal; `timeout`: no answer in time; `error`: the command channel failed. */
  outcome: "ok" | "failed" | "timeout" | "error";
  /** Exit status, or null when none came back (timeout, error, signal). */
  exitStatus: number | null;
  /** Wall time in milliseconds, rounded. */
  durationMs: number;
  /** Length of the stdout text in characters (0 when none came). */
  stdoutBytes: number;
  /** For failures: why. */
  reason?: string;
}

/** The config options the oracle cares about (value `null`: absent from the config). */
export const RELEVANT_CONFIG: readonly string[] = [
  "CONFIG_ROCKCHIP_IOMMU",
  "CONFIG_ZONE_DMA",
  "CONFIG_ZONE_DMA32",
  "CONFIG_SWIOTLB",
  "CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC",
  "CONFIG_CMA",
  "CONFIG_DMA_CMA",
  "CONFIG_CMA_SIZE_MBYTES",
  "CONFIG_DEBUG_INFO_BTF",
  "CONFIG_KALLSYMS_ALL",
  "CONFIG_IOMMU_DEFAULT_DMA_STRICT",
  "CONFIG_IOMMU_DEFAULT_DMA_LAZY",
  "CONFIG_IOMMU_DEFAULT_PASSTHROUGH",
];

/** The relevant subset of a kernel config. */
export interface ConfigSubset {
  /** Each {@link RELEVANT_CONFIG} option (and any other `CONFIG_IOMMU_DEFAULT_*`); null: absent. */
  options: Record<string, ConfigValue | null>;
  /** `# Linux/<arch> <version> Kernel Configuration` header. */
  header: { arch: string; version: string } | null;
  /** Number of options in the whole file. */
  total: number;
}

/** Where the memory banks came from. */
export type BankSource = "fdt" | "iomem" | "dmesg";

/** What the live device tree says. */
export interface DeviceTreeSummary {
  /** The blob's `totalsize` header, in bytes. */
  totalsize: number;
  /** The root `model`, or null. */
  model: string | null;
  /** The root `compatible` strings. */
  compatible: string[];
  /** How the blob crossed the command channel. */
  transfer: "gzip+base64" | "base64" | "od";
  /** Structure warnings of the blob (`what at offset`). */
  warnings: string[];
}

/** Every kernel fact of one target. Fields are absent when not measured (see `missing`). */
export interface KernelFacts {
  /** The target's name, the first word of every provenance source. */
  target: string;
  /** `uname -r`, parsed. */
  release?: Fact<KernelRelease>;
  /** `uname -a`, split. */
  uname?: Fact<UnameAll>;
  /** The relevant kernel config options. */
  config?: Fact<ConfigSubset>;
  /** `/proc/cmdline`, parsed as the kernel reads it. */
  cmdline?: Fact<ParsedCmdline>;
  /** DRAM banks: FDT `/memory` nodes, else `/proc/iomem` RAM, else dmesg's node ranges. */
  memoryBanks?: Fact<PhysRange[]>;
  /** The `Zone ranges:` block as printed (half-open spans). */
  zones?: Fact<ParsedZone[]>;
  /** `Early memory node ranges` as printed (half-open). */
  memoryNodes?: Fact<{ node: number; range: PhysRange }[]>;
  /** The SWIOTLB line as printed; `{kind: "absent"}` when a complete log has none. */
  swiotlb?: Fact<ParsedSwiotlbLine | { kind: "absent" }>;
  /** CMA reservation lines. */
  cma?: Fact<CmaLine[]>;
  /** `Memory: ...K/...K available` line. */
  memoryLine?: Fact<MemoryLine>;
  /** `Machine model:` from the boot log. */
  machineModel?: Fact<string>;
  /** The `Linux version` banner: release word and the whole banner. */
  linuxVersion?: Fact<{ release: string; banner: string }>;
  /** `Reserved memory:` lines of the boot log. */
  reservedMem?: Fact<ReservedMemLine[]>;
  /** rk_iommu probe/fault lines (oracle/klog.ts), possibly none. */
  rkIommu?: Fact<DmesgFacts["rkIommu"]>;
  /** `/proc/iomem`, as a tree. */
  iomem?: Fact<ParsedIomem>;
  /** `/proc/zoneinfo`, one entry per zone (counts in pages). */
  zoneinfo?: Fact<ZoneInfo[]>;
  /** `MemTotal`, `CmaTotal` and `CmaFree` of `/proc/meminfo`, in kB (null when absent). */
  meminfo?: Fact<
    { memTotalKb: number | null; cmaTotalKb: number | null; cmaFreeKb: number | null }
  >;
  /** Summary of the live device tree blob. */
  deviceTree?: Fact<DeviceTreeSummary>;
  /** Rockchip IOMMU nodes of the live device tree (`runner/fdt` `iommuNodes`). */
  dtIommus?: Fact<DtIommuNode[]>;
  /** Facts that could not be measured, and why. */
  missing: MissingFact[];
  /** Parse problems and notable conditions, each prefixed by its source. */
  problems: string[];
  /** How each command went, in order. */
  commands: CommandRecord[];
}

/** Options of {@link collectKernelFacts}. */
export interface CollectOptions {
  /** Name of the target, used in every provenance source. */
  target: string;
  /** Bound of each command (default 20 000 ms). */
  timeoutMs?: number;
  /** Bound of each device-tree transfer (default 120 000 ms: 1 MiB over a slow console). */
  fdtTimeoutMs?: number;
  /** Extra wait after a command's own timeout before the collector gives up (default 2 000 ms). */
  graceMs?: number;
  /** Do not read `/sys/firmware/fdt`. */
  skipFdt?: boolean;
  /**
   * A console log captured from power-on. Used for boot-log facts `dmesg` cannot give (it
   * failed, or its ring buffer no longer holds the early lines).
   */
  consoleLog?: string;
}

const GRACE_MS = 2000;
const MAX_FDT_BYTES = 64 * 1024 * 1024;

interface Ran {
  record: CommandRecord;
  stdout: string;
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`.slice(0, 500);
  return String(e).slice(0, 500);
}

async function runOne(
  run: RunCommand,
  s: CommandSpec,
  timeoutMs: number,
  graceMs: number,
): Promise<Ran> {
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = Symbol("timeout");
  const rec = (
    outcome: CommandRecord["outcome"],
    exitStatus: number | null,
    stdoutBytes: number,
    reason?: string,
  ): CommandRecord => ({
    id: s.id,
    cmd: s.cmd,
    outcome,
    exitStatus,
    durationMs: Math.round(performance.now() - t0),
    stdoutBytes,
    ...(reason === undefined ? {} : { reason }),
  });
  try {
    const res = await Promise.race([
      Promise.resolve().then(() => run(s.cmd, { timeoutMs })),
      new Promise<typeof timedOut>((resolve) => {
        timer = setTimeout(() => resolve(timedOut), timeoutMs + graceMs);
      }),
    ]);
    if (res === timedOut) {
      return {
        record: rec(
          "timeout",
          null,
          0,
          `no answer within ${timeoutMs} ms (+${graceMs} ms grace; owner: collectKernelFacts)`,
        ),
        stdout: "",
      };
    }
    if (typeof res !== "object" || res === null || typeof res.stdout !== "string") {
      return { record: rec("error", null, 0, "command channel returned no stdout"), stdout: "" };
    }
    const status = typeof res.exitStatus === "number" ? res.exitStatus : null;
    if (status !== 0) {
      const why = status === null ? "killed by a signal" : `exit status ${status}`;
      return { record: rec("failed", status, res.stdout.length, why), stdout: res.stdout };
    }
    return { record: rec("ok", 0, res.stdout.length), stdout: res.stdout };
  } catch (e) {
    return { record: rec("error", null, 0, `command channel failed: ${describe(e)}`), stdout: "" };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

function decodeBase64(text: string): Uint8Array | null {
  const clean = text.replace(/\s+/g, "");
  if (clean.length === 0 || clean.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) {
    return null;
  }
  if ((clean.length / 4) * 3 > MAX_FDT_BYTES * 2) return null;
  try {
    const bin = atob(clean);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

function decodeOd(text: string): Uint8Array | null {
  const words = text.split(/\s+/).filter((w) => w !== "");
  if (words.length === 0 || words.length > MAX_FDT_BYTES) return null;
  const out = new Uint8Array(words.length);
  for (let i = 0; i < words.length; i++) {
    if (!/^[0-9a-fA-F]{2}$/.test(words[i])) return null;
    out[i] = parseInt(words[i], 16);
  }
  return out;
}

async function gunzip(bytes: Uint8Array): Promise<Uint8Array | null> {
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
      new DecompressionStream("gzip"),
    );
    const reader = stream.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > MAX_FDT_BYTES) {
        await reader.cancel();
        return null;
      }
      chunks.push(value);
    }
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  } catch {
    return null;
  }
}

function pickConfig(values: Record<string, ConfigValue>): Record<string, ConfigValue | null> {
  const out: Record<string, ConfigValue | null> = {};
  for (const k of RELEVANT_CONFIG) out[k] = Object.hasOwn(values, k) ? values[k] : null;
  for (const k of Object.keys(values)) {
    if (k.startsWith("CONFIG_IOMMU_DEFAULT_")) out[k] = values[k];
  }
  return out;
}

function bigToSafe(b: bigint): number | null {
  return b >= 0n && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : null;
}

/**
 * Collect the kernel facts of a target through `run`. Runs {@link COMMANDS} one at a time (a
 * serial shell has one channel), each bounded by `opts.timeoutMs`. Never rejects because of
 * the target or the channel: failures become {@link MissingFact}s.
 */
export async function collectKernelFacts(
  run: RunCommand,
  opts: CollectOptions,
): Promise<KernelFacts> {
  const target = String(opts.target);
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const fdtTimeoutMs = opts.fdtTimeoutMs ?? 120_000;
  const graceMs = opts.graceMs ?? GRACE_MS;
  const facts: KernelFacts = { target, missing: [], problems: [], commands: [] };
  const src = (what: string) => `${target}: ${what}`;
  const measured = <T>(name: string, value: T, what: string, note?: string): Fact<T> =>
    fact(name, value, src(what), "measured", note);
  const miss = (name: string, what: string, reason: string) =>
    facts.missing.push({ name, source: src(what), reason });
  const problems = (what: string, list: readonly string[]) => {
    for (const p of list) facts.problems.push(`${src(what)}: ${p}`);
  };
  const exec = async (id: string, bound = timeoutMs): Promise<Ran> => {
    const r = await runOne(run, spec(id), bound, graceMs);
    facts.commands.push(r.record);
    return r;
  };
  const failReason = (r: Ran, hint?: string) =>
    `${r.record.reason ?? "failed"}${hint ? ` (${hint})` : ""}`;

  // Release and uname.
  {
    const r = await exec("release");
    if (r.record.outcome !== "ok") miss("release", "uname -r", failReason(r));
    else {
      const p = parseUnameR(r.stdout);
      problems("uname -r", p.problems);
      if (p.release) facts.release = measured("kernel release", p.release, "uname -r");
      else miss("release", "uname -r", "output is not a release string");
    }
    const a = await exec("uname");
    if (a.record.outcome !== "ok") miss("uname", "uname -a", failReason(a));
    else {
      const p = parseUnameA(a.stdout);
      problems("uname -a", p.problems);
      if (p.uname) facts.uname = measured("uname -a", p.uname, "uname -a");
      else miss("uname", "uname -a", "output is not uname -a");
    }
  }

  // Command line.
  {
    const r = await exec("cmdline");
    if (r.record.outcome !== "ok") {
      miss("cmdline", "/proc/cmdline", failReason(r, "is /proc mounted?"));
    } else {
      const p = parseCmdline(r.stdout);
      problems("/proc/cmdline", p.problems);
      facts.cmdline = measured("kernel command line", p, "/proc/cmdline");
    }
  }

  // Kernel config.
  {
    const r = await exec("config");
    if (r.record.outcome !== "ok") {
      miss(
        "config",
        "kernel config",
        r.record.exitStatus === NO_CONFIG
          ? "no /proc/config.gz (CONFIG_IKCONFIG_PROC) and no /boot/config-$(uname -r) or " +
            "/lib/modules/$(uname -r)/config on the target"
          : failReason(r),
      );
    } else {
      const first = r.stdout.split("\n", 1)[0];
      const where = first.startsWith(CONFIG_SOURCE_TAG)
        ? first.slice(CONFIG_SOURCE_TAG.length).trim()
        : "kernel config";
      const p = parseKernelConfig(r.stdout);
      problems(where, p.problems);
      const total = Object.keys(p.values).length;
      if (total === 0) miss("config", where, "the config file holds no CONFIG_ options");
      else {
        facts.config = measured(
          "kernel config",
          { options: pickConfig(p.values), header: p.header, total },
          where,
        );
      }
    }
  }

  // Boot log.
  let dm: DmesgFacts | null = null;
  let dmSource = "dmesg";
  {
    const r = await exec("dmesg");
    if (r.record.outcome === "ok" && r.stdout.trim() !== "") dm = parseDmesg(r.stdout);
    else {
      miss(
        "dmesg",
        "dmesg",
        r.record.outcome === "ok"
          ? "dmesg printed nothing"
          : failReason(r, "dmesg needs root or CAP_SYSLOG when kernel.dmesg_restrict=1"),
      );
    }
    const console = opts.consoleLog !== undefined ? parseDmesg(opts.consoleLog) : null;
    const early = (d: DmesgFacts | null) => d !== null && d.memory.zones.length > 0;
    if (!early(dm) && early(console)) {
      dm = console;
      dmSource = "console log";
      facts.problems.push(
        `${src("dmesg")}: early boot lines taken from the console log captured from power-on`,
      );
    } else if (dm === null && console !== null) {
      dm = console;
      dmSource = "console log";
    }
  }
  if (dm) {
    problems(dmSource, dm.problems);
    const complete = dm.linuxVersion !== null;
    const absent = (name: string, what: string) =>
      miss(
        name,
        dmSource,
        complete
          ? `no ${what} line in the log`
          : `no ${what} line; the log does not start at boot (ring buffer wrapped?)`,
      );
    if (dm.linuxVersion) {
      facts.linuxVersion = measured("Linux version banner", dm.linuxVersion, dmSource);
    } else absent("linuxVersion", "'Linux version'");
    if (dm.machineModel) {
      facts.machineModel = measured("machine model", dm.machineModel, dmSource);
    } else absent("machineModel", "'Machine model:'");
    if (dm.memory.zones.length > 0) {
      facts.zones = measured("zone ranges", dm.memory.zones, dmSource, "half-open spans");
    } else absent("zones", "'Zone ranges:'");
    if (dm.memory.nodes.length > 0) {
      facts.memoryNodes = measured("early memory node ranges", dm.memory.nodes, dmSource);
    } else absent("memoryNodes", "'Early memory node ranges'");
    if (dm.swiotlb) facts.swiotlb = measured("SWIOTLB line", dm.swiotlb, dmSource);
    else if (complete) {
      facts.swiotlb = measured(
        "SWIOTLB line",
        { kind: "absent" as const },
        dmSource,
        "a complete boot log has no 'software IO TLB:' line: no default bounce buffer",
      );
    } else absent("swiotlb", "'software IO TLB:'");
    if (dm.cma.length > 0 || complete) {
      facts.cma = measured("CMA lines", dm.cma, dmSource);
      for (const c of dm.cma) {
        if (c.kind === "reserved" && c.baseUnknown) {
          facts.problems.push(
            `${src(dmSource)}: CMA printed at base 0: kernel with the c009da4258f9 print bug ` +
              `(fixed by "mm/cma: report base address of single range correctly"); base unknown`,
          );
        }
      }
    } else absent("cma", "'cma:'");
    if (dm.memoryLine) facts.memoryLine = measured("Memory: line", dm.memoryLine, dmSource);
    else absent("memoryLine", "'Memory:'");
    facts.reservedMem = measured("OF: reserved mem lines", dm.reservedMem, dmSource);
    facts.rkIommu = measured("rk_iommu lines", dm.rkIommu, dmSource);
  } else {
    for (const n of ["zones", "memoryNodes", "swiotlb", "cma", "memoryLine", "rkIommu"]) {
      miss(n, "dmesg", "no boot log (dmesg failed and no console log was given)");
    }
  }

  // /proc/iomem, /proc/zoneinfo, /proc/meminfo.
  let iomem: ParsedIomem | null = null;
  {
    const r = await exec("iomem");
    if (r.record.outcome !== "ok") miss("iomem", "/proc/iomem", failReason(r));
    else {
      iomem = parseIomem(r.stdout);
      problems("/proc/iomem", iomem.problems);
      if (iomem.count === 0) miss("iomem", "/proc/iomem", "no resources read");
      else {
        facts.iomem = measured(
          "/proc/iomem",
          iomem,
          "/proc/iomem",
          iomem.addressesHidden ? "addresses hidden (not read as root)" : undefined,
        );
      }
    }
    const z = await exec("zoneinfo");
    if (z.record.outcome !== "ok") miss("zoneinfo", "/proc/zoneinfo", failReason(z));
    else {
      const p = parseZoneinfo(z.stdout);
      problems("/proc/zoneinfo", p.problems);
      if (p.zones.length === 0) miss("zoneinfo", "/proc/zoneinfo", "no zones read");
      else facts.zoneinfo = measured("/proc/zoneinfo", p.zones, "/proc/zoneinfo", "pages");
    }
    const m = await exec("meminfo");
    if (m.record.outcome !== "ok") miss("meminfo", "/proc/meminfo", failReason(m));
    else {
      const p = parseMeminfo(m.stdout);
      problems("/proc/meminfo", p.problems);
      if (p.memTotalKb === null) miss("meminfo", "/proc/meminfo", "no MemTotal line");
      else {
        facts.meminfo = measured(
          "/proc/meminfo",
          { memTotalKb: p.memTotalKb, cmaTotalKb: p.cmaTotalKb, cmaFreeKb: p.cmaFreeKb },
          "/proc/meminfo",
          "kB",
        );
      }
    }
  }

  // Live device tree.
  let fdtBanks: PhysRange[] | null = null;
  if (opts.skipFdt) miss("deviceTree", "/sys/firmware/fdt", "skipped (skipFdt)");
  else {
    const reasons: string[] = [];
    let done = false;
    const methods: [string, DeviceTreeSummary["transfer"]][] = [
      ["fdt-gzip-base64", "gzip+base64"],
      ["fdt-base64", "base64"],
      ["fdt-od", "od"],
    ];
    for (const [id, transfer] of methods) {
      const r = await exec(id, fdtTimeoutMs);
      if (r.record.exitStatus === NO_FDT) {
        reasons.push(
          "/sys/firmware/fdt is not readable (ACPI boot, kernel without OF, or not root)",
        );
        break;
      }
      if (r.record.outcome !== "ok") {
        reasons.push(`${id}: ${failReason(r)}`);
        if (r.record.outcome === "timeout") break;
        continue;
      }
      let bytes = transfer === "od" ? decodeOd(r.stdout) : decodeBase64(r.stdout);
      if (bytes && transfer === "gzip+base64") bytes = await gunzip(bytes);
      if (!bytes) {
        reasons.push(`${id}: output did not decode (missing applet or damaged transfer)`);
        continue;
      }
      try {
        const tree = parseFdt(bytes);
        const root = tree.root;
        const model = root.prop("model");
        const summary: DeviceTreeSummary = {
          totalsize: tree.header.totalsize,
          model: model ? model.asString() : null,
          compatible: root.compatible,
          transfer,
          warnings: tree.warnings.map((w) => `${w.what} at ${w.offset}`),
        };
        facts.deviceTree = measured("live device tree", summary, "/sys/firmware/fdt");
        problems("/sys/firmware/fdt", summary.warnings);
        try {
          facts.dtIommus = measured(
            "device-tree IOMMU nodes",
            iommuNodes(tree, src("/sys/firmware/fdt"), "measured"),
            "/sys/firmware/fdt",
          );
        } catch (e) {
          miss("dtIommus", "/sys/firmware/fdt", `IOMMU nodes unreadable: ${describe(e)}`);
        }
        try {
          const banks: PhysRange[] = [];
          for (const b of memoryBanks(tree)) {
            const start = bigToSafe(b.address);
            const end = bigToSafe(b.address + b.size);
            if (start === null || end === null) {
              facts.problems.push(`${src("/sys/firmware/fdt")}: ${b.path}: bank too large`);
            } else if (end > start) banks.push({ start, end });
          }
          if (banks.length > 0) fdtBanks = normalizeBanks(banks);
        } catch (e) {
          facts.problems.push(`${src("/sys/firmware/fdt")}: memory nodes: ${describe(e)}`);
        }
        done = true;
        break;
      } catch (e) {
        reasons.push(`${id}: not a device tree: ${describe(e)}`);
        // A damaged transfer may decode fine another way; a real parse error will repeat.
      }
    }
    if (!done) miss("deviceTree", "/sys/firmware/fdt", reasons.join("; ") || "not read");
  }

  // Memory banks, best source first.
  if (fdtBanks) {
    facts.memoryBanks = measured(
      "DRAM banks",
      fdtBanks,
      "/sys/firmware/fdt /memory nodes",
      "as the bootloader passed them (before mem=)",
    );
  } else if (iomem && iomemRamBanks(iomem).length > 0) {
    facts.memoryBanks = measured(
      "DRAM banks",
      iomemRamBanks(iomem),
      "/proc/iomem System RAM",
      "after mem= and firmware carve-outs; top-level 'System RAM' and 'reserved' (nomap)",
    );
  } else if (facts.memoryNodes) {
    facts.memoryBanks = measured(
      "DRAM banks",
      normalizeBanks(facts.memoryNodes.value.map((n) => n.range)),
      `${dmSource} Early memory node ranges`,
      "memblock.memory after mem=",
    );
  } else {
    miss(
      "memoryBanks",
      "/sys/firmware/fdt, /proc/iomem, dmesg",
      "no /memory node, no readable System RAM in /proc/iomem, no early memory node ranges",
    );
  }
  return facts;
}

// ---------------------------------------------------------------------------------------------
// Comparison with the model

/** A measured fact that disagrees with the model. */
export interface Finding {
  /** The fact that disagrees (`zone ranges`, `swiotlb`, ...). */
  fact: string;
  /** What the model predicted. */
  predicted: unknown;
  /** What the target showed. */
  measured: unknown;
  /** Where the measured value came from, and what predicted the other. */
  source: string;
  /** A caveat, when there is one. */
  note?: string;
}

/** Result of {@link compareWithModel}. */
export interface ModelComparison {
  /** Disagreements: each one is a finding to report (DESIGN.md boundary 2). */
  findings: Finding[];
  /** Facts compared and found equal. */
  agreed: string[];
  /** Facts that could not be compared, and why. */
  inconclusive: { fact: string; reason: string }[];
}

const MODEL = "oracle/memview.ts memoryView";

function fmtRange(r: PhysRange | null | undefined): string {
  return r ? `[0x${r.start.toString(16)}, 0x${r.end.toString(16)})` : "empty";
}

function sameRange(a: PhysRange | null, b: PhysRange | null): boolean {
  return a === null || b === null ? a === b : a.start === b.start && a.end === b.end;
}

/** Options of {@link compareWithModel}. */
export interface CompareOptions {
  /** The scenario's config facts, checked against the measured config. */
  config?: { dmaBounceUnalignedKmalloc: boolean };
}

/**
 * Hold measured memory facts against a predicted {@link MemorySummary} (`prediction.memory`, or
 * {@link predictMemory}): zone spans as printed (or, without a boot log, from zoneinfo), the
 * SWIOTLB window, early memory nodes against the predicted banks, CMA below the ZONE_DMA limit,
 * and optionally CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC.
 */
export function compareWithModel(
  facts: KernelFacts,
  predicted: MemorySummary,
  opts: CompareOptions = {},
): ModelComparison {
  const out: ModelComparison = { findings: [], agreed: [], inconclusive: [] };
  const check = (
    name: string,
    equal: boolean,
    p: unknown,
    m: unknown,
    source: string,
    note?: string,
  ) => {
    if (equal) out.agreed.push(name);
    else {
      out.findings.push({
        fact: name,
        predicted: p,
        measured: m,
        source: `${source} vs ${MODEL}`,
        ...(note ? { note } : {}),
      });
    }
  };

  // Zones.
  const keys: [ParsedZone["name"], keyof MemorySummary["zones"]][] = [
    ["DMA", "dma"],
    ["DMA32", "dma32"],
    ["Normal", "normal"],
  ];
  if (facts.zones) {
    const printed = facts.zones.value;
    for (const [name, key] of keys) {
      const z = printed.find((x) => x.name === name);
      const m = z ? z.span : null;
      check(
        `ZONE_${name.toUpperCase()} span`,
        sameRange(predicted.zones[key], m),
        fmtRange(predicted.zones[key]),
        z ? fmtRange(m) : "not printed (zone not configured)",
        facts.zones.provenance.source,
      );
    }
  } else if (facts.zoneinfo) {
    const spans = zoneinfoSpans({ zones: facts.zoneinfo.value, problems: [] });
    for (const [name, key] of keys) {
      const z = spans.filter((s) => s.zone === name);
      if (z.length !== 1) {
        out.inconclusive.push({
          fact: `ZONE_${name.toUpperCase()} span`,
          reason: z.length === 0 ? "zone not in zoneinfo" : "several NUMA nodes",
        });
        continue;
      }
      check(
        `ZONE_${name.toUpperCase()} span`,
        sameRange(predicted.zones[key], z[0].span),
        fmtRange(predicted.zones[key]),
        fmtRange(z[0].span),
        facts.zoneinfo.provenance.source,
        "from start_pfn and spanned (4 KiB pages)",
      );
    }
  } else {
    out.inconclusive.push({ fact: "zone spans", reason: "no Zone ranges and no zoneinfo" });
  }

  // Memory nodes vs predicted banks.
  if (facts.memoryNodes) {
    const nodes = normalizeBanks(facts.memoryNodes.value.map((n) => n.range));
    const banks = normalizeBanks(predicted.banks);
    const equal = nodes.length === banks.length && nodes.every((n, i) => sameRange(n, banks[i]));
    check(
      "memory banks (early memory node ranges)",
      equal,
      banks.map(fmtRange),
      nodes.map(fmtRange),
      facts.memoryNodes.provenance.source,
    );
  } else out.inconclusive.push({ fact: "memory banks", reason: "no early memory node ranges" });

  // SWIOTLB.
  const sw = facts.swiotlb;
  if (!sw) out.inconclusive.push({ fact: "SWIOTLB", reason: "no SWIOTLB fact (no boot log)" });
  else {
    const v = sw.value;
    const present = v.kind === "mapped";
    check(
      "SWIOTLB present",
      present === predicted.swiotlb.present,
      predicted.swiotlb.present,
      v.kind === "mapped" ? true : v.kind === "no-low-mem" ? "No low mem" : false,
      sw.provenance.source,
    );
    if (v.kind === "mapped" && predicted.swiotlb.present) {
      const size = v.window.end - v.window.start;
      check(
        "SWIOTLB size",
        size === predicted.swiotlb.sizeBytes,
        predicted.swiotlb.sizeBytes,
        size,
        sw.provenance.source,
        `printed window ${fmtRange(v.window)} (${v.mb}MB)`,
      );
      if (predicted.swiotlb.below !== null) {
        check(
          "SWIOTLB window below",
          v.window.end <= predicted.swiotlb.below,
          `end <= 0x${predicted.swiotlb.below.toString(16)}`,
          `end 0x${v.window.end.toString(16)}`,
          sw.provenance.source,
        );
      }
      const dma = predicted.zones.dma ?? predicted.zones.dma32;
      if (dma) {
        check(
          "SWIOTLB window inside the lowest zone",
          v.window.start >= dma.start && v.window.end <= dma.end,
          fmtRange(dma),
          fmtRange(v.window),
          sw.provenance.source,
        );
      }
    }
  }

  // CMA below the DMA limit (dma_contiguous_reserve(arm64_dma_phys_limit)).
  if (facts.cma) {
    const dma = predicted.zones.dma ?? predicted.zones.dma32;
    for (const c of facts.cma.value) {
      if (c.kind !== "reserved" || c.baseUnknown || !dma) continue;
      const range = { start: c.base, end: c.base + c.sizeMiB * 1024 * 1024 };
      check(
        `CMA at 0x${c.base.toString(16)} inside the lowest zone`,
        range.start >= dma.start && range.end <= dma.end,
        fmtRange(dma),
        fmtRange(range),
        facts.cma.provenance.source,
        "arm64 reserves the default CMA area below arm64_dma_phys_limit",
      );
    }
  }

  // Config.
  if (opts.config) {
    const v = facts.config
      ? configEnabled(
        Object.fromEntries(
          Object.entries(facts.config.value.options).filter(([, x]) => x !== null),
        ) as Record<string, string>,
        "CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC",
      ) ?? false
      : undefined;
    if (v === undefined || !facts.config) {
      out.inconclusive.push({ fact: "CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC", reason: "no config" });
    } else {
      check(
        "CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC",
        v === opts.config.dmaBounceUnalignedKmalloc,
        opts.config.dmaBounceUnalignedKmalloc,
        v,
        facts.config.provenance.source,
        "absent from the config counts as off",
      );
    }
  }
  return out;
}

/** Result of {@link predictMemory}. */
export type MemoryPrediction =
  | { ok: true; summary: MemorySummary; assumptions: string[] }
  | { ok: false; reason: string };

/**
 * What the oracle predicts (`oracle/memview.ts` `memoryView`) for the measured banks, command
 * line, release and config of a target, to feed {@link compareWithModel}.
 */
export function predictMemory(facts: KernelFacts): MemoryPrediction {
  const assumptions: string[] = [];
  if (!facts.memoryBanks || facts.memoryBanks.value.length === 0) {
    return { ok: false, reason: "no measured memory banks" };
  }
  const parsed = facts.release?.value.parsed ?? null;
  if (!parsed) assumptions.push("release unknown: current mainline zone rule");
  const bootargs = facts.cmdline?.value.raw ?? "";
  if (!facts.cmdline) assumptions.push("command line unknown: empty");
  let bounce: boolean;
  const opt = facts.config?.value.options["CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC"];
  if (opt !== undefined) bounce = opt === "y";
  else {
    bounce = parsed ? parsed.major > 6 || (parsed.major === 6 && parsed.minor >= 5) : true;
    assumptions.push(
      `CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC unknown: ${bounce} (arm64 selects it from v6.5)`,
    );
  }
  const driver = parsed
    ? mainlineFacts(parsed)
    : { ...mainlineFacts({ major: 7, minor: 3 }), release: "unknown" };
  if (parsed) driver.release = releaseKey(parsed);
  try {
    const view = memoryView({
      board: {
        id: facts.target,
        name: facts.target,
        soc: "unknown",
        banks: facts.memoryBanks.value,
        ramSource: facts.memoryBanks.provenance.source,
        ramConfidence: "measured",
        iommus: [],
      },
      driver,
      devicetree: [],
      bootargs,
      notes: [],
      config: { dmaBounceUnalignedKmalloc: bounce },
    });
    return { ok: true, summary: view.summary, assumptions };
  } catch (e) {
    if (e instanceof OracleInputError || e instanceof BootArgsError || e instanceof RangeError) {
      return { ok: false, reason: `oracle refused the measured inputs: ${e.message}` };
    }
    return { ok: false, reason: `oracle failed: ${describe(e)}` };
  }
}
