// BoardDriver from real board files (written by the lab's board-file writer and loaded by
// boards/load.ts): what is refused before the run, the key file and SSH endpoint, the console
// opened before power on and reopened after it closed, a vanished device as "gone".
import assert from "node:assert/strict";
import { join } from "node:path";
import { findBoard, loadBoardFile, type LoadedBoard } from "../../boards/load.ts";
import { UserInputError } from "../errors.ts";
import { openPty } from "../serial/deno_binding.ts";
import { type LabBoardFile, labBoardYaml } from "../lab/board_file.ts";
import { BoardDriver, checkBoardTarget, keyFilePath } from "./target.ts";

const FP = "SHA256:0GUhLmdGjYYkBi6A3VZCgvQJe1Y1x8Yi2Ni3+2Xq0Uw";

async function writeBoard(
  dir: string,
  b: Partial<LabBoardFile>,
  edit: (yaml: string) => string = (y) => y,
): Promise<LoadedBoard> {
  const spec: LabBoardFile = {
    id: "lab-1",
    sshPort: 10022,
    fingerprint: FP,
    keyFile: "keys/lab",
    console: { type: "serial", device: "/dev/ttyUSB0" } as LabBoardFile["console"],
    power: { type: "command", on: "true", off: "true" },
    ...b,
  };
  const path = join(dir, `${spec.id}.yaml`);
  await Deno.writeTextFile(path, edit(labBoardYaml(spec)));
  return { id: spec.id, path, board: await loadBoardFile(path) };
}

const noEnv = { get: () => undefined };

Deno.test("board target: key_file resolves against the board file's directory; endpoint carries the pinned key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "keys"));
    await Deno.writeTextFile(join(dir, "keys/lab"), "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    const loaded = await writeBoard(dir, {});
    assert.equal(keyFilePath(loaded), join(dir, "keys/lab"));
    const d = await BoardDriver.create(loaded, { runDir: join(dir, "run"), env: noEnv });
    try {
      assert.equal(d.kind, "board");
      assert.equal(d.name, "lab-1");
      assert.deepEqual([...d.capabilities], [
        "kernel-introspection",
        "probe-module",
        "cpu-workload",
      ]);
      assert.equal(d.power.kind, "command");
      const ep = await d.sshEndpoint();
      assert.equal(ep?.host, "127.0.0.1");
      assert.equal(ep?.port, 10022);
      assert.equal(ep?.user, "root");
      assert.equal(ep?.hostKeyFingerprint, FP);
      assert.equal(
        new TextDecoder().decode(ep?.privateKey as Uint8Array),
        "-----BEGIN OPENSSH PRIVATE KEY-----\n",
      );
      assert.equal(d.consoleShellOptions, undefined);
    } finally {
      await d.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("board target: refused before the run, one line each, key text never shown", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "keys"));
    await Deno.writeTextFile(join(dir, "keys/lab"), "PRIVATE-KEY-TEXT");
    const cases: [
      Parameters<typeof writeBoard>[1],
      ((y: string) => string) | undefined,
      RegExp,
      RegExp,
    ][] = [
      [
        {},
        (y) => y.replace(/ {2}host_key_fingerprint: .*\n/, ""),
        /host_key_fingerprint is required/,
        /ssh-keyscan -t ed25519 127\.0\.0\.1 \| ssh-keygen -lf -/,
      ],
      [
        {},
        (y) => y.replace(/ {2}key_file: .*\n/, ""),
        /ssh\.key_file is required/,
        /key_file: PATH/,
      ],
      [
        { keyFile: "keys/missing" },
        undefined,
        /keys\/missing is not a readable file/,
        /relative paths start/,
      ],
      [{ keyFile: "keys" }, undefined, /is not a readable file/, /ssh\.key_file/],
      [
        {},
        (y) =>
          y.replace(
            "  baud: 1500000\n",
            "  baud: 1500000\n  login: { user: root, password_env: LAB_PW_UNSET }\n",
          ),
        /\$LAB_PW_UNSET, which is not set/,
        /set LAB_PW_UNSET/,
      ],
      [
        {},
        (y) => y.replace(/power:[\s\S]*?(?=capabilities:)/, "power:\n  type: manual\n"),
        /power.type manual/,
        /power command/,
      ],
      [
        {},
        (y) =>
          y.replace(/console:[\s\S]*?(?=ssh:)/, "console:\n  type: qemu-pty\n").replace(
            /power:[\s\S]*?(?=capabilities:)/,
            "power:\n  type: qmp\n",
          ),
        /embedded QEMU target/,
        /rkhil run/,
      ],
    ];
    for (const [b, edit, message, hint] of cases) {
      const loaded = await writeBoard(dir, b, edit);
      await assert.rejects(
        () => checkBoardTarget(loaded, { env: { get: (k) => (k === "CI" ? "true" : undefined) } }),
        (err: unknown) => {
          assert.ok(err instanceof UserInputError, String(err));
          assert.match(err.message, message);
          assert.match(err.hint, hint);
          assert.ok(!err.message.includes("\n"), err.message);
          assert.ok(!`${err.message} ${err.hint}`.includes("PRIVATE-KEY-TEXT"));
          return true;
        },
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("board target: the shipped rock-3b-8g needs its pinned key before it can run", async () => {
  const rock = await findBoard("rock-3b-8g");
  await assert.rejects(
    () => checkBoardTarget(rock, { env: noEnv, stdinIsTerminal: true }),
    /ssh\.host_key_fingerprint is required to run a board/,
  );
});

Deno.test("board target: console opened before power on, reopened after close; a vanished device is gone", async () => {
  const dir = await Deno.makeTempDir();
  const pty = openPty();
  try {
    await Deno.mkdir(join(dir, "keys"));
    await Deno.writeTextFile(join(dir, "keys/lab"), "k");
    const loaded = await writeBoard(dir, { console: { type: "serial", device: pty.slavePath } });
    const d = await BoardDriver.create(loaded, { runDir: join(dir, "run"), env: noEnv });
    try {
      const a = await d.openConsole();
      assert.ok(a);
      assert.equal(await d.openConsole(), a, "an open console is reused");
      await pty.master.write(new TextEncoder().encode("rkhil-qemu# "));
      await d.waitShell(a.recorder, 0, 5_000);
      await a.stream.close();
      const b = await d.openConsole();
      assert.ok(b && b !== a, "a closed console is reopened");
      assert.ok(await Deno.stat(join(dir, "run/console.1.raw")));
      assert.equal(d.gone(), undefined);
      // The device goes away (the UART is unplugged; here the pty's master closes).
      await pty.master.close();
      const why = await Promise.race([
        d.goneSignal,
        new Promise<string>((r) => setTimeout(() => r("timeout"), 5_000)),
      ]);
      assert.match(why, /^console .* lost: /);
      assert.equal(d.gone(), why);
    } finally {
      await d.close();
    }
  } finally {
    await pty.master.close().catch(() => {});
    await pty.slave.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("board target: what the board printed before the console listened is in the transcript", async () => {
  const dir = await Deno.makeTempDir();
  // A console server whose board is already talking: bytes arrive at once on connect, during
  // the opener's settle time, before the recorder exists.
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (server.addr as Deno.NetAddr).port;
  const serving = (async () => {
    const conn = await server.accept();
    await conn.write(new TextEncoder().encode("DDR Version 1.18 20230907\r\nearly-2\r\n"));
    await new Promise((r) => setTimeout(r, 600));
    await conn.write(new TextEncoder().encode("late\r\n"));
    return conn;
  })();
  try {
    await Deno.mkdir(join(dir, "keys"));
    await Deno.writeTextFile(join(dir, "keys/lab"), "k");
    const loaded = await writeBoard(dir, { console: { type: "tcp", port, protocol: "raw" } });
    const d = await BoardDriver.create(loaded, { runDir: join(dir, "run"), env: noEnv });
    try {
      const con = await d.openConsole();
      await con!.recorder.waitFor("late", { timeoutMs: 5_000, owner: "test" });
      assert.match(con!.recorder.text, /^DDR Version 1\.18 20230907\r\nearly-2\r\nlate\r\n$/);
    } finally {
      await d.close();
      (await serving).close();
    }
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
