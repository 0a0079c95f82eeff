/**
 * The SQLite binding the history uses: Deno's built-in `node:sqlite` (`DatabaseSync`), behind
 * the few methods rkhil calls. The project's type graph holds `@types/node@18` (through
 * `@types/ssh2`), which predates `node:sqlite`, so the module is imported untyped here and given
 * its shape once.
 *
 * @module
 */
// @ts-ignore: @types/node@18 (from @types/ssh2) has no node:sqlite; Deno provides the module.
import { DatabaseSync as NodeDatabaseSync } from "node:sqlite";

/** A value SQLite stores or returns. */
export type SQLValue = null | number | bigint | string | Uint8Array;

/** A prepared statement. */
export interface Statement {
  /** Run it; how many rows changed. */
  run(...params: SQLValue[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  /** The first row, or undefined. */
  get(...params: SQLValue[]): Record<string, SQLValue> | undefined;
  /** Every row. */
  all(...params: SQLValue[]): Record<string, SQLValue>[];
}

/** An open database. */
export interface Database {
  /**
   * `postgres` for the PostgreSQL history (runner/history/postgres.ts); absent for SQLite. The
   * few statements that differ between the two (the schema's catalogue, string aggregation,
   * column types, the migration lock) look at it.
   */
  readonly dialect?: "postgres";
  /** Run SQL statements (no results). */
  exec(sql: string): void;
  /** Prepare one statement. */
  prepare(sql: string): Statement;
  /** Close the database. */
  close(): void;
}

/**
 * Open (or create) the SQLite database at `path` (`:memory:` for a scratch one).
 *
 * @throws {Error} when the file cannot be opened.
 */
export function openDatabase(path: string): Database {
  return new NodeDatabaseSync(path) as Database;
}
