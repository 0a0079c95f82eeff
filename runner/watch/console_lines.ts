/**
 * Raw console bytes to lines. A serial console delivers chunks of bytes at arbitrary
 * boundaries (a CRLF, a UTF-8 sequence or an ANSI escape may be cut in two); this module
 * turns them into lines, each stamped with the arrival time of its first byte.
 *
 * Rules (the same for any chunking of the same bytes, except for the timestamps):
 * - A line ends at LF (`lf`), at CR LF (`crlf`; a run of CRs before the LF counts as one, so
 *   `\r\r\n` from a doubled ONLCR is one `crlf`), or at a run of CRs not followed by LF (`cr`,
 *   progress bars that overwrite themselves). A CR at the end of a chunk is held until the
 *   next byte tells which one it was.
 * - `raw` is the line decoded as UTF-8 (invalid sequences become U+FFFD, a BOM is kept) with
 *   every escape sequence and control byte left in; `text` is `raw` with ANSI escape
 *   sequences (CSI, OSC, two-byte ESC sequences, charset designators) removed and then every
 *   remaining control character except TAB (C0, DEL, C1; NUL included) removed. Match on
 *   `text`, show `raw`.
 * - A line longer than `maxLineBytes` is cut into pieces of at most that many bytes (never
 *   inside a UTF-8 sequence); every piece but the last ends with `split`, every piece but
 *   the first has `continued: true`.
 * - `flush()` returns the final partial line (end `eof`) or a held CR line (`cr`).
 *
 * Pure: no I/O, no clocks.
 *
 * @module
 */

/** How a line ended. */
export type LineEnd = "lf" | "crlf" | "cr" | "split" | "eof";

/** One console line. */
export interface ConsoleLine {
  /** 0-based line number in the stream (pieces of a split line count separately). */
  seq: number;
  /** Byte offset of the line's first byte in the stream. */
  offset: number;
  /** Arrival time (the chunk's `atMs`, epoch ms) of the line's first byte. */
  atMs: number;
  /** The line as received, UTF-8 decoded, escapes and control bytes kept, no terminator. */
  raw: string;
  /** The line for matching: ANSI escape sequences and control characters (but TAB) removed. */
  text: string;
  /** What ended the line. */
  end: LineEnd;
  /** This piece continues a line that was split at `maxLineBytes`. */
  continued: boolean;
}

/** Options of {@link ConsoleLineSplitter}. */
export interface LineSplitterOptions {
  /** Longest line, in bytes, before it is split. Default 8192. */
  maxLineBytes?: number;
}

/** Default {@link LineSplitterOptions.maxLineBytes}. */
export const DEFAULT_MAX_LINE_BYTES = 8192;

import { stripAnsi } from "../../oracle/kline.ts";

const LF = 0x0a;
const CR = 0x0d;

const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

/** Remove ANSI escape sequences from `s` (the one grammar of oracle/kline.ts). */
export { stripAnsi };

/** The matching form of a raw line: escapes and control characters (but TAB) removed. */
export function cleanText(raw: string): string {
  return stripAnsi(raw).replace(CONTROL, "");
}

/** Build a line from its bytes (without terminator). */
export function makeLine(
  bytes: Uint8Array,
  atMs: number,
  end: LineEnd,
  at: { seq?: number; offset?: number; continued?: boolean } = {},
): ConsoleLine {
  const raw = decoder.decode(bytes);
  return {
    seq: at.seq ?? 0,
    offset: at.offset ?? 0,
    atMs,
    raw,
    text: cleanText(raw),
    end,
    continued: at.continued ?? false,
  };
}

/** Bytes to keep after `len` bytes so that the cut does not fall inside a UTF-8 sequence. */
function utf8SafeCut(b: Uint8Array, len: number): number {
  // Walk back over at most 3 continuation bytes to the lead byte of the last sequence.
  let i = len - 1;
  let back = 0;
  while (i >= 0 && back < 3 && (b[i] & 0xc0) === 0x80) {
    i--;
    back++;
  }
  if (i < 0) return len;
  const lead = b[i];
  const need = lead >= 0xf0 && lead <= 0xf4
    ? 4
    : lead >= 0xe0 && lead <= 0xef
    ? 3
    : lead >= 0xc2 && lead <= 0xdf
    ? 2
    : 1;
  // The sequence starting at i is complete within len: cut at len. Otherwise cut before it.
  if (need === 1 || i + need <= len) return len;
  return i > 0 ? i : len;
}

/** Splits a console byte stream into {@link ConsoleLine}s; see the module documentation. */
export class ConsoleLineSplitter {
  readonly maxLineBytes: number;
  #parts: Uint8Array[] = [];
  #len = 0;
  #lineAt = 0;
  #lineOffset = 0;
  #continued = false;
  #crPending = false;
  #offset = 0;
  #seq = 0;

  constructor(opts: LineSplitterOptions = {}) {
    const max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!Number.isInteger(max) || max < 4) {
      throw new RangeError(`maxLineBytes must be an integer >= 4, got ${max}`);
    }
    this.maxLineBytes = max;
  }

  /** Bytes of the current, unfinished line. */
  get pendingBytes(): number {
    return this.#len;
  }

  #bytes(): Uint8Array {
    if (this.#parts.length === 1) return this.#parts[0];
    const out = new Uint8Array(this.#len);
    let o = 0;
    for (const p of this.#parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  #emit(out: ConsoleLine[], end: LineEnd, atIfEmpty: number): void {
    const bytes = this.#bytes();
    const at = this.#len > 0 ? this.#lineAt : atIfEmpty;
    out.push(makeLine(bytes.slice(), at, end, {
      seq: this.#seq++,
      offset: this.#len > 0 ? this.#lineOffset : this.#offset,
      continued: this.#continued,
    }));
    this.#parts = [];
    this.#len = 0;
    this.#continued = false;
  }

  /** Split the current line at `maxLineBytes` (UTF-8 safe); keeps the rest as a new line. */
  #split(out: ConsoleLine[], atMs: number): void {
    const bytes = this.#bytes();
    const cut = utf8SafeCut(bytes, bytes.length);
    const head = bytes.subarray(0, cut);
    const tail = bytes.slice(cut);
    out.push(makeLine(head.slice(), this.#lineAt, "split", {
      seq: this.#seq++,
      offset: this.#lineOffset,
      continued: this.#continued,
    }));
    this.#continued = true;
    this.#parts = tail.length ? [tail] : [];
    this.#len = tail.length;
    this.#lineOffset += cut;
    this.#lineAt = atMs;
  }

  /** Feed a chunk received at `atMs`; returns the lines it completed. */
  push(chunk: Uint8Array, atMs: number): ConsoleLine[] {
    const out: ConsoleLine[] = [];
    const max = this.maxLineBytes;
    let segStart = 0; // start in chunk of bytes not yet added to #parts
    const addSeg = (end: number) => {
      if (end > segStart) {
        this.#parts.push(chunk.subarray(segStart, end));
        this.#len += end - segStart;
      }
    };
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (this.#crPending) {
        if (b === CR) {
          segStart = i + 1;
          this.#offset++;
          continue;
        }
        this.#crPending = false;
        if (b === LF) {
          this.#emit(out, "crlf", atMs);
          segStart = i + 1;
          this.#offset++;
          continue;
        }
        this.#emit(out, "cr", atMs);
        segStart = i;
      }
      if (b === LF) {
        addSeg(i);
        this.#emit(out, "lf", atMs);
        segStart = i + 1;
      } else if (b === CR) {
        addSeg(i);
        this.#crPending = true;
        segStart = i + 1;
      } else {
        if (this.#len === 0 && i === segStart) {
          this.#lineAt = atMs;
          this.#lineOffset = this.#offset;
        }
        if (this.#len + (i + 1 - segStart) >= max) {
          addSeg(i + 1);
          segStart = i + 1;
          this.#split(out, atMs);
        }
      }
      this.#offset++;
    }
    if (!this.#crPending) addSeg(chunk.length);
    // Own the bytes: the caller may reuse its buffer.
    if (this.#parts.length > 0) {
      const own = this.#bytes().slice();
      this.#parts = [own];
    }
    return out;
  }

  /** End of stream: the partial last line (if any). */
  flush(atMs = 0): ConsoleLine[] {
    const out: ConsoleLine[] = [];
    if (this.#crPending) {
      this.#crPending = false;
      this.#emit(out, "cr", atMs);
    } else if (this.#len > 0) {
      this.#emit(out, "eof", atMs);
    }
    return out;
  }
}

/** All lines of a complete byte buffer or string (UTF-8 encoded first), with one timestamp. */
export function splitConsoleText(
  data: Uint8Array | string,
  atMs = 0,
  opts: LineSplitterOptions = {},
): ConsoleLine[] {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const s = new ConsoleLineSplitter(opts);
  return [...s.push(bytes, atMs), ...s.flush(atMs)];
}
