// The board lab: real QEMU guests on debian:trixie reached ONLY through board files, exactly as
// a ROCK 3B is reached (BoardDriver + DriverTarget; nothing here knows the guests are QEMU):
// SSH with the pinned key, the console via the pty path and via ser2net raw and telnet from the
// first byte after a power cycle through the command adapter, a wrong fingerprint refused at
// once, a closed SSH port a MISS within its bound, qmp power, and `rkhil boards --check`.
import assert from "node:assert/strict";
import { join } from "node:path";
import { findBoard, loadBoardFile, type LoadedBoard } from "../../boards/load.ts";
import { InfraError, RkhilError } from "../errors.ts";
import { DriverTarget } from "../target/target.ts";
import { BoardDriver } from "../board/target.ts";
import { freePort } from "../qemu/machine.ts";
import { rkhil } from "../cli/testutil.ts";
import { type LabConsoleKind, startLab } from "./lab.ts";

const BOUNDS = { bootTimeoutMs: 150_000, sshTimeoutMs: 60_000, retries: 0 };

async function boardTarget(loaded: LoadedBoard, runDir: string, bounds = BOUNDS) {
  const driver = await BoardDriver.create(loaded, { runDir, bounds });
  return new DriverTarget(driver, { log: (l) => console.log(`  ${l}`) });
}

/** The console text of the boot that started at `from`: its first line is the kernel's first. */
function assertBootFromFirstByte(text: string, what: string): void {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
  assert.ok(lines.length > 10, `${what}: ${lines.length} console lines`);
  assert.match(
    lines[0],
    /Booting Linux on physical CPU/,
    `${what}: the first console line of the boot is not the kernel's first: ${lines[0]}`,
  );
}

for (const consoleKind of ["pty", "ser2net-raw", "ser2net-telnet"] as const) {
  Deno.test({
    name: `lab (${consoleKind}): SSH with the pinned key; console from the first byte after a ` +
      "power cycle through the command adapter",
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      await oneLab(consoleKind);
    },
  });
}

async function oneLab(consoleKind: LabConsoleKind): Promise<void> {
  const lab = await startLab({ n: 1, console: consoleKind });
  const runDir = await Deno.makeTempDir({ prefix: "rkhil-lab-run-" });
  try {
    const loaded = await findBoard("lab-1", [lab.boardsDir]);
    assert.equal(loaded.path, join(lab.boardsDir, "lab-1.yaml"));
    assert.equal(loaded.board.power?.type, "command");
    assert.equal(
      loaded.board.console.type,
      consoleKind === "pty" ? "serial" : "tcp",
    );
    const t = await boardTarget(loaded, runDir);
    try {
      assert.equal(t.kind, "board");
      assert.equal(t.name, "lab-1");
      const times = await t.ready();
      assert.equal(t.state, "ready");
      assert.equal(t.release, lab.kernel.release, "uname -r over SSH is the booted kernel's");
      assert.ok(times.firstByte !== undefined && times.kernel !== undefined, JSON.stringify(times));
      assertBootFromFirstByte(t.console!.recorder.text, `${consoleKind} first power on`);
      const ssh = await t.command.run("echo via-ssh; uname -m", { via: "ssh-exec" });
      assert.equal(ssh.stdout, "via-ssh\naarch64\n");
      const serial = await t.command.run("echo via-serial", { via: "serial" });
      assert.equal(serial.stdout, "via-serial\n");
      // A power cycle through the board file's command lines (off: stop + system_reset, on:
      // cont): the console shows the new boot from its first byte.
      const from = t.console!.recorder.mark();
      const again = await t.reboot();
      assert.equal(again.attempts, 1);
      assert.equal(t.state, "ready");
      assertBootFromFirstByte(t.console!.recorder.since(from), `${consoleKind} power cycle`);
      assert.equal((await t.command.run("cat /proc/uptime | cut -d. -f1")).exitStatus, 0);
      assert.ok(
        t.transitions.some((tr) => tr.why === "power cycle"),
        JSON.stringify(t.transitions),
      );
    } finally {
      await t.close();
    }
    // The capture file of the console has the boot's first line too (raw bytes, as received).
    const raw = await Deno.readTextFile(join(runDir, "console.raw"));
    assert.match(raw, /Booting Linux on physical CPU/);
  } finally {
    await lab.stop();
    await Deno.remove(runDir, { recursive: true });
  }
}

Deno.test({
  name: "lab: a wrong fingerprint is refused at once; a closed SSH port is a MISS within its " +
    "bound; qmp power; rkhil boards --check is healthy",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lab = await startLab({ n: 1, console: "pty", power: "qmp" });
    const runDir = await Deno.makeTempDir({ prefix: "rkhil-lab-run-" });
    const bad = await Deno.makeTempDir({ prefix: "rkhil-lab-bad-" });
    try {
      const text = await Deno.readTextFile(join(lab.boardsDir, "lab-1.yaml"));
      // The same guest with another pinned fingerprint.
      const wrongPath = join(bad, "lab-1.yaml");
      await Deno.writeTextFile(
        wrongPath,
        text.replace(
          /host_key_fingerprint: SHA256:\S+/,
          "host_key_fingerprint: SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
      );
      const wrong = { id: "lab-1", path: wrongPath, board: await loadBoardFile(wrongPath) };
      assert.equal(wrong.board.power?.type, "qmp");
      const t = await boardTarget(wrong, join(runDir, "wrong"));
      try {
        await assert.rejects(
          () => t.ready({ consoleOnly: true }).then(() => t.ready()),
          (err: unknown) => {
            assert.ok(err instanceof RkhilError, String(err));
            assert.match(err.message, /host key/i);
            assert.match(err.message, /SHA256:AAAA/);
            return true;
          },
        );
        // Refused, not retried: the next ready() refuses again at once.
        const t0 = performance.now();
        await assert.rejects(() => t.ready(), /host key/i);
        assert.ok(performance.now() - t0 < 10_000, "a refused host key was retried");
      } finally {
        await t.close();
      }

      // The same guest's board file with SSH on a closed port: MISS with the reason in bound.
      const closedPath = join(bad, "lab-1.yaml");
      await Deno.writeTextFile(
        closedPath,
        text.replace(/port: \d+\n {2}user: root/, `port: ${freePort()}\n  user: root`),
      );
      const closed = { id: "lab-1", path: closedPath, board: await loadBoardFile(closedPath) };
      const c = await boardTarget(closed, join(runDir, "closed"), {
        ...BOUNDS,
        sshTimeoutMs: 5_000,
      });
      try {
        await c.ready({ consoleOnly: true });
        const t0 = performance.now();
        await assert.rejects(() => c.ready(), (err: unknown) => {
          assert.ok(err instanceof InfraError, String(err));
          assert.equal(err.verdict, "MISS");
          assert.match(err.message, /SSH to 127\.0\.0\.1:\d+ did not answer within 5000 ms/);
          // The reason (the last attempt's failure) comes with it.
          assert.match(`${err.message}\n${err.hint}`, /refused/i, `${err.message}\n${err.hint}`);
          return true;
        });
        assert.ok(performance.now() - t0 < 20_000, "the MISS came after its bound");
      } finally {
        await c.close();
      }

      // rkhil boards --check on the lab board: every protocol healthy, exit 0.
      const r = await rkhil(
        "boards",
        "--check",
        "lab-1",
        "--boards-dir",
        lab.boardsDir,
        "--runs-dir",
        runDir,
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const lines = r.stdout.split("\n");
      for (const p of ["console", "power", "ssh", "command", "files"]) {
        assert.ok(lines.some((l) => new RegExp(`^${p} +ok `).test(l)), `${p} not ok:\n${r.stdout}`);
      }
      assert.match(r.stdout, /^power +ok +qmp: on answered/m);
      assert.match(r.stdout, new RegExp(`uname -r ${lab.kernel.release.replaceAll("+", "\\+")}`));
      assert.match(r.stdout, /sha256 [0-9a-f]{16}… equal both ways/);
      assert.match(r.stdout, /^healthy: 5 ok/m);
    } finally {
      await lab.stop();
      await Deno.remove(runDir, { recursive: true });
      await Deno.remove(bad, { recursive: true });
    }
  },
});

Deno.test({
  name: "lab: a console that asks for a login (busybox login): logged in with the password " +
    "from the named variable; a wrong password is a MISS saying so",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const name = "RKHIL_LAB_TEST_PASSWORD";
    const lab = await startLab({ n: 1, console: "ser2net-telnet", login: { passwordEnv: name } });
    const runDir = await Deno.makeTempDir({ prefix: "rkhil-lab-run-" });
    try {
      const loaded = await findBoard("lab-1", [lab.boardsDir]);
      assert.deepEqual(loaded.board.console.login, {
        user: "root",
        password_env: name,
        prompt: "[#$] $",
      });
      Deno.env.set(name, lab.loginPassword!);
      const t = await boardTarget(loaded, join(runDir, "good"));
      try {
        await t.ready();
        assert.match(t.console!.recorder.text, /rkhil-qemu login: /);
        assert.equal((await t.command.run("id -u", { via: "serial" })).stdout, "0\n");
        assert.equal(t.release, lab.kernel.release);
      } finally {
        await t.close();
      }
      for (const f of ["console.log", "console.raw"]) {
        const text = await Deno.readTextFile(join(runDir, "good", f));
        assert.ok(!text.includes(lab.loginPassword!), `the password reached ${f}`);
      }
      Deno.env.set(name, "not-the-password");
      const w = await boardTarget(loaded, join(runDir, "wrong"));
      try {
        await assert.rejects(() => w.ready({ consoleOnly: true }), (err: unknown) => {
          assert.ok(err instanceof InfraError, String(err));
          assert.match(err.message, /console login on lab-1 refused: Login incorrect/);
          return true;
        });
      } finally {
        await w.close();
      }
    } finally {
      Deno.env.delete(name);
      await lab.stop();
      await Deno.remove(runDir, { recursive: true });
    }
  },
});
