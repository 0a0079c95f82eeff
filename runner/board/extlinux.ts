/**
 * U-Boot's `extlinux.conf` (the distro-boot / sysboot format of `boot/pxe_utils.c`): a parser
 * that keeps every line, and the writer of rkhil's one-shot boot entry.
 *
 * The one-shot scheme (see README, "Kernel deployment on boards"): the file's `default` stays
 * the board's known-good label, so every boot nobody steers (a power cycle, a watchdog reset,
 * a runner that died) starts the known-good kernel. rkhil adds one label for the kernel under
 * test and, on the boot it wants that kernel, answers U-Boot's menu (`Enter choice:`) on the
 * console with the label's number. U-Boot shows that menu only with `prompt 1` and a non-zero
 * `timeout` (`menu_get_choice` returns the default at once when `prompt` is 0), so the writer
 * sets both.
 *
 * Labels are numbered by U-Boot from 1 in file order (`label_print` prints `num:\tname`);
 * `include` would splice another file's labels in, so a file with `include` is refused (the
 * number could not be known).
 *
 * @module
 */

import { UserInputError } from "../errors.ts";

/** Largest extlinux.conf accepted, bytes (U-Boot reads it whole into memory). */
export const EXTLINUX_MAX_BYTES = 64 * 1024;

/** Label names rkhil writes (and removes again on the next deployment). */
export const RKHIL_LABEL_PREFIX = "rkhil-";

/** Keywords that belong to the label above them (U-Boot's `parse_label`). */
const LABEL_KEYWORDS = new Set([
  "kernel",
  "linux",
  "initrd",
  "append",
  "fdt",
  "devicetree",
  "fdtdir",
  "devicetreedir",
  "fdtoverlays",
  "localboot",
  "ipappend",
  "kaslrseed",
  "menu",
]);

/** One `label` block. */
export interface ExtlinuxLabel {
  /** The label's name (`label NAME`), what `default` names. */
  name: string;
  /** U-Boot's menu number for it (1-based, file order). */
  number: number;
  /** `menu label TEXT`, when given. */
  menuLabel?: string;
  /** `kernel` or `linux` path. */
  kernel?: string;
  /** `initrd` path. */
  initrd?: string;
  /** `fdt` / `devicetree` path. */
  fdt?: string;
  /** `fdtdir` / `devicetreedir` path. */
  fdtdir?: string;
  /** `append` text (the kernel command line). */
  append?: string;
  /** 0-based index of its `label` line in {@linkcode ExtlinuxConfig.lines}. */
  line: number;
  /** 0-based index one past its last line (blank lines after it included). */
  end: number;
}

/** A parsed extlinux.conf. */
export interface ExtlinuxConfig {
  /** The file's lines, unchanged (without line ends). */
  lines: string[];
  /** `default` label name, when given. */
  default?: string;
  /** `prompt` value (U-Boot shows the menu only when it is non-zero). */
  prompt?: number;
  /** `timeout` in tenths of a second. */
  timeout?: number;
  /** `menu title`. */
  title?: string;
  /** The labels, in file order. */
  labels: ExtlinuxLabel[];
}

/** An extlinux.conf that cannot be used, with `file:line` in the message. */
export class ExtlinuxError extends UserInputError {
  /**
   * An unusable extlinux.conf (verdict ERROR; the CLI exits 2).
   *
   * @param source the file name for the message
   * @param line 1-based line number (0: the whole file)
   * @param what what is wrong
   * @param hint what to do
   */
  constructor(readonly source: string, readonly line: number, what: string, hint: string) {
    super(`${source}${line > 0 ? `:${line}` : ""}: ${what}`, hint);
    this.name = "ExtlinuxError";
  }
}

/** Control characters other than tab: never in a line U-Boot should read. */
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

function splitKeyword(line: string): { key: string; rest: string } | undefined {
  const t = line.trim();
  if (t === "" || t.startsWith("#")) return undefined;
  const m = /^(\S+)\s*(.*)$/.exec(t)!;
  return { key: m[1].toLowerCase(), rest: m[2].trim() };
}

function intValue(rest: string, source: string, n: number, key: string): number {
  if (!/^\d{1,9}$/.test(rest)) {
    throw new ExtlinuxError(
      source,
      n,
      `${key} must be a whole number, found ${JSON.stringify(rest.slice(0, 40))}`,
      `write ${key} N`,
    );
  }
  return Number(rest);
}

/**
 * Parse an extlinux.conf as U-Boot reads it.
 *
 * @param text the file's text
 * @param source the file name for error messages
 * @throws {ExtlinuxError} for a file over {@linkcode EXTLINUX_MAX_BYTES}, control characters
 *   (NUL, escape sequences), `include`, a label without a name or defined twice, a label
 *   keyword before any label, a non-numeric `prompt`/`timeout`.
 */
export function parseExtlinux(text: string, source = "extlinux.conf"): ExtlinuxConfig {
  const size = new TextEncoder().encode(text).length;
  if (size > EXTLINUX_MAX_BYTES) {
    throw new ExtlinuxError(
      source,
      0,
      `${size} bytes is larger than the ${EXTLINUX_MAX_BYTES} an extlinux.conf may have`,
      "point the board file's deploy.extlinux at U-Boot's extlinux.conf",
    );
  }
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const cfg: ExtlinuxConfig = { lines, labels: [] };
  let cur: ExtlinuxLabel | undefined;
  const close = (at: number) => {
    if (cur) cur.end = at;
    cur = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    if (CONTROL.test(lines[i])) {
      throw new ExtlinuxError(
        source,
        n,
        "holds a control character (NUL, escape or similar)",
        "an extlinux.conf is plain text: rewrite the line",
      );
    }
    const kw = splitKeyword(lines[i]);
    if (!kw) {
      if (cur && lines[i].trim() === "") cur.end = i + 1;
      continue;
    }
    const { key, rest } = kw;
    if (key === "menu") {
      const sub = /^(\S+)\s*(.*)$/.exec(rest);
      const what = sub?.[1].toLowerCase();
      if (what === "title" && !cur) cfg.title = sub![2];
      else if (what === "label" && cur) cur.menuLabel = sub![2];
      else if (what === "include") {
        throw new ExtlinuxError(
          source,
          n,
          "menu include is not supported",
          "put the labels in this file: rkhil must know U-Boot's menu numbers",
        );
      }
      if (cur) cur.end = i + 1;
      continue;
    }
    if (cur && LABEL_KEYWORDS.has(key)) {
      if (key === "kernel" || key === "linux") cur.kernel = rest;
      else if (key === "initrd") cur.initrd = rest;
      else if (key === "append") cur.append = rest;
      else if (key === "fdt" || key === "devicetree") cur.fdt = rest;
      else if (key === "fdtdir" || key === "devicetreedir") cur.fdtdir = rest;
      cur.end = i + 1;
      continue;
    }
    if (!cur && LABEL_KEYWORDS.has(key)) {
      throw new ExtlinuxError(
        source,
        n,
        `${key} before any label`,
        "start the entry with `label NAME`",
      );
    }
    close(cur ? cur.end : i);
    if (key === "include") {
      throw new ExtlinuxError(
        source,
        n,
        "include is not supported",
        "put the labels in this file: rkhil must know U-Boot's menu numbers",
      );
    }
    if (key === "label") {
      if (!/^\S+$/.test(rest)) {
        throw new ExtlinuxError(source, n, "label needs one name", "write `label NAME`");
      }
      if (cfg.labels.some((l) => l.name === rest)) {
        throw new ExtlinuxError(
          source,
          n,
          `label ${rest} is defined twice`,
          "give each label its own name",
        );
      }
      cur = { name: rest, number: cfg.labels.length + 1, line: i, end: i + 1 };
      cfg.labels.push(cur);
    } else if (key === "default") cfg.default = rest;
    else if (key === "prompt") cfg.prompt = intValue(rest, source, n, key);
    else if (key === "timeout") cfg.timeout = intValue(rest, source, n, key);
    // Unknown keywords: U-Boot ignores them, and so does rkhil (they are kept as they are).
  }
  return cfg;
}

/** The boot entry of a kernel under test. */
export interface OneShotEntry {
  /** Label name; must start with {@linkcode RKHIL_LABEL_PREFIX} (`rkhil-6.12.118`). */
  name: string;
  /** Menu text. */
  menuLabel?: string;
  /** Kernel image path as U-Boot sees it. */
  kernel: string;
  /** Initramfs path as U-Boot sees it. */
  initrd?: string;
  /** Device tree path as U-Boot sees it (none: the board's own, as the known-good). */
  fdt?: string;
  /** Kernel command line. */
  append?: string;
}

/** Options of {@linkcode withOneShotEntry}. */
export interface OneShotOptions {
  /** The known-good label: stays (or becomes) the `default`. */
  knownGood: string;
  /** Menu wait in tenths of a second (at least this; default 50 = 5 s). */
  timeout?: number;
  /** File name for messages. */
  source?: string;
}

function checkValue(what: string, v: string, spaces: boolean): void {
  if (v === "" || CONTROL.test(v) || /[\r\n]/.test(v) || (!spaces && /\s/.test(v))) {
    throw new UserInputError(
      `extlinux entry ${what} ${JSON.stringify(v.slice(0, 60))} cannot be written: ${
        v === "" ? "empty" : spaces ? "a line break or control character" : "white space"
      }`,
      "use a path without spaces and a command line without line breaks",
    );
  }
}

/**
 * The text of `cfg` with `entry` as the one rkhil label: earlier rkhil labels removed, the new
 * one appended last, `default` set to the known-good label, `prompt 1` and a `timeout` of at
 * least `opts.timeout`. Every other line is kept as it was. Returns the text and U-Boot's menu
 * number of the new label.
 *
 * @throws {UserInputError} when the known-good label is not in the file (or is an rkhil
 *   label), the entry's name lacks the rkhil prefix, or a value has a line break, control
 *   character or (paths) white space.
 */
export function withOneShotEntry(
  cfg: ExtlinuxConfig,
  entry: OneShotEntry,
  opts: OneShotOptions,
): { text: string; number: number } {
  const source = opts.source ?? "extlinux.conf";
  if (!entry.name.startsWith(RKHIL_LABEL_PREFIX) || !/^[A-Za-z0-9._+-]+$/.test(entry.name)) {
    throw new UserInputError(
      `extlinux label ${JSON.stringify(entry.name)} is not an rkhil label`,
      `name it ${RKHIL_LABEL_PREFIX}<release> with letters, digits and ._+-`,
    );
  }
  checkValue("kernel", entry.kernel, false);
  if (entry.initrd !== undefined) checkValue("initrd", entry.initrd, false);
  if (entry.fdt !== undefined) checkValue("fdt", entry.fdt, false);
  if (entry.append !== undefined) checkValue("append", entry.append, true);
  if (entry.menuLabel !== undefined) checkValue("menu label", entry.menuLabel, true);
  const good = cfg.labels.find((l) => l.name === opts.knownGood);
  if (!good || good.name.startsWith(RKHIL_LABEL_PREFIX)) {
    throw new UserInputError(
      `${source} has no label ${opts.knownGood} (the board file's deploy.known_good)` +
        (cfg.labels.length ? `; its labels: ${cfg.labels.map((l) => l.name).join(", ")}` : ""),
      "set deploy.known_good to the label of a kernel that boots on this board",
    );
  }
  const drop = new Set<number>();
  for (const l of cfg.labels) {
    if (l.name.startsWith(RKHIL_LABEL_PREFIX)) { for (let i = l.line; i < l.end; i++) drop.add(i); }
  }
  const firstLabel = cfg.labels.length ? cfg.labels[0].line : cfg.lines.length;
  const globals: Record<string, string> = {
    default: `default ${opts.knownGood}`,
    prompt: "prompt 1",
    timeout: `timeout ${Math.max(cfg.timeout ?? 0, opts.timeout ?? 50)}`,
  };
  const written = new Set<string>();
  const out: string[] = [];
  for (let i = 0; i < cfg.lines.length; i++) {
    if (drop.has(i)) continue;
    if (i === firstLabel) {
      for (const [k, v] of Object.entries(globals)) if (!written.has(k)) out.push(v);
      for (const k of Object.keys(globals)) written.add(k);
    }
    const kw = splitKeyword(cfg.lines[i]);
    const inLabel = cfg.labels.some((l) => i >= l.line && i < l.end);
    if (kw && !inLabel && Object.hasOwn(globals, kw.key)) {
      if (!written.has(kw.key)) out.push(globals[kw.key]);
      written.add(kw.key);
      continue;
    }
    out.push(cfg.lines[i]);
  }
  for (const [k, v] of Object.entries(globals)) if (!written.has(k)) out.push(v);
  if (out.length && out[out.length - 1].trim() !== "") out.push("");
  out.push(
    `label ${entry.name}`,
    ...(entry.menuLabel ? [`\tmenu label ${entry.menuLabel}`] : []),
    `\tlinux ${entry.kernel}`,
    ...(entry.initrd ? [`\tinitrd ${entry.initrd}`] : []),
    ...(entry.fdt ? [`\tfdt ${entry.fdt}`] : []),
    ...(entry.append ? [`\tappend ${entry.append}`] : []),
  );
  const text = out.join("\n") + "\n";
  const parsed = parseExtlinux(text, source);
  const mine = parsed.labels.find((l) => l.name === entry.name)!;
  return { text, number: mine.number };
}
