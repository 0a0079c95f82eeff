/**
 * runner/ssh against real servers on loopback: dropbear (no SFTP, like the QEMU initramfs)
 * and OpenSSH's sshd (SFTP, jump host). Every test starts and stops its own servers.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect, type ConnectOptions, type SshSession, waitForSsh } from "./client.ts";
import { HostKeyError } from "./classify.ts";
import { ensureClientKey } from "./keys.ts";
import {
  freePort,
  serverSkipReason,
  startDropbear,
  startSshd,
  testClientKey,
  type TestServer,
} from "./test_servers.ts";
import { InfraError, TimeoutError, UserInputError } from "../errors.ts";
import { ensureHostTools } from "../debian/host_tools.ts";
import { catchingStrays } from "../strays_testutil.ts";

// The servers are real: install them when missing (root only, as the servers need it).
if (Deno.uid() === 0) {
  await ensureHostTools(["dropbear", "dropbearkey", "sshd", "ssh-keygen", "unshare"]);
}
const dropbearSkip = serverSkipReason("dropbear");
const sshdSkip = serverSkipReason("sshd");
if (dropbearSkip) console.warn(`runner/ssh dropbear tests skipped: ${dropbearSkip}`);
if (sshdSkip) console.warn(`runner/ssh sshd tests skipped: ${sshdSkip}`);

async function optsFor(
  s: TestServer,
  extra: Partial<ConnectOptions> = {},
): Promise<ConnectOptions> {
  const key = await testClientKey();
  return {
    host: s.host,
    port: s.port,
    user: s.user,
    hostKeyFingerprint: s.hostKeyFingerprint,
    privateKey: key.privateKey,
    connectTimeoutMs: 5_000,
    ...extra,
  };
}

/** Start servers, run fn, always stop them (and close the session fn opened). */
async function withServers(
  kinds: ("dropbear" | "sshd")[],
  fn: (servers: TestServer[], sessions: SshSession[]) => Promise<void>,
): Promise<void> {
  const servers: TestServer[] = [];
  const sessions: SshSession[] = [];
  try {
    for (const k of kinds) {
      servers.push(k === "dropbear" ? await startDropbear() : await startSshd());
    }
    await fn(servers, sessions);
  } catch (err) {
    for (const s of servers) console.error(`--- ${s.kind} log ---\n${s.log().slice(-3000)}`);
    throw err;
  } finally {
    for (const s of sessions) await s.close();
    for (const s of servers) await s.stop();
  }
}

/** Asserts no secret from the client key reaches a message or hint. */
async function assertNoSecret(e: unknown): Promise<void> {
  const key = await testClientKey();
  const body = key.privateKey.split("\n").filter((l) => l && !l.startsWith("-----"));
  const text = e instanceof Error
    ? `${e.message}\n${"hint" in e ? String(e.hint) : ""}\n${e.stack ?? ""}`
    : String(e);
  assert.doesNotMatch(text, /PRIVATE KEY/);
  for (const line of body) assert.ok(!text.includes(line.slice(0, 24)), "key material leaked");
}

const dbTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `ssh/dropbear: ${name}`, ignore: dropbearSkip !== null, fn });
const bothTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name: `ssh/dropbear+sshd: ${name}`,
    ignore: dropbearSkip !== null || sshdSkip !== null,
    fn,
  });

dbTest("pinned host key accepted; exec stdout, stderr, exit codes, stdin, signal", async () => {
  await withServers(["dropbear"], async ([db], sessions) => {
    const s = await connect(await optsFor(db));
    sessions.push(s);
    assert.equal(s.hostKeyFingerprint, db.hostKeyFingerprint);
    assert.ok(s.connectMs > 0 && s.connectMs < 5_000);
    const r = await s.exec("echo out; echo err >&2; exit 7", { timeoutMs: 5_000 });
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
    assert.equal(r.exitStatus, 7);
    assert.equal(r.signal, null);
    assert.ok(r.durationMs > 0);
    // stderr without the PID line, also when the command writes nothing or no newline.
    assert.equal((await s.exec("printf x >&2")).stderr, "x");
    assert.equal((await s.exec("true")).stderr, "");
    assert.equal((await s.exec("echo raw >&2", { killOnTimeout: false })).stderr, "raw\n");
    const zero = await s.exec("true");
    assert.equal(zero.exitStatus, 0);
    const piped = await s.exec("tr a-z A-Z", { stdin: "hello\n" });
    assert.equal(piped.stdout, "HELLO\n");
    const killed = await s.exec("kill -TERM $$");
    assert.equal(killed.exitStatus, null);
    assert.equal(killed.signal, "TERM");
    // Many channels over one connection, concurrently.
    const many = await Promise.all(
      Array.from({ length: 8 }, (_, i) => s.exec(`echo ${i}`, { timeoutMs: 10_000 })),
    );
    assert.deepEqual(many.map((m) => m.stdout.trim()), ["0", "1", "2", "3", "4", "5", "6", "7"]);
  });
});

dbTest("wrong and missing fingerprints are refused with both fingerprints, no secret", async () => {
  await withServers(["dropbear"], async ([db]) => {
    const wrong = "SHA256:V1arYdkU5G+AIDZDUvBZpzBNd6reUc7PBTce1GCsDws";
    const t0 = performance.now();
    const err = await connect(await optsFor(db, { hostKeyFingerprint: wrong })).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof HostKeyError, String(err));
    assert.ok(err instanceof UserInputError);
    assert.equal(err.pinned, wrong);
    assert.equal(err.presented, db.hostKeyFingerprint);
    assert.ok(err.message.includes(wrong) && err.message.includes(db.hostKeyFingerprint));
    assert.match(err.hint, /board file/);
    await assertNoSecret(err);

    // waitForSsh does not retry a host key refusal.
    const err2 = await waitForSsh(await optsFor(db, { hostKeyFingerprint: wrong }), {
      totalMs: 20_000,
    }).then(() => null, (e: unknown) => e);
    assert.ok(err2 instanceof HostKeyError);
    assert.ok(performance.now() - t0 < 5_000, "host key refusal must not be retried");

    const err3 = await connect(await optsFor(db, { hostKeyFingerprint: undefined })).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err3 instanceof HostKeyError);
    assert.equal(err3.pinned, null);
    assert.ok(err3.hint.includes(`hostKeyFingerprint: ${db.hostKeyFingerprint}`));
    await assertNoSecret(err3);

    const bad = await connect(await optsFor(db, { hostKeyFingerprint: "SHA256:nope" })).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(bad instanceof UserInputError);
  });
});

dbTest("a client key the server does not know is a UserInputError, not retried", async () => {
  await withServers(["dropbear"], async ([db]) => {
    const dir = await Deno.makeTempDir({ prefix: "rkhil-otherkey-" });
    try {
      const other = await ensureClientKey(dir);
      const t0 = performance.now();
      const err = await waitForSsh(await optsFor(db, { privateKey: other.privateKey }), {
        totalMs: 20_000,
      }).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof UserInputError, String(err));
      assert.ok(err.message.includes(other.fingerprint), err.message);
      assert.ok(performance.now() - t0 < 5_000);
      const text = `${err.message}\n${err.hint}`;
      for (const line of other.privateKey.split("\n").filter((l) => l && !l.startsWith("---"))) {
        assert.ok(!text.includes(line.slice(0, 24)));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

dbTest("10 MB of output arrives intact", async () => {
  await withServers(["dropbear"], async ([db], sessions) => {
    const s = await connect(await optsFor(db));
    sessions.push(s);
    const n = 10 * 1024 * 1024;
    const r = await s.exec(`yes 0123456789abcdef | head -c ${n}`, { timeoutMs: 30_000 });
    assert.equal(r.exitStatus, 0);
    assert.equal(r.stdoutBytes.length, n);
    const expected = new TextEncoder().encode("0123456789abcdef\n".repeat(n / 17 + 1)).slice(0, n);
    assert.equal(
      createHash("sha256").update(r.stdoutBytes).digest("hex"),
      createHash("sha256").update(expected).digest("hex"),
    );
    // And the cap stops a runaway command.
    const capped = await s.exec("yes", { maxOutputBytes: 1024 * 1024, timeoutMs: 10_000 }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(capped instanceof Error && /exceeded/.test(capped.message));
    assert.equal((await s.exec("echo still-usable")).stdout, "still-usable\n");
  });
});

dbTest(
  "exec timeout closes the channel and throws TimeoutError; session stays usable",
  async () => {
    await withServers(["dropbear"], async ([db], sessions) => {
      const s = await connect(await optsFor(db));
      sessions.push(s);
      const t0 = performance.now();
      const err = await s.exec("sleep 30.25", { timeoutMs: 500 }).then(
        () => null,
        (e: unknown) => e,
      );
      const took = performance.now() - t0;
      assert.ok(err instanceof TimeoutError, String(err));
      assert.equal(err.verdict, "MISS");
      assert.equal(err.ms, 500);
      assert.match(err.owner, /exec 'sleep 30.25'/);
      // The hint says what the kill reported (the shell execs its last command: one process).
      assert.match(
        err.hint,
        /; its [1-9]\d* process(es)? found in the target (was|were) killed; its channel was closed\./,
      );
      assert.ok(took < 1_500, `took ${took} ms`);
      assert.equal((await s.exec("echo ok")).stdout, "ok\n");
      // The command was killed in the target, not just abandoned with its channel.
      const left = await s.exec("ps -eo args | grep -c '^sleep 30[.]25' || true");
      assert.equal(left.stdout.trim(), "0");
      // Without the PID line the command is only abandoned (servers ignore SSH signals).
      const raw = await s.exec("echo e >&2; sleep 30.5", { timeoutMs: 300, killOnTimeout: false })
        .then(() => null, (e: unknown) => e);
      assert.ok(raw instanceof TimeoutError);
      assert.match(
        raw.hint,
        /; it was not killed in the target \(killOnTimeout: false\) and may still run; its channel was closed\./,
      );
      const left2 = await s.exec("ps -eo args | grep -c '^sleep 30[.]5' || true");
      assert.equal(left2.stdout.trim(), "1", "if this fails, the server now honours signals");
      // No more execs here: the abandoned process dying while dropbear starts another exec
      // is the race that killOnTimeout avoids. The server's stop() reaps it.
    });
  },
);

bothTest(
  "exec timeout stops every process of the command (children, an orphan), next exec runs",
  async () => {
    await withServers(["dropbear", "sshd"], async (servers, sessions) => {
      for (const srv of servers) {
        const s = await connect(await optsFor(srv));
        sessions.push(s);
        // dropbear: the shell leads no process group; OpenSSH: it leads its session's.
        const err = await s.exec(
          "echo a; (sleep 31.75 &); sleep 31.5 & sleep 31.25; echo b",
          { timeoutMs: 500 },
        ).then(() => null, (e: unknown) => e);
        assert.ok(err instanceof TimeoutError, `${srv.kind}: ${err}`);
        const left = await s.exec("ps -eo args | grep -cE '^sleep 31[.](75|5|25)$' || true");
        assert.equal(left.stdout.trim(), "0", `${srv.kind}: processes of the command left`);
        assert.equal((await s.exec("echo next")).stdout, "next\n");
      }
    });
  },
);

dbTest("upload without SFTP streams through cat and checks sha256 in the target", async () => {
  await withServers(["dropbear"], async ([db], sessions) => {
    const s = await connect(await optsFor(db));
    sessions.push(s);
    const dir = (await s.exec("mktemp -d")).stdout.trim();
    const data = crypto.getRandomValues(new Uint8Array(65536)).slice();
    const big = new Uint8Array(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 65536) big.set(data, i);
    const up = await s.upload(big, `${dir}/blob.bin`, { mode: 0o755 });
    assert.equal(up.method, "stream");
    assert.equal(up.bytes, big.length);
    const sum = createHash("sha256").update(big).digest("hex");
    assert.equal(up.sha256, sum);
    const r = await s.exec(`sha256sum ${dir}/blob.bin; stat -c %a ${dir}/blob.bin; ls ${dir}`);
    assert.equal(r.stdout, `${sum}  ${dir}/blob.bin\n755\nblob.bin\n`);
    // A local path works too, and an explicit SFTP request fails clearly here.
    const local = await Deno.makeTempFile();
    try {
      await Deno.writeTextFile(local, "from a file\n");
      const up2 = await s.upload(local, `${dir}/it's a file.txt`);
      assert.equal(up2.method, "stream");
      assert.equal((await s.exec(`cat "${dir}/it's a file.txt"`)).stdout, "from a file\n");
    } finally {
      await Deno.remove(local);
    }
    const noSftp = await s.upload(big, `${dir}/x`, { method: "sftp" }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(noSftp instanceof InfraError && /no SFTP/.test(noSftp.message));
    // A write that fails in the target (no such directory) is an error with its reason.
    const bad = await s.upload(big.subarray(0, 10), "/nonexistent-dir/x").then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(bad instanceof InfraError, String(bad));
    await s.exec(`rm -rf ${dir}`);
  });
});

Deno.test({
  name: "ssh/sshd: upload over SFTP checks sha256 in the target",
  ignore: sshdSkip !== null,
  fn: async () => {
    await withServers(["sshd"], async ([sd], sessions) => {
      const s = await connect(await optsFor(sd));
      sessions.push(s);
      const dir = (await s.exec("mktemp -d")).stdout.trim();
      const big = crypto.getRandomValues(new Uint8Array(65536));
      const up = await s.upload(big, `${dir}/blob.bin`);
      assert.equal(up.method, "sftp");
      const sum = createHash("sha256").update(big).digest("hex");
      assert.equal(up.sha256, sum);
      const r = await s.exec(`sha256sum ${dir}/blob.bin; ls ${dir}`);
      assert.equal(r.stdout, `${sum}  ${dir}/blob.bin\nblob.bin\n`);
      const forced = await s.upload(big, `${dir}/streamed.bin`, { method: "stream" });
      assert.equal(forced.method, "stream");
      await s.exec(`rm -rf ${dir}`);
    });
  },
});

dbTest("shell channel carries bytes both ways with a real shell", async () => {
  await withServers(["dropbear"], async ([db], sessions) => {
    const s = await connect(await optsFor(db));
    sessions.push(s);
    const sh = await s.shellChannel();
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const readUntil = async (needle: string, limit = 5_000): Promise<string> => {
      let acc = "";
      const deadline = Date.now() + limit;
      while (!acc.includes(needle)) {
        assert.ok(Date.now() < deadline, `no '${needle}' in ${JSON.stringify(acc.slice(-200))}`);
        const chunk = await sh.read();
        if (chunk === null) break;
        acc += dec.decode(chunk);
      }
      return acc;
    };
    await sh.write(enc.encode("echo hello-$((6*7)); echo to-stderr >&2\n"));
    const got = await readUntil("to-stderr");
    assert.match(got, /hello-42\n/);
    // 1 MB through `head -c` and back.
    await sh.write(enc.encode("head -c 1048576 /dev/zero | tr '\\0' x; echo END\n"));
    const bulk = await readUntil("END", 20_000);
    assert.equal(bulk.replace("END\n", "").length, 1048576);
    await sh.write(enc.encode("exit 0\n"));
    assert.equal(await sh.read(), null);
    await sh.close();
  });
});

dbTest("server killed mid-command: classified InfraError quickly, then reconnect", async () => {
  await withServers(["dropbear"], async ([db], sessions) => {
    const s = await connect(await optsFor(db));
    sessions.push(s);
    const sh = await s.shellChannel();
    const running = s.exec("sleep 30", { timeoutMs: 20_000 }).then(
      () => null,
      (e: unknown) => e,
    );
    const shellRead = sh.read().then(() => null, (e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    await db.kill();
    const err = await running;
    const took = performance.now() - t0;
    assert.ok(err instanceof InfraError && !(err instanceof TimeoutError), String(err));
    assert.equal(err.verdict, "MISS");
    assert.match(err.message, /lost/);
    assert.ok(took < 2_000, `took ${took} ms`);
    const shErr = await shellRead;
    assert.ok(shErr instanceof InfraError, String(shErr));
    assert.equal(s.connected, false);
    // New work fails at once, classified.
    await assert.rejects(s.exec("true"), InfraError);

    // The "target" comes back (same host key, same port): reconnect within a bounded wait.
    const restart = new Promise((r) => setTimeout(r, 600)).then(() => db.restart());
    await s.reconnect({ totalMs: 10_000, retryDelayMs: 100 });
    await restart;
    assert.equal(s.connected, true);
    assert.equal((await s.exec("echo back")).stdout, "back\n");
  });
});

dbTest("hung server (SIGSTOP): keepalive turns the hang into InfraError", async () => {
  await withServers(["dropbear"], async ([db], sessions) => {
    const s = await connect(
      await optsFor(db, { keepaliveIntervalMs: 200, keepaliveCountMax: 2 }),
    );
    sessions.push(s);
    const running = s.exec("sleep 30", { timeoutMs: 20_000 }).then(
      () => null,
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    await db.freeze();
    try {
      const err = await running;
      const took = performance.now() - t0;
      assert.ok(err instanceof InfraError && !(err instanceof TimeoutError), String(err));
      assert.match(err.message, /keepalive/);
      assert.ok(took < 3_000, `took ${took} ms`);
    } finally {
      await db.thaw();
    }
  });
});

Deno.test({
  name: "ssh: connection refused is retried within the bound, then TimeoutError (MISS)",
  fn: async () => {
    const key = await testClientKey();
    const port = freePort();
    const opts: ConnectOptions = {
      host: "127.0.0.1",
      port,
      user: "root",
      hostKeyFingerprint: "SHA256:V1arYdkU5G+AIDZDUvBZpzBNd6reUc7PBTce1GCsDws",
      privateKey: key.privateKey,
    };
    const once = await connect(opts).then(() => null, (e: unknown) => e);
    assert.ok(once instanceof InfraError, String(once));
    assert.match(once.message, /refused/);
    await assertNoSecret(once);

    const lines: string[] = [];
    const t0 = performance.now();
    const err = await waitForSsh({ ...opts, log: (l) => lines.push(l) }, {
      totalMs: 1_500,
      retryDelayMs: 100,
    }).then(() => null, (e: unknown) => e);
    const took = performance.now() - t0;
    assert.ok(err instanceof TimeoutError, String(err));
    assert.equal(err.verdict, "MISS");
    assert.equal(err.ms, 1_500);
    assert.match(err.hint, /refused/);
    assert.ok(took >= 1_400 && took < 2_500, `took ${took} ms`);
    assert.ok(lines.length >= 3, lines.join("\n"));
    await assertNoSecret(err);
  },
});

dbTest("waitForSsh rides out a boot: refused first, then the server comes up", async () => {
  await withServers(["dropbear"], async ([db], sessions) => {
    await db.kill();
    const up = new Promise((r) => setTimeout(r, 700)).then(() => db.restart());
    const lines: string[] = [];
    const s = await waitForSsh(await optsFor(db, { log: (l) => lines.push(l) }), {
      totalMs: 10_000,
      retryDelayMs: 100,
    });
    sessions.push(s);
    await up;
    assert.ok(lines.some((l) => /refused/.test(l)), lines.join("\n"));
    assert.equal((await s.exec("echo up")).stdout, "up\n");
  });
});

bothTest("jump host: OpenSSH sshd forwards to dropbear", async () => {
  await withServers(["sshd", "dropbear"], async ([sd, db], sessions) => {
    const jump = await optsFor(sd);
    const s = await connect(await optsFor(db, { jump }));
    sessions.push(s);
    assert.match(s.target, /via/);
    const r = await s.exec("echo $SSH_CONNECTION");
    assert.match(r.stdout, new RegExp(` ${db.port}\\n$`));
    assert.equal(
      (await s.upload(new TextEncoder().encode("j\n"), "/tmp/rkhil-jump-test")).method,
      "stream",
    );
    await s.exec("rm -f /tmp/rkhil-jump-test");

    // The target's key is still pinned through the jump.
    const wrong = "SHA256:V1arYdkU5G+AIDZDUvBZpzBNd6reUc7PBTce1GCsDws";
    const err = await connect(await optsFor(db, { jump, hostKeyFingerprint: wrong })).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof HostKeyError, String(err));
    assert.equal(err.presented, db.hostKeyFingerprint);

    // Target down behind a live jump host: retried, then a bounded MISS.
    await db.kill();
    const miss = await waitForSsh(await optsFor(db, { jump }), { totalMs: 1_500 }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(miss instanceof TimeoutError, String(miss));
    assert.match(miss.hint, /jump host/);
  });
});

dbTest(
  "close rule: shell channels closed mid-flood, a throwing log callback: no strays",
  async () => {
    const strays = await catchingStrays(async () => {
      await withServers(["dropbear"], async ([db], sessions) => {
        const s = await connect(
          await optsFor(db, {
            log: () => {
              throw new Error("a log callback's bug");
            },
          }),
        );
        sessions.push(s);
        assert.ok(s.handlerErrors >= 1, "the connect log line's callback threw, caught");
        let dropped = 0;
        for (let i = 0; i < 3; i++) {
          const sh = await s.shellChannel();
          await sh.write(new TextEncoder().encode("while :; do echo flood-flood-flood; done\n"));
          assert.ok((await sh.read())!.length > 0);
          await sh.close();
          assert.equal(await sh.read(), null, "a read after close ends");
          dropped += (sh as unknown as { droppedAfterClose: number }).droppedAfterClose;
        }
        // The session still works after 3 channels closed under load.
        assert.equal((await s.exec("echo ok")).stdout, "ok\n");
        console.log(`3 shell channels closed mid-flood; ${dropped} late chunks dropped`);
        assert.ok(dropped > 0, "chunks queued or arriving after close() were counted");
      });
    }, { settleMs: 50, uncaughtErrors: true });
    assert.deepEqual(strays.map(String), []);
  },
);
