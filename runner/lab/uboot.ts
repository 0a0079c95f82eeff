/**
 * The U-Boot lab guest: a QEMU `-M virt` guest that boots as a ROCK 3B with U-Boot does, for
 * proving kernel deployment (`runner/board/deploy.ts`) without a board. Debian's `u-boot-qemu`
 * (`qemu_arm64/u-boot.bin`, as `-bios`) runs distro boot on a virtio-blk disk whose first
 * partition is the board's `/boot` (ext4): `extlinux/extlinux.conf` with the known-good label
 * `l0`, its kernel and initramfs. The guest is reached only through its board file (console on
 * its pty, SSH with the pinned host key, power by `rkhil lab power` command lines, and a
 * `deploy:` block naming `/dev/vda1` as `/boot`), like the lab's other guests
 * (`runner/lab/lab.ts`).
 *
 * The disk is built on the host from Debian packages' tools: `sfdisk` (fdisk) writes the MBR
 * partition table, `mke2fs -d` (e2fsprogs) the file system from a directory, at the
 * partition's offset (no loop device, no mount).
 *
 * Every initramfs on the disk is the embedded target's image (`buildInitramfs`) followed by a
 * second newc archive: the lab's one SSH host key (the board file pins it, whatever kernel
 * boots) and the kernel's virtio-blk and ext4 modules (so the running guest can mount its
 * `/boot`), appended to the image's module list.
 *
 * @module
 */

import { InfraError } from "../errors.ts";
import { type FetchedKernel, fetchKernel } from "../debian/kernel.ts";
import { ensureHostFile, ensureHostTools, hostCommand } from "../debian/host_tools.ts";
import { run } from "../debian/proc.ts";
import { buildInitramfs, planModules } from "../qemu/initramfs.ts";
import { type CpioEntry, writeNewc } from "../qemu/cpio.ts";
import { clientKey, generateDropbearHostKey } from "../qemu/keys.ts";
import { QemuMachine, qemuOptValue } from "../qemu/machine.ts";
import { QEMU_HOST_TOOLS } from "../qemu/target.ts";
import { labBoardYaml } from "./board_file.ts";
import { labPowerLine, LeftToBoardFile, withOverlay } from "./lab.ts";

/** Debian's U-Boot for QEMU's `-M virt` (package u-boot-qemu). */
export const UBOOT_QEMU_ARM64 = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

/** Modules the guest loads to mount its `/boot` (with their modules.dep dependencies). */
export const BOOT_DISK_MODULES = ["virtio_blk", "ext4", "crc32c_generic"] as const;

/** Of {@linkcode BOOT_DISK_MODULES}, those a kernel may lack (ext4 then has what it needs). */
const OPTIONAL_MODULES = new Set(["crc32c_generic"]);

/** The known-good label of the lab's extlinux.conf. */
export const KNOWN_GOOD_LABEL = "l0";

/** Kernel command line of the lab's entries (the embedded target's, as U-Boot passes it). */
export const UBOOT_LAB_APPEND = "console=ttyAMA0 rdinit=/init panic=-1";

/** Options of {@linkcode startUbootLab}. */
export interface UbootLabOptions {
  /** Known-good kernel (default `debian:bookworm`). */
  knownGood?: string;
  /** Lab directory (default: a new temporary one, removed by `stop()`). */
  dir?: string;
  /** Board id (default `uboot-1`). */
  id?: string;
  /** Disk size in MiB (default 256: two kernels with initramfs and room for one more). */
  diskMiB?: number;
  /** Guest memory (default `8G`, the board facts). */
  memory?: string;
}

/** A running U-Boot lab guest. */
export interface UbootLab {
  /** The lab directory. */
  readonly dir: string;
  /** Board directory (`--boards-dir`). */
  readonly boardsDir: string;
  /** Board id. */
  readonly id: string;
  /** Its board file. */
  readonly boardPath: string;
  /** The known-good kernel on the disk. */
  readonly knownGood: FetchedKernel;
  /** The QEMU process (the lab's bookkeeping; tests reach the guest through the board file). */
  readonly machine: QemuMachine;
  /** The disk image. */
  readonly disk: string;
  /**
   * The initramfs for `kernel` as this guest needs it (cached build + the lab's overlay),
   * written into the lab directory; returns its path.
   */
  initrdFor(kernel: FetchedKernel): Promise<string>;
  /** Quit QEMU, remove the directory (unless given). Never throws. */
  stop(): Promise<void>;
}

async function readOr(path: string): Promise<string> {
  return await Deno.readTextFile(path).catch(() => "");
}

/**
 * The overlay archive for `kernel`: the host key, the boot-disk modules (decompressed) and the
 * full module list (the base image's first).
 */
async function overlayFor(
  kernel: FetchedKernel,
  baseLoaded: readonly string[],
  hostKey: Uint8Array,
  work: string,
): Promise<Uint8Array> {
  const dep = await readOr(`${kernel.modulesDir}/modules.dep`);
  const builtin = await readOr(`${kernel.modulesDir}/modules.builtin`);
  const { plan, load } = planModules(BOOT_DISK_MODULES, dep, builtin);
  // ext4's mount asks the crypto API for crc32c (its checksums) even without metadata_csum.
  const absent = plan.filter((p) => p.how === "absent" && !OPTIONAL_MODULES.has(p.name));
  if (absent.length) {
    throw new InfraError(
      `kernel ${kernel.release} has no ${absent.map((a) => a.name).join(", ")}`,
      "pick a Debian arm64 kernel (they all have virtio_blk and ext4)",
    );
  }
  const entries: CpioEntry[] = [
    { type: "file", path: "etc/dropbear/dropbear_ed25519_host_key", data: hostKey, mode: 0o600 },
  ];
  const loads = [...baseLoaded];
  const dirs = new Set<string>();
  for (const rel of load) {
    const plain = rel.replace(/\.(xz|zst|gz)$/, "");
    const guest = `/lib/modules/${kernel.release}/${plain}`;
    if (loads.includes(guest)) continue;
    const src = `${kernel.modulesDir}/${rel}`;
    let data: Uint8Array;
    if (rel.endsWith(".zst")) {
      const out = `${work}/${plain.replaceAll("/", "_")}`;
      await run("zstd", ["-dqf", "-o", out, src], { owner: `zstd -d ${plain}` });
      data = await Deno.readFile(out);
    } else if (rel.endsWith(".xz") || rel.endsWith(".gz")) {
      const tool = rel.endsWith(".xz") ? "xz" : "gzip";
      const cmd = await hostCommand(tool, { args: ["-dc", src], stdout: "piped" });
      const res = await cmd.output();
      if (!res.success) {
        throw new InfraError(`${tool} -dc ${src} failed`, "refetch the kernel");
      }
      data = res.stdout;
    } else data = await Deno.readFile(src);
    const parts = `usr/lib/modules/${kernel.release}/${plain}`.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
    entries.push({ type: "file", path: `usr/lib/modules/${kernel.release}/${plain}`, data });
    loads.push(guest);
  }
  // Parents before children: the kernel's unpacker makes no missing parent directory.
  const dirEntries: CpioEntry[] = [...dirs].sort()
    .filter((d) => d !== "usr" && d !== "usr/lib")
    .map((d) => ({ type: "dir", path: d, mode: 0o755 }));
  entries.unshift(...dirEntries);
  entries.push({
    type: "file",
    path: "etc/rkhil/modules.load",
    data: new TextEncoder().encode(loads.join("\n") + "\n"),
    mode: 0o644,
  });
  return writeNewc(entries);
}

/** Base image + overlay, the image zero-padded to 512 bytes; written 0600 (it holds a key). */
async function initrdWithOverlay(
  kernel: FetchedKernel,
  hostKey: Uint8Array,
  out: string,
  work: string,
): Promise<string> {
  const image = await buildInitramfs(kernel);
  if (image.compression !== "none") {
    throw new InfraError("the lab expects an uncompressed initramfs", "rebuild without gzip");
  }
  const overlay = await overlayFor(kernel, image.modulesLoaded, hostKey, work);
  return await withOverlay(image.path, overlay, out);
}

/** The lab's extlinux.conf: the known-good label only (rkhil adds its own when it deploys). */
export function labExtlinuxConf(release: string): string {
  return [
    "# /boot/extlinux/extlinux.conf of rkhil's U-Boot lab guest (runner/lab/uboot.ts)",
    `default ${KNOWN_GOOD_LABEL}`,
    "menu title rkhil U-Boot lab",
    "prompt 1",
    "timeout 30",
    "",
    `label ${KNOWN_GOOD_LABEL}`,
    `\tmenu label Debian ${release} (known good)`,
    `\tlinux /vmlinuz-${release}`,
    `\tinitrd /initrd.img-${release}`,
    `\tappend ${UBOOT_LAB_APPEND}`,
    "",
  ].join("\n");
}

/**
 * Build the disk image `path` (MBR, one bootable Linux partition from 1 MiB holding an ext4
 * file system made from the directory `root`), `mib` MiB, sparse.
 */
export async function buildBootDisk(root: string, path: string, mib: number): Promise<void> {
  await ensureHostTools(["sfdisk", "mke2fs"]);
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  await f.truncate(mib * 1024 * 1024);
  f.close();
  await run("sfdisk", ["-q", path], {
    stdin: new TextEncoder().encode("label: dos\nstart=2048, type=83, bootable\n"),
    owner: "sfdisk (U-Boot lab disk)",
  });
  await run("mke2fs", [
    "-q",
    "-F",
    "-t",
    "ext4",
    // Without metadata checksums (U-Boot and older kernels read it either way).
    "-O",
    "^metadata_csum",
    "-L",
    "boot",
    "-d",
    root,
    "-E",
    "offset=1048576",
    path,
    `${mib - 1}M`,
  ], { owner: "mke2fs -d (U-Boot lab disk)" });
}

/**
 * Start a U-Boot lab guest (see the module documentation), paused (power off). Its board file
 * is in `<dir>/boards/<id>.yaml`.
 *
 * @throws {InfraError} when a tool, U-Boot or QEMU cannot be had (what started is stopped).
 */
export async function startUbootLab(opts: UbootLabOptions = {}): Promise<UbootLab> {
  const id = opts.id ?? "uboot-1";
  await ensureHostTools([...QEMU_HOST_TOOLS, "sfdisk", "mke2fs", "dropbearkey"]);
  const bios = await ensureHostFile(UBOOT_QEMU_ARM64);
  const knownGood = await fetchKernel(opts.knownGood ?? "debian:bookworm");
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "rkhil-uboot-lab-" });
  const work = `${dir}/work`;
  const boardsDir = `${dir}/boards`;
  await Deno.mkdir(work, { recursive: true });
  await Deno.mkdir(boardsDir, { recursive: true });
  const sockDir = await Deno.makeTempDir({ prefix: "rkhil-uboot-qmp-" });
  let machine: QemuMachine | undefined;
  const stop = async () => {
    await machine?.quit(3_000).catch(() => machine?.kill());
    await Deno.remove(sockDir, { recursive: true }).catch(() => {});
    if (opts.dir === undefined) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const keyPath = `${work}/dropbear_ed25519_host_key`;
    const hostKey = await generateDropbearHostKey(keyPath);
    const keyBytes = await Deno.readFile(keyPath);
    const initrdFor = async (k: FetchedKernel) =>
      await initrdWithOverlay(k, keyBytes, `${work}/initrd.img-${k.release}`, work);
    const root = `${work}/bootfs`;
    await Deno.mkdir(`${root}/extlinux`, { recursive: true });
    const r = knownGood.release;
    await Deno.copyFile(knownGood.vmlinuz, `${root}/vmlinuz-${r}`);
    await Deno.copyFile(await initrdFor(knownGood), `${root}/initrd.img-${r}`);
    await Deno.writeTextFile(`${root}/extlinux/extlinux.conf`, labExtlinuxConf(r));
    const disk = `${dir}/disk.img`;
    await buildBootDisk(root, disk, opts.diskMiB ?? 256);
    await Deno.remove(root, { recursive: true });
    const powerSocket = `${sockDir}/${id}.sock`;
    machine = await QemuMachine.launch({
      bios,
      kernel: "",
      initrd: "",
      memory: opts.memory ?? "8G",
      cpus: 2,
      runDir: `${dir}/${id}`,
      openConsole: (ptyPath) => Promise.resolve(new LeftToBoardFile(ptyPath)),
      extraArgs: [
        "-drive",
        `if=none,id=boot0,format=raw,file=${qemuOptValue(disk)}`,
        "-device",
        "virtio-blk-device,drive=boot0",
        "-chardev",
        `socket,id=labpower,path=${qemuOptValue(powerSocket)},server=on,wait=off`,
        "-mon",
        "chardev=labpower,mode=control",
      ],
    });
    const client = await clientKey();
    const boardPath = `${boardsDir}/${id}.yaml`;
    await Deno.writeTextFile(
      boardPath,
      labBoardYaml({
        id,
        sshPort: machine.sshPort,
        fingerprint: hostKey.fingerprint,
        keyFile: client.privateKeyPath,
        console: { type: "serial", device: machine.ptyPath },
        power: {
          type: "command",
          on: labPowerLine("on", powerSocket),
          off: labPowerLine("off", powerSocket),
        },
        minOffMs: 500,
      }) +
        [
          "# U-Boot (Debian's u-boot-qemu) boots /dev/vda1 (ext4, the board's /boot) through",
          "# extlinux.conf; rkhil deploys kernels there with a one-shot menu choice.",
          "deploy:",
          "  method: extlinux-menu",
          "  boot_dir: /boot",
          "  device: /dev/vda1",
          "  uboot_prefix: /",
          `  known_good: ${KNOWN_GOOD_LABEL}`,
          "  kernel_start_s: 20",
          "  menu_timeout_s: 3",
          "",
        ].join("\n"),
    );
    return {
      dir,
      boardsDir,
      id,
      boardPath,
      knownGood,
      machine,
      disk,
      initrdFor,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
