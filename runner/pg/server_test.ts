import assert from "node:assert/strict";
// @ts-types="@types/pg"
import pg from "pg";
import { PgServer } from "./server.ts";

Deno.test("a throwaway cluster starts as the postgres user, serves, and leaves nothing behind", async () => {
  const server = await PgServer.start();
  let dir = "";
  let pid = 0;
  try {
    dir = server.dir;
    pid = server.pid;
    const url = await server.createDatabase("t_one");
    assert.match(url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/t_one$/);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const r = await c.query("SELECT current_database() AS db, current_user AS who");
      assert.deepEqual(r.rows[0], { db: "t_one", who: "postgres" });
    } finally {
      await c.end();
    }
    // The postmaster runs as postgres (PostgreSQL refuses root), not as this process's user.
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
    if (Deno.uid() === 0) assert.notEqual(uid, 0);
    await assert.rejects(() => server.createDatabase("Bad-Name; DROP"), /not a database name/);
  } finally {
    await server.stop();
  }
  await assert.rejects(() => Deno.stat(dir), Deno.errors.NotFound);
  await assert.rejects(() => Deno.readTextFile(`/proc/${pid}/status`), Deno.errors.NotFound);
  await server.stop(); // idempotent
});

Deno.test("a port taken between choosing and binding: the server starts on another", async () => {
  const squatter = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const taken = (squatter.addr as Deno.NetAddr).port;
  try {
    await using server = await PgServer.start({ firstPort: taken });
    assert.notEqual(server.port, taken);
    const c = new pg.Client({ connectionString: server.url() });
    await c.connect();
    await c.end();
  } finally {
    squatter.close();
  }
});
