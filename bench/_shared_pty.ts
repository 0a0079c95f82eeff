/**
 * A QEMU console pty that rkhil and another tool (labgrid in bench/labgrid.ts) take turns on.
 *
 * Two readers of one pty race for every byte, so only one may read at a time: while rkhil has
 * the console ({@linkcode SharedPtyConsole.attach}) a serial port on rkhil's Deno binding reads
 * it, exactly as `openQemuConsole` does; {@linkcode SharedPtyConsole.detach} closes that port
 * (its pending poll is cancelled before the close returns, so no byte is taken after it) and
 * the other tool reads. The stream the target sees stays open across turns (its capture log,
 * recorder and shells keep going); a descriptor opened on the pty and never read keeps QEMU's
 * side connected (QEMU's pty backend drops output while no one has the pty open and notices a
 * new opener only on its 1 s poll).
 *
 * @module
 */
import { InfraError } from "../runner/errors.ts";
import { CONSOLE_BAUD } from "../runner/qemu/console.ts";
import { BaseConsole, type ConsoleStream, openSerialConsole } from "../runner/serial/port.ts";
import { TtyFd } from "../runner/serial/deno_binding.ts";

/** See the module documentation. */
export class SharedPtyConsole extends BaseConsole {
  #inner: ConsoleStream | undefined;
  #offData: (() => void) | undefined;
  #holder: TtyFd;

  private constructor(readonly ptyPath: string, logPath: string, holder: TtyFd) {
    super(ptyPath, { logPath });
    this.#holder = holder;
  }

  /** Opens the pty (attached) with its capture in `logPath`: an `openConsole` for QEMU. */
  static async open(ptyPath: string, logPath: string): Promise<SharedPtyConsole> {
    // O_NOCTTY (Deno.open would make the pty this process's controlling terminal).
    const holder = TtyFd.open(ptyPath);
    const c = new SharedPtyConsole(ptyPath, logPath, holder);
    await c.attach();
    return c;
  }

  /** True while rkhil reads the pty. */
  get attached(): boolean {
    return this.#inner !== undefined;
  }

  /** rkhil reads the pty again (idempotent). */
  async attach(): Promise<void> {
    if (this.#inner) return;
    const inner = await openSerialConsole({
      path: this.ptyPath,
      baudRate: CONSOLE_BAUD,
      lock: false,
      maxQueuedBytes: 1, // nobody reads the inner queue: listeners get every byte
    });
    this.#offData = inner.onData((chunk) => this.deliver(chunk.slice()));
    this.#inner = inner;
  }

  /** rkhil stops reading the pty (idempotent); writes fail until {@linkcode attach}. */
  async detach(): Promise<void> {
    const inner = this.#inner;
    this.#inner = undefined;
    this.#offData?.();
    this.#offData = undefined;
    await inner?.close();
  }

  protected rawWrite(data: Uint8Array): Promise<void> {
    if (!this.#inner) {
      return Promise.reject(
        new InfraError(`${this.ptyPath}: rkhil is detached from the console`, "attach() first"),
      );
    }
    return this.#inner.write(data);
  }

  protected async rawClose(): Promise<void> {
    await this.detach();
    await this.#holder.close().catch(() => {});
  }
}
