/**
 * Reads the machine's own apt sources (one-line `*.list` and deb822 `*.sources`) so that rkhil
 * can reuse their mirror URIs for arm64 kernels and packages. No mirror host name is ever
 * written into rkhil: the URIs come from this machine at run time.
 *
 * @module
 */

import { UserInputError } from "../errors.ts";

/** One enabled `deb` source entry. */
export interface AptSourceEntry {
  /** Mirror URI (`http://…/debian`). */
  uri: string;
  /** Suites of the entry (`bookworm`, `bookworm-updates`, ...). */
  suites: string[];
  /** Components of the entry (`main`, `contrib`, ...). */
  components: string[];
  /** The `signed-by` keyring path, when given. */
  signedBy?: string;
  /** The file it came from, for error messages. */
  file: string;
}

/** The mirrors rkhil will use: the main archive and (if found) the security archive. */
export interface DebianMirrors {
  /** The main archive: URI, keyring and components. */
  archive: { uri: string; signedBy?: string; components: string[] };
  /** The security archive, when an entry serves a Debian security suite. */
  security?: { uri: string; signedBy?: string; components: string[] };
  /** Every entry read, for diagnostics. */
  entries: AptSourceEntry[];
}

/** The host's main apt sources file (one-line format). */
export const HOST_SOURCE_LIST = "/etc/apt/sources.list";
/** Directory of the host's `*.list` and `*.sources` files. */
export const HOST_SOURCE_PARTS = "/etc/apt/sources.list.d";

/** Parse one-line format (`deb [opts] uri suite comp...`). `deb-src` lines are ignored. */
export function parseOneLine(text: string, file: string): AptSourceEntry[] {
  const out: AptSourceEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) continue;
    const m = line.match(/^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/);
    if (!m || m[1] !== "deb") continue;
    const opts = m[2] ?? "";
    const signed = opts.match(/signed-by=(\S+)/);
    const arch = opts.match(/arch=(\S+)/);
    // A source restricted to architectures without arm64 still tells us a mirror URI; keep it.
    void arch;
    out.push({
      uri: m[3].replace(/\/+$/, ""),
      suites: [m[4]],
      components: m[5].split(/\s+/).filter(Boolean),
      signedBy: signed?.[1],
      file,
    });
  }
  return out;
}

/** Parse deb822 format (`Types: deb`, `URIs:`, `Suites:`, `Components:`, `Signed-By:`). */
export function parseDeb822(text: string, file: string): AptSourceEntry[] {
  const out: AptSourceEntry[] = [];
  // Stanzas are separated by blank lines; comment lines are dropped first so that a comment
  // between fields does not split a stanza.
  const lines = text.split("\n").filter((l) => !l.trimStart().startsWith("#"));
  for (const stanza of lines.join("\n").split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last = "";
    for (const line of stanza.split("\n")) {
      if (/^\s/.test(line) && last) {
        // Continuation line (multi-line Signed-By with an inline key, for instance).
        fields.set(last, `${fields.get(last)}\n${line.trim()}`);
        continue;
      }
      const m = line.match(/^([A-Za-z0-9-]+):\s*(.*)$/);
      if (!m) continue;
      last = m[1].toLowerCase();
      fields.set(last, m[2].trim());
    }
    const types = (fields.get("types") ?? "").split(/\s+/);
    if (!types.includes("deb")) continue;
    if ((fields.get("enabled") ?? "yes").toLowerCase() === "no") continue;
    const signedBy = fields.get("signed-by");
    for (const uri of (fields.get("uris") ?? "").split(/\s+/).filter(Boolean)) {
      out.push({
        uri: uri.replace(/\/+$/, ""),
        suites: (fields.get("suites") ?? "").split(/\s+/).filter(Boolean),
        components: (fields.get("components") ?? "").split(/\s+/).filter(Boolean),
        // An inline key (multi-line) cannot be passed as a path; leave it to apt's keyrings.
        signedBy: signedBy && !signedBy.includes("\n") ? signedBy : undefined,
        file,
      });
    }
  }
  return out;
}

/** Read every enabled `deb` entry of the host's apt sources. */
export async function readHostSources(
  list = HOST_SOURCE_LIST,
  parts = HOST_SOURCE_PARTS,
): Promise<AptSourceEntry[]> {
  const out: AptSourceEntry[] = [];
  try {
    out.push(...parseOneLine(await Deno.readTextFile(list), list));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  let names: string[] = [];
  try {
    for await (const e of Deno.readDir(parts)) if (e.isFile || e.isSymlink) names.push(e.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  names = names.sort();
  for (const name of names) {
    const path = `${parts}/${name}`;
    // apt reads only *.list and *.sources; anything else (e.g. *.disabled) is ignored by apt too.
    if (name.endsWith(".list")) out.push(...parseOneLine(await Deno.readTextFile(path), path));
    else if (name.endsWith(".sources")) {
      out.push(...parseDeb822(await Deno.readTextFile(path), path));
    }
  }
  return out;
}

/** Debian codenames and suite aliases rkhil knows how to recognise in host sources. */
const DEBIAN_SUITE =
  /^(buster|bullseye|bookworm|trixie|forky|duke|sid|unstable|testing|stable|oldstable|experimental)(-updates|-backports|-proposed-updates|-security)?$|^(bookworm|trixie|forky|duke|bullseye)\/updates$/;

/**
 * Pick the Debian archive and security mirrors from host source entries: the archive is the
 * first entry serving a Debian suite that is not a security suite; the security mirror is the
 * first entry serving a `*-security` suite.
 */
export function pickDebianMirrors(entries: AptSourceEntry[]): DebianMirrors {
  const debian = entries.filter((e) => e.suites.some((s) => DEBIAN_SUITE.test(s)));
  const isSecurity = (e: AptSourceEntry) =>
    e.suites.some((s) => s.endsWith("-security") || s.endsWith("/updates"));
  const archive = debian.find((e) => !isSecurity(e));
  if (!archive) {
    throw new UserInputError(
      `no Debian archive found in this machine's apt sources (read ${
        [...new Set(entries.map((e) => e.file))].join(", ") || "nothing"
      })`,
      "add a Debian mirror to /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources " +
        "(rkhil reuses the machine's own mirror for arm64 kernels)",
    );
  }
  const security = debian.find(isSecurity);
  return {
    archive: { uri: archive.uri, signedBy: archive.signedBy, components: archive.components },
    security: security
      ? { uri: security.uri, signedBy: security.signedBy, components: security.components }
      : undefined,
    entries,
  };
}

/** Read the host's sources and pick the Debian mirrors. */
export async function hostDebianMirrors(): Promise<DebianMirrors> {
  return pickDebianMirrors(await readHostSources());
}
