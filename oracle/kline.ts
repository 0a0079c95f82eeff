/**
 * The one grammar of what stands in front of a kernel message on a captured line, shared by every
 * reader of kernel lines (oracle/klog.ts, runner/facts/parsers.ts, the console watchers, the
 * framed shell's kernel-line splitter, the target's fault detector).
 *
 * A captured line is, each part optional and in this order:
 *
 * 1. a host stamp added by a serial terminal program: `[2022-11-11 12:08:08] `,
 *    `[2022-11-11 12:08:08.123] ` (picocom/minicom/tio styles) or `[12:08:08.123] `;
 * 2. a syslog stamp and host: classic / journald short `Jan 12 22:21:22 host kernel: `
 *    (`short-precise` fractions too), RFC 3339 `2024-12-27T10:26:06.694018+08:00 host kernel: `
 *    (rsyslog's Debian `kern.log`, journald `short-iso`);
 * 3. a `/dev/kmsg` record header `6,339,5140900,-;` (level, sequence, microseconds, flags,
 *    optional `,caller=T123`), Documentation/ABI/testing/dev-kmsg;
 * 4. `dmesg -x` `kern  :err   : `;
 * 5. kernel/printk/printk.c `info_print_prefix`: `<N>` (`print_syslog`, console_msg_format=syslog,
 *    `dmesg -r`), then `[%5lu.%06lu]` (`print_time`) or, from util-linux dmesg, `dmesg -T`
 *    `[Wed Apr  1 10:09:24 2026]`, `--time-format iso` `2026-04-01T10:09:24,123456+00:00`,
 *    `-d` `[   12.345678 <    0.000123>]`; then CONFIG_PRINTK_CALLER `[%6s]` of `T%u`/`C%u`
 *    (`print_caller`, also the wider `T%u:C%u` / `T%uC%u` forms of posted patches), then
 *    Android's CONFIG_PRINTK_PROCESS `%c[%1d:%15s:%5d]` (Rockchip BSP kernels), then one space.
 *
 * ANSI escapes (`dmesg --color`, terminal captures) and a trailing CR are removed first.
 * Pure: no I/O.
 *
 * @module
 */

/** What was in front of the kernel message on a captured line. */
export interface LinePrefix {
  /** The prefix text exactly as captured, after ANSI removal (may be empty). */
  raw: string;
  /** printk `[    12.345678]` timestamp (or a `/dev/kmsg` one), in seconds since boot. */
  timestampSec?: number;
  /** syslog `<N>` priority number as printed (kmsg, `dmesg -r`), or a `/dev/kmsg` level field. */
  priority?: number;
  /** `dmesg -x` facility name, e.g. `kern`. */
  facility?: string;
  /** `dmesg -x` level name, e.g. `err`. */
  level?: string;
  /** journald / syslog wall-clock stamp, e.g. `Nov 24 20:28:01` or an RFC 3339 time. */
  wallClock?: string;
  /** journald / syslog host name. */
  host?: string;
  /** `dmesg -T` / `--time-format iso` human-readable time. */
  humanTime?: string;
  /** CONFIG_PRINTK_CALLER id, e.g. `T123` or `C1`. */
  caller?: string;
  /** A serial terminal program's host time stamp, e.g. `2022-11-11 12:08:08`. */
  hostStamp?: string;
  /** `/dev/kmsg` record sequence number. */
  kmsgSeq?: number;
  /** Android CONFIG_PRINTK_PROCESS `[cpu:comm:pid]` field, as printed. */
  process?: string;
}

const FACILITIES = "kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7]";
const LEVELS = "emerg|alert|crit|err|warn|notice|info|debug";
const MONTH = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const HMS = "[0-9]{2}:[0-9]{2}:[0-9]{2}";
const RE_HOST_STAMP = new RegExp(
  `^\\[((?:[0-9]{4}-[0-9]{2}-[0-9]{2}[ T])?${HMS}(?:[.,][0-9]{1,9})?)\\] ?`,
);
const RE_SYSLOG = new RegExp(
  `^(${MONTH} [ 0-9][0-9] ${HMS}(?:\\.[0-9]{1,9})?) (\\S{1,255}) kernel: `,
);
const RE_RFC3339 = new RegExp(
  `^([0-9]{4}-[0-9]{2}-[0-9]{2}T${HMS}(?:[.,][0-9]{1,9})?(?:Z|[+-][0-9]{2}:?[0-9]{2})?) ` +
    `(\\S{1,255}) kernel: `,
);
const RE_KMSG =
  /^([0-9]{1,4}),([0-9]{1,20}),([0-9]{1,20}),([-c+])(?:,caller=([TC][0-9]{1,10}(?::?C[0-9]{1,10})?))?(?:,[^;]{0,200})?;/;
const RE_PRIORITY = /^<([0-9]{1,3})>/;
const RE_DMESG_X = new RegExp(`^(${FACILITIES}) {0,8}:(${LEVELS}) {0,8}: `);
/** printk's `[%5lu.%06lu]`, with `dmesg -d`'s `<delta>` inside. */
const TIME_SRC = "\\[ {0,12}([0-9]{1,12})\\.([0-9]{1,9})(?: <[ 0-9.]{1,30}>)?\\]";
const RE_TIMESTAMP = new RegExp(`^${TIME_SRC}`);
const RE_HUMAN = new RegExp(`^\\[(${DAY} ${MONTH} [ 0-9][0-9] ${HMS} [0-9]{4})\\]`);
const RE_ISO_DMESG = new RegExp(
  `^([0-9]{4}-[0-9]{2}-[0-9]{2}T${HMS},[0-9]{6}[+-][0-9]{2}:?[0-9]{2}) `,
);
/** `[%6s]` caller ids: `T%u`, `C%u`, and the `T%u:C%u` / `T%uC%u` forms of posted patches. */
const CALLER_SRC = "\\[ {0,12}([TC][0-9]{1,10}(?::?C[0-9]{1,10})?)\\]";
const RE_CALLER = new RegExp(`^ ?${CALLER_SRC}`);
const RE_PROCESS = /^([ I]\[[0-9]:[^\]\n]{1,15}: {0,5}[0-9]{1,7}\])/;
// CSI: ESC [ parameters intermediates final. OSC / DCS / SOS / PM / APC: ESC ] ... BEL or ST.
// Charset designators: ESC ( B and friends. Other two-byte escapes: ESC 0x40-0x5f / 0x60-0x7e.
const RE_ANSI =
  // deno-lint-ignore no-control-regex
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[()*+\-./][ -~]|\x1b[ -/]*[0-~]/g;

/**
 * The console form of a printk prefix (`<N>` optional, `[ssss.uuuuuu]`, optional caller id, one
 * space), as a regex source with no anchors and no groups of its own: console readers search it
 * anywhere in a line, since a kernel line can start in the middle of command output.
 */
export const CONSOLE_PREFIX_SOURCE =
  "(?:<[0-9]{1,3}>)?\\[ {0,12}[0-9]{1,12}\\.[0-9]{1,9}\\](?:\\[ {0,12}[TC][0-9]{1,10}(?::?C[0-9]{1,10})?\\])? ";

/** Remove ANSI escape sequences (colour, cursor) from a captured line. */
export function stripAnsi(s: string): string {
  return s.includes("\x1b") ? s.replace(RE_ANSI, "") : s;
}

/**
 * Split a captured kernel log line into its prefixes (see the module documentation) and the
 * message. A trailing CR and ANSI escapes are removed first. Never throws; a line without
 * prefixes has an empty `raw` prefix and `rest` is the whole (cleaned) line.
 */
export function splitPrintkPrefix(line: string): { prefix: LinePrefix; rest: string } {
  const prefix: LinePrefix = { raw: "" };
  let rest = stripAnsi(line.endsWith("\r") ? line.slice(0, -1) : line);
  const take = (n: number) => {
    prefix.raw += rest.slice(0, n);
    rest = rest.slice(n);
  };
  let m = RE_HOST_STAMP.exec(rest);
  if (m) {
    prefix.hostStamp = m[1];
    take(m[0].length);
  }
  if ((m = RE_SYSLOG.exec(rest) ?? RE_RFC3339.exec(rest))) {
    prefix.wallClock = m[1];
    prefix.host = m[2];
    take(m[0].length);
  }
  if ((m = RE_KMSG.exec(rest))) {
    const level = Number(m[1]);
    prefix.priority = level;
    prefix.kmsgSeq = Number(m[2]);
    prefix.timestampSec = Number(m[3]) / 1e6;
    if (m[5]) prefix.caller = m[5];
    take(m[0].length);
    return { prefix, rest };
  }
  if ((m = RE_DMESG_X.exec(rest))) {
    prefix.facility = m[1];
    prefix.level = m[2];
    take(m[0].length);
  }
  if ((m = RE_PRIORITY.exec(rest))) {
    prefix.priority = Number(m[1]);
    take(m[0].length);
  }
  let stamped = false;
  if ((m = RE_TIMESTAMP.exec(rest))) {
    prefix.timestampSec = Number(m[1]) + Number(m[2]) / 10 ** m[2].length;
    take(m[0].length);
    stamped = true;
  } else if ((m = RE_HUMAN.exec(rest))) {
    prefix.humanTime = m[1];
    take(m[0].length);
    stamped = true;
  } else if ((m = RE_ISO_DMESG.exec(rest))) {
    prefix.humanTime = m[1];
    take(m[0].length);
    return { prefix, rest };
  }
  if ((m = RE_CALLER.exec(rest))) {
    prefix.caller = m[1];
    take(m[0].length);
    stamped = true;
  }
  if (stamped && (m = RE_PROCESS.exec(rest))) {
    prefix.process = m[1];
    take(m[0].length);
  }
  if (stamped && rest.startsWith(" ")) take(1);
  return { prefix, rest };
}

/** A printk console prefix found somewhere in a line. */
export interface ConsoleStamp {
  /** Index of the prefix in the line (its `<N>` when there is one). */
  index: number;
  /** The prefix as split by {@link splitPrintkPrefix}. */
  prefix: LinePrefix;
  /** The message after it. */
  rest: string;
  /** The line from the prefix on (ANSI escapes and a trailing CR removed). */
  text: string;
}

const RE_CONSOLE_ANY = new RegExp(CONSOLE_PREFIX_SOURCE.slice(0, -1));

/**
 * Find the kernel message in a console line: the line's own prefixes when it starts with any
 * (host stamp, syslog, printk, ...), else the first printk console prefix (`<N>`, `[ s.us]`,
 * caller id) anywhere in it, as a kernel line that starts in the middle of command output has.
 * Null when the line has no prefix at its start and no printk time stamp anywhere.
 */
export function findConsoleStamp(line: string): ConsoleStamp | null {
  const clean = stripAnsi(line.endsWith("\r") ? line.slice(0, -1) : line);
  const head = splitPrintkPrefix(clean);
  if (head.prefix.raw !== "") {
    return { index: 0, prefix: head.prefix, rest: head.rest, text: clean };
  }
  const m = RE_CONSOLE_ANY.exec(clean);
  if (!m) return null;
  const text = clean.slice(m.index);
  const { prefix, rest } = splitPrintkPrefix(text);
  return { index: m.index, prefix, rest, text };
}
