/**
 * The watcher's event log: an append-only JSON-lines file in the run directory (DESIGN.md
 * boundary 5). Each record is one line, written with a single synchronous write and then
 * flushed to the disk (`fdatasync`) before the call returns, so a crash of the runner loses
 * at most the record being written; the reader skips a truncated last line (and any other
 * line that is not a record, counting it).
 *
 * Records (`v` is the format version):
 * - `{"v":1,"t":<epoch ms>,"type":"event","phase":"open"|"done","event":{...WatchEvent}}` —
 *   a multi-line event is written when it opens and again when it is done; a single-line
 *   event once, as "done". {@link latestEvents} keeps the last record of each event id.
 * - `{"v":1,"t":...,"type":"test","phase":"begin"|"end","test":{...TestWatchResult}}` (the
 *   `end` record carries the test's verdict; its `events` are given as ids).
 * - `{"v":1,"t":...,"type":"note","note":"..."}` for anything else worth keeping.
 *
 * Opening an existing log appends; when it ends in a partial line (the previous writer died
 * mid-write), a newline is written first so the next record starts on its own line.
 *
 * @module
 */

import type { ConsoleWatcher, EventPhase, TestWatchResult, WatchEvent } from "./watchers.ts";

/** Format version of the records. */
export const EVENT_LOG_VERSION = 1;

/** A test record: the result without the event bodies (they are in event records). */
export type TestRecordBody = Omit<TestWatchResult, "events"> & { eventIds: number[] };

/** One record of the log. */
export type EventLogRecord =
  | { v: number; t: number; type: "event"; phase: EventPhase; event: WatchEvent }
  | { v: number; t: number; type: "test"; phase: "begin" | "end"; test: TestRecordBody }
  | { v: number; t: number; type: "note"; note: string };

/** Options of {@link EventLogWriter.open}. */
export interface EventLogWriterOptions {
  /** `fdatasync` after each record. Default true. */
  sync?: boolean;
  /** Clock for the `t` field. Default `Date.now`. */
  now?: () => number;
}

const enc = new TextEncoder();

/** Appends records to a JSON-lines file, each written and flushed as it happens. */
export class EventLogWriter {
  #file: Deno.FsFile | null;
  #sync: boolean;
  #now: () => number;
  /** Records written by this writer. */
  written = 0;
  /** Records handed over after {@link close}: dropped (never written), counted, not thrown. */
  droppedAfterClose = 0;

  private constructor(readonly path: string, file: Deno.FsFile, opts: EventLogWriterOptions) {
    this.#file = file;
    this.#sync = opts.sync ?? true;
    this.#now = opts.now ?? (() => Date.now());
  }

  /** Opens (creating or appending to) the log at `path`. */
  static open(path: string, opts: EventLogWriterOptions = {}): EventLogWriter {
    let partial = false;
    try {
      const st = Deno.statSync(path);
      if (st.size > 0) {
        const f = Deno.openSync(path, { read: true });
        try {
          f.seekSync(-1, Deno.SeekMode.End);
          const b = new Uint8Array(1);
          partial = f.readSync(b) === 1 && b[0] !== 0x0a;
        } finally {
          f.close();
        }
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    const file = Deno.openSync(path, { append: true, create: true });
    const w = new EventLogWriter(path, file, opts);
    if (partial) w.#writeBytes(enc.encode("\n"));
    return w;
  }

  #writeBytes(b: Uint8Array): void {
    const f = this.#file;
    if (!f) {
      this.droppedAfterClose++;
      return;
    }
    let o = 0;
    while (o < b.length) o += f.writeSync(b.subarray(o));
    if (this.#sync) f.syncDataSync();
  }

  /** Appends one record (stamped with `t` now when it has none) and flushes it. */
  write(record: DistributiveOmit<EventLogRecord, "v" | "t"> & { t?: number }): void {
    if (!this.#file) {
      this.droppedAfterClose++;
      return;
    }
    const full = { v: EVENT_LOG_VERSION, t: record.t ?? this.#now(), ...record };
    this.#writeBytes(enc.encode(JSON.stringify(full) + "\n"));
    this.written++;
  }

  /** Appends an event record. */
  event(event: WatchEvent, phase: EventPhase): void {
    this.write({ type: "event", phase, event });
  }

  /** Appends a test record. */
  test(result: TestWatchResult, phase: "begin" | "end"): void {
    const { events, ...rest } = result;
    this.write({ type: "test", phase, test: { ...rest, eventIds: events.map((e) => e.id) } });
  }

  /** Appends a note. */
  note(note: string): void {
    this.write({ type: "note", note });
  }

  /** Closes the file; later records are dropped and counted. Idempotent. */
  close(): void {
    const f = this.#file;
    this.#file = null;
    try {
      f?.close();
    } catch { /* already closed */ }
  }
}

/** `Omit` over each member of a union. */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * Write every event and test boundary of `watcher` to `writer` as it happens. Returns a
 * function that stops.
 */
export function attachEventLog(watcher: ConsoleWatcher, writer: EventLogWriter): () => void {
  const offE = watcher.onEvent((ev, phase) => writer.event(ev, phase));
  const offT = watcher.onTest((t, phase) => writer.test(t, phase));
  return () => {
    offE();
    offT();
  };
}

/** What {@link parseEventLog} found. */
export interface EventLogContents {
  records: EventLogRecord[];
  /** The last line was cut short (no newline and not a record): a crash mid-write. */
  truncatedTail: boolean;
  /** Other lines that are not records (1-based line numbers). */
  badLines: number[];
}

function isRecord(x: unknown): x is EventLogRecord {
  if (typeof x !== "object" || x === null) return false;
  const r = x as Record<string, unknown>;
  if (typeof r.v !== "number" || typeof r.t !== "number") return false;
  if (r.type === "event") {
    return (r.phase === "open" || r.phase === "done") && typeof r.event === "object" &&
      r.event !== null && typeof (r.event as Record<string, unknown>).id === "number";
  }
  if (r.type === "test") {
    return (r.phase === "begin" || r.phase === "end") && typeof r.test === "object" &&
      r.test !== null;
  }
  return r.type === "note" && typeof r.note === "string";
}

/** Parse the text of an event log (see {@link EventLogContents}). */
export function parseEventLog(text: string): EventLogContents {
  const records: EventLogRecord[] = [];
  const badLines: number[] = [];
  let truncatedTail = false;
  const lines = text.split("\n");
  const endsWithNewline = text.endsWith("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const last = i === lines.length - 1;
    if (line === "") continue;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      rec = undefined;
    }
    if (isRecord(rec)) {
      records.push(rec);
    } else if (last && !endsWithNewline) {
      truncatedTail = true;
    } else {
      badLines.push(i + 1);
    }
  }
  return { records, truncatedTail, badLines };
}

/** Read the event log at `path`. */
export async function readEventLog(path: string): Promise<EventLogContents> {
  return parseEventLog(await Deno.readTextFile(path));
}

/** The last record of each event, in id order (a crash leaves "open" ones, `complete: false`). */
export function latestEvents(records: readonly EventLogRecord[]): WatchEvent[] {
  const byId = new Map<number, WatchEvent>();
  for (const r of records) if (r.type === "event") byId.set(r.event.id, r.event);
  return [...byId.values()].sort((a, b) => a.id - b.id);
}
