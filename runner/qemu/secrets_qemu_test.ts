/**
 * Secrets on disk (issue 7, part 6), end to end on the real cache: an initramfs is built (a
 * gzip image, its own cache entry, rebuilt), a guest boots from it, answers on the console and
 * over SSH with the pinned host key, and powers off. Then EVERY artifact the cache build and
 * the run left is read: the key store and every cached image, every file of the run
 * directory, and every other file under the cache root written since the test started. Each
 * one that holds private key material (PEM, OpenSSH, dropbear; inside cpio and gzip too) must
 * be mode 0600 with every directory up to the cache root 0700; the run directory must hold
 * none. The key store is widened first, as a cache from before the rule was: it is fixed on
 * use.
 */
import assert from "node:assert/strict";
import { cacheRoot } from "../debian/cache.ts";
import { connect } from "../ssh/client.ts";
import { auditTree, type KeyFile, privacyBreaches, type TreeAudit } from "../keyscan.ts";
import { QemuTarget } from "./target.ts";
import { testRunRoot } from "../test_dirs.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "secrets: every artifact of a cache build and a run is private or key-free",
  opts,
  async () => {
    const root = cacheRoot();
    const t0 = Date.now() - 1000;
    // A cache from before the rule: key store wider than it may be.
    for (
      const [p, m] of [[`${root}/keys`, 0o755], [`${root}/keys/client_ed25519`, 0o644]] as const
    ) {
      await Deno.chmod(p, m).catch(() => {/* first use: not there yet */});
    }
    const runDir = `${await testRunRoot("rkhil-secrets-test-")}/run`;
    const t = await QemuTarget.prepare({
      kernel: "debian:bookworm",
      runDir,
      initramfs: { compression: "gzip", rebuild: true },
    });
    try {
      assert.equal(t.image.built, true);
      await t.ready();
      assert.equal(
        (await t.command.run("echo console-ok", { via: "serial" })).stdout,
        "console-ok\n",
      );
      const ssh = await connect({
        host: "127.0.0.1",
        port: t.sshPort!,
        user: "root",
        hostKeyFingerprint: t.image.hostKey.fingerprint,
        privateKey: await Deno.readTextFile(t.image.clientKey.privateKeyPath),
      });
      try {
        assert.equal((await ssh.exec("echo ssh-ok")).stdout, "ssh-ok\n");
      } finally {
        await ssh.close();
      }
    } finally {
      await t.close();
    }

    const audits: Record<string, TreeAudit> = {
      keys: await auditTree(`${root}/keys`, { base: root }),
      images: await auditTree(`${root}/initramfs`, { base: root }),
      run: await auditTree(runDir, { base: runDir }),
      // Everything else the build wrote under the cache root (downloads, lists, ...).
      newInCache: await auditTree(root, {
        base: root,
        filter: (p, info) =>
          !p.startsWith(`${root}/keys/`) && !p.startsWith(`${root}/initramfs/`) &&
          (info.mtime?.getTime() ?? 0) >= t0,
      }),
    };
    for (const [name, a] of Object.entries(audits)) {
      console.log(
        `${name}: ${a.scanned} files read, ${a.keyFiles.length} with key material` +
          (a.skipped.length ? `, ${a.skipped.length} not read` : ""),
      );
      assert.deepEqual(a.skipped, [], `${name}: every artifact is read`);
      assert.deepEqual(privacyBreaches(a), [], `${name}: key material is 0600 in 0700 dirs`);
    }
    const where = (fs: KeyFile[]) =>
      fs.flatMap((f) => f.findings.map((x) => `${f.path}@${x.where}`));
    assert.deepEqual(where(audits.run.keyFiles), [], "no key material in the run directory");
    assert.ok(audits.run.scanned >= 4, "the run left its logs (console, QEMU)");
    // The audit saw what it must: the client key and the new image's dropbear host key.
    assert.ok(
      audits.keys.keyFiles.some((f) => f.path === t.image.clientKey.privateKeyPath),
      "client key found",
    );
    assert.ok(
      where(audits.images.keyFiles).includes(
        `${t.image.path}@file/gzip/cpio:etc/dropbear/dropbear_ed25519_host_key`,
      ),
      `the image's host key is found in ${t.image.path}`,
    );
  },
);
