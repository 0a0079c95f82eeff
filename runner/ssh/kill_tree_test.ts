/**
 * runner/ssh/kill_tree.ts on real process trees on this host, under the three shells a target
 * runs it with (busybox ash as in the QEMU guest, dash and bash as on a Debian board): every
 * process of the command ends (children, orphans, a TERM-ignoring shell, a program whose name
 * holds `) `), an unrelated process survives.
 *
 * @module
 */
import assert from "node:assert/strict";
import { hostCommand } from "../debian/host_tools.ts";
import {
  describeKill,
  EXEC_TAG_VAR,
  execTagLine,
  killTreeScript,
  newExecTag,
  parseKillReport,
} from "./kill_tree.ts";

const SHELLS: readonly (readonly [string, string[]])[] = [
  ["busybox", ["sh", "-c"]],
  ["dash", ["-c"]],
  ["bash", ["-c"]],
];

/** PIDs whose command line is `sleep <secs>` (or a program named so, as argv[0]'s tail). */
function pidsRunning(secs: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      if (argv.includes(secs) && /sleep|\(c$/.test(argv[0])) out.push(Number(e.name));
    } catch { /* gone meanwhile */ }
  }
  return out;
}

/** Distinct sleep lengths for this run (other tests on the machine may sleep too). */
function secs(n: number): string[] {
  const base = 50_000 + Math.floor(Math.random() * 40_000);
  return Array.from({ length: n }, (_, i) => `${base + i}.5`);
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start `script` as an exec channel would (tagged, stdin /dev/null); returns the shell. */
async function startCommand(shell: readonly [string, string[]], script: string, tag: string) {
  const cmd = await hostCommand(shell[0], {
    args: [...shell[1], `${execTagLine(tag)}\n${script}`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  });
  return cmd.spawn();
}

async function runKill(shell: readonly [string, string[]], script: string) {
  const out = await (await hostCommand(shell[0], {
    args: [...shell[1], script],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

for (const shell of SHELLS) {
  const name = shell[0] === "busybox" ? "busybox ash" : shell[0];
  Deno.test(`kill_tree (${name}): children, orphans and a TERM-ignoring shell end`, async () => {
    const tag = newExecTag();
    const [a, b, c, d, other] = secs(5);
    const dir = await Deno.makeTempDir({ prefix: "rkhil-kill-tree-" });
    // A program whose name holds ") " and "(": the /proc/PID/stat parse must not trip on it.
    const odd = `${dir}/a) b (c`;
    await Deno.copyFile("/usr/bin/sleep", odd);
    await Deno.chmod(odd, 0o755);
    const unrelated = (await hostCommand("sleep", { args: [other], stdin: "null" })).spawn();
    const child = await startCommand(
      shell,
      [
        "echo a",
        `(sleep ${a} &)`, // an orphan (reparented to init), found by its tag
        `env -i "${odd}" ${d} &`, // no tag, found as a child of the shell
        `sleep ${b} &`,
        `sh -c "trap '' TERM; sleep ${c}; true"`, // ignores TERM: KILLed after the grace period
        "echo b",
      ].join("\n"),
      tag,
    );
    try {
      await waitFor(
        () => [a, b, c, d].every((s) => pidsRunning(s).length === 1),
        10_000,
        "the command's processes",
      );
      const t0 = performance.now();
      const r = await runKill(shell, killTreeScript(child.pid, tag, 500));
      const ms = performance.now() - t0;
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
      const report = parseKillReport(r.stdout);
      assert.ok(report, r.stdout);
      assert.equal(report.left, 0);
      // The shell, 4 sleeps (one a renamed copy) and the TERM-ignoring sh.
      assert.equal(report.found, 6, r.stdout);
      assert.ok(ms < 6_000, `took ${ms.toFixed(0)} ms`);
      for (const s of [a, b, c, d]) assert.deepEqual(pidsRunning(s), [], `sleep ${s} left`);
      const st = await child.status;
      assert.equal(st.signal, "SIGTERM");
      assert.equal(pidsRunning(other).length, 1, "an unrelated process was killed");
    } finally {
      for (const s of [a, b, c, d]) {
        for (const p of pidsRunning(s)) Deno.kill(p, "SIGKILL");
      }
      unrelated.kill("SIGKILL");
      await unrelated.status;
      await child.status.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("kill_tree: a shell that leads its process group takes untagged orphans along", async () => {
  // OpenSSH makes each session's shell a session (and group) leader; setsid does the same.
  const tag = newExecTag();
  const [a, b] = secs(2);
  const child = (await hostCommand("setsid", {
    args: ["dash", "-c", `${execTagLine(tag)}\n(env -i sleep ${a} &)\nsleep ${b}; echo b`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  })).spawn();
  try {
    await waitFor(() => pidsRunning(a).length + pidsRunning(b).length === 2, 10_000, "sleeps");
    const r = await runKill(["dash", ["-c"]], killTreeScript(child.pid, tag));
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(parseKillReport(r.stdout), { found: 3, left: 0 });
    assert.deepEqual([...pidsRunning(a), ...pidsRunning(b)], []);
  } finally {
    for (const p of [...pidsRunning(a), ...pidsRunning(b)]) Deno.kill(p, "SIGKILL");
    await child.status;
  }
});

Deno.test("kill_tree: a shell that is already gone: nothing left, exit 0", async () => {
  const gone = (await hostCommand("dash", { args: ["-c", "exit 0"], stdin: "null" })).spawn();
  await gone.status;
  const r = await runKill(["busybox", ["sh", "-c"]], killTreeScript(gone.pid, newExecTag()));
  assert.equal(r.code, 0, r.stdout);
  assert.deepEqual(parseKillReport(r.stdout), { found: 1, left: 0 });
});

Deno.test("kill_tree: arguments and the report line are checked", () => {
  const tag = newExecTag();
  assert.match(tag, /^[0-9a-f]{16}$/);
  assert.notEqual(tag, newExecTag());
  assert.equal(execTagLine(tag), `export ${EXEC_TAG_VAR}=${tag};`);
  for (const bad of ["", "ABCDEF0123", "0123456; rm -rf /", "abc", "x".repeat(70)]) {
    assert.throws(() => execTagLine(bad), RangeError);
    assert.throws(() => killTreeScript(100, bad), RangeError);
  }
  for (const pid of [0, 1, -5, 1.5, NaN, 2 ** 60]) {
    assert.throws(() => killTreeScript(pid, tag), RangeError);
  }
  for (const g of [-1, 60_001, NaN]) assert.throws(() => killTreeScript(100, tag, g), RangeError);
  assert.match(killTreeScript(4242, tag, 250), /waitgone 3\n/);
  assert.deepEqual(parseKillReport("x\nrkhil-kill: found 3 left 1\n"), { found: 3, left: 1 });
  // What a timeout's hint and the log say: what the report says, never "killed" unless left 0.
  const said = (out: string) => describeKill(parseKillReport(out));
  assert.equal(
    said("rkhil-kill: found 3 left 0\n"),
    "its 3 processes found in the target were killed",
  );
  assert.equal(
    said("rkhil-kill: found 1 left 0\n"),
    "its 1 process found in the target was killed",
  );
  assert.equal(
    said("rkhil-kill: found 3 left 1\n"),
    "stopping it in the target left 1 of its 3 processes running",
  );
  assert.equal(
    said("rkhil-kill: found 3"),
    "stopping it in the target did not finish: processes of it may be left running",
  );
  for (
    const junk of [
      "",
      "rkhil-kill: found 3",
      "rkhil-kill: found -1 left 0",
      "rkhil-kill: found 3 left 0 extra",
      "rkhil-kill: found 99999999999 left 0",
      "\0\xff".repeat(1000),
    ]
  ) assert.equal(parseKillReport(junk), null, JSON.stringify(junk.slice(0, 40)));
});
