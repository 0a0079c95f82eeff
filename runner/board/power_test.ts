// Power adapters of board targets: real `sh -c` command lines, min_off_ms, failures with the
// command's stderr, the manual adapter's refusal (CI, no terminal) and its prompt, none.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { LoadedBoard } from "../../boards/load.ts";
import type { BoardSpec } from "../../boards/schema.ts";
import { InfraError, UserInputError } from "../errors.ts";
import {
  checkPowerUsable,
  CommandPower,
  createPower,
  ManualPower,
  manualRefusal,
  NoPower,
  QmpSocketPower,
} from "./power.ts";

function boardWith(power: BoardSpec["power"]): LoadedBoard {
  return {
    id: "lab-1",
    path: "/labs/boards/lab-1.yaml",
    board: { power } as BoardSpec,
  };
}

const env = (vars: Record<string, string>) => ({ get: (k: string) => vars[k] });

Deno.test("command power: on/off/cycle lines run with sh -c; min_off_ms holds the board off", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = join(dir, "relay.log");
    const notes: string[] = [];
    const p = new CommandPower("lab-1", {
      on: `echo on >> '${log}'`,
      off: `echo off >> '${log}'`,
      min_off_ms: 400,
    }, { note: (l) => notes.push(l) });
    assert.equal(p.kind, "command");
    assert.equal(p.minOffMs, 400);
    await p.on(); // never switched off: no wait
    const t0 = performance.now();
    await p.off();
    await p.on();
    const held = performance.now() - t0;
    assert.ok(held >= 400, `on came ${held} ms after off`);
    await p.cycle();
    assert.equal(await Deno.readTextFile(log), "on\noff\non\noff\non\n");
    assert.ok(notes.some((n) => /keeping lab-1 off \d+ ms more/.test(n)), notes.join("\n"));
    assert.ok(notes.includes(`power on (command: echo on >> '${log}')`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("command power: the board file's cycle line is used when given", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = join(dir, "relay.log");
    const p = new CommandPower("lab-1", {
      on: `echo on >> '${log}'`,
      off: `echo off >> '${log}'`,
      cycle: `echo cycle >> '${log}'`,
    });
    await p.cycle();
    assert.equal(await Deno.readTextFile(log), "cycle\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("command power: a non-zero status is a MISS with the command's first stderr line", async () => {
  const p = new CommandPower("lab-1", {
    on: "echo 'relay: no such outlet 9' >&2; echo second line >&2; exit 3",
    off: "true",
  });
  await assert.rejects(() => p.on(), (err: unknown) => {
    assert.ok(err instanceof InfraError);
    assert.equal(err.verdict, "MISS");
    assert.match(
      err.message,
      /^power on of lab-1 failed: ".*"( \(\d+ characters\))? exited with status 3: relay: no such outlet 9$/,
    );
    assert.match(err.hint, /power\.on line of the board file/);
    return true;
  });
});

Deno.test("manual power: refused before the run under CI=true or without a terminal", async () => {
  const manual = boardWith({ type: "manual", min_off_ms: 2000 });
  assert.equal(manualRefusal(env({ CI: "true" }), true), "CI=true is set");
  assert.equal(manualRefusal(env({}), false), "standard input is not a terminal");
  assert.equal(manualRefusal(env({ CI: "false" }), true), undefined);
  for (
    const [vars, tty, why] of [[{ CI: "true" }, true, /CI=true/], [
      {},
      false,
      /not a terminal/,
    ]] as const
  ) {
    await assert.rejects(() => checkPowerUsable(manual, env(vars), tty), (err: unknown) => {
      assert.ok(err instanceof UserInputError);
      assert.match(err.message, why);
      assert.ok(!err.message.includes("\n"), "one line");
      assert.match(err.hint, /power command/);
      return true;
    });
  }
  await checkPowerUsable(manual, env({}), true);
});

Deno.test("manual power: prompts on the terminal and waits for Enter", async () => {
  const prompts: string[] = [];
  let feed!: ReadableStreamDefaultController<Uint8Array>;
  const input = new ReadableStream<Uint8Array>({ start: (c) => void (feed = c) });
  const p = new ManualPower("rock-3b-8g", 0, { prompt: (t) => prompts.push(t), input });
  let done = false;
  const on = p.on().then(() => (done = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(done, false, "returned before Enter");
  assert.deepEqual(prompts, ["rkhil: switch rock-3b-8g ON, then press Enter: "]);
  feed.enqueue(new TextEncoder().encode("\n"));
  await on;
  feed.close();
  await assert.rejects(() => p.off(), /standard input ended before Enter/);
});

Deno.test("power command lines: programs rkhil does not know and bad shell are refused before the run", async () => {
  await assert.rejects(
    () => checkPowerUsable(boardWith({ type: "command", on: "uhubctl -a on -p 2", off: "true" })),
    (err: unknown) => {
      assert.ok(err instanceof UserInputError);
      assert.match(err.message, /power\.on runs "uhubctl", a program rkhil does not know/);
      assert.match(err.hint, /host_tools\.ts/);
      return true;
    },
  );
  await assert.rejects(
    () => checkPowerUsable(boardWith({ type: "command", on: "true", off: "echo 'unclosed" })),
    /power\.off is not a valid shell command line/,
  );
  // Declared programs and the lab's own scripts by path are fine.
  await checkPowerUsable(
    boardWith({ type: "command", on: "/opt/lab/relay 3 on", off: "sleep 0; echo off" }),
  );
});

Deno.test("none power cannot cycle; qmp without a reachable socket is a MISS naming the socket", async () => {
  const none = createPower(boardWith({ type: "none" }));
  assert.ok(none instanceof NoPower);
  await none.on();
  await none.off();
  await assert.rejects(() => none.cycle(), (err: unknown) => {
    assert.ok(err instanceof InfraError);
    assert.match(err.message, /no power switch \(power.type none\)/);
    return true;
  });
  assert.ok(createPower(boardWith(undefined)) instanceof NoPower);
  assert.throws(() => createPower(boardWith({ type: "qmp" })), UserInputError);
  const dir = await Deno.makeTempDir();
  try {
    const qmp = createPower(boardWith({ type: "qmp", socket: join(dir, "none.sock") }), {
      timeoutMs: 2_000,
    });
    assert.ok(qmp instanceof QmpSocketPower);
    await assert.rejects(() => qmp.on(), (err: unknown) => {
      assert.ok(err instanceof InfraError);
      assert.match(err.message, /power on of lab-1 through QMP .*none\.sock/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
