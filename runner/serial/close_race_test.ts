// Stress test of the close rule (issue 7, part 2): a console closed while a flood of output is
// arriving on a real pseudo terminal must drop late data (and count it), never throw, and
// never raise an unhandled rejection. Every cycle stacks what a QEMU guest's console carries:
// the serial console with its capture log, the console recorder, the watchers, the event log
// and a tap for the framed shell.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { openPty, type TtyFd } from "./deno_binding.ts";
import { openSerialConsole, TtyConsole } from "./port.ts";
import { ConsoleRecorder, consoleTap } from "../qemu/console.ts";
import { attachToConsole, ConsoleWatcher } from "../watch/watchers.ts";
import { attachEventLog, EventLogWriter } from "../watch/event_log.ts";
import { catchingStrays } from "../strays_testutil.ts";

const CYCLES = 1000;

/** Writes to `tty` until `stop()`; returns what it wrote. Write errors end the flood. */
function flood(tty: TtyFd): { stop: () => Promise<number> } {
  const line = new TextEncoder().encode(
    "[   12.345678] rk_iommu fde4b000.iommu: flood of console output while closing\r\n"
      .repeat(50),
  );
  let running = true;
  let sent = 0;
  const loop = (async () => {
    while (running) {
      try {
        await tty.write(line);
        sent += line.length;
      } catch {
        return;
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await tty.close(); // wakes a write blocked on a full buffer
      await loop;
      return sent;
    },
  };
}

Deno.test(`close race: ${CYCLES} open/flood/close cycles of a serial console on a pty`, async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-close-race-" });
  const errors: string[] = [];
  let dropped = 0;
  let received = 0;
  const t0 = performance.now();
  const strays = await catchingStrays(async () => {
    for (let i = 0; i < CYCLES; i++) {
      const pty = openPty();
      const f = flood(pty.master);
      try {
        const con = await openSerialConsole({
          path: pty.slavePath,
          logPath: `${dir}/console.raw`,
        });
        const rec = await ConsoleRecorder.start(con, dir);
        const watcher = new ConsoleWatcher({ initialBootState: "up" });
        const detach = attachToConsole(watcher, con);
        const events = EventLogWriter.open(`${dir}/events.jsonl`, { sync: false });
        const offLog = attachEventLog(watcher, events);
        const tap = consoleTap(con);
        // Let data flow for a moment (a read is in flight more often than not), then close
        // in the order the target does: sinks' owners last, the console first.
        if (i % 2 === 0) await tap.read();
        await con.close();
        rec.close();
        offLog();
        events.close();
        detach();
        await tap.close();
        dropped += con.droppedAfterClose;
        received += con.bytesReceived;
      } catch (err) {
        errors.push(`cycle ${i}: ${(err as Error).stack ?? err}`);
      } finally {
        await f.stop();
        await pty.slave.close();
      }
    }
  }, { settleMs: 50, uncaughtErrors: true });
  const ms = performance.now() - t0;
  await Deno.remove(dir, { recursive: true });
  assert.deepEqual(errors, [], "no cycle may throw");
  assert.deepEqual(strays.map(String), [], "no unhandled rejection or uncaught error");
  assert.ok(received > 0, "the flood reached the console");
  console.log(
    `${CYCLES} cycles in ${(ms / 1000).toFixed(1)} s; ${received} bytes received, ` +
      `${dropped} late deliveries dropped after close`,
  );
});

Deno.test("close race: a tty console drops data delivered after close and counts it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-close-race-" });
  const strays = await catchingStrays(async () => {
    for (let i = 0; i < 200; i++) {
      const pty = openPty();
      const f = flood(pty.slave);
      const con = new TtyConsole(pty.master, { logPath: `${dir}/tty.raw` });
      const seen: number[] = [];
      con.onData((c) => seen.push(c.length));
      if (i % 2 === 0) await con.read();
      await con.close();
      const after = seen.length;
      await f.stop();
      assert.equal(seen.length, after, "no data callback after close()");
      assert.equal(await con.read().then(() => "ended", (e) => String(e)), "ended");
    }
  }, { settleMs: 50, uncaughtErrors: true });
  await Deno.remove(dir, { recursive: true });
  assert.deepEqual(strays.map(String), []);
});

Deno.test("close race: data and events the serial port emits after close are dropped, counted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-close-race-" });
  const pty = openPty();
  const con = await openSerialConsole({ path: pty.slavePath, logPath: `${dir}/c.raw` });
  const seen: string[] = [];
  const ends: (string | undefined)[] = [];
  con.onData((c) => seen.push(new TextDecoder().decode(c)));
  con.onClose((e) => ends.push(e?.message));
  await pty.master.write(new TextEncoder().encode("before"));
  while (seen.join("") !== "before") await con.read();
  await con.close();
  const logged = await Deno.readFile(`${dir}/c.raw`);
  // What a read already in flight does after close: serialport emits it as data, and a
  // disconnect after our close comes as an error event.
  con.port.emit("data", Buffer.from("late"));
  con.port.emit("error", new Error("late error"));
  assert.deepEqual(seen, ["before"]);
  assert.deepEqual(ends, [undefined], "one close, by rkhil");
  assert.equal(con.closeReason, undefined);
  assert.equal(con.droppedAfterClose, 2);
  assert.deepEqual(await Deno.readFile(`${dir}/c.raw`), logged);
  assert.equal(new TextDecoder().decode(logged), "before");
  await pty.master.close();
  await pty.slave.close();
  await Deno.remove(dir, { recursive: true });
});
