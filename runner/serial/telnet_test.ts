// Telnet console: the codec on ser2net's real opening bytes and on hostile input, and live
// consoles (raw and telnet) through a real ser2net serving a pseudo terminal.
import assert from "node:assert/strict";
import fc from "fast-check";
import { HANGUP, openPty, type TtyFd } from "./deno_binding.ts";
import { openTcpConsole } from "./port.ts";
import {
  MAX_SUBNEGOTIATION,
  openTelnetConsole,
  TELNET,
  TELNET_OPTION,
  TelnetCodec,
} from "./telnet.ts";
import { startSer2net } from "../lab/ser2net.ts";
import { freePort } from "../qemu/machine.ts";

const enc = new TextEncoder(), dec = new TextDecoder();
const { IAC, WILL, WONT, DO, DONT, SB, SE } = TELNET;
const { BINARY, ECHO, SGA } = TELNET_OPTION;

/**
 * What ser2net 4.3.11 (Debian 12, `accepter: telnet,...`) sent to a new client, followed by
 * the device's `hello\xff\r\n\x00x` (captured on this machine with a pty as the device).
 */
const SER2NET_TELNET_OPENING = Uint8Array.from([
  0xff,
  0xfb,
  0x03,
  0xff,
  0xfd,
  0x03,
  0xff,
  0xfb,
  0x01,
  0xff,
  0xfe,
  0x01,
  0xff,
  0xfd,
  0x00,
  0xff,
  0xfb,
  0x00,
  ...enc.encode("hello"),
  0xff,
  0xff,
  0x0d,
  0x0a,
  0x00,
  0x78,
]);

Deno.test("telnet codec: ser2net's real opening is answered once, its data decoded exactly", () => {
  const c = new TelnetCodec();
  const offer = c.offer();
  assert.deepEqual([...offer], [IAC, WILL, BINARY, IAC, DO, BINARY, IAC, WILL, SGA, IAC, DO, SGA]);
  const { data, replies } = c.decode(SER2NET_TELNET_OPENING);
  assert.deepEqual([...data], [...enc.encode("hello"), 0xff, 0x0d, 0x0a, 0x00, 0x78]);
  // WILL SGA, DO SGA, DO BINARY, WILL BINARY answer our offer; only WILL ECHO needs a reply.
  assert.deepEqual([...replies], [IAC, DO, ECHO]);
  assert.deepEqual([...c.local].sort(), [BINARY, SGA]);
  assert.deepEqual([...c.remote].sort(), [BINARY, ECHO, SGA]);
  // A second identical negotiation changes nothing and is not answered (no loop).
  assert.deepEqual([...c.decode(SER2NET_TELNET_OPENING.subarray(0, 18)).replies], []);
});

Deno.test("telnet codec: every byte split of ser2net's opening decodes the same", () => {
  for (let cut = 0; cut <= SER2NET_TELNET_OPENING.length; cut++) {
    const c = new TelnetCodec();
    c.offer();
    const a = c.decode(SER2NET_TELNET_OPENING.subarray(0, cut));
    const b = c.decode(SER2NET_TELNET_OPENING.subarray(cut));
    assert.deepEqual([...a.data, ...b.data], [...enc.encode("hello"), 0xff, 13, 10, 0, 0x78]);
    assert.deepEqual([...a.replies, ...b.replies], [IAC, DO, ECHO]);
  }
});

Deno.test("telnet codec: unknown options refused, commands and subnegotiations dropped", () => {
  const c = new TelnetCodec();
  const { data, replies } = c.decode(Uint8Array.from([
    IAC,
    DO,
    44, // COM-PORT-OPTION (RFC 2217): we won't
    IAC,
    WILL,
    24, // TERMINAL-TYPE offered by the server: don't
    IAC,
    241, // NOP
    IAC,
    SB,
    44,
    1,
    IAC,
    IAC,
    0,
    0x25,
    IAC,
    SE, // a subnegotiation with a doubled IAC
    0x41,
    IAC,
    DONT,
    99, // never enabled: no answer
    IAC,
    WONT,
    98, // never enabled: no answer
  ]));
  assert.deepEqual([...data], [0x41]);
  assert.deepEqual([...replies], [IAC, WONT, 44, IAC, DONT, 24]);
  assert.equal(c.commandsDropped, 2);
});

Deno.test("telnet codec: NVT CR NUL before BINARY; 0xFF doubled and bare CR padded on send", () => {
  const c = new TelnetCodec();
  assert.deepEqual([...c.decode(Uint8Array.from([13, 0, 65, 13, 10])).data], [13, 65, 13, 10]);
  assert.deepEqual([...c.encode(Uint8Array.from([0xff, 13, 65, 13, 10, 13]))], [
    0xff,
    0xff,
    13,
    0,
    65,
    13,
    10,
    13,
    0,
  ]);
  c.decode(Uint8Array.from([IAC, DO, BINARY, IAC, WILL, BINARY]));
  assert.deepEqual([...c.decode(Uint8Array.from([13, 0])).data], [13, 0]);
  assert.deepEqual([...c.encode(Uint8Array.from([13, 0xff]))], [13, 0xff, 0xff]);
});

Deno.test("telnet codec: a subnegotiation that never ends is given up after the bound", () => {
  const c = new TelnetCodec();
  const flood = new Uint8Array(MAX_SUBNEGOTIATION + 10).fill(0x61);
  const { data } = c.decode(Uint8Array.from([IAC, SB, ...flood]));
  assert.equal(c.oversizedSubnegotiations, 1);
  assert.equal(data.length, flood.length - MAX_SUBNEGOTIATION - 1);
});

Deno.test("telnet codec: hostile bytes never throw; in binary mode encode then decode is identity", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
      const c = new TelnetCodec();
      for (const ch of chunks) {
        const { data, replies } = c.decode(ch);
        assert.ok(data.length <= ch.length);
        assert.equal(replies.length % 3, 0);
      }
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
      const sender = new TelnetCodec(), receiver = new TelnetCodec();
      sender.decode(Uint8Array.from([IAC, DO, BINARY]));
      receiver.decode(Uint8Array.from([IAC, WILL, BINARY]));
      assert.deepEqual([...receiver.decode(sender.encode(bytes)).data], [...bytes]);
    }),
    { numRuns: 500 },
  );
});

async function readBytes(
  c: { read(): Promise<Uint8Array | null> },
  n: number,
): Promise<Uint8Array> {
  const out: number[] = [];
  while (out.length < n) {
    const b = await c.read();
    if (!b) break;
    out.push(...b);
  }
  return Uint8Array.from(out);
}

async function readMaster(master: TtyFd, want: string): Promise<string> {
  let text = "";
  const buf = new Uint8Array(4096);
  while (!text.includes(want)) {
    const n = await master.read(buf);
    assert.notEqual(n, HANGUP);
    text += dec.decode(buf.subarray(0, n as number));
  }
  return text;
}

Deno.test("ser2net raw and telnet consoles carry a pty's bytes both ways (real ser2net)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-telnet-" });
  const pty = openPty();
  // ser2net opens the slave itself; raw mode on the master side's peer is its business.
  await pty.slave.close();
  const rawPort = freePort(), telnetPort = freePort();
  const server = await startSer2net(dir, [
    { port: rawPort, device: pty.slavePath, baud: 1_500_000, protocol: "raw" },
    { port: telnetPort, device: pty.slavePath, baud: 1_500_000, protocol: "telnet" },
  ]);
  try {
    for (const protocol of ["raw", "telnet"] as const) {
      const port = protocol === "raw" ? rawPort : telnetPort;
      const con = protocol === "raw"
        ? await openTcpConsole({ host: "127.0.0.1", port })
        : await openTelnetConsole({ host: "127.0.0.1", port });
      try {
        // ser2net opens the device when the client connects; give it a moment, then talk.
        await new Promise((r) => setTimeout(r, 300));
        const sent = Uint8Array.from([
          ...enc.encode(`boot ${protocol} `),
          0xff,
          ...enc.encode(" line\r\n"),
        ]);
        await pty.master.write(sent);
        // Every byte arrives once, 0xFF undoubled, no negotiation byte in between.
        assert.deepEqual([...await readBytes(con, sent.length)], [...sent]);
        await con.write(enc.encode(`typed-${protocol}\r`));
        assert.match(
          await readMaster(pty.master, `typed-${protocol}`),
          new RegExp(`typed-${protocol}`),
        );
      } finally {
        await con.close();
      }
      // ser2net releases the device shortly after the client left.
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await server.stop();
    await pty.master.close();
    await Deno.remove(dir, { recursive: true });
  }
});
