/**
 * SSH host key fingerprints in OpenSSH's `SHA256:<base64, no padding>` form, as board files
 * carry them (`ssh-keygen -lf key.pub` prints the same string).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { UserInputError } from "../errors.ts";

const FINGERPRINT_RE = /^SHA256:([A-Za-z0-9+/]{43})=?$/;

/** Fingerprint of a raw SSH public key blob (the wire format, not the text line). */
export function fingerprintOfKeyBlob(blob: Uint8Array): string {
  const digest = createHash("sha256").update(blob).digest("base64");
  return `SHA256:${digest.replace(/=+$/, "")}`;
}

/**
 * Fingerprint of a public key line such as `ssh-ed25519 AAAAC3Nz... comment` (an OpenSSH
 * `.pub` file, a `known_hosts` entry without the host field, or `dropbearkey -y` output).
 */
export function fingerprintOfPublicKeyLine(line: string): string {
  for (const raw of line.split("\n")) {
    const fields = raw.trim().split(/\s+/);
    const idx = fields.findIndex((f) => /^(ssh-|ecdsa-|sk-)/.test(f));
    if (idx < 0 || idx + 1 >= fields.length) continue;
    const blob = Buffer.from(fields[idx + 1], "base64");
    if (blob.length < 16) continue;
    return fingerprintOfKeyBlob(blob);
  }
  throw new UserInputError(
    "no SSH public key found in the given text",
    "pass a line like 'ssh-ed25519 AAAA... comment' (the content of a .pub file)",
  );
}

/**
 * Check and normalise a pinned fingerprint from a board file. Accepts `SHA256:<43 chars>`
 * with or without the trailing `=`; anything else is a UserInputError naming `where`.
 */
export function parseFingerprint(value: string, where = "hostKeyFingerprint"): string {
  const m = FINGERPRINT_RE.exec(value.trim());
  if (!m) {
    throw new UserInputError(
      `${where}: '${value}' is not a SHA256 host key fingerprint`,
      "write it as 'SHA256:' followed by 43 base64 characters; get it on the target with " +
        "'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub' (OpenSSH) or " +
        "'dropbearkey -y -f /etc/dropbear/dropbear_ed25519_host_key' (dropbear), or from " +
        "the error rkhil prints on the first connection",
    );
  }
  return `SHA256:${m[1]}`;
}
