/**
 * Finds private key material in files, for the audit of what a run and a cache build leave on
 * disk (files that hold keys must be mode 0600 in 0700 directories).
 *
 * Recognised, anywhere in a file:
 * - PEM private keys: `-----BEGIN [RSA |EC |DSA |ENCRYPTED ]PRIVATE KEY-----`;
 * - OpenSSH private keys: `-----BEGIN OPENSSH PRIVATE KEY-----`, and the binary
 *   `openssh-key-v1\0` body;
 * - dropbear private keys (`dropbearkey` files): SSH wire-format strings of an algorithm name
 *   followed by the private fields: `ssh-ed25519` with a 64-byte key (a public blob has 32),
 *   `ssh-rsa` with e, n, d, p, q (a public blob has e, n), `ecdsa-sha2-*` with curve, Q and d,
 *   `ssh-dss` with p, q, g, y, x;
 * - inside cpio "newc" archives (an initramfs) and gzip streams: every member is scanned
 *   the same way, and a member named like a host key (`dropbear_*_host_key`,
 *   `ssh_host_*_key`) counts even when its content is not recognised.
 *
 * Hostile input (truncated archives, lying length fields, gzip bombs) never throws: parsing
 * stops where the bytes stop making sense, and decompression is bounded.
 *
 * @module
 */

/** What kind of key material was found. */
export type KeyKind =
  | "pem-private-key"
  | "openssh-private-key"
  | "dropbear-private-key"
  | "host-key-file";

/** One piece of key material. */
export interface KeyFinding {
  /** What sort of key material it is. */
  kind: KeyKind;
  /** Where in the file: `file`, or a path through containers (`gzip/cpio:etc/dropbear/x`). */
  where: string;
  /** Algorithm or PEM label (`ssh-ed25519`, `RSA PRIVATE KEY`, ...). */
  detail: string;
}

/** Options of {@link findKeyMaterial}. */
export interface ScanOptions {
  /** Bound of one decompressed gzip stream. Default 1 GiB. */
  maxInflatedBytes?: number;
  /** Bound of container nesting (gzip in cpio in gzip ...). Default 4. */
  maxDepth?: number;
}

const latin1 = (b: Uint8Array): string => {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
};

const PEM = /-----BEGIN ((?:RSA |EC |DSA |ENCRYPTED |OPENSSH )?PRIVATE KEY)-----/g;

/** Algorithm name → number of SSH-string fields after it in a dropbear private key file. */
const DROPBEAR_FIELDS: ReadonlyArray<[string, number, (fields: Uint8Array[]) => boolean]> = [
  ["ssh-ed25519", 1, (f) => f[0].length === 64],
  ["ssh-rsa", 5, () => true],
  ["ssh-dss", 5, () => true],
  ["ecdsa-sha2-nistp256", 3, (f) => latin1(f[0]).startsWith("nistp")],
  ["ecdsa-sha2-nistp384", 3, (f) => latin1(f[0]).startsWith("nistp")],
  ["ecdsa-sha2-nistp521", 3, (f) => latin1(f[0]).startsWith("nistp")],
];

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/** Reads `n` SSH strings starting at `at`; undefined when they run past the end. */
function sshStrings(b: Uint8Array, at: number, n: number): Uint8Array[] | undefined {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    if (at + 4 > b.length) return undefined;
    const len = u32(b, at);
    if (len > 1 << 20 || at + 4 + len > b.length) return undefined;
    out.push(b.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return out;
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  for (let i = hay.indexOf(first, from); i >= 0 && i + needle.length <= hay.length;) {
    let ok = true;
    for (let j = 1; j < needle.length; j++) {
      if (hay[i + j] !== needle[j]) {
        ok = false;
        break;
      }
    }
    if (ok) return i;
    i = hay.indexOf(first, i + 1);
  }
  return -1;
}

function dropbearKeys(b: Uint8Array, where: string): KeyFinding[] {
  const out: KeyFinding[] = [];
  for (const [alg, n, check] of DROPBEAR_FIELDS) {
    const name = new TextEncoder().encode(alg);
    const needle = new Uint8Array(4 + name.length);
    needle.set([0, 0, 0, name.length]);
    needle.set(name, 4);
    for (let i = indexOfBytes(b, needle, 0); i >= 0; i = indexOfBytes(b, needle, i + 1)) {
      const fields = sshStrings(b, i + needle.length, n);
      if (fields && check(fields)) {
        out.push({ kind: "dropbear-private-key", where, detail: alg });
        break;
      }
    }
  }
  return out;
}

const HOST_KEY_NAME = /(?:^|\/)(?:dropbear_[a-z0-9]+_host_key|ssh_host_[a-z0-9]+_key)$/;

interface CpioMember {
  name: string;
  data: Uint8Array;
  isFile: boolean;
}

/** Members of a newc/crc cpio archive; stops quietly at the first malformed header. */
export function cpioMembers(b: Uint8Array): CpioMember[] {
  const out: CpioMember[] = [];
  let at = 0;
  const pad4 = (n: number) => (n + 3) & ~3;
  while (at + 110 <= b.length) {
    const magic = latin1(b.subarray(at, at + 6));
    if (magic !== "070701" && magic !== "070702") break;
    const field = (i: number) => {
      const h = latin1(b.subarray(at + 6 + i * 8, at + 14 + i * 8));
      return /^[0-9a-fA-F]{8}$/.test(h) ? parseInt(h, 16) : NaN;
    };
    const mode = field(1), size = field(6), nameSize = field(11);
    if (![mode, size, nameSize].every(Number.isFinite) || nameSize < 1) break;
    const nameEnd = at + 110 + nameSize;
    if (nameEnd > b.length) break;
    const name = latin1(b.subarray(at + 110, nameEnd - 1));
    const dataAt = pad4(nameEnd);
    if (name === "TRAILER!!!") break;
    if (dataAt + size > b.length) break;
    out.push({
      name,
      data: b.subarray(dataAt, dataAt + size),
      isFile: (mode & 0o170000) === 0o100000,
    });
    at = pad4(dataAt + size);
  }
  return out;
}

async function gunzip(b: Uint8Array, max: number): Promise<Uint8Array | undefined> {
  try {
    const stream = new Blob([b as Uint8Array<ArrayBuffer>]).stream()
      .pipeThrough(new DecompressionStream("gzip"));
    const parts: Uint8Array[] = [];
    let n = 0;
    for await (const chunk of stream) {
      n += chunk.length;
      if (n > max) return undefined;
      parts.push(chunk);
    }
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  } catch {
    return undefined; // not gzip after all, or truncated
  }
}

/**
 * Every piece of private key material in `bytes` (see the module documentation). Never
 * throws on malformed input.
 */
export async function findKeyMaterial(
  bytes: Uint8Array,
  opts: ScanOptions = {},
  where = "file",
  depth = 0,
): Promise<KeyFinding[]> {
  const out: KeyFinding[] = [];
  const text = latin1(bytes);
  for (const m of text.matchAll(PEM)) {
    out.push({
      kind: m[1] === "OPENSSH PRIVATE KEY" ? "openssh-private-key" : "pem-private-key",
      where,
      detail: m[1],
    });
  }
  if (text.includes("openssh-key-v1\0")) {
    out.push({ kind: "openssh-private-key", where, detail: "openssh-key-v1" });
  }
  out.push(...dropbearKeys(bytes, where));
  if (depth >= (opts.maxDepth ?? 4)) return out;
  if (bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const inflated = await gunzip(bytes, opts.maxInflatedBytes ?? 1 << 30);
    if (inflated) out.push(...await findKeyMaterial(inflated, opts, `${where}/gzip`, depth + 1));
  }
  if (/^07070[12]/.test(text.slice(0, 6))) {
    for (const m of cpioMembers(bytes)) {
      if (!m.isFile) continue;
      const at = `${where}/cpio:${m.name}`;
      const inner = await findKeyMaterial(m.data, opts, at, depth + 1);
      out.push(...inner);
      if (inner.length === 0 && HOST_KEY_NAME.test(m.name)) {
        out.push({ kind: "host-key-file", where: at, detail: "named as a host key" });
      }
    }
  }
  return dedupe(out);
}

function dedupe(fs: KeyFinding[]): KeyFinding[] {
  const seen = new Set<string>();
  return fs.filter((f) => {
    const k = `${f.kind}\0${f.where}\0${f.detail}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** One file of an audited tree that holds key material. */
export interface KeyFile {
  /** Path of the file. */
  path: string;
  /** Permission bits of the file (`0o600` is what is wanted). */
  mode: number;
  /** The key material found in it. */
  findings: KeyFinding[];
  /** Every directory from the file's up to the audit's `base` (excluded), with its bits. */
  parents: { path: string; mode: number }[];
}

/** Result of {@link auditTree}. */
export interface TreeAudit {
  /** Regular files read. */
  scanned: number;
  /** Files that hold key material. */
  keyFiles: KeyFile[];
  /** Files not read (larger than `maxFileBytes`, or unreadable), with why. */
  skipped: { path: string; why: string }[];
}

/**
 * Reads every regular file under `root` (symlinks are not followed) and reports those that
 * hold key material, with their mode and the modes of their directories up to `base`
 * (default: `root`'s parent). `filter` limits the files read (e.g. to new ones).
 */
export async function auditTree(
  root: string,
  opts: {
    base?: string;
    maxFileBytes?: number;
    filter?: (path: string, info: Deno.FileInfo) => boolean;
  } & ScanOptions = {},
): Promise<TreeAudit> {
  const base = opts.base ?? root.slice(0, root.lastIndexOf("/"));
  const max = opts.maxFileBytes ?? 512 << 20;
  const audit: TreeAudit = { scanned: 0, keyFiles: [], skipped: [] };
  const walk = async (dir: string): Promise<void> => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (err) {
      audit.skipped.push({ path: dir, why: (err as Error).message });
      return;
    }
    for (const e of entries) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) {
        await walk(p);
        continue;
      }
      if (!e.isFile) continue;
      const info = await Deno.lstat(p).catch(() => undefined);
      if (!info) continue; // removed meanwhile
      if (opts.filter && !opts.filter(p, info)) continue;
      if (info.size > max) {
        audit.skipped.push({ path: p, why: `${info.size} bytes, larger than ${max}` });
        continue;
      }
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(p);
      } catch (err) {
        audit.skipped.push({ path: p, why: (err as Error).message });
        continue;
      }
      audit.scanned++;
      const findings = await findKeyMaterial(bytes, opts);
      if (findings.length === 0) continue;
      const parents: { path: string; mode: number }[] = [];
      for (
        let d = dir;
        d.length > base.length && d.startsWith(base);
        d = d.slice(0, d.lastIndexOf("/"))
      ) {
        parents.push({ path: d, mode: ((await Deno.lstat(d)).mode ?? 0) & 0o7777 });
      }
      audit.keyFiles.push({ path: p, mode: (info.mode ?? 0) & 0o7777, findings, parents });
    }
  };
  await walk(root);
  return audit;
}

/**
 * The breaches of "0600 files in 0700 directories" in an audit, one line each (empty when
 * every key file and its directories are private).
 */
export function privacyBreaches(audit: TreeAudit): string[] {
  const out: string[] = [];
  for (const f of audit.keyFiles) {
    const what = f.findings.map((x) => `${x.detail} at ${x.where}`).join(", ");
    if (f.mode !== 0o600) out.push(`${f.path} is ${f.mode.toString(8)}, holds ${what}`);
    for (const p of f.parents) {
      if (p.mode !== 0o700) out.push(`${p.path} is ${p.mode.toString(8)}, holds ${f.path}`);
    }
  }
  return [...new Set(out)];
}
