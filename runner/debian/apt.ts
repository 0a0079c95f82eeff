/**
 * A private apt for arm64: its own sources list, state, lists and archives under rkhil's cache,
 * `APT::Architecture=arm64`, and the mirror URIs of the machine's own apt sources. It never
 * touches the host's apt state (`/var/lib/apt`, `/var/cache/apt`, the dpkg status file).
 *
 * @module
 */

import { InfraError, UserInputError } from "../errors.ts";
import { cacheDir, exists, readJsonIfExists, storeBlob, writeJsonAtomic } from "./cache.ts";
import { type DebianMirrors, hostDebianMirrors } from "./sources.ts";
import { run, type RunResult } from "./proc.ts";

/** Suites rkhil asks the archive mirror for (those it does not serve are reported, not fatal). */
export const ARCHIVE_SUITES = [
  "bookworm",
  "bookworm-updates",
  "bookworm-backports",
  "trixie",
  "trixie-updates",
  "trixie-backports",
  "sid",
] as const;

/** Suites rkhil asks the security mirror for. */
export const SECURITY_SUITES = ["bookworm-security", "trixie-security"] as const;

/** What the mirror serves for one suite, read from its (In)Release file. */
export interface ServedSuite {
  /** Suite asked for (`bookworm`, `trixie-security`). */
  suite: string;
  /** The Release file's `Codename:` (the suite name when it has none). */
  codename: string;
  /** Mirror URI the suite was fetched from. */
  uri: string;
  /** The Release file's `Components:`. */
  components: string[];
  /** The Release file's `Architectures:`. */
  architectures: string[];
  /** The Release file's `Date:` (RFC 2822 text), when present. */
  date?: string;
}

/**
 * Per-suite problems in `apt-get update` output: `E: Release file for URI/dists/SUITE/InRelease is
 * expired (…)` and `E:`/`W: Failed to fetch URI/dists/SUITE/…` lines, keyed by suite, with the
 * line's text (first line per suite).
 */
export function suiteProblems(output: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of output.split("\n")) {
    const line = raw.trim();
    const m = line.match(/^[EW]: (?:Release file for|Failed to fetch) \S*\/dists\/([^/\s]+)\/\S*/);
    if (m && !(m[1] in out)) out[m[1]] = line.replace(/^[EW]: /, "").slice(0, 300);
  }
  return out;
}

/** Result of `apt-get update` in the private root. */
export interface UpdateReport {
  /** Suites the mirror serves, in the order asked. */
  served: ServedSuite[];
  /** Suites asked for that the mirror does not have. */
  missing: string[];
  /**
   * Suites whose index apt fetched but refused or could not fetch, with apt's own message (an
   * expired Release file of a stale or snapshot mirror, a failed fetch). They are in `missing` too;
   * a report with problems is not cached, so the next call asks the mirror again.
   */
  problems?: Record<string, string>;
  /** True if the lists were refreshed now (false: reused, younger than maxAge). */
  refreshed: boolean;
}

/** A package version as apt sees it. */
export interface PackageVersion {
  /** Binary package name. */
  pkg: string;
  /** Debian version string. */
  version: string;
  /** Suite it comes from, e.g. `bookworm-security`. */
  suite: string;
}

/** A downloaded .deb in the content store. */
export interface FetchedDeb {
  /** Binary package name. */
  pkg: string;
  /** Debian version string. */
  version: string;
  /** Path of the .deb in the content store (named by its SHA-256). */
  path: string;
  /** SHA-256 of the .deb, lower-case hex. */
  sha256: string;
  /** Size of the .deb in bytes. */
  size: number;
}

/** Options of {@linkcode PrivateApt.open}. */
export interface PrivateAptOptions {
  /** Root directory (default: `<cache>/apt-arm64`). */
  root?: string;
  /** Mirrors (default: read from the host's apt sources). */
  mirrors?: DebianMirrors;
  /** Reuse package lists younger than this (default 12 h; `RKHIL_APT_MAX_AGE_S` overrides). */
  maxAgeMs?: number;
}

interface Stamp {
  time: number;
  sourcesList: string;
  report: Omit<UpdateReport, "refreshed">;
}

/** A private arm64 apt rooted in rkhil's cache. */
export class PrivateApt {
  private constructor(
    readonly root: string,
    readonly mirrors: DebianMirrors,
    readonly maxAgeMs: number,
  ) {}

  /** Create (or reuse) the private root; writes its sources list from the host's mirrors. */
  static async open(opts: PrivateAptOptions = {}): Promise<PrivateApt> {
    const root = opts.root ?? await cacheDir("apt-arm64");
    const mirrors = opts.mirrors ?? await hostDebianMirrors();
    const envAge = Number(Deno.env.get("RKHIL_APT_MAX_AGE_S"));
    const maxAgeMs = opts.maxAgeMs ??
      (Number.isFinite(envAge) && envAge > 0 ? envAge * 1000 : 12 * 3600_000);
    for (
      const d of [
        "etc/sources.list.d",
        "etc/preferences.d",
        "state/lists/partial",
        "cache/archives/partial",
        "log",
        "dl",
      ]
    ) {
      await Deno.mkdir(`${root}/${d}`, { recursive: true });
    }
    if (!await exists(`${root}/state/status`)) await Deno.writeTextFile(`${root}/state/status`, "");
    const apt = new PrivateApt(root, mirrors, maxAgeMs);
    await Deno.writeTextFile(`${root}/etc/sources.list`, apt.sourcesList());
    return apt;
  }

  /** The private sources.list: the host's mirror URIs with rkhil's suites, arm64 only. */
  sourcesList(): string {
    const line = (m: { uri: string; signedBy?: string }, suite: string) => {
      const opts = ["arch=arm64", ...(m.signedBy ? [`signed-by=${m.signedBy}`] : [])];
      // Kernels, busybox, dropbear and libc are all in main.
      return `deb [${opts.join(" ")}] ${m.uri} ${suite} main`;
    };
    const lines = [
      "# Written by rkhil from this machine's apt sources; private to rkhil (arm64).",
      ...ARCHIVE_SUITES.map((s) => line(this.mirrors.archive, s)),
      ...(this.mirrors.security ? SECURITY_SUITES.map((s) => line(this.mirrors.security!, s)) : []),
    ];
    return lines.join("\n") + "\n";
  }

  /** The `-o` options that make apt use only the private root. */
  aptOptions(): string[] {
    const r = this.root;
    const o = (k: string, v: string) => ["-o", `${k}=${v}`];
    return [
      ...o("Dir::State", `${r}/state`),
      ...o("Dir::State::status", `${r}/state/status`),
      ...o("Dir::State::lists", `${r}/state/lists`),
      ...o("Dir::Cache", `${r}/cache`),
      ...o("Dir::Cache::archives", `${r}/cache/archives`),
      ...o("Dir::Cache::pkgcache", `${r}/cache/pkgcache.bin`),
      ...o("Dir::Cache::srcpkgcache", `${r}/cache/srcpkgcache.bin`),
      ...o("Dir::Etc::SourceList", `${r}/etc/sources.list`),
      ...o("Dir::Etc::SourceParts", `${r}/etc/sources.list.d`),
      ...o("Dir::Etc::Preferences", `${r}/etc/preferences`),
      ...o("Dir::Etc::PreferencesParts", `${r}/etc/preferences.d`),
      ...o("Dir::Log", `${r}/log`),
      ...o("APT::Architecture", "arm64"),
      ...o("APT::Architectures", "arm64"),
      ...o("Acquire::Languages", "none"),
      // Keep lists compressed on disk (about 30 MB instead of 240); rkhil reads them via apt-cache.
      ...o("Acquire::GzipIndexes", "true"),
      // Downloads run as the invoking user: the _apt sandbox user cannot enter ~/.cache.
      // (apt drops privileges only when run as root.)
      ...(Deno.uid() === 0 ? o("APT::Sandbox::User", "root") : []),
      ...o("Debug::NoLocking", "1"),
      ...o("APT::Get::List-Cleanup", "1"),
    ];
  }

  /**
   * Run apt-get/apt-cache in the private root. apt's own locking is off (`Debug::NoLocking`:
   * the root is not a system), so runs of rkhil on one host (a farm's runners, a test beside a
   * run) are kept apart by an `flock` of `<root>/lock`: shared here, for everything that reads
   * the lists; {@linkcode update} holds it exclusively while it checks and rewrites them.
   *
   * @throws {InfraError} when the lock is not had within `timeoutMs` (another run holds it).
   */
  async apt(
    tool: "apt-get" | "apt-cache",
    args: string[],
    opts: { cwd?: string; timeoutMs?: number; allowFailure?: boolean } = {},
  ): Promise<RunResult> {
    const timeoutMs = opts.timeoutMs ?? 900_000;
    return await this.#locked(
      false,
      timeoutMs,
      () => this.#run(tool, args, { ...opts, timeoutMs }),
    );
  }

  #run(
    tool: "apt-get" | "apt-cache",
    args: string[],
    opts: { cwd?: string; timeoutMs: number; allowFailure?: boolean },
  ): Promise<RunResult> {
    return run(tool, [...this.aptOptions(), ...args], {
      cwd: opts.cwd,
      timeoutMs: opts.timeoutMs,
      owner: `private apt: ${tool} ${args[0] ?? ""}`,
      allowFailure: opts.allowFailure,
      env: { DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" },
    });
  }

  /** Run `fn` holding `<root>/lock` (exclusive or shared), waiting at most `timeoutMs` for it. */
  async #locked<T>(exclusive: boolean, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
    const path = `${this.root}/lock`;
    const file = await Deno.open(path, { create: true, write: true });
    const taking = file.lock(exclusive);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const got = await Promise.race([
      taking.then(() => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), timeoutMs)),
    ]).finally(() => clearTimeout(timer));
    if (!got) {
      // The pending flock may still be granted later: closing then releases it.
      taking.finally(() => file.close()).catch(() => {});
      throw new InfraError(
        `rkhil's private apt root is in use: no ${
          exclusive ? "exclusive" : "shared"
        } lock of ${path} within ${Math.round(timeoutMs / 1000)} s`,
        "another rkhil run on this machine is updating or reading its package lists; wait " +
          "for it, or find it with `fuser " + path + "`",
      );
    }
    try {
      return await fn();
    } finally {
      file.close(); // closing releases the flock
    }
  }

  /**
   * `apt-get update` in the private root unless its lists are younger than maxAge (and the
   * sources did not change). Suites the mirror does not serve are reported in `missing`. The
   * check, the update, reading what it fetched and the stamp all happen under the root's
   * exclusive lock, so a run that waited for another's update finds the lists fresh.
   */
  update(force = false): Promise<UpdateReport> {
    return this.#locked(true, 900_000, async () => {
      const stampPath = `${this.root}/update-stamp.json`;
      const sourcesList = this.sourcesList();
      const stamp = await readJsonIfExists<Stamp>(stampPath);
      if (
        !force && stamp && stamp.sourcesList === sourcesList &&
        Date.now() - stamp.time < this.maxAgeMs
      ) {
        return { ...stamp.report, refreshed: false };
      }
      const res = await this.#run("apt-get", ["update"], {
        allowFailure: true,
        timeoutMs: 900_000,
      });
      const report = {
        ...await this.readServedSuites(),
        problems: suiteProblems(`${res.stdout}\n${res.stderr}`),
      };
      if (report.served.length === 0) {
        throw new InfraError(
          `apt-get update in rkhil's private arm64 root fetched nothing from ${this.mirrors.archive.uri}:\n${
            res.stderr.trim().split("\n").slice(-8).join("\n")
          }`,
          "check that this machine reaches its Debian mirror (apt-get update on the host)",
        );
      }
      if (Object.keys(report.problems).length === 0) {
        await writeJsonAtomic(stampPath, { time: Date.now(), sourcesList, report });
      }
      return { ...report, refreshed: true };
    });
  }

  /** Read the (In)Release files apt stored to learn what the mirror serves. */
  async readServedSuites(): Promise<Omit<UpdateReport, "refreshed">> {
    const lists = `${this.root}/state/lists`;
    const names: string[] = [];
    for await (const e of Deno.readDir(lists)) if (e.isFile) names.push(e.name);
    const served: ServedSuite[] = [];
    const missing: string[] = [];
    const wanted: { suite: string; uri: string }[] = [
      ...ARCHIVE_SUITES.map((suite) => ({ suite, uri: this.mirrors.archive.uri })),
      ...(this.mirrors.security
        ? SECURITY_SUITES.map((suite) => ({ suite, uri: this.mirrors.security!.uri }))
        : []),
    ];
    for (const { suite, uri } of wanted) {
      const prefix = uri.replace(/^[a-z]+:\/\//, "").replaceAll("/", "_");
      const file = names.find((n) =>
        n === `${prefix}_dists_${suite}_InRelease` || n === `${prefix}_dists_${suite}_Release`
      );
      if (!file) {
        missing.push(suite);
        continue;
      }
      const text = await Deno.readTextFile(`${lists}/${file}`);
      const field = (k: string) => text.match(new RegExp(`^${k}:\\s*(.*)$`, "m"))?.[1]?.trim();
      served.push({
        suite,
        codename: field("Codename") ?? suite,
        uri,
        components: (field("Components") ?? "").split(/\s+/).filter(Boolean),
        architectures: (field("Architectures") ?? "").split(/\s+/).filter(Boolean),
        date: field("Date"),
      });
    }
    return { served, missing };
  }

  /** All versions of the given packages apt knows, with their suites (`apt-cache madison`). */
  async madison(pkgs: string[]): Promise<PackageVersion[]> {
    if (pkgs.length === 0) return [];
    const out: PackageVersion[] = [];
    // Keep the command line short: madison accepts many names, but chunk to be safe.
    for (let i = 0; i < pkgs.length; i += 200) {
      const res = await this.apt("apt-cache", ["madison", ...pkgs.slice(i, i + 200)], {
        allowFailure: true,
      });
      for (const line of res.stdout.split("\n")) {
        const parts = line.split("|").map((s) => s.trim());
        if (parts.length < 3 || !parts[2].endsWith("Packages")) continue;
        // "<uri> <suite>/<component> <arch> Packages"
        const suite = parts[2].split(/\s+/)[1]?.split("/")[0];
        if (suite) out.push({ pkg: parts[0], version: parts[1], suite });
      }
    }
    return out;
  }

  /** Package names starting with a prefix (`apt-cache pkgnames`). */
  async pkgnames(prefix: string): Promise<string[]> {
    const res = await this.apt("apt-cache", ["pkgnames", prefix], { allowFailure: true });
    return res.stdout.split("\n").map((s) => s.trim()).filter(Boolean).sort();
  }

  /** The control fields of one exact package version. */
  async show(pkg: string, version: string): Promise<Record<string, string>> {
    const res = await this.apt("apt-cache", ["show", `${pkg}=${version}`]);
    const fields: Record<string, string> = {};
    let last = "";
    for (const line of res.stdout.split("\n")) {
      if (line === "") {
        if (Object.keys(fields).length) break; // first stanza only
        continue;
      }
      if (/^\s/.test(line) && last) {
        fields[last] += "\n" + line.trim();
        continue;
      }
      const m = line.match(/^([A-Za-z0-9-]+):\s*(.*)$/);
      if (m) {
        last = m[1];
        fields[last] = m[2];
      }
    }
    return fields;
  }

  /**
   * Resolve a package set with its full dependency closure (as if installed into an empty
   * system) preferring `release`, using apt's solver in simulation mode.
   */
  async resolveInstall(pkgs: string[], release: string): Promise<PackageVersion[]> {
    const res = await this.apt("apt-get", [
      "-s",
      "-q",
      "--no-install-recommends",
      "-o",
      `APT::Default-Release=${release}`,
      "install",
      ...pkgs,
    ], { allowFailure: true });
    if (res.code !== 0) {
      throw new UserInputError(
        `apt cannot resolve ${pkgs.join(" ")} for arm64 in ${release}:\n${
          (res.stdout + res.stderr).trim().split("\n").slice(-10).join("\n")
        }`,
        `check that the mirror serves ${release} (see \`rkhil qemu kernels\`)`,
      );
    }
    const out: PackageVersion[] = [];
    for (const line of res.stdout.split("\n")) {
      // Inst libc6 (2.36-9+deb12u10 Debian:12.11/stable, Debian-Security:12/stable-security [arm64])
      const m = line.match(/^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) ([^\s,]+)/);
      if (m) out.push({ pkg: m[1], version: m[2], suite: m[3] });
    }
    return out;
  }

  /**
   * Download exact package versions into the content store (skipping those already there).
   * apt checks each file against the signed index before rkhil sees it.
   */
  async download(pkgs: { pkg: string; version: string }[]): Promise<FetchedDeb[]> {
    const indexPath = `${this.root}/debs.json`;
    const index = (await readJsonIfExists<Record<string, { sha256: string; size: number }>>(
      indexPath,
    )) ?? {};
    const blobs = await cacheDir("blobs", "sha256");
    const result: FetchedDeb[] = [];
    const todo: { pkg: string; version: string }[] = [];
    for (const p of pkgs) {
      const hit = index[`${p.pkg}=${p.version}`];
      if (hit && await exists(`${blobs}/${hit.sha256}`)) {
        result.push({ ...p, path: `${blobs}/${hit.sha256}`, ...hit });
      } else todo.push(p);
    }
    if (todo.length) {
      const dl = await Deno.makeTempDir({ dir: `${this.root}/dl` });
      try {
        await this.apt("apt-get", ["download", "-q", ...todo.map((p) => `${p.pkg}=${p.version}`)], {
          cwd: dl,
        });
        const files: string[] = [];
        for await (const e of Deno.readDir(dl)) if (e.name.endsWith(".deb")) files.push(e.name);
        for (const p of todo) {
          // apt names files <pkg>_<version with ':' as %3a>_<arch>.deb
          const ver = p.version.replaceAll(":", "%3a");
          const name = files.find((f) => f.startsWith(`${p.pkg}_${ver}_`));
          if (!name) {
            throw new InfraError(
              `apt-get download did not produce ${p.pkg} ${p.version}`,
              "rerun with a fresh package list (RKHIL_APT_MAX_AGE_S=1)",
            );
          }
          const size = (await Deno.stat(`${dl}/${name}`)).size;
          const stored = await storeBlob(`${dl}/${name}`);
          index[`${p.pkg}=${p.version}`] = { sha256: stored.sha256, size };
          result.push({ ...p, path: stored.path, sha256: stored.sha256, size });
        }
        // Merged with what another run may have added meanwhile (the index is shared).
        const current = await readJsonIfExists<typeof index>(indexPath) ?? {};
        await writeJsonAtomic(indexPath, { ...current, ...index });
      } finally {
        await Deno.remove(dl, { recursive: true }).catch(() => {});
      }
    }
    // Same order as asked.
    return pkgs.map((p) => result.find((r) => r.pkg === p.pkg && r.version === p.version)!);
  }
}
