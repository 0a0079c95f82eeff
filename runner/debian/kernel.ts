/**
 * Debian arm64 kernels for QEMU targets: `debian:<suite>` (the newest arm64 kernel a suite
 * offers, security updates included) or `debian:<exact package version>`, fetched with rkhil's
 * private apt and extracted into the content-addressed cache.
 *
 * @module
 */

import { InfraError, UserInputError } from "../errors.ts";
import { type FetchedDeb, PrivateApt, type UpdateReport } from "./apt.ts";
import { cacheDir, exists, sha256Hex, writeJsonAtomic } from "./cache.ts";
import { run } from "./proc.ts";
import { compareDebVersions } from "./version.ts";

/** Kernel suites and the archive suites whose kernels they include. */
export const KERNEL_SUITES: Readonly<Record<string, readonly string[]>> = {
  bookworm: ["bookworm", "bookworm-updates", "bookworm-security"],
  "bookworm-backports": ["bookworm-backports"],
  trixie: ["trixie", "trixie-updates", "trixie-security"],
  "trixie-backports": ["trixie-backports"],
  sid: ["sid"],
  unstable: ["sid"],
};

/** A parsed kernel spec. */
export type KernelSpec =
  | { kind: "suite"; suite: string; text: string }
  | { kind: "version"; version: string; text: string };

/** A kernel resolved to one exact Debian package. */
export interface ResolvedKernel {
  /** The kernel spec as given (`debian:bookworm`, `debian:6.1.192-2`). */
  spec: string;
  /** The image package, e.g. `linux-image-6.1.0-41-arm64`. */
  package: string;
  /** Its Debian version, e.g. `6.1.192-2`. */
  version: string;
  /** The kernel release (`uname -r`), e.g. `6.1.0-41-arm64`. */
  release: string;
  /** Archive suite it comes from. */
  suite: string;
}

/** A fetched and extracted kernel. */
export interface FetchedKernel extends ResolvedKernel {
  /** The .deb files it was extracted from (their hashes are the cache key). */
  debs: { pkg: string; sha256: string; size: number }[];
  /** Total download size in bytes. */
  debSize: number;
  /** Extracted package root. */
  root: string;
  /** Path of the kernel image (`boot/vmlinuz-<release>` or `lib/modules/<release>/vmlinuz` in root). */
  vmlinuz: string;
  /** `/lib/modules/<release>` inside the extracted tree. */
  modulesDir: string;
  /** `/usr/lib/linux-image-<release>` (DTBs), if the package has it. */
  dtbDir?: string;
  /** Path of the kernel config (`boot/config-<release>` or in the modules directory). */
  config: string;
  /** Path of `System.map-<release>`, when the package has one. */
  systemMap?: string;
}

/** Headers for building out-of-tree modules against a kernel. */
export interface FetchedHeaders {
  /** The kernel the headers belong to. */
  kernel: ResolvedKernel;
  /** Extracted root holding `usr/src/linux-headers-*` and `usr/lib/linux-kbuild-*`. */
  root: string;
  /** `usr/src/linux-headers-<release>` inside root. */
  buildDir: string;
  /** The header .deb files extracted into root. */
  debs: FetchedDeb[];
}

/** Parse `debian:<suite>` or `debian:<version>`. */
export function parseKernelSpec(text: string): KernelSpec {
  const m = text.match(/^debian:(.+)$/);
  if (!m) {
    throw new UserInputError(
      `kernel "${text}" is not of the form debian:<suite> or debian:<version>`,
      `use e.g. debian:bookworm, debian:trixie, debian:sid or debian:6.1.192-2 (suites: ${
        Object.keys(KERNEL_SUITES).join(", ")
      })`,
    );
  }
  const rest = m[1];
  if (/^[0-9]/.test(rest)) return { kind: "version", version: rest, text };
  if (!(rest in KERNEL_SUITES)) {
    throw new UserInputError(
      `unknown Debian suite "${rest}" in kernel spec "${text}"`,
      `use one of ${Object.keys(KERNEL_SUITES).map((s) => `debian:${s}`).join(", ")}, ` +
        "or an exact kernel package version",
    );
  }
  return { kind: "suite", suite: rest, text };
}

let shared: Promise<{ apt: PrivateApt; report: UpdateReport }> | undefined;

/** The process-wide private apt, updated once (lists are reused while young). */
export function sharedApt(): Promise<{ apt: PrivateApt; report: UpdateReport }> {
  shared ??= (async () => {
    const apt = await PrivateApt.open();
    const report = await apt.update();
    return { apt, report };
  })();
  shared.catch(() => (shared = undefined));
  return shared;
}

const IMAGE_RE = /^linux-image-([0-9][^ ]*-arm64)$/;

/** The flavour-generic image package named by `linux-image-arm64`'s first dependency. */
function imageDependency(depends: string): { pkg: string; version?: string } | undefined {
  for (const alt of depends.split(",")) {
    const m = alt.trim().match(/^(linux-image-[0-9]\S*-arm64)(?:\s*\(=\s*([^)]+)\))?/);
    if (m) return { pkg: m[1], version: m[2]?.trim() };
  }
  return undefined;
}

/** Resolve a kernel spec to an exact package with the private apt. */
export async function resolveKernel(spec: string): Promise<ResolvedKernel> {
  const parsed = parseKernelSpec(spec);
  const { apt, report } = await sharedApt();
  if (parsed.kind === "suite") {
    const suites = KERNEL_SUITES[parsed.suite];
    const served = new Set(report.served.map((s) => s.suite));
    const problem = report.problems?.[suites[0]];
    if (!served.has(suites[0]) && problem) {
      throw new InfraError(
        `debian:${parsed.suite}: apt refused the mirror's ${suites[0]} index: ${problem}`,
        /expired/.test(problem)
          ? "the mirror serves a stale or snapshot Release file; if that is intended, set " +
            'Acquire::Check-Valid-Until "false" in /etc/apt/apt.conf.d (rkhil\'s private apt reads ' +
            "the machine's apt settings)"
          : "check that this machine reaches its Debian mirror (apt-get update on the host)",
      );
    }
    if (!served.has(suites[0])) {
      const have = Object.keys(KERNEL_SUITES).filter((k) => served.has(KERNEL_SUITES[k][0]));
      throw new UserInputError(
        `the Debian mirror of this machine (${apt.mirrors.archive.uri}) does not serve ${
          suites[0]
        }`,
        `kernel suites it has: ${have.map((s) => `debian:${s}`).join(", ") || "none"}`,
      );
    }
    const metas = (await apt.madison(["linux-image-arm64"]))
      .filter((v) => suites.includes(v.suite))
      .sort((a, b) => compareDebVersions(b.version, a.version));
    if (metas.length === 0) {
      throw new UserInputError(
        `${parsed.suite} has no arm64 kernel (linux-image-arm64) on this machine's mirror`,
        "pick another suite or an exact version",
      );
    }
    const meta = metas[0];
    const fields = await apt.show(meta.pkg, meta.version);
    const dep = imageDependency(fields["Depends"] ?? "");
    if (!dep) {
      throw new UserInputError(
        `linux-image-arm64 ${meta.version} (${meta.suite}) names no image package: ${
          fields["Depends"]
        }`,
        "pick an exact version with debian:<version>",
      );
    }
    const versions = (await apt.madison([dep.pkg]))
      .sort((a, b) => compareDebVersions(b.version, a.version));
    const chosen = versions.find((v) => v.version === (dep.version ?? meta.version)) ??
      versions[0];
    return {
      spec,
      package: dep.pkg,
      version: chosen.version,
      release: dep.pkg.replace(/^linux-image-/, ""),
      suite: chosen.suite,
    };
  }
  const names = (await apt.pkgnames("linux-image-"))
    .filter((n) => IMAGE_RE.test(n) && !/-(cloud|rt)-arm64$/.test(n));
  const all = await apt.madison(names);
  const hit = all.filter((v) => v.version === parsed.version)
    .sort((a, b) => a.pkg.length - b.pkg.length)[0];
  if (!hit) {
    const newest = new Map<string, string>();
    for (const v of all.sort((a, b) => compareDebVersions(b.version, a.version))) {
      if (!newest.has(v.suite)) newest.set(v.suite, v.version);
    }
    throw new UserInputError(
      `no arm64 kernel package with version ${parsed.version} on this machine's mirror`,
      `versions it has (newest per suite): ${
        [...newest].map(([s, v]) => `${v} (${s})`).join(", ")
      }; or use debian:<suite>`,
    );
  }
  return {
    spec,
    package: hit.pkg,
    version: hit.version,
    release: hit.pkg.replace(/^linux-image-/, ""),
    suite: hit.suite,
  };
}

async function findFirst(dir: string, re: RegExp): Promise<string | undefined> {
  try {
    for await (const e of Deno.readDir(dir)) if (re.test(e.name)) return `${dir}/${e.name}`;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return undefined;
}

/** Extract a .deb into `dest` (atomically: a temporary directory renamed into place). */
export async function extractDeb(
  debs: string[],
  dest: string,
  post?: (tmpRoot: string) => Promise<void>,
): Promise<void> {
  if (await exists(dest)) return;
  const tmp = `${dest}.${crypto.randomUUID()}.tmp`;
  await Deno.mkdir(tmp, { recursive: true });
  try {
    for (const deb of debs) {
      await run("dpkg-deb", ["-x", deb, tmp], { owner: "dpkg-deb -x", timeoutMs: 300_000 });
    }
    if (post) await post(tmp);
    await Deno.rename(tmp, dest);
  } catch (err) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    if (await exists(dest)) return; // a concurrent extraction won
    throw err;
  }
}

/**
 * The packages that make up a kernel: the image package and, recursively, every dependency
 * pinned to the same version whose name carries the release (7.x splits the kernel into
 * `linux-binary-*` (vmlinuz), `linux-modules-*` and `linux-base-*`; 6.x has one package).
 */
export async function kernelPackages(resolved: ResolvedKernel): Promise<string[]> {
  const { apt } = await sharedApt();
  const seen = [resolved.package];
  for (let i = 0; i < seen.length; i++) {
    const fields = await apt.show(seen[i], resolved.version);
    for (const alt of [fields["Depends"], fields["Pre-Depends"]].join(",").split(/[,|]/)) {
      const m = alt.trim().match(/^(linux-\S+)\s*\(=\s*([^)]+)\)/);
      if (
        m && m[2].trim() === resolved.version && m[1].includes(resolved.release) &&
        !seen.includes(m[1])
      ) seen.push(m[1]);
    }
  }
  return seen;
}

/** Resolve, download (once) and extract (once) a kernel; return the paths of its parts. */
export async function fetchKernel(spec: string): Promise<FetchedKernel> {
  const resolved = await resolveKernel(spec);
  const { apt } = await sharedApt();
  const pkgs = await kernelPackages(resolved);
  const debs = await apt.download(pkgs.map((pkg) => ({ pkg, version: resolved.version })));
  const key = debs.length === 1
    ? debs[0].sha256
    : await sha256Hex(debs.map((d) => d.sha256).join("\n"));
  const root = `${await cacheDir("kernels")}/${key}`;
  const r = resolved.release;
  await extractDeb(debs.map((d) => d.path), root, async (tmp) => {
    // Debian ships no modules.dep (its postinst runs depmod): generate it. Usr-merged packages
    // (6.12+) put modules under usr/lib; give depmod the /lib view a merged system has.
    if (!await exists(`${tmp}/lib`) && await exists(`${tmp}/usr/lib/modules`)) {
      await Deno.symlink("usr/lib", `${tmp}/lib`);
    }
    await run("depmod", ["-b", tmp, "-a", r], { owner: "depmod", timeoutMs: 300_000 });
  });
  const modulesDir = `${root}/lib/modules/${r}`;
  // 6.x: /boot/{vmlinuz,config,System.map}-<release>; 7.x: /usr/lib/modules/<release>/*.
  const inModules = async (name: string) =>
    await exists(`${modulesDir}/${name}`) ? `${modulesDir}/${name}` : undefined;
  const vmlinuz = await findFirst(`${root}/boot`, /^vmlinuz-/) ?? await inModules("vmlinuz");
  const config = await findFirst(`${root}/boot`, /^config-/) ?? await inModules("config");
  if (!vmlinuz || !config || !await exists(modulesDir)) {
    throw new UserInputError(
      `${resolved.package} ${resolved.version} does not look like a kernel image package ` +
        `(vmlinuz ${vmlinuz ? "found" : "missing"}, config ${config ? "found" : "missing"})`,
      "pick another kernel version",
    );
  }
  const dtbDir = await exists(`${root}/usr/lib/linux-image-${r}`)
    ? `${root}/usr/lib/linux-image-${r}`
    : undefined;
  const kernel: FetchedKernel = {
    ...resolved,
    debs: debs.map((d) => ({ pkg: d.pkg, sha256: d.sha256, size: d.size })),
    debSize: debs.reduce((n, d) => n + d.size, 0),
    root,
    vmlinuz,
    modulesDir,
    dtbDir,
    config,
    systemMap: await findFirst(`${root}/boot`, /^System\.map-/) ?? await inModules("System.map"),
  };
  await writeJsonAtomic(`${root}.json`, kernel);
  return kernel;
}

/**
 * Fetch (on demand) the headers needed to build a module against a kernel: the arch-specific
 * `linux-headers-<release>`, the `-common` headers and `linux-kbuild-*` it names with `(= ver)`.
 * (linux-kbuild is the arm64 build; a cross build on another host needs the host's kbuild.)
 */
export async function fetchKernelHeaders(spec: string): Promise<FetchedHeaders> {
  const kernel = await resolveKernel(spec);
  const { apt } = await sharedApt();
  const headersPkg = `linux-headers-${kernel.release}`;
  const fields = await apt.show(headersPkg, kernel.version);
  const wanted = [{ pkg: headersPkg, version: kernel.version }];
  for (const alt of (fields["Depends"] ?? "").split(",")) {
    const m = alt.trim().match(/^(linux-(?:headers|kbuild)-\S+)\s*\(=\s*([^)]+)\)/);
    if (m) wanted.push({ pkg: m[1], version: m[2].trim() });
  }
  const debs = await apt.download(wanted);
  const key = await sha256Hex(debs.map((d) => d.sha256).join("\n"));
  const root = `${await cacheDir("headers")}/${key}`;
  await extractDeb(debs.map((d) => d.path), root);
  const meta = { kernel, root, buildDir: `${root}/usr/src/linux-headers-${kernel.release}`, debs };
  await writeJsonAtomic(`${root}.json`, meta);
  return meta;
}
