/**
 * The cross toolchain of the probe module build: for one Debian arm64 kernel, a build tree
 * (its `linux-headers-<abi>-arm64` and `-common` headers) whose kbuild helpers (fixdep,
 * modpost, ...) are the HOST-architecture `linux-kbuild-*` package of the same version, and an
 * aarch64 cross compiler of the major version the kernel was built with
 * (`CONFIG_CC_VERSION_TEXT`).
 *
 * Where things come from:
 * - Headers: rkhil's private arm64 apt (`fetchKernelHeaders`).
 * - Host-arch kbuild: the private host-arch apt (host_apt.ts), the kernel's version exactly.
 * - Compiler: `aarch64-linux-gnu-gcc-<N>` from the host if it has it or its apt can install
 *   `gcc-<N>-aarch64-linux-gnu`; otherwise the host-arch package of the kernel's own suite
 *   through the private host-arch apt (a bookworm host has no gcc-14 cross compiler for trixie
 *   kernels).
 *
 * Packages fetched through the private host-arch apt are built for their suite's C library,
 * which may be newer than the host's (trixie's kbuild needs glibc 2.38 on a bookworm host with
 * 2.36). They are unpacked with their shared-library closure into a "sysroot" and every ELF
 * executable in it is relocated with patchelf: interpreter = the sysroot's ld.so, RPATH = the
 * sysroot's library directories. Nothing is installed into the host's /usr for them.
 *
 * @module
 */

import { InfraError, UserInputError } from "../errors.ts";
import { cacheDir, exists, sha256Hex, writeJsonAtomic } from "../debian/cache.ts";
import {
  extractDeb,
  type FetchedHeaders,
  fetchKernelHeaders,
  type ResolvedKernel,
  sharedApt,
} from "../debian/kernel.ts";
import { aptInstall, ensureHostTools, which } from "../debian/host_tools.ts";
import { run } from "../debian/proc.ts";
import { hostArchApt } from "./host_apt.ts";

/** Bump when the sysroot or build tree layout changes. */
const TOOLCHAIN_LAYOUT = 1;

/** What the kernel's .config says about its compiler. */
export interface KernelCompiler {
  /** `CONFIG_CC_VERSION_TEXT`, e.g. `aarch64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0`. */
  versionText: string;
  /** GCC major version, e.g. 14. */
  major: number;
  /** `CONFIG_GCC_VERSION` as x.y.z. */
  version: string;
}

/** A ready build environment for one kernel. */
export interface CrossToolchain {
  kernel: ResolvedKernel;
  compiler: KernelCompiler;
  /** The kbuild directory to pass to `make -C`. */
  buildDir: string;
  /** Arguments after `make -C buildDir M=dir`. */
  makeArgs: string[];
  /** Environment for make (PATH with the sysroot's bin first, LC_ALL=C). */
  env: Record<string, string>;
  /** Where the cross compiler comes from. */
  ccSource: "host" | "sysroot";
  /** Full path of the cross compiler. */
  cc: string;
  /** `aarch64-linux-gnu-gcc-N --version` first line. */
  ccVersion: string;
  /** Host-arch kbuild package used. */
  kbuild: { pkg: string; version: string };
  /** Sysroot of the relocated host-arch kbuild package. */
  sysroot: string;
  /** Sysroot of the relocated cross compiler (ccSource "sysroot" only). */
  ccSysroot?: string;
  /** Inputs that identify this toolchain (part of the module cache key). */
  identity: string;
}

/** Parse the compiler out of a kernel .config. */
export function kernelCompiler(config: string): KernelCompiler {
  const text = config.match(/^CONFIG_CC_VERSION_TEXT="(.*)"$/m)?.[1];
  const gcc = Number(config.match(/^CONFIG_GCC_VERSION=(\d+)$/m)?.[1]);
  if (!text || !/^CONFIG_CC_IS_GCC=y$/m.test(config) || !Number.isInteger(gcc) || gcc <= 0) {
    throw new UserInputError(
      `the kernel was not built with GCC (CONFIG_CC_VERSION_TEXT=${text ?? "missing"})`,
      "rkhil builds the probe module with Debian's GCC cross compilers only; pick a Debian kernel",
    );
  }
  const major = Math.floor(gcc / 10000);
  const version = `${major}.${Math.floor(gcc / 100) % 100}.${gcc % 100}`;
  return { versionText: text, major, version };
}

/** The base release of a suite (`trixie-backports` → `trixie`, `bookworm-security` → `bookworm`). */
export function baseSuite(suite: string): string {
  return suite.replace(/-(backports|security|updates|proposed-updates)$/, "");
}

/** ELF64 little-endian file with a PT_INTERP program header (a dynamic executable). */
export function hasInterp(head: Uint8Array): boolean {
  if (head.length < 64 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c) return false;
  if (head[3] !== 0x46 || head[4] !== 2 || head[5] !== 1) return false;
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const phoff = Number(dv.getBigUint64(0x20, true));
  const phentsize = dv.getUint16(0x36, true);
  const phnum = dv.getUint16(0x38, true);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > head.length) return false;
    if (dv.getUint32(off, true) === 3) return true;
  }
  return false;
}

async function* walkFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) yield* walkFiles(p);
    else if (e.isFile) yield p;
  }
}

async function readHead(path: string, n = 4096): Promise<Uint8Array> {
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await f.read(buf.subarray(got));
    if (r === null) break;
    got += r;
  }
  return buf.subarray(0, got);
}

/**
 * Relocate every dynamic ELF executable under `tmp` (which will be renamed to `finalRoot`) to
 * the sysroot's ld.so and libraries. Returns how many files were patched.
 */
export async function relocateSysroot(tmp: string, finalRoot: string): Promise<number> {
  let ldso: string | undefined;
  const execs: string[] = [];
  for await (const p of walkFiles(tmp)) {
    const name = p.slice(p.lastIndexOf("/") + 1);
    const rel = p.slice(tmp.length);
    if (
      /^ld-linux[^/]*\.so\.\d+$/.test(name) && !rel.includes("-cross") &&
      !rel.includes("/aarch64-linux-gnu/")
    ) {
      ldso ??= rel;
      continue;
    }
    if (name.includes(".so")) continue;
    if (hasInterp(await readHead(p))) execs.push(p);
  }
  if (!ldso) {
    throw new InfraError(
      "the host-arch sysroot has no dynamic loader (ld-linux*.so.*)",
      "the package set resolved without libc6: check the private host-arch apt",
    );
  }
  const libDir = ldso.slice(0, ldso.lastIndexOf("/")); // e.g. /usr/lib/x86_64-linux-gnu
  const triplet = libDir.slice(libDir.lastIndexOf("/") + 1);
  const rpath = [`${finalRoot}/usr/lib/${triplet}`, `${finalRoot}/lib/${triplet}`].join(":");
  for (const p of execs) {
    await run("patchelf", [
      "--set-interpreter",
      `${finalRoot}${ldso}`,
      "--force-rpath",
      "--set-rpath",
      rpath,
      p,
    ], { owner: "patchelf (probe sysroot)", timeoutMs: 60_000 });
  }
  return execs.length;
}

/** True if the host's own apt has an install candidate for `pkg`. */
async function hostHasCandidate(pkg: string): Promise<boolean> {
  const res = await run("apt-cache", ["policy", pkg], {
    allowFailure: true,
    env: { LC_ALL: "C" },
    owner: "apt-cache policy",
  });
  const cand = res.stdout.match(/Candidate:\s*(\S+)/)?.[1];
  return !!cand && cand !== "(none)";
}

async function ccVersionLine(cc: string, env: Record<string, string>): Promise<string> {
  const res = await run(cc, ["--version"], { env, owner: `${cc} --version`, timeoutMs: 60_000 });
  return res.stdout.split("\n")[0].trim();
}

/** The host-arch kbuild package the arm64 headers name, at the kernel's version. */
async function kbuildPackage(kernel: ResolvedKernel): Promise<{ pkg: string; version: string }> {
  const { apt } = await sharedApt();
  const fields = await apt.show(`linux-headers-${kernel.release}`, kernel.version);
  const name = (fields["Depends"] ?? "").split(",").map((s) => s.trim())
    .map((s) => s.match(/^(linux-kbuild-\S+)/)?.[1]).find((s) => s);
  if (!name) {
    throw new InfraError(
      `linux-headers-${kernel.release} ${kernel.version} names no linux-kbuild package`,
      "this Debian kernel packaging is not supported by the probe build",
    );
  }
  const host = await hostArchApt();
  const versions = await host.apt.madison([name]);
  const hit = versions.find((v) => v.version === kernel.version);
  if (!hit) {
    throw new InfraError(
      `no ${host.arch} ${name} ${kernel.version} on this machine's mirror (have: ${
        versions.map((v) => `${v.version} (${v.suite})`).join(", ") || "none"
      })`,
      "the mirror must serve the host architecture of the kernel's suite; " +
        "rerun with RKHIL_APT_MAX_AGE_S=1 to refresh the package lists",
    );
  }
  return { pkg: name, version: hit.version };
}

/**
 * Resolve `pkgs` with their dependency closure in `suite` for the host architecture, download
 * them and unpack them (once, by content) into a relocated sysroot.
 */
export async function sysrootFor(
  pkgs: string[],
  suite: string,
): Promise<{ root: string; key: string }> {
  const host = await hostArchApt();
  const closure = await host.apt.resolveInstall(pkgs, suite);
  const debs = await host.apt.download(closure.map((p) => ({ pkg: p.pkg, version: p.version })));
  const key = await sha256Hex(
    JSON.stringify({ TOOLCHAIN_LAYOUT, debs: debs.map((d) => d.sha256).sort() }),
  );
  const root = `${await cacheDir("probe", "sysroots")}/${key}`;
  await extractDeb(debs.map((d) => d.path), root, async (tmp) => {
    await relocateSysroot(tmp, root);
  });
  return { root, key };
}

/** Prepare (or reuse) the build toolchain for a kernel spec. */
export async function prepareToolchain(spec: string): Promise<CrossToolchain> {
  await ensureHostTools(["make", "patchelf", "dpkg-deb", "apt-get"]);
  const headers: FetchedHeaders = await fetchKernelHeaders(spec);
  const kernel = headers.kernel;
  const config = await Deno.readTextFile(`${headers.buildDir}/.config`);
  const compiler = kernelCompiler(config);
  const ccName = `aarch64-linux-gnu-gcc-${compiler.major}`;
  const ccPkg = `gcc-${compiler.major}-aarch64-linux-gnu`;
  let ccSource: "host" | "sysroot" = "host";
  if (!await which(ccName)) {
    if (await hostHasCandidate(ccPkg)) {
      await aptInstall(
        [ccPkg],
        `the ${kernel.release} kernel was built with GCC ${compiler.major}`,
      );
    } else ccSource = "sysroot";
  }
  const kbuild = await kbuildPackage(kernel);
  const suite = baseSuite(kernel.suite);
  // Two sysroots, so that kernels sharing a compiler share its (200 MB) sysroot.
  const kb = await sysrootFor([`${kbuild.pkg}=${kbuild.version}`], suite);
  const ccRoot = ccSource === "sysroot" ? await sysrootFor([ccPkg], suite) : undefined;
  const sysroot = kb.root;
  const sysKey = JSON.stringify({ kbuild: kb.key, cc: ccRoot?.key ?? "host" });
  const kbuildDir = `usr/lib/${kbuild.pkg}`;
  if (!await exists(`${sysroot}/${kbuildDir}/scripts/basic/fixdep`)) {
    throw new InfraError(
      `${kbuild.pkg} has no ${kbuildDir}/scripts/basic/fixdep`,
      "the kbuild package layout changed; update runner/probe/toolchain.ts",
    );
  }
  // The build tree: headers unpacked again (their Makefile includes absolute /usr/src paths and
  // their scripts/ symlink points at ../../lib/linux-kbuild-*), rewritten to point here.
  const treeKey = await sha256Hex(
    JSON.stringify({ TOOLCHAIN_LAYOUT, headers: headers.debs.map((d) => d.sha256), sysKey }),
  );
  const tree = `${await cacheDir("probe", "trees")}/${treeKey}`;
  await extractDeb(headers.debs.map((d) => d.path), tree, async (tmp) => {
    const src = `${tmp}/usr/src`;
    for await (const e of Deno.readDir(src)) {
      const mk = `${src}/${e.name}/Makefile`;
      if (!e.isDirectory || !await exists(mk)) continue;
      const text = await Deno.readTextFile(mk);
      await Deno.writeTextFile(mk, text.replace(/(^|[\s=])\/usr\/src\//gm, `$1${tree}/usr/src/`));
    }
    await Deno.mkdir(`${tmp}/usr/lib`, { recursive: true });
    await Deno.symlink(`${sysroot}/${kbuildDir}`, `${tmp}/${kbuildDir}`);
  });
  const env: Record<string, string> = {
    PATH: [...(ccRoot ? [`${ccRoot.root}/usr/bin`] : []), Deno.env.get("PATH") ?? "/usr/bin:/bin"]
      .join(":"),
    LC_ALL: "C",
    HOME: Deno.env.get("HOME") ?? "/tmp",
  };
  const cc = ccRoot ? `${ccRoot.root}/usr/bin/${ccName}` : await which(ccName);
  if (!cc || !await exists(cc)) {
    throw new InfraError(
      `${ccName} is not available after installing ${ccPkg}`,
      `check the package: dpkg -L ${ccPkg}`,
    );
  }
  const ccVersion = await ccVersionLine(cc, env);
  const meta = { kernel, compiler, kbuild, ccSource, ccVersion, sysKey, treeKey };
  await writeJsonAtomic(`${tree}.json`, meta);
  return {
    kernel,
    compiler,
    buildDir: `${tree}/usr/src/linux-headers-${kernel.release}`,
    makeArgs: [
      "ARCH=arm64",
      "CROSS_COMPILE=aarch64-linux-gnu-",
      // Module BTF needs the host's pahole and resolve_btfids against vmlinux: not wanted.
      "CONFIG_DEBUG_INFO_BTF_MODULES=",
    ],
    env,
    ccSource,
    cc,
    ccVersion,
    kbuild,
    sysroot,
    ccSysroot: ccRoot?.root,
    identity: JSON.stringify(meta),
  };
}
