/**
 * CLI tests of `rkhil qemu exec` and `rkhil qemu shell` on real QEMU guests: output and exit
 * status over SSH and over the serial console, a timeout as an infrastructure failure (exit
 * 3), an unknown kernel as a user error (exit 2) listing what the mirror has, and the console
 * shell in pipe mode.
 */
import assert from "node:assert/strict";
import { testRunRoot } from "../test_dirs.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const main = new URL("../../main.ts", import.meta.url).pathname;
const runRoot = await testRunRoot("rkhil-cli-test-");

async function rkhil(
  args: string[],
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

for (const via of ["ssh", "serial"]) {
  Deno.test(`rkhil qemu exec --via ${via}: output and exit status`, opts, async () => {
    const r = await rkhil([
      "qemu",
      "exec",
      "--kernel",
      "debian:bookworm",
      "--via",
      via,
      "--run-dir",
      `${runRoot}/exec-${via}`,
      "--",
      "sh",
      "-c",
      'uname -r; echo "two words"; echo err >&2; exit 7',
    ]);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stdout, /^6\.1\.\d+-\d+-arm64\ntwo words\nerr\n$/);
    const raw = await Deno.readTextFile(`${runRoot}/exec-${via}/console.raw`);
    assert.match(raw, /rkhil-init: ready/);
  });
}

Deno.test("rkhil qemu exec: a timeout is an infrastructure failure (exit 3)", opts, async () => {
  const r = await rkhil([
    "qemu",
    "exec",
    "--kernel",
    "debian:bookworm",
    "--timeout",
    "3",
    "--run-dir",
    `${runRoot}/timeout`,
    "--",
    "sleep 60",
  ]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /timed out after 3000 ms/);
  assert.match(r.stderr, /infrastructure failure \(MISS\)/);
});

Deno.test(
  "rkhil qemu exec: an unknown kernel is a user error listing the mirror",
  opts,
  async () => {
    const r = await rkhil(["qemu", "exec", "--kernel", "debian:6.1.999-9", "--", "true"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no arm64 kernel package with version 6\.1\.999-9/);
    assert.match(r.stderr, /versions it has/);
    const s = await rkhil(["qemu", "exec", "--kernel", "debian:nope", "--", "true"]);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /debian:bookworm/);
  },
);

Deno.test("rkhil qemu shell: pipe mode runs stdin on the console", opts, async () => {
  const r = await rkhil(
    ["qemu", "shell", "--kernel", "debian:trixie", "--run-dir", `${runRoot}/shell`],
    "echo piped-$((40+2))\nuname -r\n",
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^piped-42\r?$/m);
  assert.match(r.stdout, /^6\.12\.\d+\+deb13-arm64\r?$/m);
});
