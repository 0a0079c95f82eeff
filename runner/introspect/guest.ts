/**
 * Boot a QEMU guest on a Debian kernel and open SSH to it, the same way the main job does
 * (`runner/jobs/main_job.ts`): {@link withGuest} powers the guest on, waits for SSH with the
 * pinned host key, checks `uname -r`, runs the caller's function, and always closes SSH and
 * powers the guest off.
 *
 * @module
 */
import { InfraError } from "../errors.ts";
import { QemuTarget } from "../qemu/target.ts";
import { type SshSession, waitForSsh } from "../ssh/mod.ts";
import type { RunCommand } from "../facts/collect.ts";

/** Options of {@link withGuest}. */
export interface GuestOptions {
  /** Kernel spec (`debian:trixie`, `debian:6.1.0-56`...). */
  kernel: string;
  /** Run directory for console logs. */
  runDir: string;
  /** Guest memory (QEMU syntax), default 8G. */
  memory?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** A booted guest with an SSH session. */
export interface Guest {
  target: QemuTarget;
  ssh: SshSession;
  /** `uname -r` of the guest. */
  release: string;
  /** A command channel over the SSH session, for collectors. */
  run: RunCommand;
}

/** Boot, open SSH, run `fn`, and always power off. */
export async function withGuest<T>(opts: GuestOptions, fn: (g: Guest) => Promise<T>): Promise<T> {
  const log = opts.log ?? (() => {});
  let target: QemuTarget | undefined;
  let ssh: SshSession | undefined;
  try {
    log(`preparing ${opts.kernel}`);
    target = await QemuTarget.prepare({
      kernel: opts.kernel,
      runDir: opts.runDir,
      memory: opts.memory ?? "8G",
    });
    log(`booting ${target.kernel.release}`);
    await target.powerOn({ ssh: true });
    const port = target.sshPort;
    if (port === undefined) {
      throw new InfraError("the guest has no SSH port forward", "see qemu.log");
    }
    ssh = await waitForSsh({
      host: "127.0.0.1",
      port,
      user: "root",
      hostKeyFingerprint: target.image.hostKey.fingerprint,
      privateKey: await Deno.readTextFile(target.image.clientKey.privateKeyPath),
    }, { totalMs: 60_000 });
    const r = await ssh.exec("uname -r", { timeoutMs: 20_000 });
    const release = r.stdout.trim();
    if (release !== target.kernel.release) {
      throw new InfraError(
        `guest runs ${release}, expected ${target.kernel.release}`,
        `see the console log in ${opts.runDir}`,
      );
    }
    const session = ssh;
    return await fn({
      target,
      ssh,
      release,
      run: (cmd, o) => session.exec(cmd, { timeoutMs: o.timeoutMs }),
    });
  } finally {
    await ssh?.close().catch(() => {});
    await target?.powerOff().catch(() => {});
  }
}
