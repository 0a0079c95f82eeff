import assert from "node:assert/strict";
import {
  fingerprintOfKeyBlob,
  fingerprintOfPublicKeyLine,
  parseFingerprint,
} from "./fingerprint.ts";
import { ensureClientKey } from "./keys.ts";
import { UserInputError } from "../errors.ts";
import { ensureHostTools, hostCommand } from "../debian/host_tools.ts";

Deno.test("parseFingerprint accepts SHA256: with or without padding, rejects others", () => {
  const fp = "SHA256:V1arYdkU5G+AIDZDUvBZpzBNd6reUc7PBTce1GCsDws";
  assert.equal(parseFingerprint(fp), fp);
  assert.equal(parseFingerprint(` ${fp}= `), fp);
  for (const bad of ["", "MD5:aa:bb", "SHA256:short", fp.replace("SHA256:", "sha1:")]) {
    assert.throws(() => parseFingerprint(bad, "boards/x.yaml ssh.hostKey"), (e: unknown) => {
      assert.ok(e instanceof UserInputError);
      assert.match(e.message, /boards\/x\.yaml ssh\.hostKey/);
      assert.match(e.hint, /ssh-keygen -lf/);
      return true;
    });
  }
});

Deno.test("fingerprints agree with ssh-keygen -lf", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-fp-" });
  try {
    const key = await ensureClientKey(dir);
    assert.match(key.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    // The stored pair is reloaded, not regenerated.
    const again = await ensureClientKey(dir);
    assert.equal(again.fingerprint, key.fingerprint);
    assert.equal((await Deno.stat(key.privateKeyPath)).mode! & 0o777, 0o600);
    const blob = Uint8Array.from(atob(key.publicKeyLine.split(" ")[1]), (c) => c.charCodeAt(0));
    assert.equal(fingerprintOfKeyBlob(blob), key.fingerprint);
    await ensureHostTools(["ssh-keygen"]);
    await t.step({
      name: "ssh-keygen",
      fn: async () => {
        const out = await (await hostCommand("/usr/bin/ssh-keygen", {
          args: ["-lf", `${key.privateKeyPath}.pub`],
          stdout: "piped",
        })).output();
        assert.equal(new TextDecoder().decode(out.stdout).split(" ")[1], key.fingerprint);
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fingerprintOfPublicKeyLine finds the key in dropbearkey -y style output", () => {
  const line =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICncyV1il/Jh6yujsWhE5Y8pCfbAMST4P5UK3bUwEKKH rkhil";
  const text = `Public key portion is:\n${line}\nFingerprint: sha1!! 00:11\n`;
  assert.equal(
    fingerprintOfPublicKeyLine(text),
    "SHA256:V1arYdkU5G+AIDZDUvBZpzBNd6reUc7PBTce1GCsDws",
  );
  assert.throws(() => fingerprintOfPublicKeyLine("nothing here"), UserInputError);
});
