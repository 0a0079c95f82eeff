/**
 * The `deploy:` block of a board file: how rkhil installs a kernel under test on the board and
 * boots it once through U-Boot, with the board's known-good kernel as the fallback
 * (`runner/board/deploy.ts`). Part of {@linkcode BoardSchema} in `schema.ts`; errors come out
 * of `load.ts` with file, line and field like every other board-file error.
 *
 * ```yaml
 * deploy:
 *   method: extlinux-menu      # the one method: a one-shot choice in U-Boot's extlinux menu
 *   boot_dir: /boot            # where U-Boot's files are on the running board
 *   device: /dev/mmcblk0p1     # optional: mounted on boot_dir by rkhil when it is not mounted
 *   uboot_prefix: /            # how U-Boot's paths name boot_dir (default boot_dir itself)
 *   extlinux: /boot/extlinux/extlinux.conf   # default <boot_dir>/extlinux/extlinux.conf
 *   known_good: l0             # the label U-Boot boots when nobody chooses
 *   kernel_start_s: 30         # after the choice, the kernel's first line within this
 *   menu_timeout_s: 5          # U-Boot's menu wait that rkhil sets (at least)
 *   modules_dir: /lib/modules  # optional: the kernel's modules are installed there
 * ```
 *
 * @module
 */

import { z } from "zod";

/** Deployment methods. `extlinux-menu`: see `runner/board/extlinux.ts`. */
export const DEPLOY_METHODS = ["extlinux-menu"] as const;

const AbsPath = z.string().regex(/^\/[^\0\s]*$/, {
  error: "expected an absolute path without spaces, e.g. /boot",
});

/** `deploy:` of a board file. */
export const DeploySchema = z.strictObject({
  /** How the kernel under test is booted once: the only method is `extlinux-menu`. */
  method: z.enum(DEPLOY_METHODS),
  /** Directory on the running board that holds U-Boot's boot files. */
  boot_dir: AbsPath,
  /** Block device mounted on `boot_dir` (read-write) before writing, when it is not mounted. */
  device: AbsPath.optional(),
  /**
   * How U-Boot names `boot_dir` in extlinux paths: `/` when `boot_dir` is a partition of its
   * own, `/boot` when it is a directory of the root partition (the default: `boot_dir`).
   */
  uboot_prefix: AbsPath.optional(),
  /** The extlinux.conf U-Boot reads (default `<boot_dir>/extlinux/extlinux.conf`). */
  extlinux: AbsPath.optional(),
  /** Label of the known-good entry: U-Boot's `default`, booted whenever nobody chooses. */
  known_good: z.string().regex(/^[A-Za-z0-9._+-]+$/, {
    error: "expected the label of an extlinux.conf entry, e.g. l0",
  }).refine((s) => !s.startsWith("rkhil-"), {
    error: "labels starting with rkhil- are rkhil's own entries, not a known-good one",
  }),
  /** Seconds from the menu choice to the kernel's first console line (default 30). */
  kernel_start_s: z.number().int().min(5).max(600).optional(),
  /** Seconds U-Boot's menu waits for a choice (default 5; at least 2). */
  menu_timeout_s: z.number().int().min(2).max(60).optional(),
  /** Where modules go (`<modules_dir>/<release>`); absent: modules are not installed. */
  modules_dir: AbsPath.optional(),
});

/** A validated `deploy:` block (what {@linkcode DeploySchema} gives; paths absolute). */
export interface DeploySpec {
  /** How the kernel under test is booted once. */
  method: (typeof DEPLOY_METHODS)[number];
  /** Directory on the running board that holds U-Boot's boot files. */
  boot_dir: string;
  /** Block device mounted on `boot_dir` before writing, when it is not mounted. */
  device?: string;
  /** How U-Boot names `boot_dir` in extlinux paths (default: `boot_dir`). */
  uboot_prefix?: string;
  /** The extlinux.conf U-Boot reads (default `<boot_dir>/extlinux/extlinux.conf`). */
  extlinux?: string;
  /** Label of the known-good entry, U-Boot's `default`. */
  known_good: string;
  /** Seconds from the menu choice to the kernel's first console line (default 30). */
  kernel_start_s?: number;
  /** Seconds U-Boot's menu waits for a choice (default 5). */
  menu_timeout_s?: number;
  /** Where modules go (`<modules_dir>/<release>`); absent: modules are not installed. */
  modules_dir?: string;
}

// The interface is the schema's output, field for field (a compile error otherwise).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _deploySpecIsTheSchemasOutput: Same<DeploySpec, z.output<typeof DeploySchema>> = true;
void _deploySpecIsTheSchemasOutput;
