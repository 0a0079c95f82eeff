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

/**
 * `cacheRoot()/<parts...>` for files that hold key material: every directory from the cache
 * root down is created with mode 0700 (never briefly wider: `mkdir` with that mode, one level
 * at a time), and an existing one of another mode is set to 0700 (a cache from before this
 * rule is fixed on use). The cache root itself is created if missing but left as it is.
 */
export async function privateCacheDir(...parts: string[]): Promise<string> {
  const root = cacheRoot();
  await Deno.mkdir(root, { recursive: true });
  let dir = root;
  for (const part of parts) {
    dir = `${dir}/${part}`;
    await privateDir(dir);
  }
  return dir;
}

/** Creates `dir` (its parent must exist) with mode 0700, or sets an existing one to 0700. */
export async function privateDir(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  const st = await Deno.lstat(dir);
  if (!st.isDirectory) {
    throw new InfraError(
      `${dir} is not a directory`,
      "remove it; rkhil keeps key material in a directory there",
    );
  }
  // umask may have narrowed it further, never widened it; an old cache may be wider.
  if (((st.mode ?? 0) & 0o777) !== 0o700) await Deno.chmod(dir, 0o700);
}

/**
 * Writes `data` to `path` with mode 0600 from the first byte: a fresh temporary file in the
 * same directory is created exclusively with that mode, written, flushed, and renamed over
 * `path`. The directory should be one of {@link privateCacheDir}.
 */
export async function writePrivateFileAtomic(
  path: string,
  data: Uint8Array | string,
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  const f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
  try {
    // The creation mode is masked by umask (never widened); chmod pins it exactly.
    await Deno.chmod(tmp, 0o600);
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.syncData();
  } catch (err) {
    f.close();
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  f.close();
  await Deno.rename(tmp, path);
}

/** Sets an existing file that holds key material to mode 0600 (a cache from before). */
export async function fixPrivateFile(path: string): Promise<void> {
  const st = await Deno.lstat(path);
  if (st.isFile && ((st.mode ?? 0) & 0o777) !== 0o600) await Deno.chmod(path, 0o600);
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
