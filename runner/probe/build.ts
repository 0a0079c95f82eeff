/**
 * Builds the probe kernel module (`target/probe/rkprobe.c`) for one Debian arm64 kernel ABI
 * with the cross toolchain of toolchain.ts, cached by content (kmod_build.ts: the hash of the
 * module sources, the exact kernel and the toolchain).
 *
 * @module
 */

import { buildKernelModule, type ModuleSources, sourcesHash } from "./kmod_build.ts";
import { type CrossToolchain, prepareToolchain } from "./toolchain.ts";

export { vermagicOf } from "./kmod_build.ts";

/** Source files of the module, relative to target/probe/. */
export const PROBE_SOURCES = ["rkprobe.c", "Kbuild"] as const;

/** Directory of the module sources. */
export const PROBE_SOURCE_DIR = new URL("../../target/probe/", import.meta.url);

/** A built module. */
export interface ProbeModule {
  /** Path of rkprobe.ko in the cache. */
  ko: string;
  sha256: string;
  /** Kernel release it was built for (`uname -r`). */
  release: string;
  /** Debian version of that kernel. */
  kernelVersion: string;
  /** The module's vermagic string. */
  vermagic: string;
  /** Cross compiler `--version` line and where it came from. */
  compiler: string;
  ccSource: "host" | "sysroot";
  /** Kernel's `CONFIG_CC_VERSION_TEXT`. */
  kernelCompiler: string;
  /** Cache key. */
  key: string;
  builtAt: string;
  /** True if this call built it (false: from the cache). */
  built?: boolean;
}

/** Options of {@linkcode buildProbeModule}. */
export interface BuildOptions {
  /** Build even if a cached module exists. */
  rebuild?: boolean;
  /** Prepared toolchain (tests that prepare it once). */
  toolchain?: CrossToolchain;
}

/** The probe module's sources. */
const PROBE: ModuleSources = {
  name: "rkprobe",
  dir: PROBE_SOURCE_DIR,
  files: PROBE_SOURCES,
  cache: "probe",
};

/** Hash of the module sources (the content part of the cache key). */
export function probeSourceHash(): Promise<string> {
  return sourcesHash(PROBE);
}

/**
 * The path of `rkprobe.ko` built for the exact kernel ABI of `kernelSpec` (`debian:trixie`,
 * `debian:6.1.192-2`, ...), building it if needed. Installs what the build needs (host apt
 * packages; Debian packages through rkhil's private apts).
 */
export async function buildProbeModule(
  kernelSpec: string,
  opts: BuildOptions = {},
): Promise<ProbeModule> {
  const tc = opts.toolchain ?? await prepareToolchain(kernelSpec);
  return await buildKernelModule(PROBE, tc, (built) => ({
    ...built,
    release: tc.kernel.release,
    kernelVersion: tc.kernel.version,
    compiler: tc.ccVersion,
    ccSource: tc.ccSource,
    kernelCompiler: tc.compiler.versionText,
    builtAt: new Date().toISOString(),
  }), opts);
}
