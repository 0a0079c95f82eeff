/**
 * The CLI as a user runs it: a subprocess, its output and its exit status.
 */
import assert from "node:assert/strict";
import { hostCommand } from "./runner/debian/host_tools.ts";
import { type CliRun, noStackTrace, rkhil, withTempDir } from "./runner/cli/testutil.ts";

Deno.test("predict prints one row per IOMMU instance with its unit address and outcome", async () => {
  const r = await rkhil("predict", "--board", "rock-3b-8g", "--kernel", "6.12");
  assert.equal(r.code, 0, r.stderr);
  const row = r.stdout.split("\n").find((l) => l.includes("fde4b000") && l.includes("rknpu_mmu"));
  assert.ok(row, r.stdout);
  assert.match(row, /BUS_ERROR/);
  assert.match(r.stdout, /fe043e00\s+vop_mmu\s+iommu_data_ops_v2\s+OK/);
  assert.match(r.stdout, /rk_iommu fde4b000\.iommu: BUS_ERROR occurred at/);
  assert.match(r.stdout, /Explanation:/);
  const r61 = await rkhil("predict", "--board", "rock-3b-8g", "--kernel", "6.1");
  assert.match(r61.stdout, /fde4b000\s+rknpu_mmu\s+iommu_data_ops_v1?2?\s+OK/);
});

Deno.test("predict --json is the documented schema", async () => {
  const r = await rkhil(
    "predict",
    "--board",
    "rock-3b-8g",
    "--kernel",
    "7.1",
    "--patch",
    "rocket-rk3568-rfc",
    "--workload",
    "mobilenet_v1",
    "--json",
  );
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout);
  assert.equal(p.schema, 1);
  assert.equal(p.board, "rock-3b-8g");
  assert.deepEqual(p.patches, ["per-device-ops", "rocket-rk3568-rfc"]);
  const npu = p.instances.find((i: { unit: string }) => i.unit === "fde4b000");
  assert.equal(npu.outcome, "WRONG_PAGE");
  assert.equal(npu.workload.verdict, "wrong-output");
  for (const key of ["unit", "label", "outcome", "possible", "expectedLines", "explanation"]) {
    assert.ok(key in npu, key);
  }
});

Deno.test("predict --explain names the facts and their sources", async () => {
  const r = await rkhil("predict", "--board", "rock-3b-8g", "--kernel", "6.12", "--explain");
  assert.equal(r.code, 0);
  assert.match(r.stdout, /hardware revision = v1\.0 \[reported: seed thread: Simon Xue/);
  assert.match(r.stdout, /table gfp zone = none \[reported: .*2a7e6400f72b/);
});

Deno.test("unknown board, kernel, patch and workload: clear error listing what is known", async () => {
  const b = await rkhil("predict", "--board", "rock-3b-16g", "--kernel", "6.12");
  assert.equal(b.code, 2);
  assert.match(b.stderr, /rock-3b-8g/);
  noStackTrace(b);

  const k = await rkhil("predict", "--board", "rock-3b-8g", "--kernel", "4.19");
  assert.equal(k.code, 2);
  assert.match(k.stderr, /unknown kernel release "4\.19"/);
  assert.match(k.stderr, /5\.14 … 7\.3/);
  noStackTrace(k);

  const p = await rkhil("predict", "--board", "rock-3b-8g", "--kernel", "6.12", "--patch", "x");
  assert.equal(p.code, 2);
  assert.match(p.stderr, /v2-dma32-withdrawn/);
  noStackTrace(p);

  const w = await rkhil("predict", "--board", "rock-3b-8g", "--kernel", "6.12", "--workload", "x");
  assert.equal(w.code, 2);
  assert.match(w.stderr, /mobilenet_v1/);

  const a = await rkhil(
    "predict",
    "--board",
    "rock-3b-8g",
    "--kernel",
    "6.12",
    "--bootargs",
    "mem=lots",
  );
  assert.equal(a.code, 2);
  assert.match(a.stderr, /mem=/);
  noStackTrace(a);
});

Deno.test("a broken board file is refused with file, line and field", async () => {
  await withTempDir(async (dir) => {
    const good = await Deno.readTextFile(new URL("./boards/rk3568-2g.yaml", import.meta.url));
    const bad = good.replace("id: rk3568-2g", "id: my-board").replace(
      /end: 0x8000_0000/,
      "end: 0x80zz",
    );
    await Deno.writeTextFile(`${dir}/my-board.yaml`, bad);
    const r = await rkhil(
      "predict",
      "--board",
      "my-board",
      "--kernel",
      "6.12",
      "--boards-dir",
      dir,
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /my-board\.yaml:\d+:\d+: ram\.banks\[0\]\.end/);
    noStackTrace(r);
  });
});

Deno.test("boards, releases and patches list what the oracle knows", async () => {
  const b = await rkhil("boards");
  assert.match(b.stdout, /rock-3b-8g\s+rk3568/);
  assert.match(b.stdout, /qemu-virt-8g/);
  const r = await rkhil("releases");
  assert.match(r.stdout, /^5\.14 .* 7\.3$/m);
  const p = await rkhil("patches");
  assert.match(p.stdout, /rk3568-iommu-v1 .*\n.*source:/);
});

const DTB = (rel: string) => new URL(`./runner/fdt/testdata/${rel}`, import.meta.url).pathname;

Deno.test("predict --dtb reads the IOMMU nodes of a real Debian DTB", async () => {
  const r = await rkhil(
    "predict",
    "--board",
    "rk3588-16g",
    "--kernel",
    "7.3",
    "--dtb",
    DTB("7.3.4+deb13-arm64/rk3588-rock-5b.dtb"),
    "--json",
  );
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout);
  const units = p.instances.map((i: { unit: string }) => i.unit);
  assert.ok(units.includes("fdab9000"));
  // The AV1 decoder's MMU belongs to the Verisilicon IOMMU driver, not rk_iommu.
  assert.ok(!units.includes("fdca0000"));
  assert.equal(p.instances.find((i: { unit: string }) => i.unit === "fdab9000").outcome, "OK");

  // Debian's ROCK 3B device tree has no NPU MMU at all.
  const b = await rkhil(
    "predict",
    "--board",
    "rock-3b-8g",
    "--kernel",
    "6.12",
    "--dtb",
    DTB("6.12.118+deb13-arm64/rk3568-rock-3b.dtb"),
  );
  assert.equal(b.code, 0, b.stderr);
  assert.doesNotMatch(b.stdout, /fde4b000/);
  assert.match(b.stdout, /fe043e00\s+vop_mmu\s+iommu_data_ops_v2\s+OK/);
});

Deno.test("predict --dtb refuses a blob for another SoC, and a file that is no DTB", async () => {
  const m = await rkhil(
    "predict",
    "--board",
    "rock-3b-8g",
    "--kernel",
    "7.3",
    "--dtb",
    DTB("7.3.4+deb13-arm64/rk3588-rock-5b.dtb"),
  );
  assert.equal(m.code, 2);
  assert.match(m.stderr, /is for "Radxa ROCK 5B", not for an rk3568 board/);
  const g = await rkhil(
    "predict",
    "--board",
    "rock-3b-8g",
    "--kernel",
    "7.3",
    "--dtb",
    DTB("README.md"),
  );
  assert.equal(g.code, 2);
  assert.match(g.stderr, /not a valid device-tree blob: .*bad magic/);
  noStackTrace(g);
  const n = await rkhil(
    "predict",
    "--board",
    "rock-3b-8g",
    "--kernel",
    "7.3",
    "--dtb",
    "/nonexistent",
  );
  assert.equal(n.code, 2);
  assert.match(n.stderr, /no such file: "\/nonexistent"/);
});

Deno.test("changes names the release that brought the NPU regression and the commit", async () => {
  const r = await rkhil("changes", "--board", "rock-3b-8g", "--from", "6.1", "--to", "6.12");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /6\.6 \(from 6\.5\):\n {2}REGRESSION: fde4b000 rknpu_mmu: OK → BUS_ERROR/);
  assert.match(r.stdout, /gfp zone: GFP_DMA32 -> none .*2a7e6400f72b/);
  assert.doesNotMatch(r.stdout, /^5\./m);
  const md = await rkhil("changes", "--board", "rock-3b-8g", "--markdown");
  assert.match(md.stdout, /^# What each kernel release changes/m);
  assert.match(md.stdout, /^## 6\.6 \(from 6\.5\)/m);
  const bad = await rkhil("changes", "--board", "rock-3b-8g", "--from", "9.9");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown kernel release "9\.9"/);
  const reversed = await rkhil("changes", "--board", "rock-3b-8g", "--from", "7.3", "--to", "6.1");
  assert.equal(reversed.code, 2);
  assert.match(reversed.stderr, /--from 7\.3 comes after --to 6\.1/);
  assert.equal(reversed.stdout, "");
});

Deno.test("predict --kernel debian:<suite>: that package's release and its own DTB", async () => {
  const r = await rkhil("predict", "--board", "rock-3b-8g", "--kernel", "debian:trixie", "--json");
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout);
  assert.equal(p.kernel, "6.12");
  assert.match(p.notes.join("\n"), /linux-image-6\.12\.\d+\+deb13-arm64/);
  assert.match(p.notes.join("\n"), /rockchip\/rk3568-rock-3b\.dtb from/);
  // Debian's ROCK 3B device tree has no NPU MMU; VOP2 is there and OK.
  const units = p.instances.map((i: { unit: string }) => i.unit);
  assert.ok(!units.includes("fde4b000"));
  assert.equal(p.instances.find((i: { unit: string }) => i.unit === "fe043e00").outcome, "OK");
  const bad = await rkhil("predict", "--board", "rock-3b-8g", "--kernel", "debian:no-such-suite");
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /trixie/);
});

// ---------------------------------------------------------------------------------------------
// Bad input is refused before anything starts: exit 2, one line, quickly, nothing created.

interface RunIn extends CliRun {
  ms: number;
}

/** The CLI run from `cwd` with `env` (e.g. RKHIL_CWD), timed. */
async function rkhilIn(
  o: { cwd?: string; env?: Record<string, string>; bootstrap?: boolean },
  ...args: string[]
): Promise<RunIn> {
  const t0 = performance.now();
  const cmd = o.bootstrap ? new URL("./rkhil", import.meta.url).pathname : Deno.execPath();
  const out = await (await hostCommand(cmd, {
    args: o.bootstrap
      ? args
      : ["run", "-A", new URL("./main.ts", import.meta.url).pathname, ...args],
    cwd: o.cwd,
    env: { ...o.env, ...(o.bootstrap ? { RKHIL_DENO: Deno.execPath() } : {}) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    ms: performance.now() - t0,
  };
}

/** Exit 2 with exactly one line on stderr matching `re`, well before any boot could end. */
function refusedAtOnce(r: RunIn, re: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], re);
  assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
  noStackTrace(r);
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("bad option values: exit 2 in one line before anything starts", async () => {
  await withTempDir(async (tmp) => {
    const runs = `${tmp}/runs`;
    const qdir = `${tmp}/q`;
    const cases: [string[], RegExp][] = [
      [
        ["run", "--mem", "abc", "--runs-dir", runs],
        /^error: option '--mem <size>' argument "abc" is invalid\. expected a memory size like 8G/,
      ],
      [["run", "--kernel", "trixie", "--runs-dir", runs], /expected debian:<suite>/],
      [["run", "--predict-board", "No Such", "--runs-dir", runs], /expected a board id/],
      [["validate", "--kernel", "debian:nope", "--runs-dir", runs], /unknown Debian suite "nope"/],
      [["validate", "--kernel", "debian:trixie", "--mem", "0"], /expected a memory size/],
      [["facts", "--kernel", "debian:trixie", "--mem", "1.5G"], /expected a memory size/],
      [
        [
          "qemu",
          "exec",
          "--kernel",
          "debian:trixie",
          "--mem",
          "abc",
          "--run-dir",
          qdir,
          "--",
          "true",
        ],
        /argument "abc" is invalid\. expected a memory size/,
      ],
      [
        [
          "qemu",
          "exec",
          "--kernel",
          "debian:trixie",
          "--timeout",
          "abc",
          "--run-dir",
          qdir,
          "--",
          "true",
        ],
        /'--timeout <s>' argument "abc" is invalid\. expected a number of seconds greater than 0/,
      ],
      [
        [
          "qemu",
          "exec",
          "--kernel",
          "debian:trixie",
          "--timeout",
          "0",
          "--run-dir",
          qdir,
          "--",
          "true",
        ],
        /expected a number of seconds/,
      ],
      [
        ["qemu", "shell", "--kernel", "debian:trixie", "--append", "mem=lots", "--run-dir", qdir],
        /mem="lots": no number at the start/,
      ],
      [["qemu", "exec", "--kernel", "debian:trixie", "--cpus", "99", "--", "true"], /1 to 8/],
      [
        ["qemu", "exec", "--kernel", "debian:trixie", "--run-dir", qdir, "--", ""],
        /a command to run/,
      ],
      [["predict", "--board", "rock-3b-8g", "--kernel", "4.19"], /unknown kernel release "4\.19"/],
      [["predict", "--board", "rock-3b-8g", "--kernel", "6.12", "--patch", "x"], /per-device-ops/],
      [["changes", "--board", "rock-3b-8g", "--to", "9.9"], /unknown kernel release "9\.9"/],
      [["changes", "--board", "rock-3b-8g", "--bootargs", "cma=12Q"], /cma="12Q"/],
      [["blast-radius", `${tmp}/no.patch`], /no such file: "[^"]+\/no\.patch"/],
      [["blast-radius", "--kernel", "4.19", "--", `${tmp}/x`], /unknown kernel release "4\.19"/],
      [["atlas", "--suite", "nope"], /argument "nope" is invalid\. unknown Debian suite; use one/],
      [["atlas", "--out", "/sys/atlas"], /cannot create "\/sys\/atlas"/],
    ];
    for (const [args, re] of cases) refusedAtOnce(await rkhilIn({}, ...args), re);
    // Nothing was created: no run directory, no QEMU run directory.
    assert.deepEqual(await entries(tmp), []);
  });
});

Deno.test("run --predict-board with an unknown board: refused before the first boot", async () => {
  await withTempDir(async (tmp) => {
    const r = await rkhilIn({}, "run", "--predict-board", "nope", "--runs-dir", `${tmp}/runs`);
    refusedAtOnce(r, /argument "nope" is invalid\. unknown board id; known boards: .*rock-3b-8g/);
    assert.deepEqual(await entries(tmp), []);
  });
});

Deno.test("run --suite/--board/--kernel mistakes: exit 2 with what is known, before any work", async () => {
  await withTempDir(async (tmp) => {
    const runs = `${tmp}/runs`;
    const cases: [string[], RegExp, RegExp][] = [
      [
        ["run", "--suite", "nope", "--suite", "boot"],
        /^error: unknown suite "nope"$/,
        /what to do: use one of: boot, driver, iommu, iommu-emulated, probe, probe-boot, npu\/mobilenet_v1, npu\/yolov5\n/,
      ],
      [
        ["run", "--board", "rock-3b-8g", "--kernel", "debian:trixie"],
        /^error: --kernel cannot be used with --board rock-3b-8g: its board file .*rock-3b-8g\.yaml has no deploy: block, so the board runs the kernel it boots$/,
        /what to do: drop --kernel, or add deploy: to the board file/,
      ],
      [
        ["run", "--kernel", "dir:/srv/kernels/6.12"],
        /^error: --kernel dir:\/srv\/kernels\/6\.12: a dir: kernel is deployed on boards with deploy:/,
        /what to do: add --board ID \(or --farm FILE\) of boards with deploy:/,
      ],
      [
        ["run", "--no-history", "--db", `${tmp}/h.sqlite`],
        /^error: --db cannot be used with --no-history$/,
        /what to do: drop one of them/,
      ],
      [
        ["run", "--board", "lab-9", "--mem", "2G"],
        /^error: --mem cannot be used with --board/,
        /drop --mem/,
      ],
      [["run", "--board", "no-such-board"], /no-such-board/, /rock-3b-8g/],
      // The embedded target's board file is no board reached through a board file.
      [
        ["run", "--board", "qemu-virt-8g"],
        /qemu-virt-8g is the embedded QEMU target/,
        /no --board/,
      ],
    ];
    for (const [args, first, hint] of cases) {
      const r = await rkhilIn({}, ...args, "--runs-dir", runs);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split("\n");
      assert.match(lines[0], first);
      assert.match(r.stderr, hint);
      assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
      noStackTrace(r);
    }
    assert.deepEqual(await entries(tmp), []);
  });
});

Deno.test("hostile option values are escaped and cut, on one line", async () => {
  const evil = `\x1b]0;pwned\x07\x1b[2J${"A".repeat(5000)}`;
  const r = await rkhilIn(
    {},
    "qemu",
    "exec",
    "--kernel",
    "debian:trixie",
    "--mem",
    evil,
    "--",
    "x",
  );
  refusedAtOnce(r, /argument "\\e\]0;pwned\\x07\\e\[2JA+…" \(5014 characters\) is invalid/);
  assert.ok(!r.stderr.includes("\x1b") && !r.stderr.includes("\x07"), r.stderr);
  assert.ok(r.stderr.length < 400, `${r.stderr.length} characters`);
  const b = await rkhilIn(
    {},
    "predict",
    "--board",
    `x\x1b[31m${"b".repeat(3000)}`,
    "--kernel",
    "6.12",
  );
  refusedAtOnce(b, /argument "x\\e\[31mb+…" \(3006 characters\) is invalid\. expected a board id/);
  const k = await rkhilIn({}, "run", "--kernel", `debian:\u202e${"9".repeat(300)}`);
  refusedAtOnce(k, /\\u202e/);
});

Deno.test("output directories: empty, a file, unwritable, uncreatable: exit 2 naming the path", async () => {
  await withTempDir(async (tmp) => {
    const file = `${tmp}/file`;
    await Deno.writeTextFile(file, "x");
    const cases: [string[], RegExp][] = [
      [["run", "--runs-dir", ""], /argument "" is invalid\. expected a path, got an empty value/],
      [
        ["validate", "--kernel", "debian:trixie", "--runs-dir", file],
        /"[^"]+\/file" is a file; expected a directory/,
      ],
      [
        ["facts", "--kernel", "debian:trixie", "--runs-dir", `${file}/sub`],
        /cannot create .*is a file, not a directory/,
      ],
      [
        ["run", "--runs-dir", "/sys/rkhil-runs"],
        /cannot create "\/sys\/rkhil-runs": "\/sys" is not writable/,
      ],
      [
        ["qemu", "exec", "--kernel", "debian:trixie", "--run-dir", "/sys", "--", "true"],
        /cannot write in "\/sys"/,
      ],
      [
        ["predict", "--board", "rock-3b-8g", "--kernel", "6.12", "--dtb", tmp],
        /is a directory; expected a file/,
      ],
      [
        ["predict", "--board", "rock-3b-8g", "--kernel", "6.12", "--boards-dir", file],
        /is a file; expected a directory/,
      ],
      [["boards", "--boards-dir", `${tmp}/missing`], /no such directory: "[^"]+\/missing"/],
    ];
    for (const [args, re] of cases) refusedAtOnce(await rkhilIn({}, ...args), re);
    assert.deepEqual(await entries(tmp), ["file"]);
  });
});

Deno.test("relative paths resolve against the caller's directory, through ./rkhil too", async () => {
  await withTempDir(async (tmp) => {
    const good = await Deno.readTextFile(new URL("./boards/rk3568-2g.yaml", import.meta.url));
    await Deno.mkdir(`${tmp}/my boards`);
    await Deno.writeTextFile(
      `${tmp}/my boards/my-board.yaml`,
      good.replace("id: rk3568-2g", "id: my-board"),
    );
    await Deno.copyFile(DTB("6.12.118+deb13-arm64/rk3568-rock-3b.dtb"), `${tmp}/rock-3b.dtb`);
    const args = [
      "predict",
      "--board",
      "my-board",
      "--kernel",
      "6.12",
      "--boards-dir",
      "my boards",
      "--dtb",
      "rock-3b.dtb",
      "--json",
    ];
    // The bootstrap changes to the repository root and passes the caller's directory on.
    for (const o of [{ cwd: tmp, bootstrap: true }, { env: { RKHIL_CWD: tmp } }]) {
      const r = await rkhilIn(o, ...args);
      assert.equal(r.code, 0, r.stderr);
      const p = JSON.parse(r.stdout);
      assert.equal(p.board, "my-board");
      assert.ok(p.instances.some((i: { unit: string }) => i.unit === "fe043e00"));
    }
    // The same relative paths from elsewhere do not exist: said with the resolved path.
    const r = await rkhilIn({ env: { RKHIL_CWD: "/" } }, ...args);
    refusedAtOnce(r, /no such directory: "\/my boards"/);
  });
});

Deno.test("text from board files and DTBs reaches the terminal escaped", async () => {
  await withTempDir(async (tmp) => {
    const good = await Deno.readTextFile(new URL("./boards/rk3568-2g.yaml", import.meta.url));
    await Deno.writeTextFile(
      `${tmp}/rk3568-2g.yaml`,
      good.replace(/^name: .*$/m, 'name: "Evil\\e]0;pwned\\a\\e[2J board"'),
    );
    const b = await rkhilIn({}, "boards", "--boards-dir", tmp);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /rk3568-2g\s+rk3568\s+Evil\\e\]0;pwned\\x07\\e\[2J board/);
    assert.ok(!b.stdout.includes("\x1b") && !b.stdout.includes("\x07"), b.stdout);

    // A DTB without a root compatible, with a hostile model.
    const { buildFdt, strings } = await import("./runner/fdt/build.ts");
    await Deno.writeFile(
      `${tmp}/nocompat.dtb`,
      buildFdt({ name: "", props: [["model", strings("Evil \x1b[2J model")]] }),
    );
    const n = await rkhilIn(
      {},
      "predict",
      "--board",
      "rock-3b-8g",
      "--kernel",
      "6.12",
      "--dtb",
      `${tmp}/nocompat.dtb`,
    );
    assert.equal(n.code, 2, n.stderr);
    assert.match(
      n.stderr,
      /has no root compatible, so it cannot be told to be for an rk3568 board/,
    );
    assert.match(n.stderr, /its model is "Evil \\e\[2J model"/);
    assert.doesNotMatch(n.stderr, /is for , not/);
    assert.ok(!n.stderr.includes("\x1b"), n.stderr);
  });
});

Deno.test("predict: mem= past the 2047-byte command line is reported as not applied", async () => {
  const r = await rkhilIn(
    {},
    "predict",
    "--board",
    "rock-3b-8g",
    "--kernel",
    "6.12",
    "--bootargs",
    `dyndbg=${"x".repeat(2100)} mem=3838M`,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /keeps only the first 2047 .*never sees the rest.*mem=3838M/);
  assert.match(r.stdout, /fde4b000\s+rknpu_mmu\s+iommu_data_ops_v2\s+BUS_ERROR/);
});
