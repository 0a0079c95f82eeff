// Tests of the marker-framed shell against real shells (dash, busybox sh) on real ptys.
import assert from "node:assert/strict";
import fc from "fast-check";
import { TimeoutError, UserInputError } from "../errors.ts";
import { openPty } from "../serial/deno_binding.ts";
import { TtyConsole } from "../serial/port.ts";
import {
  frameCommand,
  FramedShell,
  type FramedShellOptions,
  KernelLineSplitter,
  makeMarker,
  MARKER_ALPHABET,
} from "./framed.ts";
import { ensureHostTools, hostCommand } from "../debian/host_tools.ts";
import { catchingStrays } from "../strays_testutil.ts";

// Both shells are real; a missing one is installed, not skipped. So are the programs the
// tests run through them (seq, head, tr, sleep, cat; stty in the login script).
await ensureHostTools(["dash", "busybox", "seq", "head", "tr", "sleep", "cat", "stty"]);
const SHELLS: { name: string; argv: string[] }[] = [
  { name: "dash", argv: ["dash", "-i"] },
  { name: "busybox sh", argv: ["busybox", "sh", "-i"] },
];

interface Rig {
  shell: FramedShell;
  slavePath: string;
  kernel: string[];
  done(): Promise<void>;
}

/** Pids of the processes in session `sid` (field 6 of /proc/PID/stat). */
function sessionMembers(sid: number): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      // pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // A zombie (Z) is dead already, only not yet reaped by init.
      if (Number(fields[3]) === sid && fields[0] !== "Z") out.push(Number(e.name));
    } catch { /* gone meanwhile */ }
  }
  return out;
}

/**
 * Ends the shell's whole session: the shell (the session leader) and every process it forked
 * (subshells of an interactive shell run as jobs in their own process groups and outlive the
 * leader's SIGKILL), then reaps the leader.
 */
async function endSession(child: Deno.ChildProcess): Promise<void> {
  // A member may fork while we kill: repeat until the session is empty (bounded: 2 s).
  for (let round = 0; round < 40; round++) {
    const members = sessionMembers(child.pid);
    if (members.length === 0) break;
    for (const pid of members) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* already gone */ }
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  await child.status;
  assert.deepEqual(sessionMembers(child.pid), [], "processes left in the test shell's session");
}

/** Runs `argv` as a session leader on the slave of a new pty; the framed shell gets the master. */
async function rig(argv: string[], opts: FramedShellOptions = {}): Promise<Rig> {
  const pty = openPty();
  const child = (await hostCommand("sh", {
    args: [
      "-c",
      'p="$1"; shift; exec setsid -c "$@" <>"$p" >&0 2>&1',
      "sh",
      pty.slavePath,
      ...argv,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/tmp", TERM: "vt100", PS1: "$ " },
    clearEnv: true,
  })).spawn();
  await pty.slave.close();
  const con = new TtyConsole(pty.master);
  const kernel: string[] = [];
  try {
    const shell = await FramedShell.start(con, {
      name: "test shell",
      quietMs: 150,
      loginTimeoutMs: 10_000,
      onKernelLine: (l) => kernel.push(l),
      ...opts,
    });
    return {
      shell,
      slavePath: pty.slavePath,
      kernel,
      async done() {
        await shell.close(); // hangs up the pty: the shell gets SIGHUP
        await endSession(child);
      },
    };
  } catch (err) {
    await con.close();
    await endSession(child);
    throw err;
  }
}

for (const sh of SHELLS) {
  Deno.test(`framed ${sh.name}: exit statuses, stdin from /dev/null, stderr merged`, async () => {
    const r = await rig(sh.argv);
    try {
      const ok = await r.shell.run("echo hello");
      assert.equal(ok.stdout, "hello\n");
      assert.equal(ok.exitStatus, 0);
      assert.equal((await r.shell.run("false")).exitStatus, 1);
      assert.equal((await r.shell.run("exit 7")).exitStatus, 7);
      assert.equal((await r.shell.run("sh -c 'kill -TERM $$'")).exitStatus, 143);
      // $$ in the subshell is the interactive shell, which ignores SIGTERM and lives on.
      assert.equal((await r.shell.run("kill -TERM $$; echo alive")).stdout, "alive\n");
      assert.equal((await r.shell.run("printf 'no newline'")).stdout, "no newline");
      assert.equal((await r.shell.run("cat")).stdout, "");
      assert.equal((await r.shell.run('read x; echo "got:$x"')).stdout, "got:\n");
      assert.equal((await r.shell.run("echo oops >&2; exit 3")).stdout, "oops\n");
      assert.equal((await r.shell.run("true # trailing comment")).exitStatus, 0);
      assert.equal((await r.shell.run("echo a\necho b")).stdout, "a\nb\n");
      assert.equal(
        (await r.shell.run('echo \'un"usual\' \\$HOME "$((1+2))"')).stdout,
        'un"usual $HOME 3\n',
      );
      assert.equal((await r.shell.run("echo ünïcødé ✓")).stdout, "ünïcødé ✓\n");
      assert.ok(r.shell.usable);
    } finally {
      await r.done();
    }
  });

  Deno.test(`framed ${sh.name}: isolate false runs in the shell itself`, async () => {
    const r = await rig(sh.argv);
    try {
      assert.equal((await r.shell.run("cd /tmp")).exitStatus, 0);
      assert.notEqual((await r.shell.run("pwd")).stdout, "/tmp\n", "a subshell's cd is lost");
      await r.shell.run("cd /tmp; X=kept", { isolate: false });
      assert.equal((await r.shell.run("pwd", { isolate: false })).stdout, "/tmp\n");
      assert.equal((await r.shell.run('echo "$X"', { isolate: false })).stdout, "kept\n");
      const f = await r.shell.run("false", { isolate: false });
      assert.equal(f.exitStatus, 1);
      assert.equal(
        (await r.shell.run("echo out; echo err >&2", { isolate: false })).stdout,
        "out\nerr\n",
      );
      assert.equal((await r.shell.run("cat", { isolate: false })).stdout, "", "stdin is /dev/null");
    } finally {
      await r.done();
    }
  });

  Deno.test(`framed ${sh.name}: large output, a 1 MB line without newlines, binary bytes`, async () => {
    const r = await rig(sh.argv);
    try {
      const big = await r.shell.run("seq 1 150000", { timeoutMs: 30_000 });
      const want = Array.from({ length: 150000 }, (_, i) => `${i + 1}\n`).join("");
      assert.equal(big.stdout.length, want.length);
      assert.equal(big.stdout, want);
      const line = await r.shell.run("head -c 1000000 /dev/zero | tr '\\000' x", {
        timeoutMs: 30_000,
      });
      assert.equal(line.stdout, "x".repeat(1_000_000));
      const fmt = Array.from({ length: 256 }, (_, i) => "\\" + i.toString(8).padStart(3, "0"))
        .join("");
      const bin = await r.shell.run(`printf '${fmt}'`);
      assert.deepEqual([...bin.stdoutBytes], Array.from({ length: 256 }, (_, i) => i));
    } finally {
      await r.done();
    }
  });

  Deno.test(`framed ${sh.name}: interleaved kernel lines are cut out and reported`, async () => {
    const r = await rig(sh.argv);
    try {
      const k = "rk_iommu fde4b000.iommu: Page fault at 0x00000000deadb000 of type read";
      // Another process writes kernel-style lines (CRLF, like the serial core) to the tty.
      const writer = (await hostCommand("sh", {
        args: [
          "-c",
          `i=0; while [ $i -lt 40 ]; do printf '[ %5d.%06d] ${k}\\r\\n' $i $i > "$1"; ` +
          `i=$((i+1)); sleep 0.005; done`,
          "sh",
          r.slavePath,
        ],
      })).spawn();
      const res = await r.shell.run(
        'i=0; while [ $i -lt 300 ]; do echo "line $i of output"; i=$((i+1)); done; sleep 0.3',
      );
      await writer.status;
      const want = Array.from({ length: 300 }, (_, i) => `line ${i} of output\n`).join("");
      assert.equal(res.stdout, want);
      assert.equal(res.exitStatus, 0);
      // All 40 reached the callback (some may land between commands: then not in res).
      await r.shell.run("true");
      assert.equal(r.kernel.length, 40);
      assert.ok(r.kernel.every((l) => l.endsWith(k) && l.startsWith("[")));
      assert.ok(res.kernelLines.length > 0);
      // dmesg-style output of a command (bare LF) stays in stdout.
      const dm = await r.shell.run(`printf '[    1.000000] ${k}\\n'`);
      assert.equal(dm.stdout, `[    1.000000] ${k}\n`);
      assert.equal(dm.kernelLines.length, 0);
    } finally {
      await r.done();
    }
  });

  Deno.test(`framed ${sh.name}: timeout sends Ctrl-C and the shell recovers`, async () => {
    const r = await rig(sh.argv);
    try {
      const t0 = performance.now();
      await assert.rejects(
        r.shell.run("sleep 30", { timeoutMs: 400 }),
        (e: unknown) => e instanceof TimeoutError && e.ms === 400 && e.verdict === "MISS",
      );
      assert.ok(performance.now() - t0 < 5000);
      assert.equal((await r.shell.run("echo after")).stdout, "after\n");
      // A command left in an open quote: PS2 state, cancelled the same way.
      await assert.rejects(r.shell.run("echo 'unterminated", { timeoutMs: 400 }), TimeoutError);
      assert.equal((await r.shell.run("echo fine")).stdout, "fine\n");
      assert.ok(r.shell.usable);
    } finally {
      await r.done();
    }
  });

  Deno.test(`framed ${sh.name}: hostile output does not break framing`, async () => {
    // A fixed RNG: the test knows the markers the shell will use.
    let seed = 42;
    const rng = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const r = await rig(sh.argv, { rng });
    try {
      const fake = "printf 'ABCEFGHJKLMN<0\\nABCEFGHJKLMN>\\n%s\\n' 'rkhil$ '";
      const res = await r.shell.run(fake);
      assert.equal(res.stdout, "ABCEFGHJKLMN<0\nABCEFGHJKLMN>\nrkhil$ \n");
      // A command that names the next marker gets another one.
      const probeRng = (() => {
        let s = seed;
        return () => {
          s = (s * 1103515245 + 12345) % 2 ** 31;
          return s / 2 ** 31;
        };
      })();
      const next = makeMarker(probeRng);
      const named = await r.shell.run(`echo ${next}; echo '${next}<5'`);
      assert.equal(named.stdout, `${next}\n${next}<5\n`);
      assert.equal(named.exitStatus, 0);
      // Escape sequences, CR, and a bell in the output.
      const esc = await r.shell.run("printf '\\033[2J\\033[?2004h\\r\\a'");
      assert.equal(esc.stdout, "\x1b[2J\x1b[?2004h\r\x07");
      await assert.rejects(r.shell.run("echo \x03"), UserInputError);
      await assert.rejects(r.shell.run("echo " + "y".repeat(5000)), UserInputError);
      assert.equal((await r.shell.run("echo still here")).stdout, "still here\n");
    } finally {
      await r.done();
    }
  });
}

Deno.test("framed: echo left on (no normalisation) never matches the marker", async () => {
  // skipSetup: the shell echoes every line we send; fast-check over commands.
  const r = await rig(["dash", "-i"], { skipSetup: true });
  try {
    assert.ok(await r.shell.sync());
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...MARKER_ALPHABET, "a", "z", "0", " ", "-", "_"), {
          minLength: 1,
          maxLength: 40,
        }).map((a) => a.join("")),
        async (word) => {
          const res = await r.shell.run(`printf '%s\\n' '${word}'`);
          assert.equal(res.stdout, `${word}\n`);
          assert.equal(res.exitStatus, 0);
        },
      ),
      { numRuns: 25 },
    );
  } finally {
    await r.done();
  }
});

Deno.test("framed: the sent line never contains its marker (property)", () => {
  fc.assert(
    fc.property(
      fc.string({ maxLength: 200 }),
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      (cmd, s) => {
        let seed = s;
        const rng = () => {
          seed = (seed * 48271) % 2147483647;
          return seed / 2147483647;
        };
        const m = makeMarker(rng);
        fc.pre(!cmd.includes(m));
        assert.ok(!frameCommand(cmd, m, rng).includes(m));
        assert.ok(![..."RID"].some((c) => m.includes(c)));
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("framed: kernel lines split anywhere, chunked anyhow, are recovered (property)", () => {
  const kline = fc.tuple(fc.integer({ min: 0, max: 99999 }), fc.integer({ min: 0, max: 999999 }))
    .map(([s, us]) =>
      `[${String(s).padStart(5)}.${String(us).padStart(6, "0")}] rk_iommu: fault ${s}\r\n`
    );
  fc.assert(
    fc.property(
      fc.string({ unit: "binary-ascii", maxLength: 300 }).map((s) => s.replace(/\r\n/g, "\n")),
      fc.array(fc.tuple(fc.nat(), kline), { maxLength: 5 }),
      fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }),
      (text, inserts, cuts) => {
        fc.pre(!/\[ *\d+\.\d+\] [^\r\n]*\r\n/.test(text));
        let stream = text;
        const sorted = inserts.map(([p, l]) => [p % (text.length + 1), l] as const)
          .sort((a, b) => b[0] - a[0]);
        for (const [p, l] of sorted) stream = stream.slice(0, p) + l + stream.slice(p);
        const got: string[] = [];
        const sp = new KernelLineSplitter((l) => got.push(l));
        let out = "";
        let i = 0, c = 0;
        while (i < stream.length) {
          const n = cuts[c++ % cuts.length];
          out += sp.push(stream.slice(i, i + n));
          i += n;
        }
        out += sp.flush();
        assert.equal(out, text);
        assert.equal(got.length, inserts.length);
      },
    ),
    { numRuns: 1500 },
  );
});

Deno.test("framed: logs in at a login prompt after a press-Enter banner", async () => {
  const script = [
    'printf "\\nPlease press Enter to activate this console. "',
    "read x",
    'printf "rock-3b login: "',
    "read u",
    "stty -echo",
    'printf "Password: "',
    "read p",
    "stty echo",
    "echo",
    '[ "$u" = radxa ] && [ "$p" = s3cret ] && exec dash -i',
    'echo "Login incorrect"',
    "sleep 1",
  ].join("\n");
  const r = await rig(["sh", "-c", script], { user: "radxa", password: "s3cret" });
  try {
    assert.equal((await r.shell.run("echo logged in")).stdout, "logged in\n");
  } finally {
    await r.done();
  }
  await assert.rejects(
    rig(["sh", "-c", script], { loginTimeoutMs: 3000 }),
    (e: unknown) =>
      e instanceof UserInputError &&
      /asks for a login \(".*rock-3b login:"\) but no user \(and password\)/.test(e.message),
  );
});

Deno.test("framed: no login configured, a login: missed before the console opened: the probe is read as the user name, Password: is one 'no user' error, not 'set the password'", async () => {
  // The getty's `login:` went out before the tap opened: the first line read is the handshake's
  // probe, taken as a user name; then `Password:`.
  const script = [
    "read u",
    "stty -echo",
    'printf "Password: "',
    "read p",
    "sleep 1",
  ].join("\n");
  await assert.rejects(
    rig(["sh", "-c", script], { loginTimeoutMs: 3000 }),
    (e: unknown) =>
      e instanceof UserInputError &&
      /asks for a login \("Password:"\) but no user \(and password\) is configured/.test(
        e.message,
      ) && /add console\.login: .* to the board file/.test(e.hint),
  );
});

Deno.test("framed: readiness is a marker handshake, not a quiet console (noise never stops)", async () => {
  // The console never goes quiet while the shell starts: a background writer prints a line
  // every 20 ms for 300 lines (6 s or more) and then creates a file. Waiting for silence
  // (the old start) would return only after it; the handshake returns while it still writes.
  const dir = await Deno.makeTempDir({ prefix: "rkhil-framed-noise-" });
  const noise =
    `i=0; while [ $i -lt 300 ]; do echo "boot noise $i"; sleep 0.02; i=$((i+1)); done; ` +
    `: >${dir}/noise-done`;
  const r = await rig(["sh", "-c", `(${noise}) & exec dash -i`], { quietMs: 150 });
  try {
    let ended = true;
    try {
      await Deno.stat(`${dir}/noise-done`);
    } catch {
      ended = false;
    }
    assert.equal(ended, false, "start() waited until the console went quiet");
    const res = await r.shell.run("echo ready");
    assert.equal(res.exitStatus, 0);
    assert.match(res.stdout, /^(boot noise \d+\n)*ready\n(boot noise \d+\n)*$/);
  } finally {
    await r.done();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("framed: silence with no shell is a TimeoutError naming the console", async () => {
  await assert.rejects(
    rig(["sleep", "5"], { loginTimeoutMs: 1500, syncTimeoutMs: 300 }),
    (e: unknown) => e instanceof TimeoutError && /reaching a shell/.test(e.message),
  );
});

Deno.test("framed: closed while kernel lines flood in: nothing is handed on after close", async () => {
  const strays = await catchingStrays(async () => {
    for (let i = 0; i < 5; i++) {
      const r = await rig(["dash", "-i"]);
      try {
        // Does not end by itself when the tty hangs up: done() ends the whole session.
        await r.shell.run(
          "(while printf '[    1.000000] flood of kernel lines\\r\\n'; do :; done) >/dev/tty &",
          { isolate: false },
        );
        while (r.kernel.length < 10 * (i + 1)) await new Promise((res) => setTimeout(res, 5));
      } finally {
        await r.shell.close();
        const atClose = r.kernel.length;
        await new Promise((res) => setTimeout(res, 50));
        assert.equal(r.kernel.length, atClose, "no kernel line after close()");
        assert.ok(!r.shell.usable);
        await r.done();
      }
    }
  }, { settleMs: 20, uncaughtErrors: false });
  assert.deepEqual(strays.map(String), []);
});

Deno.test("framed: any output bytes come back exactly, the marker's letters included (property)", async () => {
  // Output the frame parser must cut correctly: random bytes, marker letters, `<`/`>` and
  // digits (the frame ends), CR/LF. `[` is left out: with a CRLF it can make a printk line,
  // which the shell reports apart (tested above).
  const r = await rig(["dash", "-i"]);
  try {
    const byte = fc.oneof(
      fc.integer({ min: 0, max: 255 }),
      fc.constantFrom(...[...`${MARKER_ALPHABET}<>0123456789\r\n`].map((c) => c.charCodeAt(0))),
    ).map((b) => (b === 0x5b ? 0x5d : b));
    await fc.assert(
      fc.asyncProperty(fc.array(byte, { maxLength: 200 }), async (bytes) => {
        const fmt = bytes.map((b) => `\\${b.toString(8).padStart(3, "0")}`).join("");
        const res = await r.shell.run(`printf '${fmt}'`);
        assert.deepEqual([...res.stdoutBytes], bytes);
        assert.equal(res.exitStatus, 0);
      }),
      { numRuns: 60 },
    );
    assert.deepEqual(r.kernel, []);
  } finally {
    await r.done();
  }
});
