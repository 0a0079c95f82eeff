// Board consoles from board files: a serial device (a real pty), one that does not exist, one
// that is busy (locked by another opener), a regular file; a TCP console that refuses; ser2net
// raw and telnet through the board file's console block.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { LoadedBoard } from "../../boards/load.ts";
import type { BoardSpec, ConsoleSpec } from "../../boards/schema.ts";
import { InfraError, UserInputError } from "../errors.ts";
import { openPty } from "../serial/deno_binding.ts";
import { openSerialConsole } from "../serial/port.ts";
import { freePort } from "../qemu/machine.ts";
import { startSer2net } from "../lab/ser2net.ts";
import { openBoardConsole } from "./console.ts";

const enc = new TextEncoder(), dec = new TextDecoder();

function board(console: ConsoleSpec): LoadedBoard {
  return { id: "lab-1", path: "/labs/lab-1.yaml", board: { console } as BoardSpec };
}

async function readText(c: { read(): Promise<Uint8Array | null> }, want: string): Promise<string> {
  let text = "";
  while (!text.includes(want)) {
    const b = await c.read();
    if (!b) break;
    text += dec.decode(b);
  }
  return text;
}

Deno.test("board console: a serial device that does not exist says so in one line", async () => {
  await assert.rejects(
    () => openBoardConsole(board({ type: "serial", device: "/dev/ttyUSB97", baud: 1500000 })),
    (err: unknown) => {
      assert.ok(err instanceof InfraError);
      assert.equal(err.verdict, "MISS");
      assert.equal(err.message, 'serial console "/dev/ttyUSB97" of board lab-1 does not exist');
      assert.match(err.hint, /plug in the USB UART/);
      return true;
    },
  );
});

Deno.test("board console: a busy serial device (locked by another opener) says so in one line", async () => {
  const pty = openPty();
  const holder = await openSerialConsole({ path: pty.slavePath, lock: true });
  try {
    await assert.rejects(
      () => openBoardConsole(board({ type: "serial", device: pty.slavePath, baud: 1500000 })),
      (err: unknown) => {
        assert.ok(err instanceof InfraError, String(err));
        assert.equal(
          err.message,
          `serial console "${pty.slavePath}" of board lab-1 is busy: another process holds it`,
        );
        assert.match(err.hint, /fuser -v/);
        return true;
      },
    );
  } finally {
    await holder.close();
    await pty.master.close();
    await pty.slave.close();
  }
});

Deno.test("board console: a regular file named as the device is bad input", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f = join(dir, "ttyUSB0");
    await Deno.writeTextFile(f, "");
    await assert.rejects(
      () => openBoardConsole(board({ type: "serial", device: f, baud: 115200 })),
      (err: unknown) => err instanceof UserInputError && /is a regular file/.test(err.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("board console: a serial device captures from the first byte", async () => {
  const dir = await Deno.makeTempDir();
  const pty = openPty();
  try {
    const con = await openBoardConsole(
      board({ type: "serial", device: pty.slavePath, baud: 1500000 }),
      { logPath: join(dir, "console.raw") },
    );
    try {
      await pty.master.write(enc.encode("DDR Version 1.18\r\n"));
      assert.match(await readText(con, "1.18\r\n"), /^DDR Version 1\.18\r\n$/);
    } finally {
      await con.close();
    }
    assert.equal(await Deno.readTextFile(join(dir, "console.raw")), "DDR Version 1.18\r\n");
  } finally {
    await pty.master.close();
    await pty.slave.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("board console: a TCP console nobody serves is a MISS naming host and port", async () => {
  const port = freePort();
  for (const protocol of ["raw", "telnet"] as const) {
    await assert.rejects(
      () =>
        openBoardConsole(board({ type: "tcp", host: "127.0.0.1", port, protocol }), {
          timeoutMs: 2_000,
        }),
      (err: unknown) => {
        assert.ok(err instanceof InfraError);
        assert.match(
          err.message,
          new RegExp(`^${protocol} console 127\\.0\\.0\\.1:${port} of board lab-1: `),
        );
        assert.match(err.hint, /ser2net/);
        return true;
      },
    );
  }
});

Deno.test("board console: ser2net raw and telnet through the board file's console block", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-bcon-" });
  const pty = openPty();
  await pty.slave.close();
  const raw = freePort(), telnet = freePort();
  const server = await startSer2net(dir, [
    { port: raw, device: pty.slavePath, baud: 1500000, protocol: "raw" },
    { port: telnet, device: pty.slavePath, baud: 1500000, protocol: "telnet" },
  ]);
  try {
    for (const [protocol, port] of [["raw", raw], ["telnet", telnet]] as const) {
      const con = await openBoardConsole(
        board({ type: "tcp", host: "127.0.0.1", port, protocol }),
        { logPath: join(dir, `${protocol}.raw`) },
      );
      try {
        await pty.master.write(enc.encode(`U-Boot via ${protocol}\r\n`));
        assert.match(await readText(con, "\r\n"), new RegExp(`U-Boot via ${protocol}\\r\\n$`));
      } finally {
        await con.close();
      }
      // Opening again right away: ser2net still holds the device for a moment and says so;
      // the opener waits that out instead of failing.
      const again = await openBoardConsole(
        board({ type: "tcp", host: "127.0.0.1", port, protocol }),
        { logPath: join(dir, `${protocol}.2.raw`) },
      );
      await again.close();
    }
  } finally {
    await server.stop();
    await pty.master.close();
    await Deno.remove(dir, { recursive: true });
  }
});
