/**
 * A writer for the Linux initramfs archive format (cpio "newc"). Written here rather than by
 * calling cpio(1) so that device nodes (`/dev/console`) can be added without root, every
 * entry is owned by root, and timestamps are fixed: the same inputs give the same bytes, which
 * is what makes the image cacheable by content.
 *
 * @module
 */

/** One archive entry. */
export type CpioEntry =
  | { type: "dir"; path: string; mode?: number }
  | { type: "file"; path: string; data: Uint8Array; mode?: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "char"; path: string; major: number; minor: number; mode?: number };

const enc = new TextEncoder();

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** Serialise entries (in the given order) plus the trailer into one newc archive. */
export function writeNewc(entries: CpioEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    total += b.length;
  };
  let ino = 1;
  const one = (
    name: string,
    mode: number,
    data: Uint8Array,
    nlink: number,
    rdev: [number, number] = [0, 0],
  ) => {
    const nameBytes = enc.encode(name + "\0");
    const header = "070701" + [
      ino++,
      mode,
      0, // uid
      0, // gid
      nlink,
      0, // mtime: fixed for reproducibility
      data.length,
      0,
      0,
      rdev[0],
      rdev[1],
      nameBytes.length,
      0,
    ].map(hex8).join("");
    push(enc.encode(header));
    push(nameBytes);
    push(new Uint8Array(pad4(110 + nameBytes.length)));
    if (data.length) {
      push(data);
      push(new Uint8Array(pad4(data.length)));
    }
  };
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, "");
    switch (e.type) {
      case "dir":
        one(name, 0o040000 | (e.mode ?? 0o755), new Uint8Array(), 2);
        break;
      case "file":
        one(name, 0o100000 | (e.mode ?? 0o644), e.data, 1);
        break;
      case "symlink":
        one(name, 0o120777, enc.encode(e.target), 1);
        break;
      case "char":
        one(name, 0o020000 | (e.mode ?? 0o600), new Uint8Array(), 1, [e.major, e.minor]);
        break;
    }
  }
  one("TRAILER!!!", 0, new Uint8Array(), 1);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Entries for a directory tree on disk (sorted, parents before children), rooted at `/`.
 * File modes are kept; owners become root.
 */
export async function treeEntries(root: string): Promise<CpioEntry[]> {
  const out: CpioEntry[] = [];
  const walk = async (rel: string) => {
    const names: string[] = [];
    for await (const e of Deno.readDir(`${root}${rel}`)) names.push(e.name);
    names.sort();
    for (const name of names) {
      const path = `${rel}/${name}`;
      const st = await Deno.lstat(`${root}${path}`);
      const mode = (st.mode ?? 0o644) & 0o7777;
      if (st.isSymlink) {
        out.push({ type: "symlink", path, target: await Deno.readLink(`${root}${path}`) });
      } else if (st.isDirectory) {
        out.push({ type: "dir", path, mode });
        await walk(path);
      } else if (st.isFile) {
        out.push({ type: "file", path, mode, data: await Deno.readFile(`${root}${path}`) });
      }
    }
  };
  await walk("");
  return out;
}
