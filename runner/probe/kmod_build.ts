/**
 * Builds one out-of-tree kernel module of ours (`target/probe/`, `target/rkiommu-emu/`) for one
 * Debian arm64 kernel with the cross toolchain of toolchain.ts, cached by content: the key is
 * the hash of the module's sources, the exact kernel (release + Debian version) and the
 * toolchain, so a module is rebuilt exactly when one of them changes.
 *
 * @module
 */

import { InfraError } from "../errors.ts";
import { cacheDir, exists, readJsonIfExists, sha256Hex, writeJsonAtomic } from "../debian/cache.ts";
import { run, tail } from "../debian/proc.ts";
import type { CrossToolchain } from "./toolchain.ts";

/** Where a module's sources are and what it is called. */
export interface ModuleSources {
  /** Module name: the build makes `<name>.ko`. */
  name: string;
  /** Directory of the sources (a `file:` URL ending in `/`). */
  dir: URL;
  /** Source files relative to `dir` (the Kbuild included), copied into the build. */
  files: readonly string[];
  /** Cache directory under rkhil's cache (`<cache>/modules/<key>/`). */
  cache: string;
}

/** What every built module records; each module's metadata adds its own fields. */
export interface BuiltKo {
  /** Path of the .ko in the cache. */
  ko: string;
  /** SHA-256 of the .ko (hex). */
  sha256: string;
  /** The module's vermagic string. */
  vermagic: string;
  /** Cache key. */
  key: string;
}

/** The `vermagic=` string of a .ko (from its .modinfo section). */
export function vermagicOf(ko: Uint8Array): string | undefined {
  const text = new TextDecoder("latin1").decode(ko);
  return text.match(/vermagic=([^\0]*)\0/)?.[1];
}

/** Hash of a module's sources (the content part of the cache key). */
export async function sourcesHash(src: ModuleSources): Promise<string> {
  const parts: string[] = [];
  for (const f of src.files) {
    parts.push(`${f}\0${await sha256Hex(await Deno.readFile(new URL(f, src.dir)))}`);
  }
  return await sha256Hex(parts.join("\n"));
}

/**
 * The module built for `tc`'s kernel: taken from the cache when it holds one and `rebuild` is
 * not set (`built: false`); else built now (`built: true`): `make -C <headers> M=<copy of the
 * sources> modules`, its vermagic checked against the kernel's release, the .ko and `meta(ko)`
 * (its `<name>.json`) stored atomically.
 *
 * @throws {InfraError} when make fails (the output's tail; the whole log in the cache
 *   directory) or the vermagic is not the kernel's release.
 */
export async function buildKernelModule<M extends BuiltKo>(
  src: ModuleSources,
  tc: CrossToolchain,
  meta: (built: BuiltKo) => M,
  opts: { rebuild?: boolean } = {},
): Promise<M & { built: boolean }> {
  const key = await sha256Hex(JSON.stringify({
    sources: await sourcesHash(src),
    release: tc.kernel.release,
    version: tc.kernel.version,
    toolchain: tc.identity,
  }));
  const dir = `${await cacheDir(src.cache, "modules")}/${key}`;
  const metaPath = `${dir}/${src.name}.json`;
  if (!opts.rebuild) {
    const cached = await readJsonIfExists<M>(metaPath);
    if (cached && await exists(cached.ko)) return { ...cached, built: false };
  }
  await Deno.mkdir(dir, { recursive: true });
  const work = await Deno.makeTempDir({ dir, prefix: "build." });
  const file = `${src.name}.ko`;
  try {
    for (const f of src.files) await Deno.copyFile(new URL(f, src.dir), `${work}/${f}`);
    const res = await run("make", ["-C", tc.buildDir, `M=${work}`, ...tc.makeArgs, "modules"], {
      env: tc.env,
      allowFailure: true,
      owner: `make ${file} for ${tc.kernel.release}`,
      timeoutMs: 600_000,
    });
    await Deno.writeTextFile(`${dir}/build.log`, res.stdout + res.stderr);
    if (res.code !== 0 || !await exists(`${work}/${file}`)) {
      throw new InfraError(
        `building ${file} for ${tc.kernel.release} failed (make status ${res.code}):\n${
          tail(res.stderr || res.stdout, 15)
        }`,
        `see ${dir}/build.log; the build ran \`make -C ${tc.buildDir} M=<dir> ${
          tc.makeArgs.join(" ")
        } modules\` with ${tc.cc}`,
      );
    }
    const bytes = await Deno.readFile(`${work}/${file}`);
    const vermagic = vermagicOf(bytes) ?? "";
    if (vermagic.split(" ")[0] !== tc.kernel.release) {
      throw new InfraError(
        `${file} was built with vermagic "${vermagic}", not for ${tc.kernel.release}`,
        `the headers in ${tc.buildDir} do not match the kernel; delete that tree and retry`,
      );
    }
    const ko = `${dir}/${file}`;
    await Deno.writeFile(`${ko}.tmp`, bytes);
    await Deno.rename(`${ko}.tmp`, ko);
    const m = meta({ ko, sha256: await sha256Hex(bytes), vermagic, key });
    await writeJsonAtomic(metaPath, m);
    return { ...m, built: true };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}
