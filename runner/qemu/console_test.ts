// ConsoleRecorder.waitFor on a real pseudo terminal (the recorder on the master, as on a USB
// UART): a match, and a wait its signal ends at once instead of at its timeout.
import assert from "node:assert/strict";
import { InfraError } from "../errors.ts";
import { openPty } from "../serial/deno_binding.ts";
import { TtyConsole } from "../serial/port.ts";
import { ConsoleRecorder } from "./console.ts";

async function rig() {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-console-" });
  const pty = openPty();
  const con = new TtyConsole(pty.master, { logPath: `${dir}/console.raw` });
  const rec = await ConsoleRecorder.start(con, dir);
  return {
    rec,
    say: (text: string) => pty.slave.write(new TextEncoder().encode(text)),
    async done() {
      rec.close();
      await con.close();
      await pty.slave.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("ConsoleRecorder.waitFor: an aborted signal ends the wait at once; the wait is gone", async () => {
  const r = await rig();
  try {
    const from = r.rec.mark();
    const stop = new AbortController();
    const t0 = performance.now();
    const waiting = r.rec.waitFor(/Enter choice: /, {
      from,
      timeoutMs: 60_000,
      owner: "U-Boot menu",
      signal: stop.signal,
    });
    setTimeout(() => stop.abort(), 50);
    await assert.rejects(waiting, (e: Error) => {
      assert.ok(e instanceof InfraError, String(e));
      assert.match(e.message, /^U-Boot menu: stopped waiting for \/Enter choice: \/g/);
      return true;
    });
    assert.ok(performance.now() - t0 < 5_000, "the wait ended with the signal, not its timeout");
    // Already aborted: refused before waiting.
    await assert.rejects(
      r.rec.waitFor(/x/, { timeoutMs: 60_000, owner: "again", signal: stop.signal }),
      /again: stopped waiting/,
    );
    // The aborted wait no longer matches; a new one with a live signal does.
    const live = new AbortController();
    const menu = r.rec.waitFor(/Enter choice: /, {
      from,
      timeoutMs: 20_000,
      owner: "U-Boot menu",
      signal: live.signal,
    });
    await r.say("1:\tl0\r\nEnter choice: ");
    const m = await menu;
    assert.equal(m[0], "Enter choice: ");
    live.abort(); // after the match: nothing happens
  } finally {
    await r.done();
  }
});
