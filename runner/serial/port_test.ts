// Tests of the consoles: serial on a real pty, raw TCP against a local server, capture, pacing.
import assert from "node:assert/strict";
import { InfraError } from "../errors.ts";
import { HANGUP, openPty } from "./deno_binding.ts";
import { openSerialConsole, openTcpConsole, TtyConsole } from "./port.ts";

const enc = new TextEncoder(), dec = new TextDecoder();

async function readUntil(
  c: { read(): Promise<Uint8Array | null> },
  want: number,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  while (n < want) {
    const b = await c.read();
    if (!b) break;
    parts.push(b);
    n += b.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

Deno.test("serial console: capture from the first byte with timestamps; tx not logged", async () => {
  const dir = await Deno.makeTempDir();
  const pty = openPty();
  // Bytes already waiting before the console opens are kept. (They went through the line
  // discipline's settings of that moment: a fresh pty in cooked mode turns CR into LF.)
  await pty.master.write(enc.encode("U-Boot 2024.01\n\n"));
  const con = await openSerialConsole({ path: pty.slavePath, logPath: `${dir}/console.log` });
  try {
    const seen: number[] = [];
    con.onData((c, t) => seen.push(c.length, t));
    await pty.master.write(new Uint8Array([0, 1, 2, 0xff, 0x1b, 0x5b]));
    const got = await readUntil(con, 16 + 6);
    assert.equal(dec.decode(got.subarray(0, 16)), "U-Boot 2024.01\n\n");
    assert.deepEqual([...got.subarray(16)], [0, 1, 2, 0xff, 0x1b, 0x5b]);
    await con.write(enc.encode("secret-password\n"));
    // The fresh pty echoed the pre-open bytes (cooked mode); skip them.
    let seenAtMaster = "";
    const buf = new Uint8Array(256);
    while (!seenAtMaster.endsWith("secret-password\n")) {
      const n = await pty.master.read(buf);
      assert.notEqual(n, HANGUP);
      seenAtMaster += dec.decode(buf.subarray(0, n as number));
    }
  } finally {
    await con.close();
    await pty.master.close();
    await pty.slave.close();
  }
  const raw = await Deno.readFile(`${dir}/console.log`);
  assert.equal(raw.length, 22);
  assert.equal(dec.decode(raw.subarray(0, 16)), "U-Boot 2024.01\n\n");
  const idx = (await Deno.readTextFile(`${dir}/console.log.idx.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l));
  const chunks = idx.filter((e) => "off" in e);
  assert.equal(chunks[0].off, 0);
  assert.equal(chunks.reduce((s, e) => s + e.len, 0), 22);
  assert.ok(chunks.every((e) => e.t > 1.6e12));
  assert.ok(idx.some((e) => e.tx === 16));
  assert.ok(idx.at(-1).event === "closed");
  assert.ok(!(await Deno.readTextFile(`${dir}/console.log.idx.jsonl`)).includes("secret"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("serial console: transmit pacing per character", async () => {
  const pty = openPty();
  const con = await openSerialConsole({ path: pty.slavePath, txChunkSize: 1, txDelayMs: 5 });
  try {
    const t0 = performance.now();
    await con.write(enc.encode("0123456789"));
    const dt = performance.now() - t0;
    assert.ok(dt >= 45, `10 chars at 5 ms each took ${dt} ms`);
    const got = await readUntilTty(pty.master, 10);
    assert.equal(dec.decode(got), "0123456789");
  } finally {
    await con.close();
    await pty.master.close();
    await pty.slave.close();
  }
});

async function readUntilTty(
  tty: { read(b: Uint8Array, o?: number, l?: number): Promise<number | typeof HANGUP> },
  want: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(want);
  let got = 0;
  while (got < want) {
    const n = await tty.read(out, got, want - got);
    if (n === HANGUP) break;
    got += n;
  }
  return out.subarray(0, got);
}

Deno.test("serial console: open errors are InfraErrors with a hint", async () => {
  await assert.rejects(
    openSerialConsole({ path: "/dev/ttyUSB-rkhil-missing" }),
    (e: unknown) => e instanceof InfraError && /plugged in/.test(e.hint),
  );
});

Deno.test("serial console: QEMU vanishing ends the console with an InfraError", async () => {
  const pty = openPty();
  const con = await openSerialConsole({ path: pty.slavePath });
  const ended = new Promise<InfraError | undefined>((r) => con.onClose(r));
  await pty.master.close();
  const err = await ended;
  assert.ok(err instanceof InfraError);
  assert.equal(err.verdict, "MISS");
  await assert.rejects(con.read(), InfraError);
  await con.close();
  await pty.slave.close();
});

Deno.test("tty console: a pty master as a console", async () => {
  const pty = openPty();
  const con = new TtyConsole(pty.master);
  await pty.slave.write(enc.encode("hello"));
  assert.equal(dec.decode(await readUntil(con, 5)), "hello");
  await con.close();
  await pty.slave.close();
});

Deno.test("tcp console: raw bytes both ways against a local server, then server close", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  const N = 300_000;
  const blob = new Uint8Array(N).map((_, i) => (i * 131 + (i >> 8)) & 0xff);
  const server = (async () => {
    const conn = await listener.accept();
    let off = 0;
    while (off < N) off += await conn.write(blob.subarray(off));
    // Echo back what the client sends, then hang up.
    const got = new Uint8Array(1000);
    let n = 0;
    while (n < 1000) {
      const r = await conn.read(got.subarray(n));
      if (r === null) break;
      n += r;
    }
    let o = 0;
    while (o < n) o += await conn.write(got.subarray(o, n));
    conn.close();
  })();
  const dir = await Deno.makeTempDir();
  const con = await openTcpConsole({ host: "127.0.0.1", port, logPath: `${dir}/tcp.log` });
  try {
    const got = await readUntil(con, N);
    assert.deepEqual(got, blob);
    const out = new Uint8Array(1000).map((_, i) => 255 - (i & 0xff));
    const ended = new Promise<InfraError | undefined>((r) => con.onClose(r));
    await con.write(out);
    assert.deepEqual(await readUntil(con, 1000), out);
    const err = await ended;
    assert.ok(err instanceof InfraError && /closed by the server/.test(err.message));
    await server;
    assert.equal((await Deno.stat(`${dir}/tcp.log`)).size, N + 1000);
  } finally {
    await con.close();
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tcp console: refused connection is an InfraError", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  await assert.rejects(
    openTcpConsole({ host: "127.0.0.1", port }),
    (e: unknown) => e instanceof InfraError && /ser2net/.test(e.hint),
  );
});
