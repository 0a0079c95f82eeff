/**
 * Builds the emulated Rockchip IOMMU module (`target/rkiommu-emu/rkiommu_emu.c`, issue 15) for
 * one Debian arm64 kernel with the probe module's cross toolchain (runner/probe/toolchain.ts:
 * the kernel's headers, host-arch kbuild, the GCC major the kernel was built with), cached by
 * the hash of the sources, the exact kernel and the toolchain.
 *
 * @module
 */

import { InfraError } from "../errors.ts";
import { cacheDir, exists, readJsonIfExists, sha256Hex, writeJsonAtomic } from "../debian/cache.ts";
import { run, tail } from "../debian/proc.ts";
import { prepareToolchain } from "../probe/toolchain.ts";
import { vermagicOf } from "../probe/build.ts";

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
  const parts: string[] = [];
  for (const f of EMU_SOURCES) {
    parts.push(`${f}\0${await sha256Hex(await Deno.readFile(new URL(f, EMU_SOURCE_DIR)))}`);
  }
  const key = await sha256Hex(JSON.stringify({
    sources: await sha256Hex(parts.join("\n")),
    release: tc.kernel.release,
    version: tc.kernel.version,
    toolchain: tc.identity,
  }));
  const dir = `${await cacheDir("rkiommu-emu", "modules")}/${key}`;
  const metaPath = `${dir}/rkiommu_emu.json`;
  if (!opts.rebuild) {
    const cached = await readJsonIfExists<EmuModule>(metaPath);
    if (cached && await exists(cached.ko)) return { ...cached, built: false };
  }
  await Deno.mkdir(dir, { recursive: true });
  const work = await Deno.makeTempDir({ dir, prefix: "build." });
  try {
    for (const f of EMU_SOURCES) {
      await Deno.copyFile(new URL(f, EMU_SOURCE_DIR), `${work}/${f}`);
    }
    const res = await run("make", ["-C", tc.buildDir, `M=${work}`, ...tc.makeArgs, "modules"], {
      env: tc.env,
      allowFailure: true,
      owner: `make rkiommu_emu.ko for ${tc.kernel.release}`,
      timeoutMs: 600_000,
    });
    await Deno.writeTextFile(`${dir}/build.log`, res.stdout + res.stderr);
    if (res.code !== 0 || !await exists(`${work}/rkiommu_emu.ko`)) {
      throw new InfraError(
        `building rkiommu_emu.ko for ${tc.kernel.release} failed (make status ${res.code}):\n${
          tail(res.stderr || res.stdout, 15)
        }`,
        `see ${dir}/build.log`,
      );
    }
    const bytes = await Deno.readFile(`${work}/rkiommu_emu.ko`);
    const vermagic = vermagicOf(bytes) ?? "";
    if (vermagic.split(" ")[0] !== tc.kernel.release) {
      throw new InfraError(
        `rkiommu_emu.ko was built with vermagic "${vermagic}", not for ${tc.kernel.release}`,
        `the headers in ${tc.buildDir} do not match the kernel; delete that tree and retry`,
      );
    }
    const ko = `${dir}/rkiommu_emu.ko`;
    await Deno.writeFile(`${ko}.tmp`, bytes);
    await Deno.rename(`${ko}.tmp`, ko);
    const meta: EmuModule = {
      ko,
      sha256: await sha256Hex(bytes),
      release: tc.kernel.release,
      vermagic,
      key,
      built: true,
    };
    await writeJsonAtomic(metaPath, meta);
    return meta;
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}
