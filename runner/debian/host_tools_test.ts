/**
 * The host-program declaration and its one install path: a source scan that fails on any
 * undeclared program or any spawn around the installing helpers, the scanner's own teeth, the
 * shell-script analysis, and the install path's refusals.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ensureHostTool,
  ensureHostTools,
  HOST_TOOLS,
  hostCommand,
  hostToolPackage,
  isDeclared,
  isHostProgram,
  scriptHostTools,
  shellScriptOf,
  UndeclaredToolError,
  which,
} from "./host_tools.ts";
import { run } from "./proc.ts";
import { scanProject, scanShellScript, scanTypeScript } from "./spawn_scan.ts";
import { MAX_SCRIPT_BYTES, shellPrograms } from "./shell_programs.ts";
import { COMMANDS } from "../facts/collect.ts";
import { QEMU_HOST_TOOLS } from "../qemu/target.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const names = async (script: string) => (await shellPrograms(script)).programs.map((p) => p.name);

Deno.test("every host program the sources start is declared; nothing bypasses the helpers", async () => {
  const r = await scanProject(ROOT);
  assert.deepEqual(
    r.problems.map((p) => `${p.file}:${p.line}: ${p.message}`),
    [],
    "declare each program in runner/debian/host_tools.ts (HOST_TOOLS) with its Debian " +
      "package, and start it with run() or hostCommand()",
  );
  // The scan saw the sources it must see, and found spawns through every path.
  for (
    const f of [
      "rkhil",
      ".ci/run",
      "runner/debian/kernel.ts",
      "runner/qemu/machine.ts",
      "runner/target/cli.ts",
      "bench/serial_bench.ts",
    ]
  ) {
    assert.ok(r.files.includes(f), `${f} scanned`);
  }
  const seen = (program: string, file: string) =>
    r.sites.some((s) => s.program === program && s.file === file);
  assert.ok(seen("depmod", "runner/debian/kernel.ts"), "run() in kernel.ts");
  assert.ok(seen("setpriv", "runner/qemu/machine.ts"), "the watchdog's sh -c script (a const)");
  assert.ok(seen("xz", "runner/qemu/initramfs.ts"), "hostCommand() in initramfs.ts");
  assert.ok(seen("npm", "rkhil"), "the bootstrap");
  assert.ok(seen("deno", "runner/cli/testutil.ts"), "Deno.execPath()");
  assert.ok(!r.files.some((f) => f.startsWith("target/") || f.includes("/testdata/")));
});

Deno.test("the scanner catches undeclared programs and bypasses (a sample)", async () => {
  const ts = [
    'import { run } from "../debian/proc.ts";',
    'import { hostCommand } from "../debian/host_tools.ts";',
    "const SCRIPT = ['set -e', 'rkhil-undeclared-d --x | grep y'].join('\\n');",
    '// new Deno.Command("in-a-comment") is not code',
    'const s = "new Deno.Command(\\"in-a-string\\")";',
    'await new Deno.Command("rkhil-undeclared-a", { args: [] }).output();',
    'await run("rkhil-undeclared-b", ["-x"]);',
    'await (await hostCommand("sh", { args: ["-c", `rkhil-undeclared-c ${s} && cat /x`] })).output();',
    'await run("sh", ["-c", SCRIPT]);',
    'await run("sh", ["-c", "uname -r; " + "rkhil-undeclared-e"]);',
    'await ensureHostTools(["dtc", "rkhil-undeclared-f"]);',
    "const c = new Deno.Command(someVariable);",
    "const d = new Deno.Command(Deno.execPath(), { args: [] });",
    'const x = obj.run("not-a-host-program", { timeoutMs: 1 });',
    "Deno.run({ cmd: ['x'] });",
    'import { spawn } from "node:child_process";',
    'await runResolved("apt-get", "/usr/bin/apt-get", []);',
  ].join("\n");
  const r = await scanTypeScript("sample.ts", ts);
  const msgs = r.problems.map((p) => `${p.line}: ${p.message}`);
  for (const bad of ["a", "b", "c", "d", "e", "f"]) {
    assert.ok(
      msgs.some((m) => m.includes(`"rkhil-undeclared-${bad}"`)),
      `rkhil-undeclared-${bad} not caught: ${msgs.join("\n")}`,
    );
  }
  assert.ok(msgs.some((m) => /^6: new Deno.Command\("rkhil-undeclared-a"\) bypasses/.test(m)));
  assert.ok(msgs.some((m) => /^12: new Deno.Command\(someVariable\) bypasses/.test(m)));
  assert.ok(msgs.some((m) => /^15: Deno.run/.test(m)));
  assert.ok(msgs.some((m) => /^16: child_process/.test(m)));
  assert.ok(msgs.some((m) => /^17: runResolved/.test(m)));
  assert.ok(!msgs.some((m) => /in-a-comment|in-a-string|not-a-host-program|^13:/.test(m)));
  assert.ok(r.sites.some((s) => s.program === "cat" && s.via === "hostCommand() -c"));
  assert.ok(r.sites.some((s) => s.program === "deno" && s.line === 13));
  assert.equal(msgs.length, 11, msgs.join("\n"));

  const sh = await scanShellScript(
    "x.sh",
    "#!/usr/bin/env bash\nset -e\nf() { rkhil-undeclared-g; }\nf\nx=$(rkhil-undeclared-h | tr a b)\n",
  );
  assert.deepEqual(sh.problems.map((p) => `${p.line}: ${p.message}`), [
    '3: script runs undeclared host program "rkhil-undeclared-g"',
    '5: script runs undeclared host program "rkhil-undeclared-h"',
  ]);
  assert.deepEqual(sh.sites.map((s) => s.program), [
    "/usr/bin/env",
    "bash",
    "rkhil-undeclared-g",
    "rkhil-undeclared-h",
    "tr",
  ]);
  const broken = await scanShellScript("y.sh", "echo 'unterminated\n");
  assert.match(broken.problems[0].message, /does not parse as shell/);
});

Deno.test("the scanner never throws on hostile source text", async () => {
  const piece = fc.constantFrom(
    'new Deno.Command("sh", { args: ["-c", ',
    "hostCommand(",
    'run("x", [',
    'import { run } from "./proc.ts";',
    "ensureHostTools([",
    '"-c", ',
    "const S = [",
    "].join(",
    "`a ${",
    "}`",
    '"',
    "'",
    "`",
    "/*",
    "*/",
    "//",
    "/",
    "(",
    ")",
    "[",
    "]",
    "\\",
    "\n",
    "x",
    " + ",
  );
  await fc.assert(
    fc.asyncProperty(fc.array(piece, { maxLength: 30 }).map((a) => a.join("")), async (text) => {
      const r = await scanTypeScript("fuzz.ts", text);
      assert.ok(Array.isArray(r.sites) && Array.isArray(r.problems));
      for (const p of r.problems) assert.ok(p.line >= 1);
    }),
    { numRuns: 300 },
  );
});

Deno.test("shellPrograms: real scripts, builtins, functions, prefixes, expansions", async () => {
  const boot = await Deno.readTextFile(`${ROOT}/rkhil`);
  assert.deepEqual(await names(boot), ["dirname", "deno", "grep", "mkdir", "npm"]);
  // A relative path is the project's own script: listed, but not a host program.
  assert.deepEqual(await names(await Deno.readTextFile(`${ROOT}/.ci/run`)), ["dirname", "./rkhil"]);
  // The QEMU watchdog (runner/qemu/machine.ts): setpriv, and "$@" (QEMU) is not literal.
  assert.deepEqual(
    await names(
      'log="$1"; shift\nexec 3<&0\nsetpriv --pdeathsig KILL -- "$@" </dev/null &\n' +
        "( while read -r _ <&3; do :; done; kill -KILL $q 2>/dev/null ) &\nwait $q",
    ),
    ["setpriv"],
  );
  assert.deepEqual(
    await names(
      "command -v su >/dev/null && su nobody -s /bin/sh -c 'cat /proc/iomem'; " +
        "env -i A=1 /usr/bin/od -x f; exec nohup sleep 1; command -p ls; $(uname -r) " +
        "`id -u`; case $x in a) ls1 ;; b|c) ls2 ;; esac; X=1 Y=$(date) printf x; if [ -r f ]; " +
        "then true; fi",
    ),
    ["su", "/usr/bin/od", "sleep", "ls", "uname", "id", "ls1", "ls2", "date"],
  );
  // A program's line in the script.
  const r = await shellPrograms("true\n\n  gzip -c x |\n base64\n");
  assert.deepEqual(r.programs, [{ name: "gzip", line: 3 }, { name: "base64", line: 4 }]);
});

Deno.test("shellPrograms: hostile input gives programs or an error, never a throw", async () => {
  assert.match((await shellPrograms("echo 'open")).error ?? "", /reached EOF|quote/);
  assert.match((await shellPrograms("a(((")).error ?? "", /./);
  assert.match((await shellPrograms("x".repeat(MAX_SCRIPT_BYTES + 1))).error ?? "", /too long/);
  assert.deepEqual((await shellPrograms("")).programs, []);
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.constantFrom(
          "a",
          " ",
          "\n",
          "'",
          '"',
          "$(",
          ")",
          "`",
          "|",
          ";",
          "&",
          "{",
          "}",
          "<<",
          "EOF",
          "case",
          "in",
          "esac",
          "\\",
          "#",
          "=",
          "${",
        ),
        { maxLength: 40 },
      ).map((a) => a.join("")),
      async (s) => {
        const r = await shellPrograms(s);
        assert.ok(Array.isArray(r.programs));
        assert.ok(r.error === undefined || r.programs.length === 0);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("declarations: packages, patterns, host versus rkhil's own files", () => {
  assert.equal(hostToolPackage("busybox"), "busybox");
  assert.equal(hostToolPackage("strings"), "binutils");
  assert.equal(hostToolPackage("/usr/bin/ssh-keygen"), "openssh-client");
  assert.equal(hostToolPackage("dmesg"), "util-linux");
  assert.equal(hostToolPackage("aarch64-linux-gnu-gcc-14"), "gcc-14-aarch64-linux-gnu");
  assert.equal(hostToolPackage("rkhil-undeclared"), undefined);
  assert.ok(isDeclared("deno") && hostToolPackage("deno") === undefined);
  assert.ok(isHostProgram("grep") && isHostProgram("/usr/sbin/sshd") && isHostProgram("/bin/sh"));
  assert.ok(!isHostProgram("./rkhil") && !isHostProgram("/root/.cache/rkhil/x/usr/bin/gcc"));
  assert.ok(!isHostProgram("/tmp/rkhil-bb-1/sh") && !isHostProgram(""));
  assert.equal(shellScriptOf("sh", ["-c", "x"]), "x");
  assert.equal(shellScriptOf("/bin/bash", ["-ec", "y", "name"]), "y");
  assert.equal(shellScriptOf("busybox", ["sh", "-c", "z"]), "z");
  assert.equal(shellScriptOf("busybox", ["cat", "-c"]), undefined);
  assert.equal(shellScriptOf("sh", ["script.sh", "-c", "x"]), undefined);
  assert.equal(shellScriptOf("grep", ["-c", "x"]), undefined);
  // The programs the facts commands run: their tests run them on this host.
  for (const c of COMMANDS) {
    for (const a of c.applets) assert.ok(a === "[" || isDeclared(a), a); // [ is a builtin
  }
  for (const t of QEMU_HOST_TOOLS) assert.ok(isDeclared(t), t);
});

// Held in a variable so that the source scan (first test) does not see these deliberate ones.
const BOGUS = "rkhil-undeclared";

Deno.test("the install path refuses undeclared programs before anything runs", async () => {
  await assert.rejects(ensureHostTools(["grep", BOGUS]), UndeclaredToolError);
  await assert.rejects(run(BOGUS, []), (e: unknown) => {
    assert.ok(e instanceof UndeclaredToolError);
    assert.match(e.message, /"rkhil-undeclared" is not declared in runner\/debian\/host_tools\.ts/);
    return true;
  });
  // The script of a sh -c is checked before sh starts: the marker file is never written.
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      hostCommand("sh", { args: ["-c", `printf x >${dir}/ran; ${BOGUS}-x`] }),
      (e: unknown) => e instanceof UndeclaredToolError && e.tool === `${BOGUS}-x`,
    );
    await assert.rejects(
      scriptHostTools("cat /x | rkhil-undeclared-y", "test"),
      (e: unknown) => e instanceof UndeclaredToolError && e.tool === "rkhil-undeclared-y",
    );
    assert.equal(await Deno.stat(`${dir}/ran`).then(() => true, () => false), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ensured programs resolve to their paths; run() and hostCommand() start them", async () => {
  const r = await ensureHostTools(["sh", "/usr/bin/env", "grep"]);
  assert.equal(r.paths.sh, await which("sh"));
  assert.equal(r.paths["/usr/bin/env"], "/usr/bin/env");
  assert.equal(await ensureHostTool("deno"), Deno.execPath());
  assert.equal(await ensureHostTool("/usr/bin/deno"), "/usr/bin/deno"); // not an apt package
  const out = await run("sh", ["-c", "printf '%s\\n' a b | grep -c ."]);
  assert.equal(out.stdout, "2\n");
  const cmd = await hostCommand("grep", { args: ["-q", "x"], stdin: "null" });
  assert.equal((await cmd.output()).code, 1);
});

Deno.test("every declared package exists in this host's apt", async () => {
  const pkgs = [...new Set(Object.values(HOST_TOOLS))].sort();
  const show = () =>
    run("apt-cache", ["show", "--no-all-versions", ...pkgs], { allowFailure: true });
  let res = await show();
  if (res.code !== 0 && Deno.uid() === 0) {
    // A fresh machine has no package lists until the first apt-get update.
    await run("apt-get", ["update", "-q"], { timeoutMs: 600_000 });
    res = await show();
  }
  assert.equal(res.code, 0, res.stderr);
  const found = new Set([...res.stdout.matchAll(/^Package: (\S+)$/gm)].map((m) => m[1]));
  assert.deepEqual(pkgs.filter((p) => !found.has(p)), []);
});
