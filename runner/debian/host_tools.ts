/**
 * Every program rkhil, its tests, benchmarks and scripts start on the HOST, declared once with
 * the Debian package that provides it, and the one install path: a missing program is an
 * apt-get install (non-interactive) before its first use, never a skipped test.
 *
 * Spawning goes through {@linkcode hostCommand} or `run()` (runner/debian/proc.ts): both look the
 * program up here and install its package when it is missing (once per process) before they
 * start it, and a `sh -c SCRIPT` installs what SCRIPT runs. A program that is not declared
 * throws before it runs. `runner/debian/host_tools_test.ts` scans the sources and fails on any
 * spawn of an undeclared program and on any spawn that bypasses these helpers.
 *
 * Programs that run inside a target (the busybox applets of the initramfs, commands sent over
 * SSH or the serial console) are not host programs and are not declared here.
 *
 * @module
 */

import { InfraError } from "../errors.ts";
import { runResolved, tail } from "./proc.ts";
import { shellPrograms } from "./shell_programs.ts";

/**
 * Host program → Debian package providing it. The key is the program's file name; a spawn by
 * absolute path (`/usr/sbin/sshd`) is declared by its file name too.
 */
export const HOST_TOOLS: Readonly<Record<string, string>> = {
  // QEMU targets: the machine, its watchdog, kernels and initramfs from Debian packages.
  "qemu-system-aarch64": "qemu-system-arm",
  setpriv: "util-linux",
  dropbearkey: "dropbear-bin",
  "apt-get": "apt",
  "apt-cache": "apt",
  dpkg: "dpkg",
  "dpkg-deb": "dpkg",
  "dpkg-query": "dpkg",
  depmod: "kmod",
  xz: "xz-utils",
  zstd: "zstd",
  gzip: "gzip",
  zcat: "gzip",
  // The probe module's cross build.
  make: "make",
  patchelf: "patchelf",
  // The workload program (target/workload): its cross build and its runs under user-mode QEMU.
  "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
  "qemu-aarch64": "qemu-user",
  // Shells, and what the tests run through them on the host (the facts and kcore commands
  // a target runs are run on this host by their tests).
  sh: "dash",
  dash: "dash",
  bash: "bash",
  busybox: "busybox",
  cat: "coreutils",
  uname: "coreutils",
  base64: "coreutils",
  od: "coreutils",
  dd: "coreutils",
  head: "coreutils",
  tr: "coreutils",
  seq: "coreutils",
  sleep: "coreutils",
  stty: "coreutils",
  mkdir: "coreutils",
  dirname: "coreutils",
  sha256sum: "coreutils",
  grep: "grep",
  strings: "binutils",
  readelf: "binutils",
  dmesg: "util-linux",
  setsid: "util-linux",
  su: "util-linux",
  // SSH test servers and key cross-checks.
  dropbear: "dropbear-bin",
  sshd: "openssh-server",
  "ssh-keygen": "openssh-client",
  unshare: "util-linux",
  mount: "mount",
  // The reference the DTB parser is held against.
  dtc: "device-tree-compiler",
  // The ./rkhil bootstrap (a new user's machine has Node.js and npm; see README), .ci/run
  // and scripts/*.sh (scripts/fresh_machine.sh builds a clean Debian root).
  npm: "npm",
  node: "nodejs",
  env: "coreutils",
  basename: "coreutils",
  chroot: "coreutils",
  cp: "coreutils",
  cut: "coreutils",
  date: "coreutils",
  du: "coreutils",
  id: "coreutils",
  install: "coreutils",
  readlink: "coreutils",
  realpath: "coreutils",
  rm: "coreutils",
  tail: "coreutils",
  tee: "coreutils",
  sed: "sed",
  awk: "mawk",
  git: "git",
  umount: "mount",
  mmdebstrap: "mmdebstrap",
  // The history report's browser check (runner/report/history_html_browser_test.ts).
  chromium: "chromium",
  // The board lab (runner/lab): TCP consoles served the way a lab serves a board's UART.
  ser2net: "ser2net",
  // The history and the farm's leases on PostgreSQL: the throwaway cluster of runner/pg/server.ts
  // (/usr/lib/postgresql/<major>/bin/initdb and postgres, run as the postgres user by setpriv).
  initdb: "postgresql",
  postgres: "postgresql",
  // labgrid side by side (bench/labgrid.ts): the system Python that runs labgrid (Debian's
  // python3-labgrid, installed by the benchmark with aptInstall when `import labgrid` fails)
  // and the OpenSSH client its SSHDriver starts.
  python3: "python3",
  ssh: "openssh-client",
  // Kernel deployment through U-Boot (runner/board/deploy.ts, runner/lab/uboot.ts): the
  // modules tarball, and the lab's boot disk (MBR partition table, ext4 built from a directory).
  tar: "tar",
  sfdisk: "fdisk",
  mke2fs: "e2fsprogs",
};

/**
 * Host files that are not programs (firmware QEMU loads), with the Debian package that ships
 * them: installed by {@linkcode ensureHostFile} before first use, like the programs above.
 */
export const HOST_FILES: Readonly<Record<string, string>> = {
  // U-Boot for QEMU's -M virt (the U-Boot lab of runner/lab/uboot.ts boots a disk with it).
  "/usr/lib/u-boot/qemu_arm64/u-boot.bin": "u-boot-qemu",
};

/**
 * Programs whose name carries a version: the cross compiler the probe build picks for a
 * kernel (`aarch64-linux-gnu-gcc-14` → `gcc-14-aarch64-linux-gnu`).
 */
export const HOST_TOOL_PATTERNS: readonly {
  re: RegExp;
  pkg: (m: RegExpExecArray) => string;
}[] = [
  { re: /^aarch64-linux-gnu-gcc-(\d+)$/, pkg: (m) => `gcc-${m[1]}-aarch64-linux-gnu` },
];

/** Programs that no Debian package provides here, and where they come from. */
export const BOOTSTRAP_PROGRAMS: Readonly<Record<string, string>> = {
  deno: "the pinned Deno that ./rkhil installs from npm into .tools/ (Deno.execPath())",
};

/** Directories whose programs are host programs (the rest are files rkhil made or fetched). */
const SYSTEM_DIRS = ["/usr/", "/bin/", "/sbin/", "/lib/"];

/**
 * True when `cmd` names a host program: a bare name (looked up on PATH) or an absolute path in
 * the system's directories. A path elsewhere (a relocated toolchain in rkhil's cache, a
 * temporary symlink) or a relative path (`./rkhil`) is not one.
 */
export function isHostProgram(cmd: string): boolean {
  if (!cmd.includes("/")) return cmd.length > 0;
  return SYSTEM_DIRS.some((d) => cmd.startsWith(d));
}

/** The file name of a program path (`/usr/sbin/sshd` → `sshd`). */
export function toolName(cmd: string): string {
  return cmd.slice(cmd.lastIndexOf("/") + 1);
}

/**
 * The Debian package declared for a host program (by name or system path), or undefined when
 * it is not declared. Bootstrap programs (deno) have no package: see
 * {@linkcode BOOTSTRAP_PROGRAMS}.
 */
export function hostToolPackage(cmd: string): string | undefined {
  const name = toolName(cmd);
  if (Object.hasOwn(HOST_TOOLS, name)) return HOST_TOOLS[name];
  for (const p of HOST_TOOL_PATTERNS) {
    const m = p.re.exec(name);
    if (m) return p.pkg(m);
  }
  return undefined;
}

/** True when `cmd` is declared (a host tool, a versioned pattern or a bootstrap program). */
export function isDeclared(cmd: string): boolean {
  return hostToolPackage(cmd) !== undefined || Object.hasOwn(BOOTSTRAP_PROGRAMS, toolName(cmd));
}

/** Thrown for a host program that is not declared in {@linkcode HOST_TOOLS}: a bug in rkhil. */
export class UndeclaredToolError extends Error {
  /**
   * An undeclared host program.
   *
   * @param tool the program name or path that is not declared
   * @param context where it was about to be started (the caller), for the message
   */
  constructor(readonly tool: string, readonly context: string) {
    super(
      `${context}: host program "${tool}" is not declared in runner/debian/host_tools.ts ` +
        "(HOST_TOOLS: program → the Debian package that provides it)",
    );
    this.name = "UndeclaredToolError";
  }
}

const EXTRA_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

async function isExecutable(path: string): Promise<boolean> {
  try {
    const st = await Deno.stat(path);
    return st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Full path of a program: on PATH (plus the sbin directories) for a bare name, the path itself
 * when it exists for a path; undefined when missing.
 */
export async function which(tool: string): Promise<string | undefined> {
  if (tool.includes("/")) return await isExecutable(tool) ? tool : undefined;
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":").filter(Boolean), ...EXTRA_PATH];
  for (const d of dirs) {
    if (await isExecutable(`${d}/${tool}`)) return `${d}/${tool}`;
  }
  return undefined;
}

/** Which of `tools` are missing, with their packages (undeclared ones under their own name). */
export async function missingHostTools(
  tools: readonly string[],
): Promise<{ tool: string; pkg: string }[]> {
  const out: { tool: string; pkg: string }[] = [];
  for (const tool of tools) {
    if (!await which(tool)) out.push({ tool, pkg: hostToolPackage(tool) ?? toolName(tool) });
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

/** apt-get runs one at a time within this process (dpkg's lock is the bound across them). */
let aptQueue: Promise<unknown> = Promise.resolve();

/**
 * Install host packages with apt-get, non-interactively, waiting for the dpkg lock; when the
 * host's package lists are stale, refresh them once and retry. Needs root; errors say what to
 * run. `why` prefixes every error message.
 */
export function aptInstall(pkgs: string[], why: string): Promise<void> {
  const next = aptQueue.then(() => aptInstallNow(pkgs, why));
  aptQueue = next.catch(() => {});
  return next;
}

async function aptInstallNow(pkgs: string[], why: string): Promise<void> {
  if (pkgs.length === 0) return;
  if (Deno.uid() !== 0) {
    throw new InfraError(
      `${why}: packages ${pkgs.join(" ")} are missing`,
      `install them: sudo apt-get install -y ${pkgs.join(" ")}`,
    );
  }
  // apt-get itself is not installed through apt-get: it is found or this is not Debian.
  const aptGet = await which("apt-get");
  if (!aptGet) {
    throw new InfraError(
      `${why}: apt-get is missing, so ${pkgs.join(" ")} cannot be installed`,
      "rkhil needs a Debian (or derived) host with apt",
    );
  }
  const env = { DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" };
  const args = ["install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600"];
  const install = () =>
    runResolved("apt-get", aptGet, [...args, ...pkgs], {
      env,
      allowFailure: true,
      owner: `apt-get install ${pkgs.join(" ")}`,
      timeoutMs: 900_000,
    });
  let res = await install();
  if (res.code !== 0 && /Unable to locate|no installation candidate|404/.test(res.stderr)) {
    await runResolved("apt-get", aptGet, ["update", "-q"], {
      env,
      allowFailure: true,
      timeoutMs: 600_000,
    });
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

/** Paths of programs found or installed in this process, by the name they were asked for. */
const ensured = new Map<string, string>();

/**
 * Make sure the host programs `tools` are installed: apt-get install the packages of missing
 * ones (DEBIAN_FRONTEND=noninteractive, one apt-get run for all), then return their paths.
 * Each tool is a declared name or a system path; results are cached for the process.
 * Throws {@linkcode UndeclaredToolError} for an undeclared tool (before installing anything),
 * InfraError when the install fails or a tool is still missing after it.
 */
export async function ensureHostTools(tools: readonly string[]): Promise<EnsureReport> {
  const paths: Record<string, string> = {};
  const todo: string[] = [];
  for (const t of new Set(tools)) {
    if (Object.hasOwn(BOOTSTRAP_PROGRAMS, toolName(t))) {
      paths[t] = t.includes("/") ? t : Deno.execPath(); // deno: this process's own runtime
      continue;
    }
    if (!isHostProgram(t)) {
      paths[t] = t; // a file of rkhil's own (cache, temporary directory): not a host program
      continue;
    }
    if (hostToolPackage(t) === undefined) throw new UndeclaredToolError(t, "ensureHostTools");
    const hit = ensured.get(t);
    if (hit) paths[t] = hit;
    else todo.push(t);
  }
  const missing = await missingHostTools(todo);
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  if (pkgs.length) {
    const what = missing.map((m) => `${m.tool} (package ${m.pkg})`).join(", ");
    await aptInstall(pkgs, `missing host tools: ${what}`);
    const still = await missingHostTools(missing.map((m) => m.tool));
    if (still.length) {
      throw new InfraError(
        `apt-get installed ${pkgs.join(" ")} but ${still.map((s) => s.tool).join(", ")} ` +
          "is still not found",
        "check PATH and the package contents (dpkg -L <package>)",
      );
    }
  }
  for (const t of todo) {
    const p = await which(t);
    if (!p) throw new InfraError(`${t} disappeared while being installed`, "rerun");
    ensured.set(t, p);
    paths[t] = p;
  }
  return { installed: pkgs, paths };
}

/** {@linkcode ensureHostTools} for one program; returns its full path. */
export async function ensureHostTool(tool: string): Promise<string> {
  return (await ensureHostTools([tool])).paths[tool];
}

const SHELLS = new Set(["sh", "dash", "bash", "ash"]);

/**
 * The script of a shell invocation `cmd args`: `sh -c SCRIPT`, `bash -ec SCRIPT`,
 * `busybox sh -c SCRIPT`; undefined when `cmd args` is not one.
 */
export function shellScriptOf(cmd: string, args: readonly string[]): string | undefined {
  let rest = args;
  if (toolName(cmd) === "busybox") {
    if (rest[0] !== "sh" && rest[0] !== "ash") return undefined;
    rest = rest.slice(1);
  } else if (!SHELLS.has(toolName(cmd))) return undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!/^-[a-zA-Z]+$/.test(a)) return undefined; // an operand (a script file) before -c
    if (a.includes("c")) return rest[i + 1];
  }
  return undefined;
}

/**
 * The host programs a shell script runs (see runner/debian/shell_programs.ts), for installing
 * them before the script starts. Throws UndeclaredToolError for an undeclared one.
 */
export async function scriptHostTools(script: string, context: string): Promise<string[]> {
  const { programs } = await shellPrograms(script);
  const tools = programs.map((p) => p.name).filter(isHostProgram);
  for (const t of tools) if (!isDeclared(t)) throw new UndeclaredToolError(t, context);
  return tools;
}

/**
 * A `Deno.Command` for a host program, after installing it (and, for `sh -c SCRIPT`, every
 * program SCRIPT runs) when missing. The one way rkhil code starts a host program other than
 * through `run()`; `Deno.Command` directly is only for Deno itself (`Deno.execPath()`).
 * Throws UndeclaredToolError for an undeclared program, InfraError when installing fails.
 */
export async function hostCommand(
  cmd: string,
  options: Deno.CommandOptions = {},
): Promise<Deno.Command> {
  return new Deno.Command(await ensureSpawnable(cmd, options.args ?? []), options);
}

/**
 * Install `cmd` and, when `cmd args` is a `sh -c SCRIPT`, the programs SCRIPT runs; return the
 * path to start. What {@linkcode hostCommand} and `run()` do before they spawn.
 */
export async function ensureSpawnable(cmd: string, args: readonly string[]): Promise<string> {
  const path = await ensureHostTool(cmd);
  const script = shellScriptOf(cmd, args);
  if (script !== undefined) await ensureHostTools(await scriptHostTools(script, `${cmd} -c`));
  return path;
}

/**
 * Make sure the host file `path` (declared in {@linkcode HOST_FILES}) exists, installing its
 * package when it does not; returns `path`.
 *
 * @throws {UndeclaredToolError} for a path that is not declared.
 * @throws {InfraError} when the install fails or the package does not provide the file.
 */
export async function ensureHostFile(path: string): Promise<string> {
  const pkg = Object.hasOwn(HOST_FILES, path) ? HOST_FILES[path] : undefined;
  if (pkg === undefined) throw new UndeclaredToolError(path, "ensureHostFile");
  const present = () => Deno.stat(path).then((st) => st.isFile, () => false);
  if (await present()) return path;
  await aptInstall([pkg], `missing host file ${path} (package ${pkg})`);
  if (!await present()) {
    throw new InfraError(
      `apt-get installed ${pkg} but ${path} is still missing`,
      `check the package contents (dpkg -L ${pkg})`,
    );
  }
  return path;
}
