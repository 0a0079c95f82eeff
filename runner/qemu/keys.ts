/**
 * SSH keys for QEMU targets: the client key rkhil logs in with (Ed25519, generated once and
 * cached, OpenSSH private-key format so ssh2 and OpenSSH both read it) and the guest's host key
 * (generated with dropbearkey when an image is built; its SHA-256 fingerprint is recorded so
 * the client can pin it).
 *
 * @module
 */

import { InfraError } from "../errors.ts";
import {
  exists,
  fixPrivateFile,
  privateCacheDir,
  writePrivateFileAtomic,
} from "../debian/cache.ts";
import { run } from "../debian/proc.ts";

/** A public key in authorized_keys form and its OpenSSH SHA-256 fingerprint. */
export interface PublicKeyInfo {
  /** `ssh-ed25519 AAAA... comment` */
  line: string;
  /** `SHA256:...` (base64 without padding), as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** Client key pair on disk. */
export interface ClientKey extends PublicKeyInfo {
  privateKeyPath: string;
  publicKeyPath: string;
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(text: string): Uint8Array {
  const s = atob(text);
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function u32(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

function sshString(data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return concat(u32(bytes.length), bytes);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** OpenSSH SHA-256 fingerprint of an authorized_keys-style line. */
export async function fingerprintOf(line: string): Promise<string> {
  const blob = line.trim().split(/\s+/)[1];
  if (!blob) throw new InfraError(`not a public key line: ${line}`, "regenerate the key");
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", unb64(blob) as Uint8Array<ArrayBuffer>),
  );
  return `SHA256:${b64(digest).replace(/=+$/, "")}`;
}

/** Encode an Ed25519 key pair as an unencrypted `openssh-key-v1` private key file. */
export function opensshEd25519Private(seed: Uint8Array, pub: Uint8Array, comment: string): string {
  const pubBlob = concat(sshString("ssh-ed25519"), sshString(pub));
  const check = crypto.getRandomValues(new Uint8Array(4));
  let priv = concat(
    check,
    check,
    sshString("ssh-ed25519"),
    sshString(pub),
    sshString(concat(seed, pub)),
    sshString(comment),
  );
  const padLen = (8 - (priv.length % 8)) % 8;
  priv = concat(priv, Uint8Array.from({ length: padLen }, (_, i) => i + 1));
  const body = concat(
    new TextEncoder().encode("openssh-key-v1\0"),
    sshString("none"),
    sshString("none"),
    sshString(new Uint8Array()),
    u32(1),
    sshString(pubBlob),
    sshString(priv),
  );
  const text = b64(body).replace(/(.{70})/g, "$1\n").trimEnd();
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${text}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/** Generate a fresh Ed25519 pair: OpenSSH private key text and the public key line. */
export async function generateEd25519(
  comment: string,
): Promise<{ privateKey: string; line: string }> {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  // PKCS#8 for Ed25519 is a fixed 16-byte prefix followed by the 32-byte seed.
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const seed = pkcs8.slice(pkcs8.length - 32);
  const line = `ssh-ed25519 ${b64(concat(sshString("ssh-ed25519"), sshString(pub)))} ${comment}`;
  return { privateKey: opensshEd25519Private(seed, pub, comment), line };
}

/**
 * The client key rkhil logs into QEMU targets with, generated on first use and cached in
 * `<cache>/keys/` (directory 0700, private key 0600 from its first byte; a cache from before
 * is fixed on use). Never printed or logged.
 */
export async function clientKey(): Promise<ClientKey> {
  const dir = await privateCacheDir("keys");
  const privateKeyPath = `${dir}/client_ed25519`;
  const publicKeyPath = `${privateKeyPath}.pub`;
  if (!await exists(privateKeyPath) || !await exists(publicKeyPath)) {
    const { privateKey, line } = await generateEd25519("rkhil-client");
    await Deno.writeTextFile(publicKeyPath, line + "\n");
    await writePrivateFileAtomic(privateKeyPath, privateKey);
  } else await fixPrivateFile(privateKeyPath);
  const line = (await Deno.readTextFile(publicKeyPath)).trim();
  return { privateKeyPath, publicKeyPath, line, fingerprint: await fingerprintOf(line) };
}

/**
 * Generate a dropbear Ed25519 host key at `path` with dropbearkey and return its public line
 * and fingerprint.
 */
export async function generateDropbearHostKey(path: string): Promise<PublicKeyInfo> {
  await run("dropbearkey", ["-t", "ed25519", "-f", path], { owner: "dropbearkey" });
  await Deno.chmod(path, 0o600);
  const res = await run("dropbearkey", ["-y", "-f", path], { owner: "dropbearkey -y" });
  const line = res.stdout.split("\n").find((l) => l.startsWith("ssh-ed25519 "));
  if (!line) {
    throw new InfraError(
      `dropbearkey -y printed no ssh-ed25519 line:\n${res.stdout}`,
      "check the dropbear-bin installation",
    );
  }
  const clean = line.trim().split(/\s+/).slice(0, 2).join(" ") + " rkhil-qemu-host";
  return { line: clean, fingerprint: await fingerprintOf(clean) };
}
