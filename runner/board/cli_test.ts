// rkhil boards --check and rkhil lab: bad input is exit 2 with one line, before anything starts
// (no console opened, no power command run).
import assert from "node:assert/strict";
import { join } from "node:path";
import { noStackTrace, rkhil, withTempDir } from "../cli/testutil.ts";
import { labBoardYaml } from "../lab/board_file.ts";
import { openPty } from "../serial/deno_binding.ts";

const FP = "SHA256:0GUhLmdGjYYkBi6A3VZCgvQJe1Y1x8Yi2Ni3+2Xq0Uw";

async function labFile(dir: string, edit: (y: string) => string): Promise<void> {
  await Deno.writeTextFile(join(dir, "k"), "key");
  const marker = join(dir, "powered");
  await Deno.writeTextFile(
    join(dir, "lab-9.yaml"),
    edit(labBoardYaml({
      id: "lab-9",
      sshPort: 10022,
      fingerprint: FP,
      keyFile: "k",
      console: { type: "serial", device: "/dev/ttyUSB0" },
      power: { type: "command", on: `echo on > '${marker}'`, off: "true" },
    })),
  );
}

Deno.test("boards --check: an unknown board is exit 2 listing the known ones", async () => {
  const r = await rkhil("boards", "--check", "rock-9z");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown board id "rock-9z"; known boards: .*rock-3b-8g/);
  noStackTrace(r);
});

Deno.test("boards --check: a manual adapter with no terminal (CI) is refused before anything runs", async () => {
  await withTempDir(async (dir) => {
    await labFile(
      dir,
      (y) => y.replace(/power:[\s\S]*?(?=capabilities:)/, "power:\n  type: manual\n"),
    );
    const r = await rkhil("boards", "--check", "lab-9", "--boards-dir", dir, "--runs-dir", dir);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^error: board lab-9 has power.type manual, which asks a person at a terminal, but /,
    );
    noStackTrace(r);
  });
});

Deno.test("boards --check: no pinned host key is exit 2 with the ssh-keyscan line; nothing powered", async () => {
  await withTempDir(async (dir) => {
    await labFile(dir, (y) => y.replace(/ {2}host_key_fingerprint: .*\n/, ""));
    const r = await rkhil("boards", "--check", "lab-9", "--boards-dir", dir, "--runs-dir", dir);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /ssh\.host_key_fingerprint is required to run a board/);
    assert.match(r.stderr, /ssh-keyscan -t ed25519 127\.0\.0\.1 \| ssh-keygen -lf -/);
    assert.equal(await Deno.stat(join(dir, "powered")).then(() => true, () => false), false);
    noStackTrace(r);
  });
});

Deno.test("boards --check: a missing serial device is exit 1 with the console line failed, never a stack", async () => {
  await withTempDir(async (dir) => {
    await labFile(dir, (y) => y.replace("/dev/ttyUSB0", "/dev/ttyUSB97"));
    const r = await rkhil("boards", "--check", "lab-9", "--boards-dir", dir, "--runs-dir", dir);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /^console +failed +serial console "\/dev\/ttyUSB97" of board lab-9 does not exist$/m,
    );
    assert.match(r.stdout, /^NOT healthy: /m);
    // The console could not be opened: the board was never switched on.
    assert.equal(await Deno.stat(join(dir, "powered")).then(() => true, () => false), false);
    noStackTrace(r);
  });
});

Deno.test("boards --power-cycle without --check, and lab power with a bad action, are exit 2", async () => {
  const a = await rkhil("boards", "--power-cycle");
  assert.equal(a.code, 2);
  assert.match(a.stderr, /--power-cycle applies to --check only/);
  const b = await rkhil("lab", "power", "reboot", "--qmp", "/nonexistent.sock");
  assert.equal(b.code, 2);
  assert.match(b.stderr, /unknown lab power action "reboot"/);
});

Deno.test("boards --check: a relay command that fails is the one failed line, with its stderr", async () => {
  const pty = openPty();
  try {
    await withTempDir(async (dir) => {
      await labFile(dir, (y) =>
        y.replace("/dev/ttyUSB0", pty.slavePath).replace(
          /power:[\s\S]*?(?=capabilities:)/,
          `power:\n  type: command\n  on: "echo 'relay 3: no answer' >&2; exit 4"\n  off: "true"\n`,
        ));
      const r = await rkhil("boards", "--check", "lab-9", "--boards-dir", dir, "--runs-dir", dir);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stdout,
        /^power +failed +command: on failed: power on of lab-9 failed: .* exited with status 4: relay 3: no answer$/m,
      );
      assert.match(
        r.stdout,
        /^console +skipped +serial .* opened, 0 bytes seen \(the board was not switched on\)$/m,
      );
      assert.match(r.stdout, /^ssh +skipped +not reached: power failed$/m);
      assert.match(r.stdout, /^NOT healthy: 1 failed, 0 ok$/m);
      noStackTrace(r);
    });
  } finally {
    await pty.master.close();
    await pty.slave.close();
  }
});
