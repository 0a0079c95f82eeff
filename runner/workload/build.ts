/**
 * The workload program's build: `target/workload/rkwl.c` cross-compiled for arm64 with the
 * host's `aarch64-linux-gnu-gcc` against Debian's arm64 `libtensorflow-lite-dev` (sid) and
 * `libstb-dev`, fetched through rkhil's private apt state (nothing touches the host's dpkg),
 * then bundled with the shared libraries it needs (the `DT_NEEDED` closure, read by
 * runner/workload/elf.ts), the arm64 dynamic loader and Mesa's Teflon delegate. A target runs
 * it with the bundled loader (`lib/ld-linux-aarch64.so.1 --library-path lib rkwl ...`), so the
 * bundle never mixes with the target's own libc. Builds are cached by their inputs (the
 * sources, the .deb files, the compiler's version line, the flags).
 *
 * @module
 */

import { InfraError } from "../errors.ts";
import { cacheDir, exists, readJsonIfExists, sha256Hex, writeJsonAtomic } from "../debian/cache.ts";
import { extractDeb, sharedApt } from "../debian/kernel.ts";
import { run } from "../debian/proc.ts";
import { EM_AARCH64, readElfDynamic } from "./elf.ts";

/** Bump when the bundle layout or the build steps change. */
const BUNDLE_LAYOUT = 1;

/** The Debian suite the arm64 build packages come from (TFLite 2.14.1 is in sid only). */
export const WORKLOAD_SUITE = "sid";

/** Packages the build needs (their dependency closure comes with them). */
export const WORKLOAD_PACKAGES: readonly string[] = [
  "libtensorflow-lite-dev",
  "libstb-dev",
  "libc6-dev",
];

/** Mesa's Teflon delegate (the rocket backend), bundled as `teflon/libteflon.so`. */
export const TEFLON_PACKAGE = "mesa-teflon-delegate";

const SOURCES_DIR = new URL("../../target/workload", import.meta.url).pathname;
const SOURCES = ["rkwl.c", "rkwl_image.c"];
const CC = "aarch64-linux-gnu-gcc";
const CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-s"];
const LIB_DIRS = ["usr/lib/aarch64-linux-gnu", "lib/aarch64-linux-gnu", "usr/lib", "lib"];

/** The loader's file name inside the bundle's `lib/`. */
export const BUNDLE_LOADER = "ld-linux-aarch64.so.1";

/** A built workload bundle on the host. */
export interface WorkloadBundle {
  /** Host directory: `rkwl`, `lib/` (libraries and loader), `teflon/libteflon.so`. */
  dir: string;
  /** Cache key: SHA-256 of the build inputs. */
  key: string;
  /** Every file, relative to `dir`, with its size in bytes. */
  files: { path: string; size: number }[];
  /** Total size in bytes. */
  size: number;
  /** Wall time of the build that made this bundle, in milliseconds (also when reused). */
  buildMs: number;
  /** True when this call reused a cached bundle. */
  cached: boolean;
  /** The arm64 packages it was built against, with their versions. */
  packages: { pkg: string; version: string }[];
  /** The compiler's `--version` first line. */
  ccVersion: string;
  /** `teflon/libteflon.so` when the delegate is bundled. */
  teflon?: string;
}

/**
 * The command line that runs the bundle's program with its own loader and libraries, for a
 * bundle copied to `root` (a directory on the target, or the host directory under user-mode
 * QEMU).
 */
export function bundleCommand(root: string, args: readonly string[]): string[] {
  return [`${root}/lib/${BUNDLE_LOADER}`, "--library-path", `${root}/lib`, `${root}/rkwl`, ...args];
}

/** Options of {@linkcode buildWorkload}. */
export interface BuildOptions {
  /** Bundle Mesa's Teflon delegate (default true). */
  teflon?: boolean;
  /** Report progress. */
  progress?: (line: string) => void;
  /**
   * Build again into a new directory outside the cache (for the benchmark of the build time);
   * the caller removes `dir` afterwards. Default false.
   */
  fresh?: boolean;
}

interface Meta {
  key: string;
  files: { path: string; size: number }[];
  buildMs: number;
  packages: { pkg: string; version: string }[];
  ccVersion: string;
  teflon?: string;
}

/** Find a library by file name in the sysroot's library directories. */
async function findLib(sysroot: string, name: string): Promise<string | undefined> {
  for (const d of LIB_DIRS) {
    const p = `${sysroot}/${d}/${name}`;
    if (await exists(p)) return await Deno.realPath(p);
  }
  return undefined;
}

/**
 * Copy the `DT_NEEDED` closure of `roots` from the sysroot into `libDir` (each library under
 * the name it is needed by). Returns the names copied.
 */
export async function copyClosure(
  sysroot: string,
  roots: string[],
  libDir: string,
): Promise<string[]> {
  const done = new Set<string>();
  const queue = [...roots];
  while (queue.length) {
    const file = queue.shift()!;
    const info = readElfDynamic(await Deno.readFile(file));
    if (info.machine !== EM_AARCH64) {
      throw new InfraError(
        `${file} is not an AArch64 object (e_machine ${info.machine})`,
        "the workload sysroot must hold arm64 packages only",
      );
    }
    for (const name of info.needed) {
      if (done.has(name)) continue;
      const src = await findLib(sysroot, name);
      if (!src) {
        throw new InfraError(
          `${name} (needed by ${
            file.slice(sysroot.length + 1)
          }) is in no package of the workload sysroot`,
          "add the package that ships it to WORKLOAD_PACKAGES in runner/workload/build.ts",
        );
      }
      done.add(name);
      await Deno.copyFile(src, `${libDir}/${name}`);
      queue.push(src);
    }
  }
  return [...done].sort();
}

async function listFiles(dir: string, rel = ""): Promise<{ path: string; size: number }[]> {
  const out: { path: string; size: number }[] = [];
  for await (const e of Deno.readDir(`${dir}/${rel}`)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listFiles(dir, p));
    else out.push({ path: p, size: (await Deno.stat(`${dir}/${p}`)).size });
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

const memo = new Map<boolean, Promise<WorkloadBundle>>();

/**
 * Build (or reuse) the workload bundle. Within one process the bundle is resolved once (the
 * later calls return it as `cached`).
 *
 * @throws {InfraError} the packages cannot be fetched, the compiler fails, or a needed library
 * is in no fetched package.
 */
export function buildWorkload(opts: BuildOptions = {}): Promise<WorkloadBundle> {
  const teflon = opts.teflon ?? true;
  if (opts.fresh) return build(teflon, opts.progress ?? (() => {}), true);
  const hit = memo.get(teflon);
  if (hit) return hit.then((b) => ({ ...b, cached: true }));
  const p = build(teflon, opts.progress ?? (() => {}), false);
  memo.set(teflon, p);
  p.catch(() => memo.delete(teflon));
  return p;
}

async function build(
  teflon: boolean,
  say: (line: string) => void,
  fresh: boolean,
): Promise<WorkloadBundle> {
  const t0 = performance.now();
  const { apt } = await sharedApt();
  const wanted = [...WORKLOAD_PACKAGES, ...(teflon ? [TEFLON_PACKAGE] : [])];
  const closure = await apt.resolveInstall(wanted, WORKLOAD_SUITE);
  const debs = await apt.download(closure.map((p) => ({ pkg: p.pkg, version: p.version })));
  const ccVersion = (await run(CC, ["--version"], { owner: `${CC} --version`, timeoutMs: 60_000 }))
    .stdout.split("\n")[0].trim();
  const sources: Record<string, string> = {};
  for (const s of SOURCES) sources[s] = await sha256Hex(await Deno.readFile(`${SOURCES_DIR}/${s}`));
  const debKey = await sha256Hex(debs.map((d) => d.sha256).sort().join("\n"));
  const key = await sha256Hex(
    JSON.stringify({ BUNDLE_LAYOUT, sources, debKey, ccVersion, CFLAGS, teflon }),
  );
  const dir = fresh
    ? `${await Deno.makeTempDir({ prefix: "rkhil-rkwl-" })}/bundle`
    : `${await cacheDir("workload", "bundles")}/${key}`;
  const cachedMeta = fresh ? undefined : await readJsonIfExists<Meta>(`${dir}.json`);
  if (cachedMeta && await exists(`${dir}/rkwl`)) {
    return { ...cachedMeta, dir, size: sum(cachedMeta.files), cached: true };
  }
  const sysroot = `${await cacheDir("workload", "sysroots")}/${debKey}`;
  say(`unpacking ${debs.length} arm64 packages`);
  await extractDeb(debs.map((d) => d.path), sysroot, async (tmp) => {
    // Merged /usr: libc.so's linker script names /lib/ld-linux-aarch64.so.1.
    if (!await exists(`${tmp}/lib`)) await Deno.symlink("usr/lib", `${tmp}/lib`);
  });
  const tmp = `${dir}.${crypto.randomUUID()}.tmp`;
  await Deno.mkdir(`${tmp}/lib`, { recursive: true });
  try {
    say(`compiling with ${ccVersion}`);
    const res = await run(CC, [
      `--sysroot=${sysroot}`,
      ...CFLAGS,
      `-I${sysroot}/usr/include`,
      `-I${sysroot}/usr/include/aarch64-linux-gnu`,
      "-o",
      `${tmp}/rkwl`,
      ...SOURCES.map((s) => `${SOURCES_DIR}/${s}`),
      `-L${sysroot}/usr/lib/aarch64-linux-gnu`,
      `-Wl,-rpath-link,${sysroot}/usr/lib/aarch64-linux-gnu`,
      "-ltensorflow-lite",
      "-lm",
      "-ldl",
    ], { owner: "workload program compile", timeoutMs: 600_000, allowFailure: true });
    if (res.code !== 0) {
      throw new InfraError(
        `compiling target/workload failed (${ccVersion}):\n${
          res.stderr.trim().split("\n").slice(-15).join("\n")
        }`,
        "fix the C source, or check the arm64 packages in the cache's workload/sysroots",
      );
    }
    const roots = [`${tmp}/rkwl`];
    let teflonPath: string | undefined;
    if (teflon) {
      const lib = `${sysroot}/usr/lib/teflon/libteflon.so`;
      if (!await exists(lib)) {
        throw new InfraError(
          `${TEFLON_PACKAGE} has no usr/lib/teflon/libteflon.so`,
          "the package layout changed; update runner/workload/build.ts",
        );
      }
      await Deno.mkdir(`${tmp}/teflon`);
      await Deno.copyFile(lib, `${tmp}/teflon/libteflon.so`);
      roots.push(`${tmp}/teflon/libteflon.so`);
      teflonPath = "teflon/libteflon.so";
    }
    say("bundling the DT_NEEDED closure");
    const libs = await copyClosure(sysroot, roots, `${tmp}/lib`);
    if (!libs.includes(BUNDLE_LOADER)) {
      throw new InfraError(
        `the closure of rkwl does not name ${BUNDLE_LOADER}`,
        "the arm64 libc changed its loader name; update runner/workload/build.ts",
      );
    }
    const files = await listFiles(tmp);
    const byPkg = new Map(closure.map((p) => [p.pkg, p.version]));
    const meta: Meta = {
      key,
      files,
      buildMs: Math.round(performance.now() - t0),
      packages: [...byPkg].map(([pkg, version]) => ({ pkg, version })),
      ccVersion,
      teflon: teflonPath,
    };
    await Deno.rename(tmp, dir).catch(async (err) => {
      if (!await exists(`${dir}/rkwl`)) throw err; // a concurrent build won otherwise
      await Deno.remove(tmp, { recursive: true });
    });
    if (!fresh) await writeJsonAtomic(`${dir}.json`, meta);
    return { ...meta, dir, size: sum(files), cached: false };
  } catch (err) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw err;
  }
}

function sum(files: { size: number }[]): number {
  return files.reduce((n, f) => n + f.size, 0);
}

/** What one run of the program under user-mode QEMU gave. */
export interface UserModeRun {
  /** Exit status of the program. */
  code: number;
  /** Its standard output (the `rkwl` lines). */
  stdout: string;
  /** Its standard error. */
  stderr: string;
  /** Wall time in milliseconds. */
  wallMs: number;
}

/**
 * Run the bundle's program on this host under user-mode QEMU (`qemu-aarch64`, package
 * qemu-user). For tests and the benchmark: user-mode QEMU runs no kernel, so this proves the
 * bundle and the program, not a target.
 */
export async function runUserMode(
  bundle: WorkloadBundle,
  args: readonly string[],
  timeoutMs = 300_000,
): Promise<UserModeRun> {
  const t0 = performance.now();
  const res = await run("qemu-aarch64", bundleCommand(bundle.dir, args), {
    allowFailure: true,
    timeoutMs,
    owner: "rkwl under qemu-aarch64",
  });
  return { ...res, wallMs: performance.now() - t0 };
}
