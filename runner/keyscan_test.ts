// Tests of the key-material scanner on real key formats (ssh2, node:crypto, dropbearkey, an
// initramfs-style cpio, gzip) and on hostile input.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import ssh2 from "ssh2";
import { ensureHostTools } from "./debian/host_tools.ts";
import { run } from "./debian/proc.ts";
import { writeNewc } from "./qemu/cpio.ts";
import { auditTree, cpioMembers, findKeyMaterial, privacyBreaches } from "./keyscan.ts";

await ensureHostTools(["dropbearkey"]);

const enc = new TextEncoder();
const kinds = async (b: Uint8Array) =>
  (await findKeyMaterial(b)).map((f) => `${f.kind}:${f.detail}@${f.where}`);

async function gzip(b: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([b as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** A dropbear key file made by dropbearkey, and its public blob (wire format). */
async function dropbearKey(type: string): Promise<{ priv: Uint8Array; pubBlob: Uint8Array }> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/k`;
    await run("dropbearkey", ["-t", type, "-f", path], { owner: "dropbearkey" });
    const pub = await run("dropbearkey", ["-y", "-f", path], { owner: "dropbearkey -y" });
    const line = pub.stdout.split("\n").find((l) => /^(ssh-|ecdsa-)/.test(l))!;
    const blob = Uint8Array.from(atob(line.split(" ")[1]), (c) => c.charCodeAt(0));
    return { priv: await Deno.readFile(path), pubBlob: blob };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("keyscan: OpenSSH and PEM private keys from ssh2 and node:crypto", async () => {
  const pairs = {
    ed25519: ssh2.utils.generateKeyPairSync("ed25519"),
    rsa: ssh2.utils.generateKeyPairSync("rsa", { bits: 2048 }),
    ecdsa: ssh2.utils.generateKeyPairSync("ecdsa", { bits: 256 }),
  };
  for (const [type, pair] of Object.entries(pairs)) {
    assert.deepEqual(await kinds(enc.encode(pair.private)), [
      "openssh-private-key:OPENSSH PRIVATE KEY@file",
    ]);
    assert.deepEqual(await kinds(enc.encode(pair.public)), [], `${type} public key is not secret`);
  }
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pk8 = rsa.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const pk1 = rsa.privateKey.export({ type: "pkcs1", format: "pem" }) as string;
  const pub = rsa.publicKey.export({ type: "spki", format: "pem" }) as string;
  const enc8 = rsa.privateKey.export({
    type: "pkcs8",
    format: "pem",
    cipher: "aes-256-cbc",
    passphrase: "x",
  }) as string;
  const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const sec1 = ec.privateKey.export({ type: "sec1", format: "pem" }) as string;
  assert.deepEqual(await kinds(enc.encode(pk8)), ["pem-private-key:PRIVATE KEY@file"]);
  assert.deepEqual(await kinds(enc.encode(pk1)), ["pem-private-key:RSA PRIVATE KEY@file"]);
  assert.deepEqual(await kinds(enc.encode(enc8)), ["pem-private-key:ENCRYPTED PRIVATE KEY@file"]);
  assert.deepEqual(await kinds(enc.encode(sec1)), ["pem-private-key:EC PRIVATE KEY@file"]);
  assert.deepEqual(await kinds(enc.encode(pub)), []);
  // A key embedded in a log line is still found.
  assert.equal((await kinds(enc.encode(`leaked: ${pk8.replaceAll("\n", " ")} end`))).length, 1);
});

Deno.test("keyscan: dropbear private keys found, their public blobs not", async () => {
  for (
    const [type, alg] of [["ed25519", "ssh-ed25519"], ["rsa", "ssh-rsa"], [
      "ecdsa",
      "ecdsa-sha2-nistp256",
    ]]
  ) {
    const k = await dropbearKey(type);
    assert.deepEqual(await kinds(k.priv), [`dropbear-private-key:${alg}@file`], type);
    assert.deepEqual(await kinds(k.pubBlob), [], `${type} public blob`);
    // Truncated by one byte: the private fields no longer fit, nothing is claimed.
    assert.deepEqual(await kinds(k.priv.subarray(0, 30)), [], `${type} truncated`);
  }
});

Deno.test("keyscan: an initramfs cpio (plain and gzip) with a dropbear host key", async () => {
  const k = await dropbearKey("ed25519");
  const cpio = writeNewc([
    { type: "dir", path: "/etc" },
    { type: "dir", path: "/etc/dropbear" },
    { type: "file", path: "/etc/dropbear/dropbear_ed25519_host_key", data: k.priv, mode: 0o600 },
    { type: "file", path: "/etc/profile", data: enc.encode("export PS1='# '\n") },
    { type: "char", path: "dev/console", major: 5, minor: 1 },
  ]);
  const members = cpioMembers(cpio);
  assert.deepEqual(members.map((m) => m.name), [
    "etc",
    "etc/dropbear",
    "etc/dropbear/dropbear_ed25519_host_key",
    "etc/profile",
    "dev/console",
  ]);
  assert.ok(
    (await kinds(cpio)).includes(
      "dropbear-private-key:ssh-ed25519@file/cpio:etc/dropbear/dropbear_ed25519_host_key",
    ),
  );
  assert.ok(
    (await kinds(await gzip(cpio))).includes(
      "dropbear-private-key:ssh-ed25519@file/gzip/cpio:etc/dropbear/dropbear_ed25519_host_key",
    ),
  );
  // A member named as a host key counts even when its format is unknown.
  const odd = writeNewc([
    { type: "file", path: "etc/ssh/ssh_host_xyz_key", data: enc.encode("opaque") },
  ]);
  assert.deepEqual(await kinds(odd), [
    "host-key-file:named as a host key@file/cpio:etc/ssh/ssh_host_xyz_key",
  ]);
});

Deno.test("keyscan: hostile input never throws", async () => {
  const rnd = new Uint8Array(1 << 20);
  for (let i = 0; i < rnd.length; i += 65536) crypto.getRandomValues(rnd.subarray(i, i + 65536));
  assert.deepEqual(await kinds(rnd), []);
  const k = await dropbearKey("ed25519");
  const cpio = writeNewc([{ type: "file", path: "k", data: k.priv }]);
  // Cut anywhere: no throw; the member is found only when it is whole.
  for (let cut = 0; cut < cpio.length; cut += 7) await findKeyMaterial(cpio.subarray(0, cut));
  // A header whose size field lies (far past the end), and one that is not hex.
  const lying = cpio.slice();
  lying.set(enc.encode("7fffffff"), 6 + 6 * 8);
  assert.deepEqual(cpioMembers(lying), []);
  const nothex = cpio.slice();
  nothex.set(enc.encode("zzzzzzzz"), 6 + 11 * 8);
  assert.deepEqual(cpioMembers(nothex), []);
  // A length prefix claiming 4 GiB right after the algorithm name.
  const evil = new Uint8Array([0, 0, 0, 11, ...enc.encode("ssh-ed25519"), 0xff, 0xff, 0xff, 0xff]);
  assert.deepEqual(await kinds(evil), []);
  // A gzip bomb is bounded; a gzip header on garbage is ignored.
  const bomb = await gzip(new Uint8Array(16 << 20));
  assert.deepEqual(await findKeyMaterial(bomb, { maxInflatedBytes: 1 << 20 }), []);
  assert.deepEqual(await kinds(new Uint8Array([0x1f, 0x8b, 1, 2, 3])), []);
  // Compressed containers nested deeper than maxDepth are not opened (a raw key inside
  // uncompressed containers is found by the byte search at any depth).
  let nested: Uint8Array = k.priv;
  for (let i = 0; i < 4; i++) nested = await gzip(nested);
  assert.deepEqual(await findKeyMaterial(nested, { maxDepth: 2 }), []);
  const deep = (await findKeyMaterial(nested, { maxDepth: 8 })).map((f) => f.where);
  assert.ok(deep.includes("file/gzip/gzip/gzip/gzip"), deep.join(", "));
});

Deno.test("keyscan: a tree audit reports each key file's mode and its directories'", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/a/b`, { recursive: true, mode: 0o755 });
    await Deno.chmod(`${root}/a`, 0o755);
    await Deno.chmod(`${root}/a/b`, 0o700);
    const pair = ssh2.utils.generateKeyPairSync("ed25519");
    await Deno.writeTextFile(`${root}/a/b/id`, pair.private, { mode: 0o644 });
    await Deno.chmod(`${root}/a/b/id`, 0o644);
    await Deno.writeTextFile(`${root}/a/b/id.pub`, pair.public);
    await Deno.symlink("/etc/passwd", `${root}/a/link`);
    const audit = await auditTree(`${root}/a`, { base: root });
    assert.equal(audit.scanned, 2);
    assert.equal(audit.keyFiles.length, 1);
    assert.deepEqual(privacyBreaches(audit), [
      `${root}/a/b/id is 644, holds OPENSSH PRIVATE KEY at file`,
      `${root}/a is 755, holds ${root}/a/b/id`,
    ]);
    await Deno.chmod(`${root}/a/b/id`, 0o600);
    await Deno.chmod(`${root}/a`, 0o700);
    assert.deepEqual(privacyBreaches(await auditTree(`${root}/a`, { base: root })), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
