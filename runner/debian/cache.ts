/**
 * rkhil's user cache: `$RKHIL_CACHE_DIR`, else `$XDG_CACHE_HOME/rkhil`, else `~/.cache/rkhil`.
 * Artefacts (kernel packages, extracted kernels, initramfs images) are stored by content:
 * a file's name is the SHA-256 of its bytes (or of the inputs that built it), so two runs that
 * want the same thing share it and a half-written file can never be mistaken for a good one
 * (everything is written to a temporary name and renamed into place).
 *
 * @module
 */

import { InfraError } from "../errors.ts";

/** The root of rkhil's cache directory (not created). */
export function cacheRoot(): string {
  const explicit = Deno.env.get("RKHIL_CACHE_DIR");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/rkhil`;
  const home = Deno.env.get("HOME");
  if (!home) {
    throw new InfraError(
      "cannot find a cache directory: neither RKHIL_CACHE_DIR, XDG_CACHE_HOME nor HOME is set",
      "set RKHIL_CACHE_DIR to a writable directory",
    );
  }
  return `${home}/.cache/rkhil`;
}

/** `cacheRoot()/<parts...>`, created. */
export async function cacheDir(...parts: string[]): Promise<string> {
  const dir = [cacheRoot(), ...parts].join("/");
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}

/** Lower-case hex SHA-256 of bytes or a string. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of a file, streamed (kernel packages are 40-100 MB). */
export async function sha256File(path: string): Promise<string> {
  // WebCrypto has no streaming digest; node:crypto does and is bundled with Deno.
  const { createHash } = await import("node:crypto");
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** True if `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * Move `src` into the content store `cacheRoot()/blobs/sha256/<hash>` (or keep the stored copy
 * if it is already there) and return the stored path and hash.
 */
export async function storeBlob(src: string): Promise<{ path: string; sha256: string }> {
  const hash = await sha256File(src);
  const dir = await cacheDir("blobs", "sha256");
  const dest = `${dir}/${hash}`;
  if (await exists(dest)) {
    await Deno.remove(src);
  } else {
    await Deno.rename(src, dest).catch(async () => {
      // Different file systems: copy to a temporary name, then rename.
      await Deno.copyFile(src, `${dest}.tmp`);
      await Deno.rename(`${dest}.tmp`, dest);
      await Deno.remove(src);
    });
  }
  return { path: dest, sha256: hash };
}

/** Write JSON atomically (temporary file + rename). */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(value, null, 2) + "\n");
  await Deno.rename(tmp, path);
}

/** Read JSON or return undefined if the file does not exist. */
export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}
