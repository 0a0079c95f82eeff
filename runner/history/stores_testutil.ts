/**
 * One history test body, two stores: {@linkcode historyTest} registers the body once as a test on
 * the embedded SQLite history and once as a step of this file's one PostgreSQL test, which starts
 * a throwaway cluster (runner/pg/server.ts) for every body of the file and stops it at the end.
 * Each body gets a fresh, empty history location from `store.fresh()` (an SQLite file in a
 * temporary directory, or a new database on the cluster) to give `openHistory` or
 * `HistoryWriter.open`.
 *
 * @module
 */
import { PgServer } from "../pg/server.ts";

/** The store a body runs on. */
export interface StoreUnderTest {
  /** `sqlite` or `postgres`. */
  name: "sqlite" | "postgres";
  /** A new, empty history location (an SQLite path, or a PostgreSQL URL). */
  fresh(): Promise<string>;
  /** A scratch directory for the body's files (removed after it). */
  dir: string;
}

type Body = (store: StoreUnderTest) => void | Promise<void>;

const bodies: { name: string; body: Body }[] = [];
let dbCount = 0;

/**
 * Register `body` as test `name` on SQLite and as a step of the file's PostgreSQL test.
 */
export function historyTest(name: string, body: Body): void {
  if (bodies.length === 0) {
    Deno.test("the same history tests on PostgreSQL (a throwaway cluster)", async (t) => {
      await using pg = await PgServer.start();
      for (const b of bodies) {
        await t.step(b.name, async () => {
          const dir = await Deno.makeTempDir({ prefix: "rkhil-hist-" });
          try {
            await b.body({
              name: "postgres",
              dir,
              fresh: () => pg.createDatabase(`h${++dbCount}_${crypto.randomUUID().slice(0, 8)}`),
            });
          } finally {
            await Deno.remove(dir, { recursive: true });
          }
        });
      }
    });
  }
  bodies.push({ name, body });
  Deno.test(`${name} (sqlite)`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "rkhil-hist-" });
    let n = 0;
    try {
      await body({
        name: "sqlite",
        dir,
        fresh: () => Promise.resolve(`${dir}/history-${++n}.sqlite`),
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
