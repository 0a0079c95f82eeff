import assert from "node:assert/strict";
import { BoardFileError } from "./load.ts";
import { loadFarm, parseFarm } from "./farm_load.ts";
import { labBoardYaml } from "../runner/lab/board_file.ts";

const FP = "SHA256:" + "A".repeat(43);

async function labDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-farm-load-" });
  await Deno.mkdir(`${dir}/boards`);
  for (const [id, port] of [["rock-1", 2201], ["rock-2", 2202]] as const) {
    await Deno.writeTextFile(
      `${dir}/boards/${id}.yaml`,
      labBoardYaml({
        id,
        sshPort: port,
        fingerprint: FP,
        keyFile: "/nonexistent/key",
        console: { type: "tcp", port: 7000 + port, protocol: "telnet" },
        power: { type: "command", on: "true", off: "true" },
      }),
    );
  }
  return dir;
}

const FARM = `name: rock-lab
leases:
  dir: leases
  ttl_s: 60
boards_dirs: [boards]
qemu:
  - id: qemu-1
    memory: 8G
    cpus: 2
    limits: { host_cpus: 1, host_memory: 1536M }
groups:
  - name: lab-a
    jump: { host: lab-a.example.org, user: rkhil, host_key_fingerprint: "${FP}" }
    boards:
      - id: rock-1
      - file: boards/rock-2.yaml
        limits: { host_cpus: 0.25 }
`;

Deno.test("a farm file: QEMU targets, boards by id and file behind their lab host, limits", async () => {
  const dir = await labDir();
  try {
    await Deno.writeTextFile(`${dir}/lab.yaml`, FARM);
    const farm = await loadFarm(`${dir}/lab.yaml`);
    assert.equal(farm.name, "rock-lab");
    assert.equal(farm.leaseDir, `${dir}/leases`);
    assert.equal(farm.leaseTtlS, 60);
    assert.deepEqual(farm.targets.map((t) => [t.kind, t.id]), [
      ["qemu", "qemu-1"],
      ["board", "rock-1"],
      ["board", "rock-2"],
    ]);
    const [q, b1, b2] = farm.targets;
    assert.deepEqual(q.cost, { cpus: 1, memory: 1536 * 2 ** 20 });
    assert.deepEqual(b1.cost, { cpus: 0, memory: 0 });
    assert.deepEqual(b2.cost, { cpus: 0.25, memory: 0 });
    assert.ok(b1.kind === "board" && b2.kind === "board");
    assert.equal(b1.group, "lab-a");
    assert.deepEqual(b1.board.board.ssh?.jump, {
      host: "lab-a.example.org",
      port: 22,
      user: "rkhil",
      host_key_fingerprint: FP,
    });
    assert.equal(b2.board.path, `${dir}/boards/rock-2.yaml`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function errorOf(text: string): BoardFileError {
  try {
    parseFarm(text, "lab.yaml");
  } catch (err) {
    assert.ok(err instanceof BoardFileError, String(err));
    return err;
  }
  assert.fail("parsed");
}

Deno.test("farm file errors name file:line:column and the field", () => {
  const e = errorOf("name: rock-lab\nqemu:\n  - id: qemu-1\n    memroy: 8G\n");
  assert.equal(e.issues[0].line, 4);
  assert.equal(e.issues[0].field, "qemu[0].memroy");
  assert.match(e.message, /^lab\.yaml:4:\d+: qemu\[0\]\.memroy: unknown key "memroy"/);

  const s = errorOf("name: rock-lab\nqemu:\n  - id: qemu-1\n    cpus: many\n");
  assert.match(s.message, /lab\.yaml:4:11: qemu\[0\]\.cpus: expected number \(got "many"\)/);

  const l = errorOf("name: r\nqemu:\n  - id: q\n    limits: { host_memory: lots }\n");
  assert.match(l.message, /lab\.yaml:4:\d+: qemu\[0\]\.limits\.host_memory: expected a size/);

  const b = errorOf(
    "name: r\ngroups:\n  - name: g\n    boards:\n      - { id: a, file: b.yaml }\n",
  );
  assert.match(b.message, /lab\.yaml:5:\d+: groups\[0\]\.boards\[0\]: name the board by id or/);

  const id = errorOf("name: Rock Lab\n");
  assert.match(id.message, /^lab\.yaml:1:7: name: expected lower-case letters/);

  // database: a PostgreSQL URL, its password never shown; leases then live there, not in a dir.
  const q = "qemu:\n  - id: q\n";
  const db = errorOf(`name: r\ndatabase: mysql://db.lab/x\n${q}`);
  assert.match(db.message, /lab\.yaml:2:\d+: database: expected a PostgreSQL URL: postgres:\/\//);
  const nodb = errorOf(`name: r\ndatabase: "postgres://u:s3cret@db.lab"\n${q}`);
  assert.match(nodb.message, /lab\.yaml:2:\d+: database: .*names no database/);
  assert.doesNotMatch(nodb.message, /s3cret/);
  const both = errorOf(`name: r\ndatabase: postgres://db.lab/x\nleases:\n  dir: l\n${q}`);
  assert.match(both.message, /lab\.yaml:4:\d+: leases\.dir: leases live in the farm's database/);
});

Deno.test("database: selects PostgreSQL for the farm's leases, queue and history", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rkhil-farm-load-" });
  try {
    const url = "postgres://rkhil@db.lab:5433/rkhil";
    await Deno.writeTextFile(
      `${dir}/lab.yaml`,
      `name: r\ndatabase: ${url}\nleases: { ttl_s: 30 }\nqemu:\n  - id: q\n`,
    );
    const farm = await loadFarm(`${dir}/lab.yaml`);
    assert.equal(farm.database, url);
    assert.equal(farm.leaseTtlS, 30);
    await Deno.writeTextFile(`${dir}/lab.yaml`, "name: r\nqemu:\n  - id: q\n");
    assert.equal((await loadFarm(`${dir}/lab.yaml`)).database, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostile farm files are one BoardFileError each, never a crash", () => {
  const bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" +
    Array.from(
      { length: 12 },
      (_, i) => `${"b" + (i + 1)}: &b${i + 1} [${Array(9).fill(i ? `*b${i}` : "*a").join(", ")}]`,
    ).join("\n");
  for (
    const text of [
      "",
      "\u0000\u0001binary",
      "[1, 2",
      "- just\n- a list\n",
      "name: x\nname: y\n",
      bomb,
      "x".repeat(1024 * 1024 + 1),
      "[".repeat(5000),
    ]
  ) {
    const e = errorOf(text);
    assert.ok(e.issues.length >= 1);
    assert.ok(e.message.length < 5000, e.message.slice(0, 200));
  }
});

Deno.test("a farm whose board is unknown, repeated, or behind another jump host", async () => {
  const dir = await labDir();
  try {
    const write = (t: string) => Deno.writeTextFile(`${dir}/lab.yaml`, t);
    await write(
      "name: lab\nboards_dirs: [boards]\ngroups:\n  - name: g\n    boards:\n" +
        "      - id: rock-9\n",
    );
    await assert.rejects(
      loadFarm(`${dir}/lab.yaml`),
      (e: BoardFileError) =>
        /lab\.yaml:6:\d+: groups\[0\]\.boards\[0\]\.id: .*rock-9/.test(e.message),
    );
    await write(
      "name: lab\nboards_dirs: [boards]\nqemu: [{ id: rock-1 }]\ngroups:\n" +
        "  - name: g\n    boards:\n      - id: rock-1\n",
    );
    await assert.rejects(
      loadFarm(`${dir}/lab.yaml`),
      /lab\.yaml:7:\d+: groups\[0\]\.boards\[0\]\.id: target id rock-1 is already used at line 3/,
    );
    const other = (await Deno.readTextFile(`${dir}/boards/rock-2.yaml`)).replace(
      "  user: root\n",
      "  user: root\n  jump: { host: lab-b, user: x }\n",
    );
    await Deno.writeTextFile(`${dir}/boards/rock-2.yaml`, other);
    await write(FARM);
    await assert.rejects(
      loadFarm(`${dir}/lab.yaml`),
      /lab\.yaml:16:\d+: groups\[0\]\.boards\[1\]\.file: board rock-2 names jump host x@lab-b:22, not the group's/,
    );
    await assert.rejects(loadFarm(`${dir}/nope.yaml`), /cannot read the farm file: no such file/);
    await write("name: lab\n");
    await assert.rejects(loadFarm(`${dir}/lab.yaml`), /the farm has no targets/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the README's lab file is a valid farm file", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const block = /```yaml\n(# lab\/farm\.yaml\n[\s\S]*?)```/.exec(readme);
  assert.ok(block, "README has the lab/farm.yaml block");
  const { spec } = parseFarm(block[1], "lab/farm.yaml");
  assert.equal(spec.name, "rock-lab");
  assert.deepEqual(spec.qemu.map((q) => q.id), ["qemu-1"]);
  assert.equal(spec.groups[0].jump?.host, "lab-a.example.org");
  assert.deepEqual(spec.groups[0].boards.map((b) => b.id ?? b.file), [
    "rock-3b-1",
    "boards/rock-3b-2.yaml",
  ]);
});
