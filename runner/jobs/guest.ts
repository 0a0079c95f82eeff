/**
 * Boot a QEMU guest on a Debian kernel and open an SSH session to it with the host key the
 * image was built with pinned, checking that the guest runs the kernel asked for: the first
 * steps of every job that needs a running kernel (`rkhil run`, `validate`, `facts`).
 *
 * @module
 */
import { InfraError } from "../errors.ts";
import type { RunCommand } from "../facts/collect.ts";
import { QemuTarget } from "../qemu/target.ts";
import { type SshSession, waitForSsh } from "../ssh/mod.ts";
import type { KernelFault } from "../target/faults.ts";
import { TargetSession } from "../target/session.ts";

/** A running guest and its SSH session. */
export interface Guest {
  target: QemuTarget;
  ssh: SshSession;
  /** `uname -r` of the guest (checked against the kernel package). */
  release: string;
  /** A command channel over the SSH session, for collectors. */
  run: RunCommand;
  /** Boot timings in seconds from power on. */
  bootSeconds: { shell?: number; ssh?: number };
  /** Fatal kernel events (panic, Oops, BUG, SError) the console watchers saw since boot. */
  faults: readonly KernelFault[];
  /**
   * Why the target is gone, if it is: QEMU exited, the console closed, or the SSH connection
   * was lost. A step that ran while the target went away did not run (MISS), whatever it saw.
   */
  lost(): string | undefined;
  /**
   * `work`, ended early by an `InfraError` as soon as the kernel reports a fatal fault (panic,
   * Oops, BUG, SError) or QEMU exits: a step waits for neither a dead kernel's SSH timeouts nor
   * a killed guest's. The caller classifies with {@linkcode Guest.faults} and
   * {@linkcode Guest.lost} (FAIL for a fault, MISS for a lost target).
   */
  whileUp<T>(work: Promise<T>): Promise<T>;
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
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Boot a guest and connect over SSH; the guest is powered off again if anything fails. */
export async function bootGuest(opts: GuestOptions): Promise<Guest> {
  const log = opts.log ?? (() => {});
  log(`preparing ${opts.kernel}`);
  const target = await QemuTarget.prepare({
    kernel: opts.kernel,
    runDir: opts.runDir,
    memory: opts.memory,
    extraAppend: opts.append,
  });
  let ssh: SshSession | undefined;
  let watch: TargetSession | undefined;
  try {
    log(`booting ${target.kernel.release}`);
    const times = await target.powerOn({ ssh: true });
    // The console watchers, so a kernel crash during a job is a kernel FAIL, not a lost target.
    watch = await TargetSession.open(target, { connectSsh: false });
    const watching = watch;
    ssh = await waitForSsh({
      host: "127.0.0.1",
      port: target.sshPort,
      user: "root",
      hostKeyFingerprint: target.image.hostKey.fingerprint,
      privateKey: await Deno.readTextFile(target.image.clientKey.privateKeyPath),
    }, { totalMs: 60_000 });
    const release = (await ssh.exec("uname -r", { timeoutMs: 20_000 })).stdout.trim();
    if (release !== target.kernel.release) {
      throw new InfraError(
        `guest runs ${release}, expected ${target.kernel.release}`,
        `see the console log in ${opts.runDir}`,
      );
    }
    const session = ssh;
    return {
      target,
      ssh,
      release,
      run: (cmd, o) => session.exec(cmd, { timeoutMs: o.timeoutMs }),
      bootSeconds: { shell: times.shell, ssh: times.ssh },
      faults: watching.faults,
      lost() {
        const m = target.machine;
        if (!m || m.exited) {
          return `QEMU exited${m?.exitCode !== undefined ? ` (status ${m.exitCode})` : ""}`;
        }
        if (m.console.ended) return "the console is gone";
        if (!session.connected) return "SSH connection lost";
        return undefined;
      },
      whileUp<T>(work: Promise<T>): Promise<T> {
        work.catch(() => {});
        let off = () => {};
        const down = new Promise<never>((_, reject) => {
          const fail = (why: string) =>
            reject(
              new InfraError(`the target failed while the step ran: ${why}`, "see the console log"),
            );
          off = watching.onFault((f) => fail(`kernel ${f.kind}: ${f.reason}`));
          const m = target.machine;
          if (!m || m.exited) fail("QEMU is not running");
          else m.exitStatus.then(() => fail("QEMU exited"));
        });
        down.catch(() => {});
        return Promise.race([work, down]).finally(() => off());
      },
      async close() {
        await session.close().catch(() => {});
        await watching.close().catch(() => {});
        await target.powerOff().catch(() => {});
      },
    };
  } catch (err) {
    await ssh?.close().catch(() => {});
    await watch?.close().catch(() => {});
    await target.powerOff().catch(() => {});
    throw err;
  }
}

/** Boot a guest, run `fn` with it, and always power it off. */
export async function withGuest<T>(opts: GuestOptions, fn: (g: Guest) => Promise<T>): Promise<T> {
  const g = await bootGuest(opts);
  try {
    return await fn(g);
  } finally {
    await g.close();
  }
}
