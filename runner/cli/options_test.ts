import assert from "node:assert/strict";
import { InvalidArgumentError } from "commander";
import { join } from "node:path";
import {
  boardId,
  bootArgs,
  builtinBoardId,
  callerCwd,
  checkOption,
  commandWords,
  debianSuite,
  guestAppend,
  guestMemory,
  inputDir,
  inputFile,
  kernelSpec,
  knownRelease,
  outputDir,
  patchName,
  releaseOrKernelSpec,
  repeatable,
  runKernelSpec,
  safeCommanderError,
  timeoutSeconds,
  userPath,
} from "./options.ts";
import { UserInputError } from "../errors.ts";

/** Assert that `fn` refuses with an InvalidArgumentError whose message matches `re`. */
function refuses(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, String(err));
    assert.match(err.message, re);
    assert.doesNotMatch(err.message, /\n/, "one line");
    return true;
  });
}

/** Run `fn` with RKHIL_CWD set to `dir`. */
function inCwd<T>(dir: string, fn: () => T): T {
  const old = Deno.env.get("RKHIL_CWD");
  Deno.env.set("RKHIL_CWD", dir);
  try {
    return fn();
  } finally {
    if (old === undefined) Deno.env.delete("RKHIL_CWD");
    else Deno.env.set("RKHIL_CWD", old);
  }
}

Deno.test("guest memory: QEMU sizes 256M to 255G, canonical form", () => {
  assert.equal(guestMemory("8G"), "8G");
  assert.equal(guestMemory("8g"), "8G");
  assert.equal(guestMemory("512"), "512M");
  assert.equal(guestMemory("2048M"), "2048M");
  assert.equal(guestMemory("255G"), "255G");
  for (const bad of ["abc", "", "0", "8GB", "1.5G", "-1G", "128M", "256G", "1T", "8 G", "0x10G"]) {
    refuses(() => guestMemory(bad), /expected a memory size like 8G or 512M/);
  }
});

Deno.test("timeout: positive seconds up to a day", () => {
  assert.equal(timeoutSeconds("300"), 300);
  assert.equal(timeoutSeconds("2.5"), 2.5);
  for (const bad of ["abc", "", "0", "-5", "NaN", "Infinity", "1e3", "86401", "0x10"]) {
    refuses(() => timeoutSeconds(bad), /expected a number of seconds greater than 0/);
  }
});

Deno.test("kernel specs: suites and Debian versions; the rest refused with what is valid", () => {
  assert.equal(kernelSpec("debian:trixie"), "debian:trixie");
  assert.equal(kernelSpec("debian:6.1.158-1"), "debian:6.1.158-1");
  assert.equal(kernelSpec("debian:1:6.12.5-1~bpo12+1"), "debian:1:6.12.5-1~bpo12+1");
  refuses(() => kernelSpec("trixie"), /expected debian:<suite> or debian:<package version>/);
  refuses(() => kernelSpec("debian:nope"), /unknown Debian suite "nope"; use one of .*trixie/);
  refuses(() => kernelSpec("debian:6.1;rm -rf /"), /is not a Debian package version/);
  refuses(() => kernelSpec("debian:constructor"), /unknown Debian suite/);
  refuses(() => kernelSpec(`debian:${"9".repeat(500)}`), /\(\d+ characters\)/);
});

Deno.test("rkhil run --kernel: a Debian kernel or dir:/ABSOLUTE/DIR (farm boards with deploy:)", () => {
  assert.equal(runKernelSpec("debian:trixie"), "debian:trixie");
  assert.equal(runKernelSpec("dir:/srv/kernels/6.12"), "dir:/srv/kernels/6.12");
  refuses(() => runKernelSpec("debian:nope"), /unknown Debian suite/);
  for (const bad of ["dir:", "dir:kernels/6.12", "dir:/a\nb", "dir:/a\u0000b"]) {
    refuses(
      () => runKernelSpec(bad),
      /expected dir:\/ABSOLUTE\/DIRECTORY holding vmlinuz-<release>/,
    );
  }
});

Deno.test("releases, board ids, patch sets, boot arguments", () => {
  assert.equal(knownRelease("6.12"), "6.12");
  refuses(() => knownRelease("4.19"), /unknown kernel release "4\.19"; use one of 5\.14 … 7\.3/);
  assert.equal(releaseOrKernelSpec("debian:bookworm"), "debian:bookworm");
  refuses(() => releaseOrKernelSpec("9.9"), /unknown kernel release/);
  assert.equal(boardId("rock-3b-8g"), "rock-3b-8g");
  refuses(() => boardId("Rock 3B"), /expected a board id like rock-3b-8g/);
  refuses(() => boardId("../../etc/passwd"), /expected a board id/);
  refuses(() => boardId("a".repeat(65)), /expected a board id/);
  assert.equal(builtinBoardId("rock-3b-8g"), "rock-3b-8g");
  refuses(() => builtinBoardId("nope"), /unknown board id; known boards: .*rock-3b-8g/);
  refuses(() => builtinBoardId("No Such"), /expected a board id/);
  assert.equal(patchName("per-device-ops"), "per-device-ops");
  refuses(() => patchName("x"), /unknown patch set "x"; use one of .*per-device-ops/);
  assert.equal(bootArgs("mem=3840M swiotlb=force"), "mem=3840M swiotlb=force");
  refuses(() => bootArgs("mem=lots"), /mem="lots": no number at the start; expected/);
  assert.deepEqual(repeatable(boardId)("b", ["a"]), ["a", "b"]);
  // A variadic argument without a default starts from undefined.
  assert.deepEqual(repeatable(boardId)("b", undefined), ["b"]);
  assert.deepEqual(commandWords("printf", commandWords("", ["x"])), ["x", "", "printf"]);
  refuses(() => commandWords(" ", undefined), /expected a command to run after --/);
  assert.equal(debianSuite("trixie-backports"), "trixie-backports");
  refuses(() => debianSuite("toString"), /unknown Debian suite; use one of bookworm/);
});

Deno.test("guest --append: printable, well formed, and within the 2047-byte command line", () => {
  assert.equal(guestAppend("mem=3G swiotlb=force"), "mem=3G swiotlb=force");
  refuses(() => guestAppend("quiet\nmem=1G"), /printable text/);
  refuses(() => guestAppend("x\x1b[2J"), /printable text.*\\e\[2J/);
  refuses(() => guestAppend("mem=abc"), /mem="abc"/);
  refuses(
    () => guestAppend(`dyndbg=${"x".repeat(2100)} mem=3G`),
    /would be \d+ bytes; an arm64 kernel keeps only 2047 \(COMMAND_LINE_SIZE 2048\)/,
  );
});

Deno.test("paths resolve against RKHIL_CWD, the caller's directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "x.dtb"), "not checked here");
    await Deno.mkdir(join(dir, "boards"));
    inCwd(dir, () => {
      assert.equal(callerCwd(), dir);
      assert.equal(userPath("runs"), join(dir, "runs"));
      assert.equal(inputFile("x.dtb"), join(dir, "x.dtb"));
      assert.equal(inputDir("boards"), join(dir, "boards"));
      assert.equal(outputDir("new/deeper"), join(dir, "new/deeper"));
      assert.equal(outputDir("."), dir);
      assert.equal(inputFile(join(dir, "x.dtb")), join(dir, "x.dtb"));
    });
    // Nothing was created by the checks (the write probe is removed again).
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["boards", "x.dtb"]);
    // A relative RKHIL_CWD is ignored (the process's own directory is used).
    inCwd("relative/dir", () => assert.equal(callerCwd(), Deno.cwd()));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("paths: empty, missing, wrong kind, unwritable, uncreatable, NUL", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "file");
    await Deno.writeTextFile(file, "x");
    inCwd(dir, () => {
      refuses(() => outputDir(""), /expected a path, got an empty value/);
      refuses(() => outputDir("  "), /expected a path, got an empty value/);
      refuses(() => inputFile("a\0b"), /contains a NUL byte/);
      refuses(() => inputFile("missing.dtb"), new RegExp(`no such file: "${dir}/missing\\.dtb"`));
      refuses(() => inputFile("."), /is a directory; expected a file/);
      refuses(() => inputFile("/dev/null"), /is a device; expected a file/);
      refuses(() => inputDir("file"), /is a file; expected a directory/);
      refuses(() => inputDir("nope"), /no such directory/);
      refuses(() => outputDir("file"), /"[^"]*\/file" is a file; expected a directory/);
      refuses(() => outputDir("file/sub"), /cannot create .*file\/sub": .*file" is a file, not a/);
      // sysfs refuses new files even to root: an existing and a to-be-created directory.
      refuses(() => outputDir("/sys"), /cannot write in "\/sys": permission denied/);
      refuses(
        () => outputDir("/sys/rkhil-runs/x"),
        /cannot create "\/sys\/rkhil-runs\/x": "\/sys" is not writable \(permission denied\)/,
      );
      refuses(() => outputDir("x".repeat(5000)), /longer than 4000 bytes/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkOption: a default that fails is a UserInputError naming the option", () => {
  assert.equal(checkOption("--mem", "8G", guestMemory), "8G");
  assert.throws(() => checkOption("--runs-dir", "", outputDir), (err: unknown) => {
    assert.ok(err instanceof UserInputError);
    assert.match(err.message, /^option '--runs-dir': expected a path/);
    return true;
  });
});

Deno.test("commander's messages: the raw value is escaped and cut", () => {
  const evil = `\x1b]0;pwned\x07${"A".repeat(300)}`;
  const out = safeCommanderError(
    `error: option '--mem <size>' argument '${evil}' is invalid. expected a memory size\n`,
  );
  assert.match(
    out,
    /^error: option '--mem <size>' argument "\\e\]0;pwned\\x07A+…" \(\d+ characters\) is invalid\. expected a memory size\n$/,
  );
  assert.ok(out.length < 200);
  assert.equal(
    safeCommanderError("error: unknown option '--x\x1b[1m'\n"),
    'error: unknown option "--x\\e[1m"\n',
  );
  assert.equal(
    safeCommanderError("error: required option '--kernel <spec>' not specified\n"),
    "error: required option '--kernel <spec>' not specified\n",
  );
});
