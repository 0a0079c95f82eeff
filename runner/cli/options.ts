/**
 * Option parsers of the rkhil CLI: every option value is checked by commander (as the option's
 * `argParser`) before any command starts, so bad input is exit 2 with one line saying what a
 * valid value looks like, never a boot that fails later as MISS. Values are quoted in messages
 * with {@link shown} (control characters escaped, long values cut).
 *
 * Paths given by the user resolve against the caller's working directory: `./rkhil` changes to
 * the repository root before it starts Deno and passes the directory it was called from in
 * `RKHIL_CWD` ({@link callerCwd}). Input paths must exist and be of the right kind; output
 * directories must exist and be writable, or be creatable (their nearest existing ancestor is
 * a writable directory). Writability is probed by creating and removing a temporary file, since
 * permission bits say nothing for root or on a read-only mount.
 *
 * @module
 */
import { InvalidArgumentError } from "commander";
import { isAbsolute, resolve } from "node:path";
import { BUILTIN_BOARDS_DIR } from "../../boards/load.ts";
import { BOARD_ID_PATTERN } from "../../boards/schema.ts";
import { BootArgsError, COMMAND_LINE_SIZE, parseBootArgs } from "../../oracle/bootargs.ts";
import { getPatch, patchNames } from "../../oracle/patches.ts";
import { isKnownRelease, parseRelease, RELEASES } from "../../oracle/releases.ts";
import { KERNEL_SUITES } from "../debian/kernel.ts";
import { DIR_KERNEL_SPEC } from "../board/deploy_kernel.ts";
import { UserInputError } from "../errors.ts";
import { DEFAULT_APPEND } from "../qemu/machine.ts";
import { escapeControls, shown } from "../safe_text.ts";

/** Smallest guest memory accepted (MiB): the kernel and the initramfs need about this much. */
export const MIN_GUEST_MIB = 256;
/** Largest guest memory accepted (MiB): QEMU's `virt` board limit without high memory, 255 GiB. */
export const MAX_GUEST_MIB = 255 * 1024;
/** Longest command timeout accepted (seconds): one day. */
export const MAX_TIMEOUT_S = 86_400;
/** Longest path accepted (bytes); Linux's PATH_MAX is 4096 with the NUL. */
export const MAX_PATH_BYTES = 4000;

const enc = new TextEncoder();

/**
 * The directory the user ran rkhil from: `RKHIL_CWD` when the bootstrap set it (an absolute
 * path), else this process's working directory.
 */
export function callerCwd(): string {
  const env = Deno.env.get("RKHIL_CWD");
  return env && isAbsolute(env) ? env : Deno.cwd();
}

/** Resolve a user path against {@link callerCwd}; refuses empty values and NUL bytes. */
export function userPath(value: string): string {
  if (value.trim() === "") {
    throw new InvalidArgumentError("expected a path, got an empty value");
  }
  if (value.includes("\0")) {
    throw new InvalidArgumentError(`the path ${shown(value)} contains a NUL byte`);
  }
  const path = resolve(callerCwd(), value);
  if (enc.encode(path).length > MAX_PATH_BYTES) {
    throw new InvalidArgumentError(
      `the path ${shown(path)} is longer than ${MAX_PATH_BYTES} bytes`,
    );
  }
  return path;
}

function statOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw new InvalidArgumentError(`cannot read ${shown(path)}: ${reason(err)}`);
  }
}

function reason(err: unknown): string {
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  const m = err instanceof Error ? err.message : String(err);
  return m.split(":")[0].split("\n")[0];
}

function kind(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFile) return "a file";
  if (info.isFifo) return "a FIFO";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice || info.isBlockDevice) return "a device";
  return "not a regular file";
}

/**
 * An existing regular file to read (`--dtb`): its absolute path. A directory, FIFO, socket or
 * device is refused (opening a FIFO would block).
 */
export function inputFile(value: string): string {
  const path = userPath(value);
  const info = statOrUndefined(path);
  if (!info) throw new InvalidArgumentError(`no such file: ${shown(path)}`);
  if (!info.isFile) {
    throw new InvalidArgumentError(`${shown(path)} is ${kind(info)}; expected a file`);
  }
  try {
    Deno.openSync(path, { read: true }).close();
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${shown(path)}: ${reason(err)}`);
  }
  return path;
}

/** An existing, readable directory (`--boards-dir`): its absolute path. */
export function inputDir(value: string): string {
  const path = userPath(value);
  const info = statOrUndefined(path);
  if (!info) throw new InvalidArgumentError(`no such directory: ${shown(path)}`);
  if (!info.isDirectory) {
    throw new InvalidArgumentError(`${shown(path)} is ${kind(info)}; expected a directory`);
  }
  try {
    Deno.readDirSync(path)[Symbol.iterator]().next();
  } catch (err) {
    throw new InvalidArgumentError(`cannot list ${shown(path)}: ${reason(err)}`);
  }
  return path;
}

/** Throws unless a file can be created in the directory `dir` (created and removed again). */
function probeWritable(dir: string, target: string): void {
  let probe: string | undefined;
  try {
    probe = Deno.makeTempFileSync({ dir, prefix: ".rkhil-write-check-" });
  } catch (err) {
    const why = err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : /read-only/i.test(String(err))
      ? "read-only file system"
      : reason(err);
    throw new InvalidArgumentError(
      dir === target
        ? `cannot write in ${shown(dir)}: ${why}`
        : `cannot create ${shown(target)}: ${shown(dir)} is not writable (${why})`,
    );
  } finally {
    if (probe) Deno.removeSync(probe);
  }
}

/**
 * A directory to write into (`--runs-dir`, `--run-dir`): its absolute path. It must be a
 * writable directory, or not exist yet with its nearest existing ancestor a writable directory.
 * Nothing is created (a probe file is created and removed).
 */
export function outputDir(value: string): string {
  const path = userPath(value);
  const info = statOrUndefined(path);
  if (info) {
    if (!info.isDirectory) {
      throw new InvalidArgumentError(`${shown(path)} is ${kind(info)}; expected a directory`);
    }
    probeWritable(path, path);
    return path;
  }
  let parent = resolve(path, "..");
  for (;;) {
    const p = statOrUndefined(parent);
    if (p) {
      if (!p.isDirectory) {
        throw new InvalidArgumentError(
          `cannot create ${shown(path)}: ${shown(parent)} is ${kind(p)}, not a directory`,
        );
      }
      probeWritable(parent, path);
      return path;
    }
    const up = resolve(parent, "..");
    if (up === parent) throw new InvalidArgumentError(`cannot create ${shown(path)}`);
    parent = up;
  }
}

/**
 * Guest memory in QEMU's `-m` syntax: a whole number with an optional M, G or T suffix (MiB
 * without one), from 256M to 255G. Returns the canonical form, e.g. `8G` or `512M`.
 */
export function guestMemory(value: string): string {
  const m = /^([1-9][0-9]{0,6})([MGT])?$/i.exec(value.trim());
  const unit = (m?.[2] ?? "M").toUpperCase();
  const mib = m ? Number(m[1]) * { M: 1, G: 1024, T: 1024 * 1024 }[unit]! : NaN;
  if (!(mib >= MIN_GUEST_MIB && mib <= MAX_GUEST_MIB)) {
    throw new InvalidArgumentError(
      `expected a memory size like 8G or 512M (a whole number with M, G or T; ` +
        `${MIN_GUEST_MIB}M to ${MAX_GUEST_MIB / 1024}G)`,
    );
  }
  return `${m![1]}${unit}`;
}

/**
 * `rkhil run --kernel`: a {@linkcode kernelSpec}, or `dir:/ABSOLUTE/DIR` (a kernel on this host
 * that a farm deploys on boards with `deploy:`; runner/board/deploy_kernel.ts reads it).
 */
export function runKernelSpec(value: string): string {
  if (!value.startsWith("dir:")) return kernelSpec(value);
  if (!DIR_KERNEL_SPEC.test(value)) {
    throw new InvalidArgumentError(
      "expected dir:/ABSOLUTE/DIRECTORY holding vmlinuz-<release> (for boards with deploy:)",
    );
  }
  return value;
}

/** A command timeout in seconds: a positive number up to one day. */
export function timeoutSeconds(value: string): number {
  const n = /^[0-9]+(\.[0-9]+)?$/.test(value.trim()) ? Number(value) : NaN;
  if (!(n > 0 && n <= MAX_TIMEOUT_S)) {
    throw new InvalidArgumentError(
      `expected a number of seconds greater than 0 and at most ${MAX_TIMEOUT_S} ` +
        "(e.g. 300 or 2.5)",
    );
  }
  return n;
}

/** A Debian version as apt names it: optional epoch, then a digit, then `[A-Za-z0-9.+~-]`. */
const DEBIAN_VERSION = /^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]{0,80}$/;

/**
 * A QEMU kernel: `debian:<suite>` (one of {@link KERNEL_SUITES}) or `debian:<package version>`.
 * Whether the mirror has it is known only once apt is asked; this checks the form.
 */
export function kernelSpec(value: string): string {
  const suites = Object.keys(KERNEL_SUITES).map((s) => `debian:${s}`).join(", ");
  const m = /^debian:(.*)$/s.exec(value);
  if (!m) {
    throw new InvalidArgumentError(
      `expected debian:<suite> or debian:<package version> (${suites}, or e.g. ` +
        "debian:6.1.158-1)",
    );
  }
  const rest = m[1];
  if (/^[0-9]/.test(rest)) {
    if (!DEBIAN_VERSION.test(rest)) {
      throw new InvalidArgumentError(
        `${shown(rest)} is not a Debian package version (digits, letters and . + ~ -, ` +
          `e.g. 6.1.158-1)`,
      );
    }
    return value;
  }
  if (!Object.hasOwn(KERNEL_SUITES, rest)) {
    throw new InvalidArgumentError(
      `unknown Debian suite ${shown(rest)}; use one of ${suites}, or debian:<package version>`,
    );
  }
  return value;
}

/** A Debian suite of {@link KERNEL_SUITES} (`trixie`, `bookworm-backports`, `sid`). */
export function debianSuite(value: string): string {
  if (!Object.hasOwn(KERNEL_SUITES, value)) {
    throw new InvalidArgumentError(
      `unknown Debian suite; use one of ${Object.keys(KERNEL_SUITES).join(", ")}`,
    );
  }
  return value;
}

/** A kernel release the driver knowledge base covers (`6.12`, `7.3`). */
export function knownRelease(value: string): string {
  const r = value.length <= 32 ? parseRelease(value) : undefined;
  if (!r || !isKnownRelease(r)) {
    throw new InvalidArgumentError(
      `unknown kernel release ${shown(value)}; use one of ${RELEASES[0]} … ` +
        `${RELEASES[RELEASES.length - 1]} (see rkhil releases), e.g. 6.12`,
    );
  }
  return value;
}

/** `predict --kernel`: a known release, or a Debian kernel spec (`debian:trixie`). */
export function releaseOrKernelSpec(value: string): string {
  return value.startsWith("debian:") ? kernelSpec(value) : knownRelease(value);
}

/** A board id's form (`rock-3b-8g`); whether a board file has it is checked when it is loaded. */
export function boardId(value: string): string {
  if (value.length > 64 || !BOARD_ID_PATTERN.test(value)) {
    throw new InvalidArgumentError(
      `expected a board id like rock-3b-8g (lower-case letters and digits separated by single ` +
        "dashes; see rkhil boards)",
    );
  }
  return value;
}

/**
 * The id of a built-in board (`run --predict-board`, which predicts with the shipped board
 * files): its form, and that `boards/<id>.yaml` exists. The file's content is checked when the
 * board is loaded.
 */
export function builtinBoardId(value: string): string {
  boardId(value);
  const known = BUILTIN_BOARDS_DIR === undefined ? [] : [...Deno.readDirSync(BUILTIN_BOARDS_DIR)]
    .map((e) => /^(.*)\.ya?ml$/.exec(e.name)?.[1])
    .filter((id): id is string => id !== undefined && BOARD_ID_PATTERN.test(id))
    .sort();
  if (!known.includes(value)) {
    throw new InvalidArgumentError(
      `unknown board id; known boards: ${known.join(", ")} (see rkhil boards)`,
    );
  }
  return value;
}

/** A downstream patch set name (see `rkhil patches`). */
export function patchName(value: string): string {
  if (!getPatch(value)) {
    throw new InvalidArgumentError(
      `unknown patch set ${shown(value)}; use one of ${patchNames().join(", ")}`,
    );
  }
  return value;
}

/** A kernel command line for the oracle: `mem=`, `swiotlb=`, `cma=` must be well formed. */
export function bootArgs(value: string): string {
  try {
    parseBootArgs(value);
  } catch (err) {
    if (err instanceof BootArgsError) {
      throw new InvalidArgumentError(
        `${err.param}=${err.value === null ? "(no value)" : shown(err.value)}: ${err.problem}; ` +
          `expected ${err.expected}`,
      );
    }
    throw err;
  }
  return value;
}

/**
 * Extra kernel arguments for a QEMU guest: printable text, well-formed memory parameters, and
 * short enough that the whole command line (`DEFAULT_APPEND` and these) fits the 2047 bytes an
 * arm64 kernel keeps (COMMAND_LINE_SIZE 2048 with the NUL; arguments past it are never seen).
 */
export function guestAppend(value: string): string {
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) {
    throw new InvalidArgumentError(
      `kernel arguments must be printable text (no newlines or control characters), got ` +
        shown(value),
    );
  }
  const total = enc.encode(`${DEFAULT_APPEND} ${value}`).length;
  if (total > COMMAND_LINE_SIZE - 1) {
    throw new InvalidArgumentError(
      `the guest's kernel command line would be ${total} bytes; an arm64 kernel keeps only ` +
        `${COMMAND_LINE_SIZE - 1} (COMMAND_LINE_SIZE ${COMMAND_LINE_SIZE}) and ignores the rest: ` +
        `keep --append under ${COMMAND_LINE_SIZE - 2 - enc.encode(DEFAULT_APPEND).length} bytes`,
    );
  }
  return bootArgs(value);
}

/** An argParser for a repeatable option: each value checked with `parse`, collected in order. */
export function repeatable<T>(
  parse: (value: string) => T,
): (value: string, prev: T[] | undefined) => T[] {
  // A variadic argument without a default starts from undefined.
  return (value, prev) => [...(prev ?? []), parse(value)];
}

/**
 * The words of `qemu exec -- CMD...` (a variadic argument's parser): collected in order; a blank
 * first word is refused (there would be nothing to run).
 */
export function commandWords(word: string, prev: string[] | undefined): string[] {
  if (prev === undefined && word.trim() === "") {
    throw new InvalidArgumentError("expected a command to run after --, e.g. -- uname -r");
  }
  return [...(prev ?? []), word];
}

/**
 * Check a value the user did not give (a default, or one taken from elsewhere) with the same
 * parser as the option: a failure is a UserInputError naming the option (exit 2).
 */
export function checkOption<T>(flag: string, value: string, parse: (v: string) => T): T {
  try {
    return parse(value);
  } catch (err) {
    if (err instanceof InvalidArgumentError) {
      throw new UserInputError(`option '${flag}': ${err.message}`, `see rkhil --help`);
    }
    throw err;
  }
}

/** Commander's error lines that quote a raw user value, split around that value. */
const QUOTING: readonly RegExp[] = [
  /^(error: option '[^']*' argument )'([\s\S]*)'( is invalid\.[\s\S]*)$/,
  /^(error: option '[^']*' value )'([\s\S]*)'( from env [\s\S]*)$/,
  /^(error: command-argument value )'([\s\S]*)'( is invalid for argument '[^']*'\.[\s\S]*)$/,
  /^(error: unknown (?:option|command) )'([\s\S]*)'([\s\S]*)$/,
];

/**
 * Commander's error message made safe for a terminal: commander quotes an option's raw value
 * (`argument '<value>' is invalid`); that value is re-quoted with {@link shown} (control
 * characters escaped, cut when long) and control characters in the rest are escaped.
 */
export function safeCommanderError(message: string): string {
  const end = message.endsWith("\n") ? "\n" : "";
  const body = end ? message.slice(0, -1) : message;
  for (const re of QUOTING) {
    const m = re.exec(body);
    if (m) return `${escapeControls(m[1], false)}${shown(m[2])}${escapeControls(m[3])}${end}`;
  }
  return escapeControls(body) + end;
}
