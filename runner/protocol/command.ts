/**
 * The Command protocol: run a shell command on the target and get its output and exit status.
 *
 * The contract is the same on every transport (serial console, SSH exec channel, framed shell
 * on an SSH shell channel): the command runs isolated (a subshell of the framed shell, a fresh
 * shell per exec channel): its `cd`, variables and `exit` do not reach later commands; stdin is
 * `stdin` if given, else /dev/null; stderr is merged into stdout; `stdout` is exactly what it
 * printed and `exitStatus` its status (128 + the signal number when a signal killed it). A
 * non-zero status is a result, not an error.
 *
 * @module
 */

/** How a command reaches the target. */
export type Via = "serial" | "ssh-exec" | "ssh-shell";

/** Options of {@linkcode CommandProtocol.run}. */
export interface CommandOptions {
  /** Transport (default `ssh-exec` where the target has SSH, else `serial`). */
  via?: Via;
  /** Bound of the command in milliseconds (default: the target's, 60 000). */
  timeoutMs?: number;
  /** Bytes given to the command's stdin (default: /dev/null). */
  stdin?: Uint8Array | string;
  /**
   * Framed shells (`serial`, `ssh-shell`): run in a subshell (default true) or in the shell
   * itself (changes persist). SSH exec channels always isolate.
   */
  isolate?: boolean;
}

/** What a command did. */
export interface CommandResult {
  /** stdout and stderr merged, decoded as UTF-8. */
  stdout: string;
  /** stdout and stderr merged, as bytes. */
  stdoutBytes: Uint8Array;
  /** Exit status (128 + signal number when a signal killed the command). */
  exitStatus: number;
  /** Wall time of the command in milliseconds. */
  durationMs: number;
  /** The transport it ran over. */
  via: Via;
  /** Kernel console lines that arrived while the command ran. */
  kernelLines: string[];
}

/** Running commands on a target. */
export interface CommandProtocol {
  /**
   * Run `cmd` (a POSIX shell command line) on the target.
   *
   * @throws {KernelFaultError} (FAIL) when the kernel panics, oopses or hits a BUG meanwhile.
   * @throws {InfraError} (MISS) when the transport or the target is lost.
   * @throws {TimeoutError} (MISS) when the command and its recovery outlast the bound.
   */
  run(cmd: string, opts?: CommandOptions): Promise<CommandResult>;
}
