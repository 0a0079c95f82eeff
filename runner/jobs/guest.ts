/**
 * Boot a QEMU guest on a Debian kernel and open an SSH session to it with the host key the
 * image was built with pinned, checking that the guest runs the kernel asked for. A thin shape
 * over {@linkcode QemuTarget} kept for the old main job and `validate` until the suite runner
 * replaces them (issue 8); new code uses the Target (runner/protocol/target.ts) directly.
 *
 * @module
 */
import type { RunCommand } from "../facts/collect.ts";
import { QemuTarget } from "../qemu/target.ts";
import type { SshSession } from "../ssh/mod.ts";
import type { KernelFault } from "../target/faults.ts";

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
  try {
    log(`booting ${target.kernel.release}`);
    // The strategy: console watchers from the first byte, so a kernel crash during a job is a
    // kernel FAIL, not a lost target; SSH with the image's host key pinned; `uname -r` checked.
    const times = await target.ready();
    const ssh = target.sshSession!;
    return {
      target,
      ssh,
      release: target.release!,
      run: (cmd, o) => target.command.run(cmd, { via: "ssh-exec", timeoutMs: o.timeoutMs }),
      bootSeconds: { shell: times.shell, ssh: times.ssh },
      faults: target.faults,
      lost: () => target.lost() ?? (target.state === "off" ? "the target is off" : undefined),
      whileUp: (work) => target.whileUp(work),
      close: () => target.close(),
    };
  } catch (err) {
    await target.close();
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
