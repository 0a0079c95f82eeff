// Tests of the QMP client against a local unix-socket server speaking QMP's wire format
// (greeting, capabilities, replies, events), including the close rule under an event flood.
import assert from "node:assert/strict";
import { InfraError } from "../errors.ts";
import { QmpClient } from "./qmp.ts";
import { catchingStrays } from "../strays_testutil.ts";

const enc = new TextEncoder();

/** A QMP server: greets, answers every command, and floods RESET events after `cont`. */
async function withServer(fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-qmp-" });
  const path = `${dir}/qmp.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const conns: Deno.UnixConn[] = [];
  const serve = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      (async () => {
        const send = (o: unknown) => conn.write(enc.encode(JSON.stringify(o) + "\n"));
        try {
          await send({ QMP: { version: {}, capabilities: [] } });
          const dec = new TextDecoder();
          let buf = "";
          for await (const chunk of conn.readable) {
            buf += dec.decode(chunk);
            for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
              const msg = JSON.parse(buf.slice(0, nl));
              buf = buf.slice(nl + 1);
              if (msg.execute === "garbage") await conn.write(enc.encode("not json\n[1]\n"));
              await send({ return: {}, id: msg.id });
              if (msg.execute === "cont") {
                let all = "";
                for (let i = 0; i < 2000; i++) {
                  all += JSON.stringify({ event: "RESET", data: { i } }) + "\n";
                }
                await conn.write(enc.encode(all));
              }
            }
          }
        } catch { /* client went away */ }
      })();
    }
  })();
  try {
    await fn(path);
  } finally {
    listener.close();
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await serve.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("qmp: close during an event flood drops late events, rejects waiters, no strays", async () => {
  const strays = await catchingStrays(async () => {
    await withServer(async (path) => {
      let dropped = 0;
      for (let round = 0; round < 20; round++) {
        const qmp = await QmpClient.connect(path, 5000);
        let seen = 0;
        let afterClose = 0;
        let closing = false;
        qmp.onEvent(() => {
          if (closing) afterClose++;
          seen++;
          if (seen === 1) throw new Error("a listener's bug");
        });
        const never = assert.rejects(qmp.waitEvent("SHUTDOWN", 60_000, "test wait"), InfraError);
        await qmp.execute("cont");
        while (seen < 1 + round) await new Promise((r) => setTimeout(r, 1));
        closing = true;
        await qmp.close();
        await never;
        await assert.rejects(qmp.execute("cont"), InfraError);
        await assert.rejects(qmp.waitEvent("RESET", 1000, "after close"), InfraError);
        assert.equal(afterClose, 0, "no listener call after close()");
        assert.equal(qmp.handlerErrors, 1, "the throwing listener was caught and counted");
        assert.ok(qmp.closed);
        dropped += qmp.droppedAfterClose;
      }
      console.log(`20 closes under a flood; ${dropped} late messages dropped`);
    });
  }, { settleMs: 20, uncaughtErrors: false });
  assert.deepEqual(strays.map(String), []);
});

Deno.test("qmp: a listener closing the session mid-chunk: the rest is dropped and counted", async () => {
  await withServer(async (path) => {
    const qmp = await QmpClient.connect(path, 5000);
    let calls = 0;
    let closed: Promise<void> | undefined;
    qmp.onEvent(() => {
      if (++calls === 10) closed = qmp.close();
    });
    await qmp.execute("cont");
    while (!closed) await new Promise((r) => setTimeout(r, 1));
    await closed;
    assert.equal(calls, 10);
    assert.ok(qmp.droppedAfterClose > 0, "events of the same chunk after close() are counted");
  });
});

Deno.test("qmp: lines that are not JSON objects are counted and skipped", async () => {
  await withServer(async (path) => {
    const qmp = await QmpClient.connect(path, 5000);
    try {
      await qmp.execute("garbage");
      assert.equal(qmp.badLines, 2);
      assert.deepEqual(await qmp.execute("query-status"), {});
    } finally {
      await qmp.close();
    }
  });
});

Deno.test("qmp: QEMU going away rejects pending commands with an InfraError", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-qmp-" });
  const path = `${dir}/qmp.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const server = (async () => {
    const conn = await listener.accept();
    await conn.write(enc.encode('{"QMP": {}}\n'));
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    const id = JSON.parse(new TextDecoder().decode(buf.subarray(0, n ?? 0))).id;
    await conn.write(enc.encode(JSON.stringify({ return: {}, id }) + "\n"));
    await conn.read(buf); // the next command: no answer, QEMU "exits"
    conn.close();
  })();
  const qmp = await QmpClient.connect(path, 5000);
  await assert.rejects(qmp.execute("cont", undefined, 10_000), /QMP connection closed/);
  await server;
  await qmp.close();
  listener.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("QMP connect: retries while the socket is missing, and stops when told why", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-qmp-" });
  try {
    const exited = new AbortController();
    setTimeout(() => exited.abort("QEMU exited (code 1)"), 200);
    await assert.rejects(
      QmpClient.connect(`${dir}/never.sock`, 60_000, exited.signal),
      (err: Error) => {
        assert.ok(err instanceof InfraError);
        assert.match(err.message, /: QEMU exited \(code 1\) before QEMU opened its QMP socket/);
        return true;
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
