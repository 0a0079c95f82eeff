/**
 * `rkhil facts --kernel debian:<suite>`: boot a QEMU guest on that Debian kernel, collect its
 * kernel facts (`runner/facts`) and introspect its rockchip-iommu driver ({@link introspectDriver}),
 * hold the driver against the knowledge base of its release, and print it all (text or JSON).
 *
 * @module
 */
import { isKnownRelease, mainlineFacts, parseRelease, RELEASES } from "../../oracle/releases.ts";
import { describeError, RkhilError } from "../errors.ts";
import { collectKernelFacts, type KernelFacts } from "../facts/collect.ts";
import { RunStore } from "../results/store.ts";
import {
  compareDriverWithKb,
  type DriverComparison,
  type DriverIntrospection,
  introspectDriver,
} from "./driver.ts";
import { type Interrupt, INTERRUPT_EXIT, InterruptedError } from "../jobs/interrupt.ts";
import type { RunCommand } from "../facts/collect.ts";
import { QemuTarget } from "../qemu/target.ts";

/** Options of {@link runFacts}. */
export interface FactsOptions {
  kernel: string;
  memory?: string;
  runsRoot?: string;
  /** SIGINT/SIGTERM: stop at once, power the guest off, throw an `InterruptedError`. */
  interrupt?: Interrupt;
  log?: (line: string) => void;
}

/** What `rkhil facts` found. */
export interface FactsResult {
  kernel: string;
  release: string;
  runDir: string;
  facts: KernelFacts;
  driver?: DriverIntrospection;
  /** Why the driver could not be introspected. */
  driverError?: { message: string; hint?: string };
  /** Against `mainlineFacts(release)`; absent when the release is not in the knowledge base. */
  comparison?: DriverComparison;
  /** Why there is no comparison. */
  comparisonSkipped?: string;
  /**
   * The target was lost while the facts were read (QEMU gone, console gone, SSH lost): what
   * was read is incomplete and nothing after it ran (MISS).
   */
  lost?: string;
  /** The kernel crashed while the facts were read: its first line (FAIL). */
  crash?: string;
}

/**
 * Boot, collect, introspect, compare. A kernel fault or a lost target stops it with `crash`
 * or `lost` set (and `facts.json` written); the guest is always powered off.
 *
 * @throws {InterruptedError} on SIGINT/SIGTERM (through `opts.interrupt`), after the guest is
 * powered off.
 */
export async function runFacts(opts: FactsOptions): Promise<FactsResult> {
  const runDir = RunStore.newDir(
    opts.runsRoot ?? "runs",
    `facts-${opts.kernel.replace(/[^a-z0-9.+-]/gi, "_")}`,
  );
  await Deno.mkdir(runDir, { recursive: true });
  const it = opts.interrupt;
  const race = <T>(p: Promise<T>) => it ? it.race(p) : p;
  const save = async (out: FactsResult) => {
    await Deno.writeTextFile(`${runDir}/facts.json`, JSON.stringify(out, null, 2));
    return out;
  };
  it?.check();
  opts.log?.(`preparing ${opts.kernel}`);
  let guest: QemuTarget | undefined;
  let booting: Promise<unknown> | undefined;
  try {
    guest = await race(QemuTarget.prepare({ kernel: opts.kernel, runDir, memory: opts.memory }));
    const target = guest;
    opts.log?.(`booting ${target.kernel.release}`);
    booting = target.ready();
    await race(booting);
    const release = target.release!;
    const run: RunCommand = (cmd, o) => target.command.run(cmd, { timeoutMs: o.timeoutMs });
    /** A fault or a lost target since `faultsBefore`: recorded in `out`, true if so. */
    const stopped = (out: FactsResult, faultsBefore: number) => {
      const f = target.faults[faultsBefore];
      if (f) out.crash = `kernel ${f.kind}: ${f.reason}`;
      else out.lost = target.lost() ?? (target.state === "off" ? "the target is off" : undefined);
      return !!(out.crash || out.lost);
    };
    opts.log?.("collecting kernel facts");
    let faults = target.faults.length;
    const facts = await race(collectKernelFacts(run, { target: `qemu ${release}` }));
    const out: FactsResult = { kernel: opts.kernel, release, runDir, facts };
    if (stopped(out, faults)) return await save(out);
    opts.log?.("introspecting the rockchip-iommu driver");
    faults = target.faults.length;
    try {
      out.driver = await race(
        target.whileUp(introspectDriver(run, { log: (l) => opts.log?.(`  ${l}`) })),
      );
    } catch (e) {
      if (e instanceof InterruptedError) throw e;
      if (stopped(out, faults)) return await save(out);
      if (!(e instanceof RkhilError)) throw e;
      out.driverError = { message: e.message, hint: e.hint };
      return await save(out);
    }
    if (stopped(out, faults)) return await save(out);
    const rel = parseRelease(release);
    if (!rel || !isKnownRelease(rel)) {
      out.comparisonSkipped = `release ${release} is not in the knowledge base (${RELEASES[0]}` +
        `…${RELEASES[RELEASES.length - 1]})`;
    } else {
      out.comparison = compareDriverWithKb(out.driver, mainlineFacts(rel));
    }
    return await save(out);
  } catch (err) {
    if (err instanceof InterruptedError) await QemuTarget.powerOffAll();
    throw err;
  } finally {
    // Also when an interrupt overtook the boot: closing quits QEMU, which ends the boot.
    await guest?.close();
    booting?.catch(() => {});
  }
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MiB`;
const addr = (n: number) => `0x${n.toString(16).padStart(9, "0")}`;

/** The human-readable report. */
export function renderFacts(r: FactsResult): string {
  const f = r.facts;
  const o: string[] = [];
  o.push(`kernel ${r.kernel}: ${r.release}`);
  o.push(`  run directory: ${r.runDir}`);
  if (r.crash) o.push(`  FAIL: the kernel crashed while its facts were read: ${r.crash}`);
  if (r.lost) o.push(`  MISS: the target was lost while its facts were read: ${r.lost}`);
  o.push("");
  o.push("Kernel facts (measured)");
  if (f.cmdline) o.push(`  cmdline:  ${f.cmdline.value.raw}`);
  if (f.memoryBanks) {
    o.push(
      `  DRAM:     ${
        f.memoryBanks.value.map((b) => `${addr(b.start)}-${addr(b.end)} (${mib(b.end - b.start)})`)
          .join(", ")
      }`,
    );
  }
  if (f.zones) {
    o.push("  zones:");
    for (const z of f.zones.value) {
      o.push(
        `    ${z.name.padEnd(8)} ${
          z.span
            ? `${addr(z.span.start)}-${addr(z.span.end)} (${mib(z.span.end - z.span.start)})`
            : "empty"
        }`,
      );
    }
  }
  if (f.swiotlb) {
    const s = f.swiotlb.value;
    o.push(
      `  SWIOTLB:  ${
        s.kind === "mapped"
          ? `${addr(s.window.start)}-${addr(s.window.end)} (${s.mb} MB)`
          : s.kind === "absent"
          ? "none in the log"
          : "no low memory"
      }`,
    );
  }
  if (f.cma) {
    o.push(
      `  CMA:      ${
        f.cma.value.length
          ? f.cma.value.map((c) =>
            c.kind === "reserved"
              ? `${c.sizeMiB} MiB at ${c.baseUnknown ? "(base not printed)" : addr(c.base)}`
              : c.kind === "failed"
              ? `${c.sizeMiB} MiB failed`
              : c.kind === "dt-pool"
              ? `${c.sizeMiB} MiB at ${addr(c.base)}${c.name ? ` (${c.name})` : ""}`
              : `${c.sizeMiB} MiB in ${c.ranges} ranges`
          ).join("; ")
          : "none"
      }`,
    );
  }
  if (f.dtIommus) {
    const n = f.dtIommus.value;
    o.push(
      `  device-tree IOMMU nodes: ${
        n.length
          ? n.map((x) => `${x.label || x.unit} ${x.compatible.join(",")} ${x.status}`).join("; ")
          : "none (no Rockchip IOMMU in this machine's device tree)"
      }`,
    );
  }
  if (f.missing.length) {
    o.push(`  missing: ${f.missing.map((m) => `${m.name} (${m.reason})`).join("; ")}`);
  }
  o.push("");
  o.push("rockchip-iommu driver (measured from BTF, kallsyms, /proc/kcore)");
  if (!r.driver && (r.crash || r.lost)) {
    o.push("  not introspected: the facts above are incomplete");
    return o.join("\n");
  }
  if (r.driverError) {
    o.push(`  not introspected: ${r.driverError.message}`);
    if (r.driverError.hint) o.push(`  what to do: ${r.driverError.hint}`);
    return o.join("\n");
  }
  const d = r.driver!;
  o.push(
    `  struct rk_iommu_ops: ${
      d.opsLayout.value.members.map((m) => `${m.name}@${m.offset}`).join(", ")
    } (${d.opsLayout.value.size} bytes)`,
  );
  o.push(`  DTE_ADDR layout: ${d.dteAddrLayout.value}`);
  if (d.perDeviceOps) {
    o.push(`  per-device ops: ${d.perDeviceOps.value ? "yes" : "no (global rk_ops)"}`);
  }
  if (d.dmaDev) o.push(`  table dma_dev: ${d.dmaDev.value}`);
  o.push(
    `  of_device_id table: ${d.table.value.address} (${d.table.value.entries} entries, found by ${d.table.value.foundBy}; ` +
      `kallsyms ${d.kallsymsAll ? "has" : "has no"} data symbols)`,
  );
  if (d.gfpBits) o.push(`  gfp bit values from: ${d.gfpBits.provenance.source}`);
  for (const c of d.compatibles) {
    o.push(
      `  ${c.compatible}${c.opsSymbol ? ` -> ${c.opsSymbol.value}` : ""} @ ${c.opsAddress.value}`,
    );
    o.push(
      `    format:       ${c.format.value} (${
        Object.values(c.functions).map((x) => x.value).join(", ")
      })`,
    );
    o.push(`    dma_bit_mask: ${c.dmaMaskBits.value} bits (${c.dmaMask.value})`);
    o.push(
      `    gfp:          ${
        c.gfpFlags.value === null
          ? "no gfp_flags field (zone hard-coded in the allocation calls)"
          : `gfp_flags = 0x${c.gfpFlags.value.toString(16)} -> ${c.gfpZone.value}${
            c.gfpNames.length ? ` (${c.gfpNames.join("|")})` : ""
          }`
      }`,
    );
    o.push(`    fields:       ${c.fields.value.join(", ")}`);
  }
  for (const p of d.problems) o.push(`  problem: ${p}`);
  o.push("");
  if (r.comparison) {
    const c = r.comparison;
    if (!c.findings.length) {
      o.push(`matches the knowledge base (${c.release}): ${c.agreed.length} facts agree`);
    } else {
      o.push(`differs from the knowledge base (${c.release}): ${c.findings.length} findings`);
      for (const x of c.findings) {
        o.push(
          `  FINDING ${x.compatible ? x.compatible + ": " : ""}${x.fact}: kernel ${
            JSON.stringify(x.measured)
          } ` +
            `(${x.measuredSource}), knowledge base ${JSON.stringify(x.kb)} (${x.kbSource})` +
            (x.note ? ` — ${x.note}` : ""),
        );
      }
      if (c.agreed.length) o.push(`  ${c.agreed.length} other facts agree`);
    }
  } else if (r.comparisonSkipped) {
    o.push(`not compared: ${r.comparisonSkipped}`);
  }
  return o.join("\n");
}

/**
 * For `main.ts`: run and print; returns the exit status: 0 the driver matches the knowledge
 * base, 1 it differs or cannot be read, 3 the target was lost (MISS), 4 the kernel crashed
 * (FAIL), 130 interrupted by SIGINT or SIGTERM.
 */
export async function factsCommand(
  opts: { kernel: string; mem: string; json?: boolean; runsDir: string; interrupt?: Interrupt },
): Promise<number> {
  let r: FactsResult;
  try {
    r = await runFacts({
      kernel: opts.kernel,
      memory: opts.mem,
      runsRoot: opts.runsDir,
      interrupt: opts.interrupt,
      log: opts.json ? undefined : (l) => console.error(`rkhil facts: ${l}`),
    });
  } catch (err) {
    if (!(err instanceof InterruptedError)) throw err;
    console.error(`rkhil facts: ${err.message}: the guest is powered off, nothing was compared`);
    return INTERRUPT_EXIT;
  }
  console.log(opts.json ? JSON.stringify(r, null, 2) : renderFacts(r));
  if (r.crash) {
    console.error(`rkhil facts: FAIL: the kernel crashed: ${r.crash} (console log in ${r.runDir})`);
    return 4;
  }
  if (r.lost) {
    console.error(`rkhil facts: MISS: the target was lost: ${r.lost} (logs in ${r.runDir})`);
    return 3;
  }
  if (r.driverError) {
    console.error(describeError(new RkhilError(r.driverError.message, r.driverError.hint ?? "")));
    return 1;
  }
  // A running driver that differs from the knowledge base is a finding: say so in the status.
  return r.comparison?.findings.length ? 1 : 0;
}
