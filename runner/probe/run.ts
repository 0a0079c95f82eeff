/**
 * Running the probe module on a target: the module parameters as a typed object, the insmod
 * command line they make, and one run over any command transport (an SSH session to a QEMU
 * guest or a board): upload, insmod, read /proc/rkprobe, rmmod, collect the unload lines from
 * the kernel log, parse.
 *
 * @module
 */

import { InfraError, UserInputError } from "../errors.ts";
import type { SshSession } from "../ssh/mod.ts";
import { parseProbeReport, type ProbeReport } from "./report.ts";

/** One IOVA mapping of the probe. */
export interface ProbeMapping {
  /** 4 KiB-aligned 32-bit IOVA. */
  iova: number;
  /** Backing page placement: below 4 GiB (GFP_DMA32) or above (GFP_HIGHUSER_MOVABLE). */
  where: "low" | "high";
  /** Consecutive 4 KiB pages (1-16, within one DTE), written and flushed as one map call. */
  pages?: number;
}

/** Module parameters (see target/probe/README.md). */
export interface ProbeParams {
  /** Zone flag of the table allocations (the ops' gfp_flags). */
  gfp: "none" | "dma32" | "dma";
  /** DMA mask bits of the IOMMU device. */
  maskBits: number;
  /** Page-table entry format of the ops under test. */
  format: "v1" | "v2";
  /** Address bits the walker can read the DT at (default 32). */
  dtReach?: number;
  /** Address bits the walker can read page tables at (default 32). */
  ptReach?: number;
  /** The IOVAs the module maps and then walks. */
  mappings: ProbeMapping[];
  /** IOMMU_READ (1) | IOMMU_WRITE (2); default 3. */
  perm?: number;
  /** Addresses whose v1/v2 encodings the module prints (`encode` lines), at most 64. */
  encode?: number[];
}

/** The `insmod` arguments for `params` (validated). */
export function insmodArgs(params: ProbeParams): string[] {
  const bad = (what: string) => {
    throw new UserInputError(`probe parameters: ${what}`, "see target/probe/README.md");
  };
  if (!Number.isInteger(params.maskBits) || params.maskBits < 24 || params.maskBits > 64) {
    bad(`maskBits ${params.maskBits} is not 24..64`);
  }
  for (const r of [params.dtReach ?? 32, params.ptReach ?? 32]) {
    if (!Number.isInteger(r) || r < 12 || r > 64) bad(`reach ${r} is not 12..64`);
  }
  if (params.mappings.length === 0 || params.mappings.length > 64) bad("1..64 mappings needed");
  if ((params.encode?.length ?? 0) > 64) bad("at most 64 encode addresses");
  for (const a of params.encode ?? []) {
    if (!Number.isSafeInteger(a) || a < 0) bad(`encode address ${a} is not a safe integer >= 0`);
  }
  const items = params.mappings.map((m) => {
    const pages = m.pages ?? 1;
    if (!Number.isInteger(m.iova) || m.iova < 0 || m.iova > 0xfffff000 || m.iova % 4096) {
      bad(`iova ${m.iova} is not a 4 KiB-aligned 32-bit address`);
    }
    if (!Number.isInteger(pages) || pages < 1 || pages > 16) bad(`pages ${pages} is not 1..16`);
    if (Math.floor(m.iova / 2 ** 22) !== Math.floor((m.iova + (pages - 1) * 4096) / 2 ** 22)) {
      bad(`mapping at 0x${m.iova.toString(16)} crosses a 4 MiB DTE boundary`);
    }
    return `0x${m.iova.toString(16)}:${m.where}${pages === 1 ? "" : `:${pages}`}`;
  });
  return [
    `gfp=${params.gfp}`,
    `mask_bits=${params.maskBits}`,
    `format=${params.format}`,
    `dt_reach=${params.dtReach ?? 32}`,
    `pt_reach=${params.ptReach ?? 32}`,
    `perm=${params.perm ?? 3}`,
    `iovas=${items.join(",")}`,
    ...(params.encode?.length
      ? [`encode=${params.encode.map((a) => `0x${a.toString(16)}`).join(",")}`]
      : []),
  ];
}

/**
 * A command transport: run a shell command, get its output and status. On a Target use
 * `probeShellOf` (runner/suite/target_io.ts): its Command protocol merges stderr into `stdout`
 * (`stderr` is then empty; error messages fall back to `stdout`).
 */
export interface Shell {
  exec(cmd: string): Promise<{ stdout: string; stderr: string; status: number | null }>;
  upload(data: Uint8Array, remotePath: string): Promise<void>;
}

/** What one probe run returned. */
export interface ProbeRun {
  report: ProbeReport;
  /** Raw /proc/rkprobe text plus the unload lines. */
  raw: string;
  /** The insmod command used. */
  command: string;
}

/**
 * Load the module with `params`, read its report, unload it. The module must match the
 * target's kernel (see build.ts). `remotePath` defaults to /tmp/rkprobe.ko.
 */
export async function runProbe(
  shell: Shell,
  ko: Uint8Array,
  params: ProbeParams,
  remotePath = "/tmp/rkprobe.ko",
): Promise<ProbeRun> {
  await shell.upload(ko, remotePath);
  // A previous run that was not unloaded (interrupted test) would make insmod fail.
  await shell.exec("rmmod rkprobe 2>/dev/null; true");
  const mark = `rkhil-probe-${crypto.randomUUID()}`;
  await shell.exec(`echo ${mark} > /dev/kmsg`);
  const command = `insmod ${remotePath} ${insmodArgs(params).join(" ")}`;
  const ins = await shell.exec(command);
  if (ins.status !== 0) {
    // Everything the kernel printed since this run's marker.
    const log = await shell.exec(`dmesg | sed -n '/${mark}/,$p'`);
    const since = log.stdout.slice(Math.max(0, log.stdout.lastIndexOf(mark)));
    // A parameter error prints a complete report ending in `end status=error`.
    if (/rkprobe: end status=error/.test(since)) {
      return { report: parseProbeReport(since), raw: since, command };
    }
    throw new InfraError(
      `\`${command}\` failed (status ${ins.status}): ${(ins.stderr || ins.stdout).trim()}\n` +
        since.trim(),
      "check that the module was built for this kernel (uname -r) and see the kernel log",
    );
  }
  const proc = await shell.exec("cat /proc/rkprobe");
  const rm = await shell.exec("rmmod rkprobe && dmesg | tail -n 200");
  if (rm.status !== 0) {
    throw new InfraError(
      `rmmod rkprobe failed: ${(rm.stderr || rm.stdout).trim().slice(0, 300)}`,
      "see the kernel log",
    );
  }
  const after = rm.stdout.slice(Math.max(0, rm.stdout.lastIndexOf(mark)));
  const unload = after.split("\n").filter((l) => /rkprobe: (leak|unloaded)/.test(l)).join("\n");
  const raw = `${proc.stdout}${unload}\n`;
  return { report: parseProbeReport(raw), raw, command };
}

/** A {@linkcode Shell} over an rkhil SSH session. */
export function sshShell(session: SshSession, timeoutMs = 60_000): Shell {
  return {
    exec: async (cmd) => {
      const r = await session.exec(cmd, { timeoutMs });
      return { stdout: r.stdout, stderr: r.stderr, status: r.exitStatus };
    },
    upload: async (data, path) => {
      await session.upload(data, path, { timeoutMs });
    },
  };
}
