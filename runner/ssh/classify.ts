/**
 * Classification of SSH and socket failures: every error that leaves runner/ssh is a typed
 * rkhil error with a hint, and connection attempts know which failures are worth a retry
 * while a target boots (refused, reset, handshake cut short) and which are not (wrong host
 * key, refused client key, unknown host name).
 *
 * @module
 */
import { InfraError, type RkhilError, UserInputError } from "../errors.ts";

/** Host key refused: unknown (nothing pinned) or changed (pinned differs from presented). */
export class HostKeyError extends UserInputError {
  /**
   * A host key refused; the message says how to pin or re-pin it.
   *
   * @param target the host (and port) whose key was refused
   * @param pinned the pinned fingerprint, or null when none is pinned
   * @param presented the fingerprint the host presented
   */
  constructor(
    readonly target: string,
    readonly pinned: string | null,
    readonly presented: string,
  ) {
    super(
      pinned === null
        ? `no host key fingerprint is pinned for ${target}; it presented ${presented}. ` +
          "Refusing to connect to an unverified host"
        : `host key of ${target} does not match the pinned fingerprint: ` +
          `pinned ${pinned}, presented ${presented}. Refusing to connect`,
      pinned === null
        ? `check the key on the target's console ('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub' ` +
          `or 'dropbearkey -y -f /etc/dropbear/dropbear_ed25519_host_key'); if it is ${presented}, ` +
          `add 'hostKeyFingerprint: ${presented}' to the board file`
        : `if the target was re-flashed or its host key regenerated, check the new key on the ` +
          `target's console ('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub' or ` +
          `'dropbearkey -y -f /etc/dropbear/dropbear_ed25519_host_key') and, if it is ` +
          `${presented}, replace the pinned ${pinned} in the board file; otherwise another ` +
          `machine answers at this address: do not connect`,
    );
  }
}

/** A classified failure of one connection attempt. */
export interface Classified {
  readonly error: RkhilError;
  /** Worth another attempt within a bounded wait (target still booting, network blip). */
  readonly retryable: boolean;
}

const RETRYABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "EAI_AGAIN",
]);

function field(err: unknown, name: string): string | undefined {
  if (typeof err === "object" && err !== null && name in err) {
    const v = (err as Record<string, unknown>)[name];
    return typeof v === "string" ? v : undefined;
  }
  return undefined;
}

/** Short human reason for a socket or ssh2 error (no secrets: ssh2 messages carry none). */
export function reasonOf(err: unknown): string {
  const code = field(err, "code");
  const msg = err instanceof Error ? err.message : String(err);
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused (nothing listens on the port yet)";
    case "ECONNRESET":
      return "connection reset by peer";
    case "EHOSTUNREACH":
    case "EHOSTDOWN":
      return "host unreachable";
    case "ENETUNREACH":
    case "ENETDOWN":
      return "network unreachable";
    case "ETIMEDOUT":
      return "TCP connect timed out";
  }
  if (msg === "Keepalive timeout") return "no answer to SSH keepalives (target hung or cut off)";
  return code && !msg.includes(code) ? `${msg} (${code})` : msg;
}

/**
 * Classify a failure of a connection attempt to `target` ("user@host:port", or
 * "jump host user@host:port"). `clientKeyFingerprint` is the public fingerprint of the
 * client key, shown when authentication fails (safe to print; the key itself never is).
 */
export function classifyConnectError(
  err: unknown,
  target: string,
  clientKeyFingerprint: string,
): Classified {
  if (err instanceof UserInputError || err instanceof InfraError) {
    return { error: err, retryable: !(err instanceof UserInputError) };
  }
  const code = field(err, "code");
  const level = field(err, "level");
  const msg = err instanceof Error ? err.message : String(err);
  const reason = reasonOf(err);
  if (code === "ENOTFOUND") {
    return {
      error: new UserInputError(
        `cannot resolve the host name of ${target}`,
        "check the host name in the board or farm file, or use an IP address",
        { cause: err },
      ),
      retryable: false,
    };
  }
  if (level === "client-authentication") {
    return {
      error: new UserInputError(
        `${target} refused the client key ${clientKeyFingerprint}`,
        "add the client public key (the .pub file next to the private key) to the user's " +
          "~/.ssh/authorized_keys on the target (dropbear: /etc/dropbear/authorized_keys for " +
          "some images), and check the user name",
        { cause: err },
      ),
      retryable: false,
    };
  }
  if (level === "handshake") {
    return {
      error: new InfraError(
        `SSH handshake with ${target} failed: ${msg}`,
        "the server and rkhil share no algorithm; ed25519 host keys and curve25519 key " +
          "exchange work with dropbear >= 2020 and OpenSSH >= 6.5",
        { cause: err },
      ),
      retryable: false,
    };
  }
  const retryable = (code !== undefined && RETRYABLE_CODES.has(code)) ||
    level === "client-timeout" || level === "client-socket" || level === "protocol" ||
    /Channel open failure|Connection lost before handshake|No response from server/i.test(msg);
  return {
    error: new InfraError(
      `cannot reach SSH on ${target}: ${reason}`,
      retryable
        ? "the target may still be booting or its network may be down; check the console " +
          "log, and use waitForSsh() with a longer bound if boots are slow"
        : "check the console log of the target and the network between the lab host and it",
      { cause: err },
    ),
    retryable,
  };
}
