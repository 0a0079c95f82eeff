/**
 * Reading `apt-get update` output for suites apt refused (runner/debian/apt.ts).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { InfraError } from "../errors.ts";
import { PrivateApt, suiteProblems } from "./apt.ts";

// apt 2.6's messages, as a fresh Debian 12 root printed them for a mirror whose sid Release file had
// expired (only the mirror's host is replaced).
const UPDATE_OUTPUT = `Hit:1 http://mirror.invalid/debian bookworm InRelease
Hit:2 http://mirror.invalid/debian trixie InRelease
Get:3 http://mirror.invalid/debian sid InRelease [198 kB]
Reading package lists...
E: Release file for http://mirror.invalid/debian/dists/sid/InRelease is expired (invalid since 23d 16h). Updates for this repository will not be applied.
W: Failed to fetch http://mirror.invalid/debian/dists/trixie-backports/InRelease  Could not resolve 'mirror.invalid'
W: Failed to fetch http://mirror.invalid/debian/dists/trixie-backports/main/binary-arm64/Packages  404  Not Found
W: Some index files failed to download. They have been ignored, or old ones used instead.
`;

Deno.test("suiteProblems: an expired Release file and failed fetches, by suite, first line each", () => {
  const p = suiteProblems(UPDATE_OUTPUT);
  assert.deepEqual(Object.keys(p).sort(), ["sid", "trixie-backports"]);
  assert.match(
    p.sid,
    /^Release file for \S+\/dists\/sid\/InRelease is expired \(invalid since 23d 16h\)/,
  );
  assert.match(p["trixie-backports"], /^Failed to fetch \S+InRelease {2}Could not resolve/);
  assert.deepEqual(suiteProblems("Hit:1 http://mirror.invalid/debian bookworm InRelease\n"), {});
});

Deno.test("suiteProblems: hostile output never throws, values stay short", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 2000 }), (s) => {
      const p = suiteProblems(s);
      for (const v of Object.values(p)) assert.ok(v.length <= 300);
    }),
  );
  const long = `E: Release file for http://x/dists/sid/${"a".repeat(100_000)} is expired`;
  assert.equal(suiteProblems(long).sid.length, 300);
});

Deno.test("private apt: runs on one host are kept apart by the root's flock (update exclusive)", async () => {
  const root = await Deno.makeTempDir({ prefix: "rkhil-apt-lock-" });
  const hold = async (exclusive: boolean) => {
    const f = await Deno.open(`${root}/lock`, { write: true, create: true });
    await f.lock(exclusive);
    return f;
  };
  try {
    const apt = await PrivateApt.open({
      root,
      mirrors: {
        archive: { uri: "http://mirror.invalid/debian", components: ["main"] },
        entries: [],
      },
      maxAgeMs: 3600_000,
    });
    // Another run updating the lists (exclusive): a read waits for it.
    const other = await hold(true);
    let settled = false;
    const read = apt.apt("apt-cache", ["pkgnames", "linux-image"], { allowFailure: true })
      .finally(() => settled = true);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(settled, false, "apt-cache ran while another run updated the lists");
    other.close();
    assert.equal((await read).code, 0);
    // A wait longer than the command's bound is one clear error, and the lock is not kept.
    const again = await hold(true);
    await assert.rejects(
      apt.apt("apt-cache", ["pkgnames", "x"], { allowFailure: true, timeoutMs: 300 }),
      (err: Error) => {
        assert.ok(err instanceof InfraError);
        assert.match(
          err.message,
          /private apt root is in use: no shared lock of .*lock within 0 s/,
        );
        return true;
      },
    );
    again.close();
    // Another run reading (shared): reads go on beside it, an update waits for it.
    const reader = await hold(false);
    assert.equal((await apt.apt("apt-cache", ["pkgnames", "x"], { allowFailure: true })).code, 0);
    let updated = false;
    const update = apt.update(true).finally(() => updated = true);
    update.catch(() => {}); // mirror.invalid: apt fetches nothing, update says so
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(updated, false, "apt-get update ran while another run read the lists");
    reader.close();
    await assert.rejects(update, /fetched nothing from http:\/\/mirror.invalid/);
    (await hold(true)).close(); // released on every path
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
