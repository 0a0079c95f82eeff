/**
 * Host tools the QEMU target needs, and the Debian packages that provide them. A missing tool
 * is an install step (apt-get, non-interactive), not a skipped test.
 *
 * @module
 */

import { InfraError } from "../errors.ts";
import { run, tail } from "./proc.ts";

/** Tool → Debian package providing it. */
export const HOST_TOOLS: Readonly<Record<string, string>> = {
  "qemu-system-aarch64": "qemu-system-arm",
  dropbearkey: "dropbear-bin",
  cpio: "cpio",
  depmod: "kmod",
  xz: "xz-utils",
  zstd: "zstd",
  gzip: "gzip",
  "dpkg-deb": "dpkg",
  "apt-get": "apt",
  setpriv: "util-linux",
  busybox: "busybox",
  dtc: "device-tree-compiler",
  dropbear: "dropbear-bin",
  sshd: "openssh-server",
  "ssh-keygen": "openssh-client",
  unshare: "util-linux",
  dash: "dash",
};

const EXTRA_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** Full path of a tool on PATH (plus the sbin directories), or undefined. */
export async function which(tool: string): Promise<string | undefined> {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":").filter(Boolean), ...EXTRA_PATH];
  for (const d of dirs) {
    try {
      const st = await Deno.stat(`${d}/${tool}`);
      if (st.isFile && (st.mode ?? 0o111) & 0o111) return `${d}/${tool}`;
    } catch { /* not here */ }
  }
  return undefined;
}

/** Which of `tools` are missing, with their packages. */
export async function missingHostTools(
  tools: string[] = Object.keys(HOST_TOOLS),
): Promise<{ tool: string; pkg: string }[]> {
  const out: { tool: string; pkg: string }[] = [];
  for (const tool of tools) {
    if (!await which(tool)) out.push({ tool, pkg: HOST_TOOLS[tool] ?? tool });
  }
  return out;
}

/** Result of {@linkcode ensureHostTools}. */
export interface EnsureReport {
  /** Packages installed now (empty if everything was there). */
  installed: string[];
  /** Full paths of the tools. */
  paths: Record<string, string>;
}

/**
 * Install host packages with apt-get, non-interactively, waiting for the dpkg lock; when the
 * host's package lists are stale, refresh them once and retry. Needs root; errors say what to
 * run. `why` prefixes every error message.
 */
export async function aptInstall(pkgs: string[], why: string): Promise<void> {
  if (pkgs.length === 0) return;
  if (Deno.uid() !== 0) {
    throw new InfraError(
      `${why}: packages ${pkgs.join(" ")} are missing`,
      `install them: sudo apt-get install -y ${pkgs.join(" ")}`,
    );
  }
  const env = { DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" };
  const args = ["install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600"];
  const install = () =>
    run("apt-get", [...args, ...pkgs], {
      env,
      allowFailure: true,
      owner: `apt-get install ${pkgs.join(" ")}`,
      timeoutMs: 900_000,
    });
  let res = await install();
  if (res.code !== 0 && /Unable to locate|no installation candidate|404/.test(res.stderr)) {
    await run("apt-get", ["update", "-q"], { env, allowFailure: true, timeoutMs: 600_000 });
    res = await install();
  }
  if (res.code !== 0) {
    throw new InfraError(
      `${why}: apt-get install ${pkgs.join(" ")} failed (status ${res.code}):\n${
        tail(res.stderr || res.stdout, 8)
      }`,
      `run \`apt-get install -y ${pkgs.join(" ")}\` as root and fix what it reports`,
    );
  }
}

/**
 * Make sure the host tools are installed; apt-get install the packages of missing ones
 * (DEBIAN_FRONTEND=noninteractive). Needs root for the install; says exactly what failed.
 */
export async function ensureHostTools(
  tools: string[] = Object.keys(HOST_TOOLS),
): Promise<EnsureReport> {
  const missing = await missingHostTools(tools);
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  if (pkgs.length) {
    const what = missing.map((m) => `${m.tool} (package ${m.pkg})`).join(", ");
    await aptInstall(pkgs, `missing host tools: ${what}`);
    const still = await missingHostTools(tools);
    if (still.length) {
      throw new InfraError(
        `apt-get installed ${pkgs.join(" ")} but ${still.map((s) => s.tool).join(", ")} ` +
          "is still not found",
        "check PATH and the package contents (dpkg -L <package>)",
      );
    }
  }
  const paths: Record<string, string> = {};
  for (const t of tools) paths[t] = (await which(t))!;
  return { installed: pkgs, paths };
}
