/**
 * Client key pairs for rkhil: one ed25519 key per cache directory, generated on first use
 * with ssh2's generator and stored with owner-only permissions. The private key is returned
 * to the caller for `connect()` and never printed.
 *
 * @module
 */
import ssh2 from "ssh2";
import { InfraError, UserInputError } from "../errors.ts";
import { fingerprintOfPublicKeyLine } from "./fingerprint.ts";

/** A client key pair as stored in the cache directory. */
export interface ClientKey {
  /** OpenSSH private key text. A secret: never log it or put it in a message. */
  readonly privateKey: string;
  /** One `ssh-ed25519 AAAA... comment` line, for the target's authorized_keys. */
  readonly publicKeyLine: string;
  /** `SHA256:...` of the public key (safe to print). */
  readonly fingerprint: string;
  /** Where the private key file lives (safe to print; its content is not). */
  readonly privateKeyPath: string;
}

/**
 * Load `<dir>/<name>` and `<dir>/<name>.pub`, generating an ed25519 pair first if either is
 * missing. The directory is created with mode 0700 and the private key with 0600.
 */
export async function ensureClientKey(
  dir: string,
  name = "rkhil_ed25519",
  comment = "rkhil",
): Promise<ClientKey> {
  const privPath = `${dir}/${name}`;
  const pubPath = `${privPath}.pub`;
  try {
    const [privateKey, pub] = await Promise.all([
      Deno.readTextFile(privPath),
      Deno.readTextFile(pubPath),
    ]);
    const publicKeyLine = pub.trim();
    return {
      privateKey,
      publicKeyLine,
      fingerprint: fingerprintOfPublicKeyLine(publicKeyLine),
      privateKeyPath: privPath,
    };
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new InfraError(
        `cannot read the client key pair ${privPath} (+ .pub)`,
        "check the permissions of the key cache directory, or delete both files to regenerate",
        { cause: err },
      );
    }
  }
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment });
  const publicKeyLine = pair.public.trim();
  try {
    // Write to temporary names, then rename, so a crash never leaves half a pair.
    await Deno.writeTextFile(`${privPath}.tmp`, pair.private, { mode: 0o600 });
    await Deno.chmod(`${privPath}.tmp`, 0o600);
    await Deno.writeTextFile(`${pubPath}.tmp`, publicKeyLine + "\n", { mode: 0o644 });
    await Deno.rename(`${privPath}.tmp`, privPath);
    await Deno.rename(`${pubPath}.tmp`, pubPath);
  } catch (err) {
    throw new UserInputError(
      `cannot write the client key pair to ${dir}`,
      "point the key cache at a writable directory",
      { cause: err },
    );
  }
  return {
    privateKey: pair.private,
    publicKeyLine,
    fingerprint: fingerprintOfPublicKeyLine(publicKeyLine),
    privateKeyPath: privPath,
  };
}
