// Key material in the cache is private: 0600 files in 0700 directories, created so, and a
// cache from before the rule is fixed on use (issue 7, part 6). Runs on a temporary cache.
import assert from "node:assert/strict";
import { cacheRoot, privateCacheDir, writePrivateFileAtomic } from "./cache.ts";
import { clientKey } from "../qemu/keys.ts";
import { securePrivateImages } from "../qemu/initramfs.ts";
import { ensureClientKey } from "../ssh/keys.ts";
import { auditTree, privacyBreaches } from "../keyscan.ts";
import { writeNewc } from "../qemu/cpio.ts";
import { ensureHostTools } from "./host_tools.ts";
import { run } from "./proc.ts";

const mode = async (p: string) => ((await Deno.lstat(p)).mode ?? 0) & 0o777;

async function withTempCache(fn: (root: string) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "rkhil-cache-test-" });
  const before = Deno.env.get("RKHIL_CACHE_DIR");
  Deno.env.set("RKHIL_CACHE_DIR", `${tmp}/cache`);
  try {
    await fn(`${tmp}/cache`);
  } finally {
    if (before === undefined) Deno.env.delete("RKHIL_CACHE_DIR");
    else Deno.env.set("RKHIL_CACHE_DIR", before);
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.test("private cache dirs are 0700 at every level; a wider old one is narrowed", async () => {
  await withTempCache(async (root) => {
    const d = await privateCacheDir("a", "b");
    assert.equal(d, `${root}/a/b`);
    assert.equal(cacheRoot(), root);
    assert.deepEqual([await mode(`${root}/a`), await mode(d)], [0o700, 0o700]);
    await Deno.chmod(`${root}/a`, 0o755);
    await Deno.chmod(d, 0o777);
    await privateCacheDir("a", "b");
    assert.deepEqual([await mode(`${root}/a`), await mode(d)], [0o700, 0o700]);
    await Deno.writeTextFile(`${root}/file`, "x");
    await assert.rejects(privateCacheDir("file"), /is not a directory/);
  });
});

Deno.test("private files are 0600, replacing a wider file atomically", async () => {
  await withTempCache(async () => {
    const d = await privateCacheDir("k");
    await Deno.writeTextFile(`${d}/f`, "old", { mode: 0o644 });
    await Deno.chmod(`${d}/f`, 0o644);
    await writePrivateFileAtomic(`${d}/f`, "new secret");
    assert.equal(await mode(`${d}/f`), 0o600);
    assert.equal(await Deno.readTextFile(`${d}/f`), "new secret");
    assert.deepEqual([...Deno.readDirSync(d)].map((e) => e.name), ["f"], "no temporary left");
  });
});

Deno.test("client keys (QEMU and ssh) and cached images: private, fixed on use", async () => {
  await ensureHostTools(["dropbearkey"]);
  await withTempCache(async (root) => {
    const k = await clientKey();
    assert.equal(await mode(k.privateKeyPath), 0o600);
    assert.equal(await mode(`${root}/keys`), 0o700);
    // A cache from before the rule: widen, then use it again.
    await Deno.chmod(`${root}/keys`, 0o755);
    await Deno.chmod(k.privateKeyPath, 0o644);
    const again = await clientKey();
    assert.equal(again.fingerprint, k.fingerprint, "the same key, not a new one");
    assert.equal(await mode(k.privateKeyPath), 0o600);
    assert.equal(await mode(`${root}/keys`), 0o700);

    // An image cached before the rule (0644 in 0755 directories) with a dropbear host key.
    const img = `${root}/initramfs/0123abcd`;
    await Deno.mkdir(img, { recursive: true });
    await run("dropbearkey", ["-t", "ed25519", "-f", `${root}/hk`], { owner: "dropbearkey" });
    const cpio = writeNewc([{
      type: "file",
      path: "etc/dropbear/dropbear_ed25519_host_key",
      data: await Deno.readFile(`${root}/hk`),
    }]);
    await Deno.remove(`${root}/hk`);
    await Deno.writeFile(`${img}/initramfs.cpio`, cpio, { mode: 0o644 });
    for (
      const [p, m] of [[`${root}/initramfs`, 0o755], [img, 0o755], [
        `${img}/initramfs.cpio`,
        0o644,
      ]] as const
    ) {
      await Deno.chmod(p, m);
    }
    const before = privacyBreaches(await auditTree(root, { base: root }));
    assert.equal(before.length, 3, before.join("\n"));
    await securePrivateImages();

    // ssh/keys.ts: its own directory, widened and fixed on use likewise.
    const sshDir = `${root}/ssh`;
    const sk = await ensureClientKey(sshDir);
    await Deno.chmod(sshDir, 0o755);
    await Deno.chmod(sk.privateKeyPath, 0o640);
    await ensureClientKey(sshDir);

    const audit = await auditTree(root, { base: root });
    assert.deepEqual(
      audit.keyFiles.map((f) => f.path.slice(root.length)).sort(),
      ["/initramfs/0123abcd/initramfs.cpio", "/keys/client_ed25519", "/ssh/rkhil_ed25519"],
    );
    assert.deepEqual(privacyBreaches(audit), []);
  });
});
