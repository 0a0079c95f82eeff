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
import { fixPrivateFile, privateDir, writePrivateFileAtomic } from "../debian/cache.ts";

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
 * missing. The directory is created with mode 0700 and the private key with 0600 from its
 * first byte; an existing directory or key of a wider mode is narrowed on use.
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
    try {
      await privateDir(dir);
      await fixPrivateFile(privPath);
    } catch (err) {
      throw new InfraError(
        `cannot make the client key ${privPath} private (0600 in a 0700 directory)`,
        `run 'chmod 700 ${dir} && chmod 600 ${privPath}' as the key's owner`,
        { cause: err },
      );
    }
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
  const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment });
  const publicKeyLine = pair.public.trim();
  try {
    const parent = dir.slice(0, dir.lastIndexOf("/"));
    if (parent) await Deno.mkdir(parent, { recursive: true });
    await privateDir(dir);
    // Temporary names, then rename, so a crash never leaves half a pair; the private key is
    // 0600 from its first byte.
    await Deno.writeTextFile(`${pubPath}.tmp`, publicKeyLine + "\n", { mode: 0o644 });
    await writePrivateFileAtomic(privPath, pair.private);
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
