import assert from "node:assert/strict";
import { writeNewc } from "./cpio.ts";
import { planModules } from "./initramfs.ts";
import { fingerprintOf, generateEd25519 } from "./keys.ts";
import { run } from "../debian/proc.ts";

Deno.test("newc archive: header fields, padding, trailer", () => {
  const a = writeNewc([
    { type: "dir", path: "/etc" },
    { type: "file", path: "/etc/x", data: new TextEncoder().encode("abc") },
    { type: "char", path: "dev/console", major: 5, minor: 1 },
  ]);
  const text = new TextDecoder().decode(a);
  assert.ok(text.startsWith("070701"));
  assert.equal(a.length % 4, 0);
  assert.ok(text.includes("etc/x\0"));
  assert.ok(text.includes("TRAILER!!!\0"));
  // The char device's rdevmajor/minor fields (9th and 10th after the magic) are 5 and 1.
  const i = text.indexOf("dev/console") - 110;
  const fields = text.slice(i + 6, i + 110).match(/.{8}/g)!;
  assert.equal(parseInt(fields[1], 16) & 0o170000, 0o020000);
  assert.equal(parseInt(fields[9], 16), 5);
  assert.equal(parseInt(fields[10], 16), 1);
});

Deno.test("module plan: built-in, dependencies first, absent", () => {
  const dep = [
    "kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz",
    "kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz",
    "kernel/net/core/failover.ko.xz:",
    "kernel/drivers/char/hw_random/virtio-rng.ko.xz:",
  ].join("\n");
  const builtin = "kernel/drivers/virtio/virtio_mmio.ko\n";
  const { plan, load } = planModules(
    ["virtio_mmio", "virtio_net", "virtio_rng", "nope"],
    dep,
    builtin,
  );
  assert.deepEqual(plan.map((p) => p.how), ["builtin", "module", "module", "absent"]);
  assert.deepEqual(load, [
    "kernel/net/core/failover.ko.xz",
    "kernel/drivers/net/net_failover.ko.xz",
    "kernel/drivers/net/virtio_net.ko.xz",
    "kernel/drivers/char/hw_random/virtio-rng.ko.xz",
  ]);
});

Deno.test("generated client key is a valid OpenSSH Ed25519 key", async () => {
  const { privateKey, line } = await generateEd25519("t");
  assert.match(privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
  assert.match(line, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI/);
  assert.match(await fingerprintOf(line), /^SHA256:[A-Za-z0-9+/]{43}$/);
  // Cross-check with OpenSSH (installed when missing): it must derive the same public key.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/k`, privateKey, { mode: 0o600 });
    const out = await run("ssh-keygen", ["-y", "-f", `${dir}/k`]);
    assert.equal(out.stdout.split(" ")[1], line.split(" ")[1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the QMP socket leaves a run directory too deep for a UNIX socket address", async () => {
  const { qmpSocketPath } = await import("./machine.ts");
  const root = await Deno.makeTempDir();
  try {
    assert.deepEqual(await qmpSocketPath(root), { path: `${await Deno.realPath(root)}/qmp.sock` });
    const deep = `${root}/${"d".repeat(60)}/${"e".repeat(60)}`;
    await Deno.mkdir(deep, { recursive: true });
    const { path, tempDir } = await qmpSocketPath(deep);
    assert.ok(new TextEncoder().encode(path).length <= 107, path);
    assert.ok(tempDir && path === `${tempDir}/qmp.sock`);
    assert.ok(!path.startsWith(deep));
    await Deno.remove(tempDir, { recursive: true });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
