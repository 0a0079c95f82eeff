/**
 * Boot a QEMU guest on a Debian kernel and open an SSH session to it with the host key the
 * image was built with pinned: the first two steps of every job that needs a running kernel.
 *
 * @module
 */
import { QemuTarget } from "../qemu/target.ts";
import { type SshSession, waitForSsh } from "../ssh/mod.ts";

/** A running guest and its SSH session. */
export interface Guest {
  target: QemuTarget;
  ssh: SshSession;
  /** Boot timings in seconds from power on. */
  bootSeconds: { shell?: number; ssh?: number };
  /** Power off and close; never throws. */
  close(): Promise<void>;
}

/** Options of {@link bootGuest}. */
export interface GuestOptions {
  kernel: string;
  runDir: string;
  /** Guest memory (QEMU syntax), default 8G. */
  memory?: string;
  /** Extra kernel command line (e.g. `swiotlb=force`, `mem=3G`). */
  append?: string;
}

/** Boot a guest and connect over SSH; the guest is powered off again if SSH fails. */
export async function bootGuest(opts: GuestOptions): Promise<Guest> {
  const target = await QemuTarget.prepare({
    kernel: opts.kernel,
    runDir: opts.runDir,
    memory: opts.memory,
    extraAppend: opts.append,
  });
  try {
    const times = await target.powerOn({ ssh: true });
    const ssh = await waitForSsh({
      host: "127.0.0.1",
      port: target.sshPort,
      user: "root",
      hostKeyFingerprint: target.image.hostKey.fingerprint,
      privateKey: await Deno.readTextFile(target.image.clientKey.privateKeyPath),
    }, { totalMs: 60_000 });
    return {
      target,
      ssh,
      bootSeconds: { shell: times.shell, ssh: times.ssh },
      async close() {
        await ssh.close().catch(() => {});
        await target.powerOff().catch(() => {});
      },
    };
  } catch (err) {
    await target.powerOff().catch(() => {});
    throw err;
  }
}
