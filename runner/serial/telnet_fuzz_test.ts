// Fuzzing of the telnet codec (issue 13) beyond telnet_test.ts (hostile chunks never throw;
// binary encode/decode identity on small inputs): 10 MB streams, a round trip in binary and
// in NVT mode, and a subnegotiation flood that must stay bounded.
import assert from "node:assert/strict";
import fc from "fast-check";
import { MAX_SUBNEGOTIATION, TELNET, TELNET_OPTION, TelnetCodec } from "./telnet.ts";

const MB10 = 10 << 20;
const { IAC, DO, WILL, SB } = TELNET;

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

/** Decode `stream` in chunks of `size`; the data bytes, the replies' total length. */
function decodeAll(c: TelnetCodec, stream: Uint8Array, size: number) {
  const parts: Uint8Array[] = [];
  let replies = 0;
  let n = 0;
  for (let i = 0; i < stream.length; i += size) {
    const d = c.decode(stream.subarray(i, i + size));
    parts.push(d.data);
    n += d.data.length;
    replies += d.replies.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return { data: out, replies };
}

Deno.test("fuzz: telnet 10 MB of random bytes in binary mode round-trip in 4 093-byte chunks", () => {
  const bytes = randomBytes(MB10);
  const sender = new TelnetCodec(), receiver = new TelnetCodec();
  sender.decode(Uint8Array.from([IAC, DO, TELNET_OPTION.BINARY]));
  receiver.decode(Uint8Array.from([IAC, WILL, TELNET_OPTION.BINARY]));
  const wire = sender.encode(bytes);
  assert.ok(wire.length >= bytes.length && wire.length <= 2 * bytes.length);
  const { data } = decodeAll(receiver, wire, 4093);
  assert.deepEqual(data, bytes);
});

Deno.test("fuzz: telnet NVT mode (no BINARY): any bytes survive encode then decode", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 17 }), (b, size) => {
      const sender = new TelnetCodec(), receiver = new TelnetCodec();
      const { data } = decodeAll(receiver, sender.encode(b), size);
      assert.deepEqual([...data], [...b]);
    }),
    { numRuns: 500 },
  );
});

Deno.test("fuzz: telnet 10 MB of hostile bytes: no throw, data and replies bounded", () => {
  // Random bytes, then an endless subnegotiation (IAC SB with no IAC SE), then IAC floods.
  const rnd = randomBytes(MB10);
  const c = new TelnetCodec();
  const a = decodeAll(c, rnd, 65536);
  assert.ok(a.data.length <= rnd.length && a.replies <= rnd.length);
  const sb = new Uint8Array(MB10).fill(0x41);
  sb.set([IAC, SB, 24]);
  const s = decodeAll(new TelnetCodec(), sb, 65536);
  // Given up after MAX_SUBNEGOTIATION bytes: the rest is data again, never buffered forever.
  assert.ok(s.data.length >= MB10 - MAX_SUBNEGOTIATION - 3, `${s.data.length}`);
  const iac = decodeAll(new TelnetCodec(), new Uint8Array(MB10).fill(IAC), 65536);
  assert.equal(iac.data.length, MB10 / 2);
});
