/**
 * The SSH side of a target (runner/target/target.ts): one connection per boot (reconnected
 * within the driver's bound after a reboot, replaced when the endpoint changes, e.g. a new
 * QEMU with another forwarded port) and the persistent marker-framed shell on an SSH shell
 * channel of that boot.
 *
 * @module
 */
import { InfraError, TimeoutError } from "../errors.ts";
import { FramedShell } from "../shell/framed.ts";
import { type ConnectOptions, endpointLabel, type SshSession, waitForSsh } from "../ssh/client.ts";

/** One target's SSH connection and framed SSH shell, per boot. */
export class SshLink {
  #ssh?: SshSession;
  #boot = -1;
  #shell?: { boot: number; shell: Promise<FramedShell> };

  /**
   * @param name the target's name, for errors
   * @param waitMs bound of a (re)connect, retries included (the driver's `sshTimeoutMs`)
   * @param log progress lines
   */
  constructor(
    private readonly name: string,
    private readonly waitMs: number,
    private readonly log: (line: string) => void,
  ) {}

  /** The connection of boot `boot`, if one is open. */
  current(boot: number): SshSession | undefined {
    return this.#ssh && this.#boot === boot ? this.#ssh : undefined;
  }

  /** False when the connection was lost; undefined when there is none. */
  get connected(): boolean | undefined {
    return this.#ssh?.connected;
  }

  /**
   * The connection to `ep` for boot `boot`: the open one, or a (re)connect within the bound.
   *
   * @throws {HostKeyError} at once (never retried) when the host key is not the pinned one.
   * @throws {InfraError} (MISS) when the host did not answer within the bound, with the reason.
   */
  async session(ep: ConnectOptions, boot: number): Promise<SshSession> {
    if (this.#ssh && this.#boot === boot && this.#ssh.connected) return this.#ssh;
    const t0 = performance.now();
    const wait = { totalMs: this.waitMs, retryDelayMs: 100, maxRetryDelayMs: 1_000 };
    const label = endpointLabel(ep) + (ep.jump ? ` (via ${endpointLabel(ep.jump)})` : "");
    if (this.#ssh && this.#ssh.target !== label) {
      await this.#ssh.close().catch(() => {});
      this.#ssh = undefined;
    }
    const opts = { connectTimeoutMs: 15_000, keepaliveIntervalMs: 5_000, ...ep };
    try {
      if (this.#ssh) await this.#ssh.reconnect(wait);
      else this.#ssh = await waitForSsh(opts, wait);
    } catch (err) {
      if (err instanceof TimeoutError) {
        // The reason is the last attempt's failure (refused, no route, reset, ...).
        const last = err.cause instanceof Error ? err.cause : undefined;
        throw new InfraError(
          `${this.name}: SSH to ${ep.host}:${ep.port ?? 22} did not answer within ` +
            `${wait.totalMs} ms: ${last?.message ?? err.message}`,
          (last as { hint?: string } | undefined)?.hint ?? err.hint,
          { cause: err },
        );
      }
      throw err;
    }
    this.#boot = boot;
    this.dropShell();
    this.log(`ssh connected in ${Math.round(performance.now() - t0)} ms`);
    return this.#ssh;
  }

  /**
   * The framed shell on an SSH shell channel (with a pty: Ctrl-C recovery after a timeout
   * needs a terminal) for boot `boot`, started on first use.
   */
  async shell(ep: ConnectOptions, boot: number, name: string): Promise<FramedShell> {
    const ssh = await this.session(ep, boot);
    const cur = this.#shell;
    if (cur && cur.boot === boot) {
      const sh = await cur.shell.catch(() => undefined);
      if (sh?.usable) return sh;
    }
    const shell = (async () => {
      const ch = await ssh.shellChannel({ pty: true });
      return await FramedShell.start(ch, {
        name,
        quietMs: 200,
        loginTimeoutMs: 20_000,
        syncTimeoutMs: 10_000,
      });
    })();
    this.#shell = { boot, shell };
    return await shell;
  }

  /** Close the framed SSH shell (a new boot gets a new one). */
  dropShell(): void {
    const s = this.#shell;
    this.#shell = undefined;
    s?.shell.then((sh) => sh.close(), () => {}).catch(() => {});
  }

  /** Close shell and connection. Never throws. */
  async close(): Promise<void> {
    this.dropShell();
    await this.#ssh?.close().catch(() => {});
  }
}
