/**
 * The targets of `rkhil run`, as plans the suite runner opens: the embedded target (a QEMU
 * aarch64 guest, `QemuTarget`, on each Debian kernel asked for) and board targets (a board file
 * each, `openBoardTarget`: BoardDriver under the shared DriverTarget, on the kernel it boots, or
 * on each kernel asked for, deployed after `boot`, when its board file has `deploy:`).
 *
 * @module
 */
import { findBoard, type LoadedBoard } from "../../boards/load.ts";
import { checkBoardTarget, openBoardTarget } from "../board/target.ts";
import { parseSize } from "../../boards/schema.ts";
import { InfraError, RkhilError, UserInputError } from "../errors.ts";
import { deployKernel } from "../board/deploy.ts";
import { deployKernelOf, isDirKernelSpec, readDirKernel } from "../board/deploy_kernel.ts";
import type { Target } from "../protocol/target.ts";
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
 * checked as a board target now, so a mistake is exit 2 before any boot. Without `kernels` a
 * board runs its own kernel (results name it by its running release); with `kernels` (`rkhil
 * run --board ID --kernel SPEC`) every board must have `deploy:` and gets one plan per kernel
 * that deploys it after `boot` (runner/board/deploy.ts; `dir:` kernels are read now).
 *
 * @throws {UserInputError} for an unknown board (listing the known ones), a board file that
 *   cannot run as a board target (no pinned host key, no key file, the embedded target, ...),
 *   `kernels` for a board without `deploy:`, or a bad `dir:` kernel.
 */
export async function boardPlans(
  ids: readonly string[],
  boardsDirs: readonly string[] = [],
  kernels: readonly string[] = [],
): Promise<TargetPlan[]> {
  const plans: TargetPlan[] = [];
  for (const k of kernels.filter(isDirKernelSpec)) await readDirKernel(k);
  for (const id of ids) {
    const loaded = await findBoard(id, boardsDirs);
    if (kernels.length && !loaded.board.deploy) {
      throw new UserInputError(
        `--kernel cannot be used with --board ${loaded.id}: its board file ${loaded.path} has ` +
          "no deploy: block, so the board runs the kernel it boots",
        "drop --kernel, or add deploy: to the board file (README: Kernel deployment on boards)",
      );
    }
    await checkBoardTarget(loaded);
    for (const kernel of kernels.length ? kernels : [undefined]) {
      plans.push(
        boardPlan(loaded.id, loaded, kernel, { memory: sizeText(loaded.board.ram.size) }),
      );
    }
  }
  return plans;
}

/**
 * The plan of board `board` (named `name` in results) on its own kernel, or, with `kernel`,
 * deploying that kernel after `boot` (runner/board/deploy.ts; `rkhil run --board` and the
 * farm's jobs). Its `open` refuses a variant (InfraError, MISS): rkhil does not choose a
 * board's memory or command line.
 */
export function boardPlan(
  name: string,
  board: LoadedBoard,
  kernel: string | undefined,
  bootDetails: Record<string, unknown>,
): TargetPlan {
  return {
    name,
    ...(kernel
      ? {
        kernel,
        deploy: async (target: Target) =>
          await deployKernel(target, await deployKernelOf(kernel), {
            log: (l) => target.console?.recorder.note(l),
          }),
      }
      : {}),
    bootDetails,
    open: async (dir: string, variant?: Variant) => {
      if (variant) {
        throw new InfraError(
          `${name} cannot boot with ${JSON.stringify(variant)}: rkhil does not choose a ` +
            "board's kernel command line or memory",
          "rkhil deploys a board's kernel (deploy:) but boots it with the board's memory",
        );
      }
      return await openBoardTarget(board, { runDir: dir });
    },
  };
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
