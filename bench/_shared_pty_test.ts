import assert from "node:assert/strict";
import { openPty } from "../runner/serial/deno_binding.ts";
import { openSerialConsole } from "../runner/serial/port.ts";
import { InfraError } from "../runner/errors.ts";
import { SharedPtyConsole } from "./_shared_pty.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function until(pred: () => boolean, what: string): Promise<void> {
  const end = performance.now() + 5_000;
  while (!pred()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("shared pty: detached, every byte goes to the other reader; attached, to rkhil", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-shared-pty-" });
  const pty = openPty();
  const con = await SharedPtyConsole.open(pty.slavePath, `${dir}/console.raw`);
  let seen = "";
  con.onData((c) => seen += dec.decode(c));
  try {
    await pty.master.write(enc.encode("one\n"));
    await until(() => seen.includes("one\n"), "one");

    await con.detach();
    assert.equal(con.attached, false);
    await assert.rejects(con.write(enc.encode("x")), InfraError);
    // The other tool opens the pty while rkhil is detached: it gets all of it.
    const other = await openSerialConsole({ path: pty.slavePath, lock: false });
    let theirs = "";
    other.onData((c) => theirs += dec.decode(c));
    const block = "two ".repeat(2000) + "\n";
    await pty.master.write(enc.encode(block));
    await until(() => theirs.length >= block.length, "the other reader's bytes");
    assert.equal(theirs, block);
    await other.close();

    await con.attach();
    await pty.master.write(enc.encode("three\n"));
    await until(() => seen.includes("three\n"), "three");
    assert.equal(seen, "one\nthree\n", "rkhil saw nothing while detached");
    assert.equal(con.closed, false);
  } finally {
    await con.close();
    await pty.master.close();
    await pty.slave.close();
  }
  // The capture holds what rkhil read, in order.
  assert.equal(await Deno.readTextFile(`${dir}/console.raw`), "one\nthree\n");
  await Deno.remove(dir, { recursive: true });
});
