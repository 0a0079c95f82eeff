/**
 * The kernel a farm job deploys on a board with `deploy:` (`runner/board/deploy.ts`), from its
 * `--kernel` spec:
 *
 * - `debian:<suite or version>`: the Debian arm64 kernel package (fetched into rkhil's cache):
 *   its image and its modules directory (installed when the board file sets
 *   `deploy.modules_dir`); no initramfs (the board's kernel must find its root without one, or
 *   use a `dir:` kernel with one);
 * - `dir:/ABSOLUTE/DIR`: a kernel on this host laid out as a `/boot`: exactly one
 *   `vmlinuz-<release>`, optionally `initrd.img-<release>` and one `*.dtb`; the release is the
 *   file name's (a locally built kernel, or a deliberately broken one to prove the fallback).
 *
 * @module
 */
import { basename } from "node:path";
import { UserInputError } from "../errors.ts";
import { fetchKernel } from "../debian/kernel.ts";
import type { DeployKernel } from "./deploy.ts";

export type { DeployKernel };

/**
 * What a file rkhil puts in `/boot` may be named (a release as `uname -r` prints it, a DTB):
 * letters, digits and `._+-`, as `extlinux.conf` paths and shell words take them unquoted.
 */
export const BOOT_FILE_NAME: RegExp = /^[A-Za-z0-9._+-]{1,200}$/;

/**
 * Check a DTB's file name (its basename goes into `/boot` and `extlinux.conf`'s `fdt`).
 *
 * @throws {UserInputError} when it has other characters than {@linkcode BOOT_FILE_NAME}.
 */
export function checkDtbName(path: string): void {
  const name = basename(path);
  if (!BOOT_FILE_NAME.test(name)) {
    throw new UserInputError(
      `device tree ${JSON.stringify(name.slice(0, 200))} has characters a boot file name ` +
        "cannot (white space, quotes, ...)",
      "rename it with letters, digits and ._+- only (e.g. rk3568-rock-3b.dtb)",
    );
  }
}

/**
 * The one form of a `dir:` kernel spec: `dir:` and an absolute path without control
 * characters (group 1: the path). `rkhil run --kernel` and {@linkcode parseDirKernelSpec} use it.
 */
export const DIR_KERNEL_SPEC: RegExp = /^dir:(\/\P{Cc}{0,4000})$/u;

/** True for a `dir:` kernel spec (its form is checked by {@linkcode parseDirKernelSpec}). */
export function isDirKernelSpec(spec: string): boolean {
  return spec.startsWith("dir:");
}

/**
 * The directory of a `dir:/ABSOLUTE/DIR` kernel spec.
 *
 * @throws {UserInputError} when it is not `dir:` and an absolute path without control characters.
 */
export function parseDirKernelSpec(spec: string): string {
  const m = DIR_KERNEL_SPEC.exec(spec);
  if (!m) {
    throw new UserInputError(
      `kernel ${JSON.stringify(spec.slice(0, 200))} is not dir:/ABSOLUTE/DIRECTORY`,
      "give the directory that holds vmlinuz-<release> (and initrd.img-<release>, a .dtb)",
    );
  }
  return m[1].length > 1 ? m[1].replace(/\/+$/, "") : m[1];
}

/**
 * Read a `dir:` kernel's directory (see the module documentation).
 *
 * @throws {UserInputError} when it is not a directory, holds no or several `vmlinuz-*`, a
 *   release with characters `uname -r` cannot print, several `.dtb` files or one whose name a
 *   boot file cannot have (white space, quotes).
 */
export async function readDirKernel(spec: string): Promise<DeployKernel> {
  const dir = parseDirKernelSpec(spec);
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isFile || e.isSymlink) names.push(e.name);
  } catch (err) {
    throw new UserInputError(
      `kernel ${spec}: ${dir} is not a readable directory (${
        (err as Error).message.split("\n")[0]
      })`,
      "give the directory that holds vmlinuz-<release>",
    );
  }
  names.sort();
  const images = names.filter((n) => n.startsWith("vmlinuz-"));
  if (images.length !== 1) {
    throw new UserInputError(
      `kernel ${spec}: expected exactly one vmlinuz-<release> in ${dir}, found ${
        images.length ? images.join(", ").slice(0, 300) : "none"
      }`,
      "put one kernel per directory: vmlinuz-<release> [initrd.img-<release>] [one .dtb]",
    );
  }
  const release = images[0].slice("vmlinuz-".length);
  if (!BOOT_FILE_NAME.test(release)) {
    throw new UserInputError(
      `kernel ${spec}: release ${JSON.stringify(release)} of ${images[0]} has characters ` +
        "uname -r does not print",
      "name the image vmlinuz-<release> with letters, digits and ._+- (its uname -r)",
    );
  }
  const dtbs = names.filter((n) => n.endsWith(".dtb"));
  if (dtbs.length > 1) {
    throw new UserInputError(
      `kernel ${spec}: several device trees in ${dir} (${dtbs.join(", ").slice(0, 300)})`,
      "keep the one the board boots with",
    );
  }
  if (dtbs.length) checkDtbName(dtbs[0]);
  const initrd = names.includes(`initrd.img-${release}`) ? `initrd.img-${release}` : undefined;
  return {
    release,
    image: `${dir}/${images[0]}`,
    ...(initrd ? { initrd: `${dir}/${initrd}` } : {}),
    ...(dtbs.length ? { dtb: `${dir}/${dtbs[0]}` } : {}),
  };
}

/**
 * The host files of the kernel `spec` names, for {@linkcode import("./deploy.ts").deployKernel}.
 *
 * @throws {UserInputError} for a bad `dir:` kernel or an unknown Debian kernel.
 * @throws {InfraError} when the Debian kernel cannot be fetched.
 */
export async function deployKernelOf(spec: string): Promise<DeployKernel> {
  if (isDirKernelSpec(spec)) return await readDirKernel(spec);
  const k = await fetchKernel(spec);
  return { release: k.release, image: k.vmlinuz, modulesDir: k.modulesDir };
}
