// Tests of the append-only JSON-lines event log, including a writer killed mid-write.
import assert from "node:assert/strict";
import {
  attachEventLog,
  EventLogWriter,
  latestEvents,
  parseEventLog,
  readEventLog,
} from "./event_log.ts";
import { ConsoleWatcher } from "./watchers.ts";
import { splitConsoleText } from "./console_lines.ts";

const PANIC = Deno.readTextFileSync(new URL("./testdata/sysrq_panic.log", import.meta.url));

Deno.test("watcher events and test boundaries are written as they happen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-evlog-" });
  try {
    const path = `${dir}/events.jsonl`;
    const writer = EventLogWriter.open(path, { now: () => 5 });
    const w = new ConsoleWatcher({ initialBootState: "up" });
    attachEventLog(w, writer);
    w.beginTest("sysrq", 1);
    const lines = splitConsoleText(PANIC.replaceAll("\n", "\r\n"), 100);
    w.feedLines(lines.slice(0, 3));
    // The panic is on disk as soon as its first line was seen, before it is complete.
    const early = await readEventLog(path);
    assert.deepEqual(early.records.map((r) => r.type), ["test", "event"]);
    const open = early.records[1];
    assert.ok(open.type === "event" && open.phase === "open" && open.event.verdict === "FAIL");
    w.feedLines(lines.slice(3));
    w.endTest(2);
    writer.note("run ended");
    writer.close();
    const all = await readEventLog(path);
    assert.equal(all.truncatedTail, false);
    assert.deepEqual(all.badLines, []);
    assert.deepEqual(
      all.records.map((r) =>
        r.type === "event" ? `event:${r.phase}` : r.type === "test" ? `test:${r.phase}` : r.type
      ),
      ["test:begin", "event:open", "event:done", "test:end", "note"],
    );
    const end = all.records[3];
    assert.ok(end.type === "test");
    assert.deepEqual([end.test.name, end.test.verdict, end.test.eventIds], ["sysrq", "FAIL", [1]]);
    const evs = latestEvents(all.records);
    assert.equal(evs.length, 1);
    assert.equal(evs[0].complete, true);
    assert.equal(evs[0].lines.length, lines.length - 1);
    assert.ok(all.records.every((r) => r.v === 1 && r.t === 5));
    // After close: dropped and counted, never thrown (the close rule), and nothing written.
    const size = (await Deno.stat(path)).size;
    writer.note("closed");
    assert.equal(writer.droppedAfterClose, 1);
    assert.equal(writer.written, 5);
    assert.equal((await Deno.stat(path)).size, size);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reader: truncated last line is tolerated, other garbage is counted", () => {
  const good = JSON.stringify({ v: 1, t: 1, type: "note", note: "a" });
  const r = parseEventLog(`${good}\n{"v":1,"t":2,"type":"note","no`);
  assert.equal(r.records.length, 1);
  assert.equal(r.truncatedTail, true);
  assert.deepEqual(r.badLines, []);
  const r2 = parseEventLog(`${good}\nnot json\n{"v":1}\n${good}\n`);
  assert.equal(r2.records.length, 2);
  assert.equal(r2.truncatedTail, false);
  assert.deepEqual(r2.badLines, [2, 3]);
  assert.deepEqual(parseEventLog(""), { records: [], truncatedTail: false, badLines: [] });
});

Deno.test("a writer killed mid-run loses at most the partial last line; reopening appends cleanly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-evlog-crash-" });
  try {
    const path = `${dir}/events.jsonl`;
    const script = `${dir}/writer.ts`;
    const mod = new URL("./event_log.ts", import.meta.url).href;
    // Records of 64 KiB make a kill inside a write likely; each record carries its index.
    await Deno.writeTextFile(
      script,
      `import { EventLogWriter } from ${JSON.stringify(mod)};
const w = EventLogWriter.open(Deno.args[0], { sync: false });
const pad = "x".repeat(64 * 1024);
for (let i = 0; ; i++) w.note(i + ":" + pad);
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--no-lock",
        `--allow-read=${dir}`,
        `--allow-write=${dir}`,
        script,
        path,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Wait until a good number of records are on disk, then kill without warning.
    for (let i = 0; i < 400; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const size = await Deno.stat(path).then((s) => s.size, () => 0);
      if (size > 8 * 64 * 1024) break;
    }
    child.kill("SIGKILL");
    const status = await child.status;
    await child.stderr.cancel();
    assert.equal(status.success, false);

    const text = await Deno.readTextFile(path);
    const r = parseEventLog(text);
    assert.ok(r.records.length >= 8, `only ${r.records.length} records`);
    assert.deepEqual(r.badLines, []);
    // Every complete line is there, in order, with nothing missing before the tail.
    r.records.forEach((rec, i) => {
      assert.ok(rec.type === "note");
      assert.ok(rec.note.startsWith(`${i}:`));
    });
    const complete = text.split("\n").length - 1;
    assert.equal(r.records.length, complete);
    assert.equal(r.truncatedTail, !text.endsWith("\n"));

    // Resume: the next record starts on its own line even after a partial one.
    await Deno.writeTextFile(path, text + '{"v":1,"t":9,"type":"no'); // force a partial tail
    const w = EventLogWriter.open(path);
    w.note("resumed");
    w.close();
    const after = await readEventLog(path);
    assert.equal(after.records.length, r.records.length + 1);
    const last = after.records.at(-1);
    assert.ok(last?.type === "note" && last.note === "resumed");
    assert.equal(after.truncatedTail, false);
    assert.equal(after.badLines.length, 1, "the partial line, now closed by a newline");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
