/**
 * One run of the emulated IOMMU module on a target booted with emulated IOMMUs (QemuTarget
 * option `iommus`): upload, which units rk_iommu is bound to, insmod (the masters bind and the
 * device accesses run during it), read `/proc/rkiommu_emu`, `dmesg` and `/proc/cmdline`, rmmod.
 *
 * @module
 */

import { InfraError, UserInputError } from "../errors.ts";
import { type EmuReport, parseEmuReport } from "./report.ts";

/** Module parameters (see target/rkiommu-emu/README.md). */
export interface EmuParams {
  /** Pages each master maps (1..16, default 4). */
  npages?: number;
  /** Address bits a v1.0 block reads its directory at (default 32). */
  dtReachV1?: number;
  /** Address bits a v1.0 block reads page tables and pages at (default 40). */
  ptReachV1?: number;
  /** DTE_ADDR encoding a v1.0 block decodes: 1 (bits 31:12) or 2 (v2 nibbles, default). */
  dteAddrV1?: 1 | 2;
  /** Also read one IOVA after unmapping it (the driver's page-fault path). */
  unmapped?: boolean;
  /**
   * A translated page that is not memory raises the MMU's BUS_ERROR (`true`) instead of failing
   * the master's own transfer with the MMU silent (default; target/rkiommu-emu/README.md).
   */
  pageBusError?: boolean;
}

/** The `insmod` arguments for `p`. @throws {UserInputError} for a value out of range. */
export function emuInsmodArgs(p: EmuParams = {}): string[] {
  const check = (name: string, v: number | undefined, lo: number, hi: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < lo || v > hi)) {
      throw new UserInputError(
        `rkiommu_emu: ${name} ${v} is not ${lo}..${hi}`,
        "see target/rkiommu-emu/README.md",
      );
    }
  };
  check("npages", p.npages, 1, 16);
  check("dtReachV1", p.dtReachV1, 12, 64);
  check("ptReachV1", p.ptReachV1, 12, 64);
  check("dteAddrV1", p.dteAddrV1, 1, 2);
  return [
    ...(p.npages ? [`npages=${p.npages}`] : []),
    ...(p.dtReachV1 ? [`dt_reach_v1=${p.dtReachV1}`] : []),
    ...(p.ptReachV1 ? [`pt_reach_v1=${p.ptReachV1}`] : []),
    ...(p.dteAddrV1 ? [`dte_addr_v1=${p.dteAddrV1}`] : []),
    ...(p.unmapped ? ["unmapped=1"] : []),
    ...(p.pageBusError ? ["page_bus_error=1"] : []),
  ];
}

/**
 * A command transport (the probe's `Shell`; `probeShellOf(target)` gives one): run a shell
 * command, get its output and status; upload a file.
 */
export interface EmuShell {
  /** Run `cmd`; stdout, stderr (may be merged into stdout) and the exit status. */
  exec(cmd: string): Promise<{ stdout: string; stderr: string; status: number | null }>;
  /** Write `data` to `remotePath` on the target. */
  upload(data: Uint8Array, remotePath: string): Promise<void>;
}

/** What one run returned. */
export interface EmuRun {
  /** The parsed report. */
  report: EmuReport;
  /** `/proc/rkiommu_emu` as read. */
  raw: string;
  /** `dmesg` after the accesses (before rmmod). */
  dmesg: string;
  /** `/proc/cmdline`. */
  cmdline: string;
  /** Units rk_iommu is bound to (`/sys/bus/platform/drivers/rk_iommu/<unit>.iommu`). */
  bound: Set<string>;
  /** `/proc/iomem` and `/proc/interrupts` lines of the IOMMUs (the binding's proof). */
  iomem: string[];
  /** `/proc/interrupts` lines of the emulated IOMMUs. */
  interrupts: string[];
  /** Kernel log lines printed while the module unloaded. */
  unload: string[];
}

/**
 * Load `ko` with `params`, read what it and the kernel report, unload it.
 *
 * @throws {InfraError} when insmod or rmmod fail, or the report does not parse.
 */
export async function runEmu(
  shell: EmuShell,
  ko: Uint8Array,
  params: EmuParams = {},
  remotePath = "/tmp/rkiommu_emu.ko",
): Promise<EmuRun> {
  const args = emuInsmodArgs(params);
  await shell.upload(ko, remotePath);
  await shell.exec("rmmod rkiommu_emu 2>/dev/null; true");
  const sys = await shell.exec(
    "ls /sys/bus/platform/drivers/rk_iommu/ 2>/dev/null; echo ==; cat /proc/iomem; echo ==; " +
      "cat /proc/interrupts; echo ==; cat /proc/cmdline",
  );
  const [ls, iomem, irqs, cmdline] = sys.stdout.split("==\n");
  const bound = new Set(
    (ls ?? "").split(/\s+/).map((n) => n.match(/^([0-9a-f]{1,16})\.iommu$/)?.[1]).filter(
      (u): u is string => u !== undefined,
    ),
  );
  const ins = await shell.exec(`insmod ${remotePath} ${args.join(" ")}`);
  if (ins.status !== 0) {
    const log = await shell.exec("dmesg | tail -n 30");
    throw new InfraError(
      `insmod rkiommu_emu failed (status ${ins.status}): ${(ins.stderr || ins.stdout).trim()}\n` +
        log.stdout.trim(),
      "check that the module was built for this kernel (uname -r) and see the kernel log",
    );
  }
  const raw = (await shell.exec("cat /proc/rkiommu_emu")).stdout;
  const dmesg = (await shell.exec("dmesg")).stdout;
  const mark = `rkhil-emu-${crypto.randomUUID()}`;
  await shell.exec(`echo ${mark} > /dev/kmsg`);
  const rm = await shell.exec("rmmod rkiommu_emu && dmesg | tail -n 100");
  if (rm.status !== 0) {
    throw new InfraError(
      `rmmod rkiommu_emu failed: ${(rm.stderr || rm.stdout).trim().slice(0, 300)}`,
      "see the kernel log",
    );
  }
  const after = rm.stdout.slice(Math.max(0, rm.stdout.lastIndexOf(mark) + mark.length));
  const units = [...bound];
  const ours = (l: string) => units.some((u) => l.includes(`${u}.iommu`));
  return {
    report: parseEmuReport(raw),
    raw,
    dmesg,
    cmdline: (cmdline ?? "").trim(),
    bound,
    iomem: (iomem ?? "").split("\n").filter(ours).map((l) => l.trim()),
    interrupts: (irqs ?? "").split("\n").filter(ours).map((l) => l.trim()),
    unload: after.split("\n").filter((l) => l.trim() !== ""),
  };
}
