/**
 * File transfer over a target's SSH connection, each file checked by size and SHA-256 on both
 * ends (runner/protocol/file_transfer.ts): uploads go through {@linkcode SshSession.upload}
 * (moved into place only after the target's `sha256sum` matched); downloads read the target's
 * `sha256sum` and size first, then the bytes, and compare on the host before the local file is
 * moved into place.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname } from "node:path";
import { InfraError, RkhilError } from "../errors.ts";
import type { TransferOptions, TransferResult } from "../protocol/file_transfer.ts";
import { shellQuote, type SshSession } from "../ssh/client.ts";

/** Exit status of the download probe when the remote path is not a readable regular file. */
const NO_FILE = 96;

/**
 * Copy the target's `remotePath` to the host file `localPath` over `ssh`, checked against the
 * target's size and SHA-256 (and written to `localPath` only when both match).
 *
 * @throws {RkhilError} (ERROR) when `remotePath` is not a readable regular file on the target,
 *   or `localPath` cannot be written.
 * @throws {InfraError} (MISS) on a checksum or size mismatch, or a lost transport.
 */
export async function downloadOver(
  ssh: SshSession,
  remotePath: string,
  localPath: string,
  opts: TransferOptions = {},
): Promise<TransferResult> {
  const t0 = performance.now();
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const left = () => Math.max(1_000, timeoutMs - (performance.now() - t0));
  const f = shellQuote(remotePath);
  const probe = await ssh.exec(
    `f=${f}; if [ ! -f "$f" ] || [ ! -r "$f" ]; then ` +
      `ls -ld -- "$f" 2>&1; exit ${NO_FILE}; fi; ` +
      `n=$(wc -c <"$f") && s=$(sha256sum <"$f") && echo "$((n + 0)) \${s%% *}"`,
    { timeoutMs: left() },
  );
  if (probe.exitStatus === NO_FILE) {
    const what = probe.stdout.trim() || probe.stderr.trim();
    throw new RkhilError(
      `download ${remotePath}: not a readable regular file on the target` +
        (what ? ` (${what.split("\n")[0]})` : ""),
      "check the path on the target (ls -l); only regular files are downloaded",
      "ERROR",
    );
  }
  const m = /^(\d+) ([0-9a-f]{64})$/.exec(probe.stdout.trim());
  if (probe.exitStatus !== 0 || !m) {
    throw new InfraError(
      `download ${remotePath}: the target's size and sha256 could not be read ` +
        `(exit ${probe.exitStatus}): ${(probe.stdout + probe.stderr).trim().slice(0, 300)}`,
      "the target needs wc and sha256sum (coreutils or busybox)",
    );
  }
  const remoteBytes = Number(m[1]);
  const remoteSha = m[2];
  const r = await ssh.exec(`cat -- ${f}`, {
    timeoutMs: left(),
    maxOutputBytes: remoteBytes + 1,
  });
  const data = r.stdoutBytes;
  const sha256 = createHash("sha256").update(data).digest("hex");
  if (r.exitStatus !== 0 || data.length !== remoteBytes || sha256 !== remoteSha) {
    throw new InfraError(
      `download ${remotePath}: got ${data.length} bytes, sha256 ${sha256} (exit ` +
        `${r.exitStatus}); the target has ${remoteBytes} bytes, sha256 ${remoteSha}`,
      "the file changed while it was read, or the transport damaged it: retry",
    );
  }
  const part = `${localPath}.rkhil-part`;
  try {
    await Deno.mkdir(dirname(localPath), { recursive: true });
    await Deno.writeFile(part, data);
    await Deno.rename(part, localPath);
  } catch (err) {
    await Deno.remove(part).catch(() => {});
    throw new RkhilError(
      `download ${remotePath}: cannot write ${localPath}: ${(err as Error).message}`,
      "choose a writable local path",
      "ERROR",
      { cause: err },
    );
  }
  return { bytes: data.length, sha256, durationMs: performance.now() - t0 };
}

/**
 * Copy `source` (a host path or bytes) to `remotePath` over `ssh`, verified in the target
 * before it is moved into place (see {@linkcode SshSession.upload}).
 *
 * @throws {UserInputError} when the local file cannot be read.
 * @throws {InfraError} (MISS) on a checksum mismatch or a lost transport.
 */
export async function uploadOver(
  ssh: SshSession,
  source: string | Uint8Array,
  remotePath: string,
  opts: TransferOptions = {},
): Promise<TransferResult> {
  const r = await ssh.upload(source, remotePath, { timeoutMs: opts.timeoutMs, mode: opts.mode });
  return { bytes: r.bytes, sha256: r.sha256, durationMs: r.durationMs };
}
