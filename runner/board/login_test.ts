// Serial login on a real pseudo terminal: a login program on the pty's slave (prompts as
// busybox login and agetty print them) and the recorder on its master, as on a USB UART.
import assert from "node:assert/strict";
import { InfraError, TimeoutError, UserInputError } from "../errors.ts";
import { hostCommand } from "../debian/host_tools.ts";
import { openPty } from "../serial/deno_binding.ts";
import { TtyConsole } from "../serial/port.ts";
import { ConsoleRecorder } from "../qemu/console.ts";
import { lastLine, waitForShell } from "./login.ts";

/** A getty + login on the slave: user root, password from $PW; then an interactive sh. */
const LOGIN_SCRIPT = `
echo '[    2.001] Run /init as init process'
i=0
while [ $i -lt 3 ]; do
  i=$((i+1))
  printf 'rock-3b login: '; read -r u
  printf 'Password: '; stty -echo; read -r p; stty echo; echo
  if [ "$u" = root ] && [ "$p" = "$PW" ]; then
    echo '[    9.5] random: crng init done'
    PS1='root@rock-3b:~# ' exec sh -i
  fi
  sleep 0.2; echo 'Login incorrect'
done
exit 1
`;

async function rig(script: string, pw = "s3cret!") {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-login-" });
  const pty = openPty();
  // The recorder listens before the program starts: nothing it prints is missed. Our slave
  // descriptor stays open until done(): were it closed before the program opened the slave,
  // the master would read a hang-up and the console would end.
  const con = new TtyConsole(pty.master, { logPath: `${dir}/console.raw` });
  const recorder = await ConsoleRecorder.start(con, dir);
  const child = (await hostCommand("sh", {
    args: [
      "-c",
      'p="$1"; shift; exec setsid -c sh -c "$1" <>"$p" >&0 2>&1',
      "sh",
      pty.slavePath,
      script,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/tmp", TERM: "vt100", PW: pw },
    clearEnv: true,
  })).spawn();
  return {
    recorder,
    dir,
    async done() {
      recorder.close();
      await con.close();
      await pty.slave.close();
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const login = { user: "root", password_env: "RKHIL_TEST_PW", prompt: "[#$] $" };

Deno.test("serial login: login:, Password: from the named variable, then the prompt; password never logged", async () => {
  const r = await rig(LOGIN_SCRIPT);
  try {
    const res = await waitForShell(r.recorder, {
      board: "rock-3b-8g",
      from: 0,
      timeoutMs: 20_000,
      login,
      env: { get: (k) => (k === "RKHIL_TEST_PW" ? "s3cret!" : undefined) },
      pokeAfterMs: 500,
    });
    assert.equal(res.loggedIn, true);
    assert.match(lastLine(r.recorder.text), /root@rock-3b:~# $/);
    r.recorder.close();
    for (const f of ["console.log", "console.raw", "console.raw.idx.jsonl"]) {
      assert.ok(!(await Deno.readTextFile(`${r.dir}/${f}`)).includes("s3cret!"), f);
    }
  } finally {
    await r.done();
  }
});

Deno.test("serial login: a wrong password is a clear MISS, not a timeout", async () => {
  const r = await rig(LOGIN_SCRIPT);
  try {
    await assert.rejects(
      () =>
        waitForShell(r.recorder, {
          board: "rock-3b-8g",
          from: 0,
          timeoutMs: 20_000,
          login,
          env: { get: () => "Tr0ub4dor" },
          pokeAfterMs: 500,
        }),
      (err: unknown) => {
        assert.ok(err instanceof InfraError && !(err instanceof TimeoutError), String(err));
        assert.match(err.message, /console login on rock-3b-8g refused: Login incorrect/);
        assert.match(err.hint, /\$RKHIL_TEST_PW/);
        assert.ok(!err.message.includes("Tr0ub4dor"));
        return true;
      },
    );
  } finally {
    await r.done();
  }
});

Deno.test("serial login: asked for a login the board file does not give, or an unset password variable", async () => {
  const r = await rig(LOGIN_SCRIPT);
  try {
    await assert.rejects(
      () => waitForShell(r.recorder, { board: "b", from: 0, timeoutMs: 10_000 }),
      (err: unknown) => err instanceof UserInputError && /asks for a login/.test(err.message),
    );
  } finally {
    await r.done();
  }
  const r2 = await rig(LOGIN_SCRIPT);
  try {
    await assert.rejects(
      () =>
        waitForShell(r2.recorder, {
          board: "b",
          from: 0,
          timeoutMs: 10_000,
          login,
          env: { get: () => undefined },
        }),
      (err: unknown) =>
        err instanceof UserInputError && /\$RKHIL_TEST_PW is not set/.test(err.message),
    );
  } finally {
    await r2.done();
  }
});

Deno.test("serial login: a prompt followed by a kernel line is woken with Enter; no prompt is a timeout with the output", async () => {
  const r = await rig(
    "PS1='# ' sh -i -c 'exit' 2>/dev/null; printf '# '; sleep 0.3; echo '[   3.1] usb 1-1: new device'; exec sh -i",
  );
  try {
    const res = await waitForShell(r.recorder, {
      board: "b",
      from: 0,
      timeoutMs: 10_000,
      pokeAfterMs: 500,
    });
    assert.equal(res.loggedIn, false);
  } finally {
    await r.done();
  }
  const r2 = await rig("echo 'Starting kernel ...'; exec sleep 30");
  try {
    // The program on the pty starts at its own pace; the bound below is for the prompt only.
    await r2.recorder.waitFor("Starting kernel", { timeoutMs: 20_000, owner: "test" });
    await assert.rejects(
      () => waitForShell(r2.recorder, { board: "b", from: 0, timeoutMs: 1_500, pokeAfterMs: 300 }),
      (err: unknown) => {
        assert.ok(err instanceof TimeoutError);
        assert.match(err.hint, /no shell prompt matching \/\[#\$\] \$\//);
        assert.match(err.hint, /Starting kernel/);
        return true;
      },
    );
  } finally {
    await r2.done();
  }
});

Deno.test("lastLine drops CRs and ANSI colour sequences", () => {
  assert.equal(lastLine("boot\r\n\x1b[1;32mroot@b\x1b[0m:~# "), "root@b:~# ");
  assert.equal(lastLine("no newline"), "no newline");
});

Deno.test("serial login: no Enter at U-Boot's extlinux menu, so it times out to its default", async () => {
  // U-Boot's menu as boot/pxe_utils.c runs it: an Enter is an unknown choice and shows the
  // menu again; only a quiet wait boots the default label.
  const r = await rig(
    'exec bash -c \'while :; do printf "Enter choice: "; ' +
      'if read -r -t 1.5 c; then echo "[$c] not found"; continue; fi; ' +
      'echo; echo "1:\tl0"; PS1="# " exec sh -i; done\'',
  );
  try {
    const res = await waitForShell(r.recorder, {
      board: "b",
      from: 0,
      timeoutMs: 15_000,
      pokeAfterMs: 300,
    });
    assert.equal(res.pokes, 0);
    assert.doesNotMatch(r.recorder.text, /not found/);
    assert.match(r.recorder.text, /1:\tl0/);
  } finally {
    await r.done();
  }
});

Deno.test("serial login: no Enter after U-Boot's Starting kernel until the kernel speaks", async () => {
  // A key typed there would wait for the next U-Boot (after a power cycle) and stop its autoboot.
  const r = await rig(
    'exec bash -c \'printf "Starting kernel ...\\r\\n\\r\\n"; ' +
      'if read -r -t 1.5 c; then echo "got a key"; fi; PS1="# " exec sh -i\'',
  );
  try {
    const res = await waitForShell(r.recorder, {
      board: "b",
      from: 0,
      timeoutMs: 15_000,
      pokeAfterMs: 300,
    });
    assert.equal(res.pokes, 0);
    assert.doesNotMatch(r.recorder.text, /got a key/);
  } finally {
    await r.done();
  }
});
