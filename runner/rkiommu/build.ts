/**
 * Builds the emulated Rockchip IOMMU module (`target/rkiommu-emu/rkiommu_emu.c`, issue 15) for
 * one Debian arm64 kernel with the probe module's cross toolchain (runner/probe/toolchain.ts:
 * the kernel's headers, host-arch kbuild, the GCC major the kernel was built with), cached by
 * the hash of the sources, the exact kernel and the toolchain.
 *
 * @module
 */

import { buildKernelModule } from "../probe/kmod_build.ts";
import { prepareToolchain } from "../probe/toolchain.ts";

/** Source files of the module, relative to target/rkiommu-emu/. */
export const EMU_SOURCES = ["rkiommu_emu.c", "Kbuild"] as const;

/** Directory of the module sources. */
export const EMU_SOURCE_DIR = new URL("../../target/rkiommu-emu/", import.meta.url);

/** A built `rkiommu_emu.ko`. */
export interface EmuModule {
  /** Path of the .ko in the cache. */
  ko: string;
  /** SHA-256 of the .ko (hex). */
  sha256: string;
  /** Kernel release it was built for (`uname -r`). */
  release: string;
  /** The module's vermagic string. */
  vermagic: string;
  /** Cache key. */
  key: string;
  /** True if this call built it (false: from the cache). */
  built: boolean;
}

/**
 * The path of `rkiommu_emu.ko` built for the exact kernel ABI of `kernelSpec`
 * (`debian:trixie`, ...), building it if needed.
 *
 * @throws {InfraError} when the build fails (the make output's tail and the log's path) or the
 *   module's vermagic is not the kernel's release.
 */
export async function buildEmuModule(
  kernelSpec: string,
  opts: { rebuild?: boolean } = {},
): Promise<EmuModule> {
  const tc = await prepareToolchain(kernelSpec);
  return await buildKernelModule(
    { name: "rkiommu_emu", dir: EMU_SOURCE_DIR, files: EMU_SOURCES, cache: "rkiommu-emu" },
    tc,
    (built) => ({ ...built, release: tc.kernel.release }),
    opts,
  );
}
