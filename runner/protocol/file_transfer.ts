/**
 * The FileTransfer protocol: copy files to and from the target, each verified by size and
 * SHA-256 on both ends before it counts as done.
 *
 * @module
 */

/** What a transfer did. */
export interface TransferResult {
  /** Bytes transferred. */
  readonly bytes: number;
  /** Hex SHA-256 of the file, equal on host and target. */
  readonly sha256: string;
  /** Wall time of transfer and check, in milliseconds. */
  readonly durationMs: number;
}

/** Options of a transfer. */
export interface TransferOptions {
  /** Bound of transfer and check in milliseconds (default 300 000). */
  timeoutMs?: number;
  /** Upload only: file mode to set, e.g. `0o755`. */
  mode?: number;
}

/** File transfer to and from a target. */
export interface FileTransferProtocol {
  /**
   * Copy `source` (a host path, or the bytes themselves) to `remotePath`; the file is moved
   * into place only after its SHA-256 matched in the target.
   *
   * @throws {InfraError} (MISS) on a lost transport or a checksum mismatch.
   */
  upload(
    source: string | Uint8Array,
    remotePath: string,
    opts?: TransferOptions,
  ): Promise<TransferResult>;
  /**
   * Copy `remotePath` to the host file `localPath`, checked against the target's SHA-256.
   *
   * @throws {InfraError} (MISS) on a lost transport or a checksum mismatch.
   */
  download(remotePath: string, localPath: string, opts?: TransferOptions): Promise<TransferResult>;
}
