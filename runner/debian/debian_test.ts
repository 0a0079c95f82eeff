import assert from "node:assert/strict";
import { parseDeb822, parseOneLine, pickDebianMirrors } from "./sources.ts";
import { compareDebVersions } from "./version.ts";
import { parseKernelSpec } from "./kernel.ts";
import { UserInputError } from "../errors.ts";
import { missingHostTools } from "./host_tools.ts";

Deno.test("deb822 and one-line sources are parsed; security mirror is told apart", () => {
  const deb822 = [
    "Types: deb",
    "# a comment",
    "URIs: http://mirror.invalid/debian",
    "Suites: bookworm bookworm-updates",
    "Components: main",
    "Signed-By: /usr/share/keyrings/x.gpg",
    "",
    "Types: deb",
    "URIs: http://mirror.invalid/debian-security",
    "Suites: bookworm-security",
    "Components: main",
    "",
    "Types: deb-src",
    "URIs: http://src.invalid/debian",
    "Suites: bookworm",
    "Components: main",
  ].join("\n");
  const e = parseDeb822(deb822, "t.sources");
  assert.equal(e.length, 2);
  assert.deepEqual(e[0].suites, ["bookworm", "bookworm-updates"]);
  assert.equal(e[0].signedBy, "/usr/share/keyrings/x.gpg");
  const one = parseOneLine(
    "deb [arch=amd64 signed-by=/k.gpg] http://other.invalid/apt cloud-sdk main\n" +
      "# deb http://x.invalid/debian sid main\n",
    "t.list",
  );
  assert.equal(one.length, 1);
  assert.equal(one[0].signedBy, "/k.gpg");
  const m = pickDebianMirrors([...one, ...e]);
  assert.equal(m.archive.uri, "http://mirror.invalid/debian");
  assert.equal(m.security?.uri, "http://mirror.invalid/debian-security");
});

Deno.test("no Debian source is a UserInputError with a hint", () => {
  assert.throws(() => pickDebianMirrors([]), UserInputError);
});

Deno.test("Debian version ordering follows dpkg (~, epochs, revisions)", () => {
  const lt = (a: string, b: string) => assert.ok(compareDebVersions(a, b) < 0, `${a} < ${b}`);
  lt("6.1.176-1", "6.1.192-2");
  lt("7.3.4-1~bpo13+1", "7.3.4-1");
  lt("6.12.95-1~bpo12+1", "6.12.117-1~deb12u1");
  lt("1.0~rc1", "1.0");
  lt("1:1.0", "2:0.1");
  lt("6.9", "6.10");
  assert.equal(compareDebVersions("1.0-1", "1.0-1"), 0);
  assert.equal(compareDebVersions("0:1.0", "1.0"), 0);
});

Deno.test("kernel specs: suites, versions, and clear errors", () => {
  assert.deepEqual(parseKernelSpec("debian:trixie").kind, "suite");
  assert.deepEqual(parseKernelSpec("debian:6.1.192-2"), {
    kind: "version",
    version: "6.1.192-2",
    text: "debian:6.1.192-2",
  });
  assert.throws(() => parseKernelSpec("trixie"), UserInputError);
  assert.throws(() => parseKernelSpec("debian:potato"), /unknown Debian suite/);
});

Deno.test("missingHostTools reports the package of a missing tool", async () => {
  const m = await missingHostTools(["rkhil-no-such-tool"]);
  assert.deepEqual(m, [{ tool: "rkhil-no-such-tool", pkg: "rkhil-no-such-tool" }]);
});
