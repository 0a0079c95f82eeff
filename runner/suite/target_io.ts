/**
 * The target's Command and FileTransfer protocols in the shapes the existing collectors take:
 * the kernel-fact collector and driver introspection (`RunCommand`), and the probe module's
 * runner (`Shell`). Suites reach a target only through these and the `Target` interface.
 *
 * @module
 */
import { InfraError } from "../errors.ts";
import type { RunCommand } from "../facts/collect.ts";
import type { Shell } from "../probe/run.ts";
import type { Target } from "../protocol/target.ts";

/** `target.command.run` as the fact collectors' command function (stdout merged, status). */
export function commandOf(target: Target): RunCommand {
  return (cmd, opts) => target.command.run(cmd, { timeoutMs: opts.timeoutMs });
}

/**
 * A probe-module {@linkcode Shell} on the target: commands through `target.command`, the module
 * through `target.files` (checked by SHA-256 in the target).
 *
 * @param timeoutMs bound of each command and upload
 * @throws {InfraError} (MISS) from `upload` when the target has no file transfer (no SSH).
 */
export function probeShellOf(target: Target, timeoutMs = 60_000): Shell {
  return {
    exec: async (cmd) => {
      const r = await target.command.run(cmd, { timeoutMs });
      // The Command protocol merges stderr into stdout.
      return { stdout: r.stdout, stderr: "", status: r.exitStatus };
    },
    upload: async (data, path) => {
      if (!target.files) {
        throw new InfraError(
          `${target.name} has no file transfer (no SSH)`,
          "give the board an ssh section in its board file",
        );
      }
      await target.files.upload(data, path, { timeoutMs });
    },
  };
}
