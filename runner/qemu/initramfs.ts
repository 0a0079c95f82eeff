/**
 * Builds the QEMU guest's initramfs from Debian arm64 packages (busybox-static, dropbear-bin
 * and its shared-library dependencies, resolved by apt and extracted with dpkg-deb), the
 * kernel's own virtio modules (those not built in, with their dependencies in modules.dep
 * order), `target/initramfs/init`, a dropbear host key generated at build time and an
 * authorized_keys holding rkhil's client key. Images are cached by the hash of their inputs.
 *
 * @module
 */

import { InfraError, UserInputError } from "../errors.ts";
import {
  cacheRoot,
  exists,
  fixPrivateFile,
  privateCacheDir,
  readJsonIfExists,
  sha256Hex,
  writeJsonAtomic,
  writePrivateFileAtomic,
} from "../debian/cache.ts";
import { sharedApt } from "../debian/kernel.ts";
import type { FetchedKernel } from "../debian/kernel.ts";
import { extractDeb } from "../debian/kernel.ts";
import { run } from "../debian/proc.ts";
import { hostCommand } from "../debian/host_tools.ts";
import { type CpioEntry, treeEntries, writeNewc } from "./cpio.ts";
import { clientKey, generateDropbearHostKey } from "./keys.ts";

/** The console prompt the guest shell shows (set in /etc/profile). */
export const GUEST_PROMPT = "rkhil-qemu# ";

/** Kernel modules the guest needs for `-M virt` console and networking, if not built in. */
export const VIRTIO_MODULES = ["virtio_mmio", "virtio_net", "virtio_rng"] as const;

/** Debian packages of the guest userland. */
export const USERLAND_PACKAGES = ["busybox-static", "dropbear-bin"] as const;

/** Bump when the image layout changes, so cached images are rebuilt. */
const LAYOUT_VERSION = 4;

/** Options of {@linkcode buildInitramfs}. */
export interface InitramfsOptions {
  /** Suite the userland comes from (default `trixie`). */
  userlandSuite?: string;
  /** `gzip` (smaller) or `none` (no decompression in the guest; default). */
  compression?: "gzip" | "none";
  /** Force a rebuild even if a cached image exists. */
  rebuild?: boolean;
}

/** How one wanted module is provided by a kernel. */
export interface ModulePlan {
  /** Module name, dashes written as underscores (`rockchip_iommu`). */
  name: string;
  /** Built into the kernel, a loadable module, or not in this kernel. */
  how: "builtin" | "module" | "absent";
}

/** A built image and what the host needs to talk to the guest. */
export interface Initramfs {
  /** Path of the image file. */
  path: string;
  /** SHA-256 of the image, lower-case hex. */
  sha256: string;
  /** Size of the image in bytes. */
  size: number;
  /** Size of the uncompressed cpio. */
  cpioSize: number;
  /** How the cpio is compressed. */
  compression: "gzip" | "none";
  /** `uname -r` of the kernel whose modules it holds. */
  kernelRelease: string;
  /** Guest host key, to pin. */
  hostKey: { line: string; fingerprint: string };
  /** Client key authorised in the image. */
  clientKey: { privateKeyPath: string; line: string; fingerprint: string };
  /** Modules loaded at boot, in order (paths inside the guest). */
  modulesLoaded: string[];
  /** How each needed driver is provided (built in, module, absent). */
  modulePlan: ModulePlan[];
  /** The Debian packages it was built from. */
  packages: { pkg: string; version: string; sha256: string }[];
  /** When it was built (ISO 8601, UTC). */
  builtAt: string;
  /** True if this call built it (false: reused from the cache). */
  built?: boolean;
}

const norm = (name: string) => name.replaceAll("-", "_");
const modName = (path: string) => norm(path.split("/").pop()!.replace(/\.ko(\.(xz|zst|gz))?$/, ""));

/**
 * Plan module loading from modules.dep/modules.builtin: for each wanted module, built in,
 * a module (then its dependencies first, in modules.dep order), or absent.
 */
export function planModules(
  wanted: readonly string[],
  modulesDep: string,
  modulesBuiltin: string,
): { plan: ModulePlan[]; load: string[] } {
  const builtin = new Set(modulesBuiltin.split("\n").filter(Boolean).map(modName));
  const deps = new Map<string, { path: string; deps: string[] }>();
  for (const line of modulesDep.split("\n")) {
    const m = line.match(/^([^:]+):\s*(.*)$/);
    if (!m) continue;
    deps.set(modName(m[1]), { path: m[1], deps: m[2].split(/\s+/).filter(Boolean) });
  }
  const plan: ModulePlan[] = [];
  const load: string[] = [];
  const visit = (path: string) => {
    const entry = deps.get(modName(path));
    if (!entry || load.includes(entry.path)) return;
    // modules.dep lists the full transitive closure; load each dependency's own deps first.
    for (const d of entry.deps) visit(d);
    load.push(entry.path);
  };
  for (const w of wanted) {
    const n = norm(w);
    if (builtin.has(n)) plan.push({ name: n, how: "builtin" });
    else if (deps.has(n)) {
      plan.push({ name: n, how: "module" });
      visit(deps.get(n)!.path);
    } else plan.push({ name: n, how: "absent" });
  }
  return { plan, load };
}

/** Move top-level bin, sbin, lib into usr/ and leave symlinks (a usr-merged layout). */
async function usrMerge(root: string): Promise<void> {
  for (const top of ["bin", "sbin", "lib"]) {
    const src = `${root}/${top}`;
    const dst = `${root}/usr/${top}`;
    await Deno.mkdir(dst, { recursive: true });
    const st = await Deno.lstat(src).catch(() => undefined);
    if (st?.isDirectory) {
      for await (const e of Deno.readDir(src)) {
        if (!await exists(`${dst}/${e.name}`)) {
          await Deno.rename(`${src}/${e.name}`, `${dst}/${e.name}`);
        }
      }
      await Deno.remove(src, { recursive: true });
    }
    if (!st || st.isDirectory) await Deno.symlink(`usr/${top}`, src);
  }
}

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return fallback;
  }
}

/**
 * Sets every cached image directory (`<cache>/initramfs/<key>/`) to 0700 and every image in
 * it to 0600: they hold the guest's SSH host private key. Cheap (a few entries); run on each
 * build so a cache made before this rule is fixed on first use.
 */
export async function securePrivateImages(): Promise<void> {
  if (!await exists(`${cacheRoot()}/initramfs`)) return;
  const top = await privateCacheDir("initramfs");
  for await (const e of Deno.readDir(top)) {
    if (!e.isDirectory) continue;
    await privateCacheDir("initramfs", e.name);
    for await (const f of Deno.readDir(`${top}/${e.name}`)) {
      if (f.isFile && /^initramfs\.cpio/.test(f.name)) {
        await fixPrivateFile(`${top}/${e.name}/${f.name}`);
      }
    }
  }
}

/**
 * Build (or reuse from the cache) the initramfs for a fetched kernel. The image holds the
 * guest's SSH host private key: it is written with mode 0600 into a 0700 directory.
 */
export async function buildInitramfs(
  kernel: FetchedKernel,
  opts: InitramfsOptions = {},
): Promise<Initramfs> {
  const suite = opts.userlandSuite ?? "trixie";
  const compression = opts.compression ?? "none";
  const { apt } = await sharedApt();
  const resolved = await apt.resolveInstall([...USERLAND_PACKAGES], suite);
  if (!resolved.some((p) => p.pkg === "busybox-static")) {
    throw new UserInputError(
      `apt did not resolve busybox-static in ${suite}`,
      "pick another userland suite",
    );
  }
  const debs = await apt.download(resolved);
  const initUrl = new URL("../../target/initramfs/init", import.meta.url);
  const initScript = await Deno.readFile(initUrl);
  const client = await clientKey();
  const modulesDep = await readOr(`${kernel.modulesDir}/modules.dep`, "");
  const modulesBuiltin = await readOr(`${kernel.modulesDir}/modules.builtin`, "");
  if (!modulesDep) {
    throw new InfraError(
      `${kernel.modulesDir}/modules.dep is missing`,
      "refetch the kernel (delete its directory under the cache's kernels/)",
    );
  }
  const { plan, load } = planModules(VIRTIO_MODULES, modulesDep, modulesBuiltin);
  const missingNet = plan.find((p) => p.name === "virtio_net" && p.how === "absent") ??
    plan.find((p) => p.name === "virtio_mmio" && p.how === "absent");
  if (missingNet) {
    throw new UserInputError(
      `kernel ${kernel.release} has neither a built-in nor a module ${missingNet.name}`,
      "pick a Debian kernel with virtio support (all Debian arm64 flavours have it)",
    );
  }
  const key = await sha256Hex(JSON.stringify({
    LAYOUT_VERSION,
    compression,
    init: await sha256Hex(initScript),
    debs: debs.map((d) => d.sha256),
    kernel: kernel.debs.map((d) => d.sha256),
    client: client.line,
    load,
    prompt: GUEST_PROMPT,
  }));
  // Images hold the guest's SSH host private key: 0600 files in 0700 directories, and
  // images cached before that rule are fixed here.
  await securePrivateImages();
  const dir = await privateCacheDir("initramfs", key);
  const metaPath = `${dir}/initramfs.json`;
  if (!opts.rebuild) {
    const cached = await readJsonIfExists<Initramfs>(metaPath);
    if (cached && await exists(cached.path)) return { ...cached, built: false };
  }
  const staging = await Deno.makeTempDir({ dir, prefix: "root." });
  try {
    // Packages.
    await extractDeb(debs.map((d) => d.path), `${staging}/r`);
    const root = `${staging}/r`;
    await usrMerge(root);
    for (
      const junk of [
        "usr/share/doc",
        "usr/share/man",
        "usr/share/locale",
        "usr/share/lintian",
        "usr/share/info",
        "usr/share/bug",
        "usr/lib/aarch64-linux-gnu/gconv",
        "usr/share/i18n",
      ]
    ) await Deno.remove(`${root}/${junk}`, { recursive: true }).catch(() => {});
    // Modules, decompressed on the host (busybox insmod cannot read .ko.xz everywhere).
    const loadInGuest: string[] = [];
    for (const rel of load) {
      const src = `${kernel.modulesDir}/${rel}`;
      const plain = rel.replace(/\.(xz|zst|gz)$/, "");
      const dest = `${root}/usr/lib/modules/${kernel.release}/${plain}`;
      await Deno.mkdir(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
      if (rel.endsWith(".xz")) {
        const out = await (await hostCommand("xz", { args: ["-dc", src], stdout: "piped" }))
          .output();
        await Deno.writeFile(dest, out.stdout);
      } else if (rel.endsWith(".zst")) {
        await run("zstd", ["-dq", "-o", dest, src], { owner: "zstd -d module" });
      } else if (rel.endsWith(".gz")) {
        const out = await (await hostCommand("gzip", { args: ["-dc", src], stdout: "piped" }))
          .output();
        await Deno.writeFile(dest, out.stdout);
      } else await Deno.copyFile(src, dest);
      loadInGuest.push(`/lib/modules/${kernel.release}/${plain}`);
    }
    const modDir = `${root}/usr/lib/modules/${kernel.release}`;
    await Deno.mkdir(modDir, { recursive: true });
    await Deno.writeTextFile(`${modDir}/modules.builtin`, modulesBuiltin);
    await Deno.writeTextFile(
      `${modDir}/modules.dep`,
      load.map((l) => {
        const deps = modulesDep.split("\n").find((x) => x.startsWith(`${l}:`)) ?? `${l}:`;
        return deps.replace(/\.ko\.(xz|zst|gz)/g, ".ko");
      }).join("\n") + "\n",
    );
    // The kernel's own config where the facts collector looks for it (Debian kernels have no
    // /proc/config.gz).
    await Deno.mkdir(`${root}/boot`, { recursive: true });
    await Deno.copyFile(kernel.config, `${root}/boot/config-${kernel.release}`);
    // Configuration.
    await Deno.mkdir(`${root}/etc/rkhil`, { recursive: true });
    await Deno.mkdir(`${root}/etc/dropbear`, { recursive: true });
    await Deno.writeTextFile(`${root}/etc/rkhil/modules.load`, loadInGuest.join("\n") + "\n");
    await Deno.writeTextFile(`${root}/etc/passwd`, "root:x:0:0:root:/root:/bin/sh\n");
    await Deno.writeTextFile(`${root}/etc/group`, "root:x:0:\ntty:x:5:\n");
    await Deno.writeTextFile(`${root}/etc/shells`, "/bin/sh\n/bin/ash\n");
    await Deno.writeTextFile(
      `${root}/etc/profile`,
      `export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root\nexport PS1='${GUEST_PROMPT}'\n`,
    );
    await Deno.mkdir(`${root}/root/.ssh`, { recursive: true, mode: 0o700 });
    await Deno.chmod(`${root}/root`, 0o700);
    await Deno.chmod(`${root}/root/.ssh`, 0o700);
    await Deno.writeTextFile(`${root}/root/.ssh/authorized_keys`, client.line + "\n", {
      mode: 0o600,
    });
    const hostKey = await generateDropbearHostKey(`${root}/etc/dropbear/dropbear_ed25519_host_key`);
    await Deno.writeFile(`${root}/init`, initScript, { mode: 0o755 });
    await Deno.chmod(`${root}/init`, 0o755);
    for (const d of ["proc", "sys", "dev", "tmp", "run", "var/run"]) {
      await Deno.mkdir(`${root}/${d}`, { recursive: true });
    }
    const entries: CpioEntry[] = await treeEntries(root);
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    entries.push({ type: "char", path: "dev/console", major: 5, minor: 1, mode: 0o600 });
    entries.push({ type: "char", path: "dev/null", major: 1, minor: 3, mode: 0o666 });
    const cpio = writeNewc(entries);
    let bytes: Uint8Array = cpio;
    if (compression === "gzip") {
      const stream = new Blob([cpio as Uint8Array<ArrayBuffer>]).stream()
        .pipeThrough(new CompressionStream("gzip"));
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    }
    const path = `${dir}/initramfs.${compression === "gzip" ? "cpio.gz" : "cpio"}`;
    await writePrivateFileAtomic(path, bytes);
    await Deno.writeTextFile(`${dir}/host_key.pub`, hostKey.line + "\n");
    const meta: Initramfs = {
      path,
      sha256: await sha256Hex(bytes),
      size: bytes.length,
      cpioSize: cpio.length,
      compression,
      kernelRelease: kernel.release,
      hostKey,
      clientKey: {
        privateKeyPath: client.privateKeyPath,
        line: client.line,
        fingerprint: client.fingerprint,
      },
      modulesLoaded: loadInGuest,
      modulePlan: plan,
      packages: debs.map((d) => ({ pkg: d.pkg, version: d.version, sha256: d.sha256 })),
      builtAt: new Date().toISOString(),
    };
    await writeJsonAtomic(metaPath, meta);
    return { ...meta, built: true };
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}
