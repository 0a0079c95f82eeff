/**
 * The byte duplex every stream-shaped transport offers: a serial or ser2net console, an SSH
 * shell channel, a console tap. The marker-framed shell (`runner/shell/framed.ts`) sits on one.
 * This is the one definition; the transports import it.
 *
 * @module
 */

/** A plain byte duplex. */
export interface ByteDuplex {
  /**
   * Next chunk of bytes, or `null` at the end of the stream.
   *
   * @throws {InfraError} (`runner/errors.ts`) when the transport is lost (classified: MISS).
   */
  read(): Promise<Uint8Array | null>;
  /** Write all bytes (waits for flow control and, on serial lines, pacing). */
  write(data: Uint8Array): Promise<void>;
  /** Close both directions. Idempotent. */
  close(): Promise<void>;
}
