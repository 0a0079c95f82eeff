/**
 * The targets of `rkhil run`, as plans the suite runner opens: the embedded target (a QEMU
 * aarch64 guest, `QemuTarget`, on each Debian kernel asked for) and board targets (a board file
 * each, `openBoardTarget`: BoardDriver under the shared DriverTarget, on the kernel it boots).
 *
 * @module
 */
import { findBoard } from "../../boards/load.ts";
import { checkBoardTarget, openBoardTarget } from "../board/target.ts";
import { parseSize } from "../../boards/schema.ts";
import { InfraError, RkhilError } from "../errors.ts";
import { emuRamRefusal, resolveEmuIommus } from "../qemu/iommu_dtb.ts";
import { qemuBoardId, QemuTarget } from "../qemu/target.ts";
import type { TargetPlan } from "./runner.ts";
import type { Variant } from "./types.ts";

/** The kernels `rkhil run` runs by default: 6.1, 6.12 and 7.x from Debian. */
export const DEFAULT_KERNELS: readonly string[] = [
  "debian:bookworm",
  "debian:trixie",
  "debian:trixie-backports",
];

/**
 * One plan per kernel for the embedded target with `memory` (QEMU syntax, default 8G). A
 * variant boots another guest on the same kernel with the variant's memory, command line and
 * emulated IOMMUs (`boot-config`; the `iommu` suite's `iommu/emulated` scenarios, issue 15).
 * A variant with emulated IOMMUs on a guest too small to hold their register windows is SKIP
 * with the reason (see {@linkcode emuRamRefusal}), before any boot.
 */
export function qemuPlans(
  kernels: readonly string[],
  memory = "8G",
  extraAppend?: string,
): TargetPlan[] {
  return kernels.map((kernel) => ({
    name: qemuBoardId(memory),
    kernel,
    bootDetails: { memory, ...(extraAppend ? { append: extraAppend } : {}) },
    open: async (dir: string, variant?: Variant) => {
      const mem = variant?.memory ?? memory;
      const bytes = parseSize(mem);
      if (variant?.iommus?.length && bytes !== undefined) {
        const refusal = emuRamRefusal(bytes, resolveEmuIommus(variant.iommus));
        if (refusal) {
          throw new RkhilError(refusal, "run the emulated IOMMUs with --mem 3G or more", "SKIP");
        }
      }
      return await QemuTarget.prepare({
        kernel,
        runDir: dir,
        memory: mem,
        extraAppend: [extraAppend, variant?.append].filter(Boolean).join(" ") || undefined,
        iommus: variant?.iommus,
      });
    },
  }));
}

/**
 * One plan per board id: the board file is found (`boardsDirs` first, then `boards/`) and
 * checked as a board target now, so a mistake is exit 2 before any boot. A board runs its own
 * kernel; results name it by its running release.
 *
 * @throws {UserInputError} for an unknown board (listing the known ones) or a board file that
 *   cannot run as a board target (no pinned host key, no key file, the embedded target, ...).
 */
export async function boardPlans(
  ids: readonly string[],
  boardsDirs: readonly string[] = [],
): Promise<TargetPlan[]> {
  const plans: TargetPlan[] = [];
  for (const id of ids) {
    const loaded = await findBoard(id, boardsDirs);
    await checkBoardTarget(loaded);
    plans.push({
      name: loaded.id,
      bootDetails: { memory: sizeText(loaded.board.ram.size) },
      open: async (dir: string, variant?: Variant) => {
        if (variant) {
          throw new InfraError(
            `${loaded.id} cannot boot with ${JSON.stringify(variant)}: rkhil does not choose a ` +
              "board's kernel command line or memory",
            "kernel deployment to boards comes with the farm issue",
          );
        }
        return await openBoardTarget(loaded, { runDir: dir });
      },
    });
  }
  return plans;
}

/** Bytes as QEMU writes a size (`8G`), as the `boot` result's `memory` detail. */
function sizeText(bytes: number): string {
  for (const [unit, n] of [["T", 2 ** 40], ["G", 2 ** 30], ["M", 2 ** 20]] as const) {
    if (bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return String(bytes);
}

/**
 * For an interrupted run: power off every QEMU of the process and refuse new launches.
 * Never throws.
 */
export function shutdownQemu(): Promise<void> {
  return QemuTarget.powerOffAll().catch(() => {});
}
