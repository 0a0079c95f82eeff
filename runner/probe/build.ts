/**
 * Builds the probe kernel module (`target/probe/rkprobe.c`) for one Debian arm64 kernel ABI
 * with the cross toolchain of toolchain.ts, and caches the result by content: the key is the
 * hash of the module sources, the exact kernel (release + Debian version + headers packages)
 * and the toolchain, so a module is rebuilt exactly when one of them changes.
 *
 * @module
 */

import { InfraError } from "../errors.ts";
import { cacheDir, exists, readJsonIfExists, sha256Hex, writeJsonAtomic } from "../debian/cache.ts";
import { run, tail } from "../debian/proc.ts";
import { type CrossToolchain, prepareToolchain } from "./toolchain.ts";

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

/** The `vermagic=` string of a .ko (from its .modinfo section). */
export function vermagicOf(ko: Uint8Array): string | undefined {
  const text = new TextDecoder("latin1").decode(ko);
  return text.match(/vermagic=([^\0]*)\0/)?.[1];
}

/** Hash of the module sources (the content part of the cache key). */
export async function probeSourceHash(): Promise<string> {
  const parts: string[] = [];
  for (const f of PROBE_SOURCES) {
    parts.push(`${f}\0${await sha256Hex(await Deno.readFile(new URL(f, PROBE_SOURCE_DIR)))}`);
  }
  return await sha256Hex(parts.join("\n"));
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
  const key = await sha256Hex(JSON.stringify({
    sources: await probeSourceHash(),
    release: tc.kernel.release,
    version: tc.kernel.version,
    toolchain: tc.identity,
  }));
  const dir = `${await cacheDir("probe", "modules")}/${key}`;
  const metaPath = `${dir}/rkprobe.json`;
  if (!opts.rebuild) {
    const cached = await readJsonIfExists<ProbeModule>(metaPath);
    if (cached && await exists(cached.ko)) return { ...cached, built: false };
  }
  await Deno.mkdir(dir, { recursive: true });
  const work = await Deno.makeTempDir({ dir, prefix: "build." });
  try {
    for (const f of PROBE_SOURCES) {
      await Deno.copyFile(new URL(f, PROBE_SOURCE_DIR), `${work}/${f}`);
    }
    const res = await run("make", [
      "-C",
      tc.buildDir,
      `M=${work}`,
      ...tc.makeArgs,
      "modules",
    ], {
      env: tc.env,
      allowFailure: true,
      owner: `make rkprobe.ko for ${tc.kernel.release}`,
      timeoutMs: 600_000,
    });
    await Deno.writeTextFile(`${dir}/build.log`, res.stdout + res.stderr);
    if (res.code !== 0 || !await exists(`${work}/rkprobe.ko`)) {
      throw new InfraError(
        `building rkprobe.ko for ${tc.kernel.release} failed (make status ${res.code}):\n${
          tail(res.stderr || res.stdout, 15)
        }`,
        `see ${dir}/build.log; the build ran \`make -C ${tc.buildDir} M=<dir> ${
          tc.makeArgs.join(" ")
        } modules\` with ${tc.cc}`,
      );
    }
    const bytes = await Deno.readFile(`${work}/rkprobe.ko`);
    const vermagic = vermagicOf(bytes) ?? "";
    if (vermagic.split(" ")[0] !== tc.kernel.release) {
      throw new InfraError(
        `rkprobe.ko was built with vermagic "${vermagic}", not for ${tc.kernel.release}`,
        `the headers in ${tc.buildDir} do not match the kernel; delete that tree and retry`,
      );
    }
    const ko = `${dir}/rkprobe.ko`;
    await Deno.writeFile(`${ko}.tmp`, bytes);
    await Deno.rename(`${ko}.tmp`, ko);
    const meta: ProbeModule = {
      ko,
      sha256: await sha256Hex(bytes),
      release: tc.kernel.release,
      kernelVersion: tc.kernel.version,
      vermagic,
      compiler: tc.ccVersion,
      ccSource: tc.ccSource,
      kernelCompiler: tc.compiler.versionText,
      key,
      builtAt: new Date().toISOString(),
    };
    await writeJsonAtomic(metaPath, meta);
    return { ...meta, built: true };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}
