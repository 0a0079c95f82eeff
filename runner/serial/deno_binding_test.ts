// Tests of the Deno serialport binding against real pseudo terminals (openpty through FFI).
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { SerialPortStream } from "@serialport/stream";
import {
  DenoSerialBinding,
  HANGUP,
  listPorts,
  openPty,
  type PtyPair,
  TermiosFlags,
  type TtyFd,
} from "./deno_binding.ts";

async function withPty(fn: (pty: PtyPair) => Promise<void>): Promise<void> {
  const pty = openPty();
  try {
    await fn(pty);
  } finally {
    await pty.master.close();
    await pty.slave.close();
  }
}

function pattern(n: number, seed: number): Uint8Array {
  // Every byte value, including NUL, XON/XOFF, Ctrl-C and 0xff, in a non-repeating order.
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function readExactly(tty: TtyFd, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await tty.read(out, got, Math.min(65536, n - got));
    if (r === HANGUP) throw new Error(`hang-up after ${got} bytes`);
    got += r;
  }
  return out;
}

function openStream(path: string, baudRate = 1_500_000): Promise<SerialPortStream> {
  return new Promise((resolve, reject) => {
    const s = new SerialPortStream({ binding: DenoSerialBinding, path, baudRate }, (err) => {
      if (err) reject(err);
      else resolve(s);
    });
  });
}

function closeStream(s: SerialPortStream): Promise<void> {
  return new Promise((resolve) => {
    if (!s.isOpen) return resolve();
    s.close(() => resolve());
  });
}

Deno.test("binding: 1500000 baud raw 8N1 is set and reads back through tcgetattr", async () => {
  await withPty(async (pty) => {
    const port = await DenoSerialBinding.open({ path: pty.slavePath, baudRate: 1_500_000 });
    try {
      const t = port.tty.termios();
      const F = TermiosFlags;
      assert.equal(t.inputSpeed, 1_500_000);
      assert.equal(t.outputSpeed, 1_500_000);
      assert.equal(t.kernelOutputSpeed, 1_500_000);
      assert.equal(t.cflag & F.CSIZE, F.CS8);
      assert.equal(t.cflag & (F.PARENB | F.CSTOPB | F.CRTSCTS), 0);
      assert.equal(t.lflag & (F.ICANON | F.ECHO | F.ISIG | F.IEXTEN), 0);
      assert.equal(t.oflag & F.OPOST, 0);
      assert.equal(t.iflag & (F.ICRNL | F.IXON | F.IXOFF), 0);
      assert.equal(t.vmin, 1);
      assert.equal(t.vtime, 0);
      assert.deepEqual(await port.getBaudRate(), { baudRate: 1_500_000 });
      for (const rate of [115200, 2_000_000, 3_000_000, 4_000_000]) {
        await port.update({ baudRate: rate });
        assert.equal(port.tty.termios().outputSpeed, rate);
      }
      // A rate without a Bnnnn code goes through TCSETS2/BOTHER.
      await port.update({ baudRate: 1_234_567 });
      assert.deepEqual(await port.getBaudRate(), { baudRate: 1_234_567 });
      await assert.rejects(port.update({ baudRate: 0 }));
      // Modem lines: a pty has none; set() is accepted and get() reports false.
      await port.set({ dtr: true, rts: true });
      assert.deepEqual(await port.get(), { cts: false, dsr: false, dcd: false });
      await port.flush();
    } finally {
      await port.close();
    }
  });
});

Deno.test("binding: other framings (7E2, rtscts) reach the kernel; bad parity is refused", async () => {
  await withPty(async (pty) => {
    const F = TermiosFlags;
    const port = await DenoSerialBinding.open({
      path: pty.slavePath,
      baudRate: 115200,
      dataBits: 7,
      parity: "even",
      stopBits: 2,
      rtscts: true,
    });
    const t = port.tty.termios();
    await port.close();
    // Linux pseudo terminals force CS8 without parity (drivers/tty/pty.c, pty_set_termios);
    // stop bits and flow control are kept, so those prove the options reached the kernel.
    assert.ok(t.cflag & F.CSTOPB);
    assert.ok(t.cflag & F.CRTSCTS);
    assert.equal(t.cflag & F.CSIZE, F.CS8);
    await assert.rejects(
      DenoSerialBinding.open({ path: pty.slavePath, baudRate: 9600, parity: "bogus" }),
      /unsupported parity/,
    );
  });
});

Deno.test("binding: lock refuses a second open; missing device is ENOENT", async () => {
  await withPty(async (pty) => {
    const a = await DenoSerialBinding.open({ path: pty.slavePath, baudRate: 115200 });
    try {
      await assert.rejects(
        DenoSerialBinding.open({ path: pty.slavePath, baudRate: 115200 }),
        /locked by another process/,
      );
      const b = await DenoSerialBinding.open({
        path: pty.slavePath,
        baudRate: 115200,
        lock: false,
      });
      await b.close();
    } finally {
      await a.close();
    }
  });
  await assert.rejects(
    DenoSerialBinding.open({ path: "/dev/does-not-exist-rkhil", baudRate: 115200 }),
    (e: Error & { code?: string }) => e.code === "ENOENT",
  );
});

Deno.test("binding: 1 MiB each way at once through SerialPortStream, zero loss", async () => {
  await withPty(async (pty) => {
    const N = 1 << 20;
    const toDevice = pattern(N, 7), fromDevice = pattern(N, 11);
    const port = await openStream(pty.slavePath);
    try {
      const received: Buffer[] = [];
      let got = 0;
      const allIn = new Promise<void>((resolve) => {
        port.on("data", (b: Buffer) => {
          received.push(b);
          got += b.length;
          if (got >= N) resolve();
        });
      });
      const masterReads = readExactly(pty.master, N);
      const masterWrites = pty.master.write(fromDevice);
      await new Promise<void>((resolve, reject) =>
        port.write(Buffer.from(toDevice), (e) => e ? reject(e) : resolve())
      );
      const [atMaster] = await Promise.all([masterReads, masterWrites, allIn]);
      assert.equal(got, N);
      assert.equal(sha(atMaster), sha(toDevice));
      assert.equal(sha(Buffer.concat(received)), sha(fromDevice));
    } finally {
      await closeStream(port);
    }
  });
});

Deno.test("binding: close while a read is pending rejects it as canceled", async () => {
  await withPty(async (pty) => {
    const port = await DenoSerialBinding.open({ path: pty.slavePath, baudRate: 1_500_000 });
    const pending = port.read(Buffer.alloc(64), 0, 64);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    await port.close();
    await assert.rejects(pending, (e: Error & { canceled?: boolean }) => e.canceled === true);
    assert.ok(performance.now() - t0 < 1000);
    assert.equal(port.isOpen, false);
    await assert.rejects(port.close(), /not open/);
    // The device was released: bytes written now are not swallowed by a stale reader.
    const again = await DenoSerialBinding.open({ path: pty.slavePath, baudRate: 1_500_000 });
    await pty.master.write(new TextEncoder().encode("x"));
    const r = await again.read(Buffer.alloc(8), 0, 8);
    assert.equal(r.bytesRead, 1);
    await again.close();
  });
});

Deno.test("binding: close while a write waits on a full buffer rejects it as canceled", async () => {
  await withPty(async (pty) => {
    const port = await DenoSerialBinding.open({ path: pty.slavePath, baudRate: 1_500_000 });
    // Nobody reads the master: the pty buffer fills and the write waits for POLLOUT.
    const pending = port.write(Buffer.from(pattern(1 << 20, 5)));
    await new Promise((r) => setTimeout(r, 50));
    await port.close();
    await assert.rejects(pending, (e: Error & { canceled?: boolean }) => e.canceled === true);
  });
});

Deno.test("binding: the stream survives close with a pending read (no error event)", async () => {
  await withPty(async (pty) => {
    const port = await openStream(pty.slavePath);
    const errors: Error[] = [];
    port.on("error", (e: Error) => errors.push(e));
    port.on("data", () => {});
    await new Promise((r) => setTimeout(r, 30));
    await closeStream(port);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(errors, []);
  });
});

Deno.test("binding: the other end vanishing is a disconnect, not a crash", async () => {
  const pty = openPty();
  const port = await openStream(pty.slavePath);
  const closed = new Promise<Error | null>((resolve) => port.on("close", resolve));
  const data: Buffer[] = [];
  port.on("data", (b: Buffer) => data.push(b));
  port.on("error", () => {});
  await pty.master.write(new TextEncoder().encode("last words"));
  await new Promise((r) => setTimeout(r, 50));
  await pty.master.close(); // QEMU died
  const err = await closed;
  assert.ok(err && (err as Error & { disconnected?: boolean }).disconnected === true);
  assert.equal(Buffer.concat(data).toString(), "last words");
  await pty.slave.close();
});

Deno.test("binding: master side sees HANGUP when every slave descriptor closed", async () => {
  const pty = openPty();
  const pending = pty.master.read(new Uint8Array(16));
  await pty.slave.close();
  assert.equal(await pending, HANGUP);
  await pty.master.close();
});

Deno.test("binding: writes to a peer that closed reject with disconnect", async () => {
  const pty = openPty();
  const port = await DenoSerialBinding.open({ path: pty.slavePath, baudRate: 115200 });
  await pty.master.close();
  await assert.rejects(
    port.write(Buffer.from(pattern(1 << 16, 3))),
    (e: Error & { disconnect?: boolean }) => e.disconnect === true,
  );
  await port.close();
  await pty.slave.close();
});

Deno.test("binding: every byte value and bursts of garbage pass unchanged", async () => {
  await withPty(async (pty) => {
    const port = await DenoSerialBinding.open({ path: pty.slavePath, baudRate: 1_500_000 });
    try {
      const all = new Uint8Array(256 * 4).map((_, i) => i & 0xff);
      await port.write(Buffer.from(all));
      assert.deepEqual(await readExactly(pty.master, all.length), all);
      const garbage = pattern(200_000, 99);
      const w = pty.master.write(garbage);
      const buf = Buffer.alloc(garbage.length);
      let got = 0;
      while (got < garbage.length) {
        got += (await port.read(buf, got, Math.min(4096, garbage.length - got))).bytesRead;
      }
      await w;
      assert.equal(sha(buf), sha(garbage));
    } finally {
      await port.close();
    }
  });
});

Deno.test("binding: list() returns well-formed entries", async () => {
  const ports = await listPorts();
  for (const p of ports) {
    assert.match(p.path, /^\/dev\/tty(USB|ACM|S|AMA)\d+$/);
  }
  assert.deepEqual(await DenoSerialBinding.list(), ports);
});

Deno.test("binding: close wakes a pending read; reads and writes after close are counted", async () => {
  const pty = openPty();
  const buf = new Uint8Array(64);
  const pending = pty.slave.read(buf).then(() => "read", (e) => e.canceled ? "canceled" : e);
  await new Promise((r) => setTimeout(r, 20));
  await pty.slave.close();
  assert.equal(await pending, "canceled");
  // Data the other side sends after close is never read.
  await pty.master.write(new TextEncoder().encode("late"));
  await assert.rejects(pty.slave.read(buf), (e: { canceled?: boolean }) => e.canceled === true);
  await assert.rejects(
    pty.slave.write(new Uint8Array([1])),
    (e: { canceled?: boolean }) => e.canceled === true,
  );
  assert.equal(pty.slave.droppedAfterClose, 3);
  await pty.master.close();
});
