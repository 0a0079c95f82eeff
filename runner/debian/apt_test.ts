/**
 * Reading `apt-get update` output for suites apt refused (runner/debian/apt.ts).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { suiteProblems } from "./apt.ts";

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
