import assert from "node:assert/strict";
import { join } from "node:path";
import { BoardFileError, BUILTIN_BOARDS_DIR, parseBoard } from "./load.ts";

const ROCK3B = await Deno.readTextFile(join(BUILTIN_BOARDS_DIR ?? "", "rock-3b-8g.yaml"));
/** The shipped ROCK 3B with relay power (deployment needs a power cycle). */
const RELAY = ROCK3B.replace(
  "  type: manual\n",
  "  type: command\n  on: /opt/lab/bin/relay 3 on\n  off: /opt/lab/bin/relay 3 off\n",
);

const DEPLOY = `deploy:
  method: extlinux-menu
  boot_dir: /boot
  device: /dev/mmcblk0p1
  uboot_prefix: /
  known_good: l0
  kernel_start_s: 20
  menu_timeout_s: 3
  modules_dir: /lib/modules
`;

function refuse(text: string): BoardFileError {
  try {
    parseBoard(text, "boards/rock-3b-8g.yaml");
  } catch (err) {
    if (err instanceof BoardFileError) return err;
    throw err;
  }
  throw new Error("expected BoardFileError, but the board parsed");
}

function lineOf(text: string, needle: string): number {
  return text.split("\n").findIndex((l) => l.includes(needle)) + 1;
}

Deno.test("deploy: a complete block parses, defaults stay unset", () => {
  assert.notEqual(RELAY, ROCK3B, "test setup: the shipped board's power changed");
  const b = parseBoard(RELAY + DEPLOY, "boards/rock-3b-8g.yaml");
  assert.deepEqual(b.deploy, {
    method: "extlinux-menu",
    boot_dir: "/boot",
    device: "/dev/mmcblk0p1",
    uboot_prefix: "/",
    known_good: "l0",
    kernel_start_s: 20,
    menu_timeout_s: 3,
    modules_dir: "/lib/modules",
  });
  const min = parseBoard(
    RELAY + "deploy: { method: extlinux-menu, boot_dir: /boot, known_good: l0 }\n",
    "boards/rock-3b-8g.yaml",
  );
  assert.equal(min.deploy?.extlinux, undefined);
});

Deno.test("deploy: bad fields are file:line:field errors with a hint", () => {
  const cases: [string, string, string, RegExp][] = [
    ["method: extlinux-menu", "method: bootcount", "deploy.method", /expected one of/],
    ["boot_dir: /boot", "boot_dir: boot", "deploy.boot_dir", /absolute path/],
    ["device: /dev/mmcblk0p1", "device: /dev/mmc blk", "deploy.device", /absolute path/],
    ["known_good: l0", "known_good: rkhil-6.1", "deploy.known_good", /rkhil's own entries/],
    ["known_good: l0", 'known_good: "l 0"', "deploy.known_good", /label of an extlinux/],
    ["kernel_start_s: 20", "kernel_start_s: 1", "deploy.kernel_start_s", /5|too small/],
    ["menu_timeout_s: 3", "menu_timeout_s: 0", "deploy.menu_timeout_s", /2|too small/],
  ];
  for (const [from, to, field, re] of cases) {
    const text = RELAY + DEPLOY.replace(from, to);
    const err = refuse(text);
    const issue = err.issues.find((i) => i.field === field);
    assert.ok(issue, `no issue for ${field}: ${err.message}`);
    assert.equal(issue.line, lineOf(text, `  ${to}`), field);
    assert.match(issue.message, re, field);
  }
  const typo = refuse(RELAY + DEPLOY.replace("known_good:", "known_goood:"));
  const unknown = typo.issues.find((i) => i.field === "deploy.known_goood");
  assert.equal(unknown?.hint, 'did you mean "known_good"?');
  const missing = refuse(RELAY + "deploy: { method: extlinux-menu, boot_dir: /boot }\n");
  assert.ok(missing.issues.some((i) => i.field.startsWith("deploy")), missing.message);
});

Deno.test("deploy: a board whose power rkhil cannot cycle is refused at deploy.method", () => {
  const text = ROCK3B + DEPLOY; // the shipped board: power.type manual
  const err = refuse(text);
  const issue = err.issues.find((i) => i.field === "deploy.method");
  assert.ok(issue, err.message);
  assert.match(issue.message, /needs a power adapter rkhil can cycle/);
  assert.match(issue.hint ?? "", /power\.type command/);
  assert.equal(issue.line, lineOf(text, "method: extlinux-menu"));
});
