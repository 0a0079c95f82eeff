/**
 * Target benchmark on a QEMU TCG guest (`-M virt -cpu cortex-a53 -smp 2 -m 8G`,
 * Debian trixie 6.12 by default), written to `bench/results/target.json`:
 *
 * 1. Command round trip over one reused SSH connection: a new exec channel per command vs the
 *    persistent marker-framed shell on a shell channel (goal: framed median < 20 ms).
 * 2. Serial console: the framed shell's round trip vs the guest's raw echo time (one
 *    character typed at the shell's line editor and echoed back; goal: within 2x).
 * 3. Console capture through the pseudo-terminal (serialport on the Deno binding, console
 *    set to 1 500 000 baud): the guest writes a known pattern to /dev/ttyAMA0 at full speed
 *    and paced to 150 000 B/s; every byte of the capture file is checked.
 *
 * Run: deno run -A bench/target.ts [kernel spec] [rounds=100]
 * (A script rather than Deno.bench: it needs one booted guest for all cases.)
 */
import { stats } from "./stats.ts";
import { QemuTarget } from "../runner/qemu/target.ts";
import { frameCommand, makeMarker } from "../runner/shell/framed.ts";

/** Printable bytes only, so the tty's output processing (off anyway) cannot touch them. */
const PATTERN_LINE =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:;+=!?#%&*()";

const spec = Deno.args[0] ?? "debian:trixie";
const rounds = Number(Deno.args[1] ?? 100);
const runDir = await Deno.makeTempDir({ prefix: "rkhil-target-bench-" });

const s = await QemuTarget.prepare({ kernel: spec, runDir });
await s.ready();
const out: Record<string, unknown> = {
  date: new Date().toISOString(),
  kernel: s.kernel.release,
  spec,
  host: { cpus: navigator.hardwareConcurrency, loadavg: Deno.loadavg() },
  guest: "qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 8G (TCG)",
  rounds,
};
try {
  // --- 2a. raw echo on the console, before anything normalised the console shell --------
  const rec = s.console!.recorder;
  await rec.write("\n");
  await rec.waitFor("rkhil-qemu# ", { timeoutMs: 10_000, owner: "prompt", from: 0 });
  await new Promise((r) => setTimeout(r, 500));
  const echo: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const from = rec.mark();
    const t0 = performance.now();
    await rec.write("x");
    await rec.waitFor("x", { timeoutMs: 5_000, owner: "echo", from });
    echo.push(performance.now() - t0);
    const from2 = rec.mark();
    await rec.write("\x7f");
    // deno-lint-ignore no-control-regex
    await rec.waitFor(/[\b\x1b]/, { timeoutMs: 5_000, owner: "erase echo", from: from2 });
  }

  // --- 2b. framed shell on the console -----------------------------------------------------
  await s.command.run("true", { via: "serial" });
  const serial: number[] = [];
  for (let i = 0; i < rounds; i++) {
    serial.push((await s.command.run("true", { via: "serial" })).durationMs);
  }
  // The same without the subshell (isolate: false): no fork per command in the guest.
  const serialGroup: number[] = [];
  for (let i = 0; i < rounds; i++) {
    serialGroup.push((await s.command.run("true", { via: "serial", isolate: false })).durationMs);
  }

  // --- 2c. kernel tty echo of a line as long as a framed command (the transport's floor) ----
  // The framed shell turned echo off; the line discipline echoes at receive time when it is
  // on, whoever reads. The line is killed (Ctrl-U) afterwards, never entered.
  const lineLen = frameCommand("true", makeMarker(Math.random), Math.random).length;
  await s.command.run("stty -F /dev/ttyAMA0 echo", { via: "ssh-exec" });
  const lineEcho: number[] = [];
  const charEcho: number[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const [n, into] of [[1, charEcho], [lineLen, lineEcho]] as const) {
      const from = rec.mark();
      const t0 = performance.now();
      await rec.write("y".repeat(n));
      await rec.waitFor(new RegExp(`y{${n}}`), { timeoutMs: 5_000, owner: "line echo", from });
      into.push(performance.now() - t0);
      await rec.write("\x15");
      await new Promise((r) => setTimeout(r, 30));
    }
  }
  await s.command.run("stty -F /dev/ttyAMA0 -echo", { via: "ssh-exec" });
  const e = stats(echo);
  const f = stats(serial);
  const fg = stats(serialGroup);
  const le = stats(lineEcho);
  out.serial = {
    shellEchoOneCharMs: e,
    kernelEchoOneCharMs: stats(charEcho),
    kernelEchoLineMs: { ...le, bytes: lineLen },
    framedShellMs: f,
    framedShellNoSubshellMs: fg,
    ratioToShellEchoOneChar: Math.round((f.median / e.median) * 100) / 100,
    ratioToKernelEchoLine: Math.round((f.median / le.median) * 100) / 100,
    noSubshellRatioToKernelEchoLine: Math.round((fg.median / le.median) * 100) / 100,
    goal: "framed median within 2x of the raw echo median",
  };
  console.log(
    `serial: shell echo 1 char ${e.median} ms, kernel echo ${lineLen} B ${le.median} ms, ` +
      `framed ${f.median} ms (no subshell ${fg.median} ms)`,
  );

  // --- 1. SSH: exec channel vs persistent framed shell ------------------------------------
  await s.command.run("true", { via: "ssh-exec" });
  await s.command.run("true", { via: "ssh-shell" });
  const exec: number[] = [];
  const shell: number[] = [];
  for (let i = 0; i < rounds; i++) {
    exec.push((await s.command.run("true", { via: "ssh-exec" })).durationMs);
    shell.push((await s.command.run("true", { via: "ssh-shell" })).durationMs);
  }
  out.ssh = {
    execChannelMs: stats(exec),
    framedShellMs: stats(shell),
    goal: "framed shell median < 20 ms",
  };
  console.log(
    `ssh: exec median ${stats(exec).median} ms, framed shell median ${stats(shell).median} ms`,
  );

  // --- 3. console capture ------------------------------------------------------------------
  const captures = [];
  for (const mode of ["full-speed", "paced-150000Bps"] as const) {
    const lines = mode === "full-speed" ? 50_000 : 15_000; // 4 MB / 1.2 MB
    const body = PATTERN_LINE;
    let text = `RKHIL-PATTERN-BEGIN-${mode}\n`;
    for (let i = 0; i < lines; i++) text += `${String(i).padStart(8, "0")} ${body}\n`;
    text += `RKHIL-PATTERN-END-${mode}\n`;
    const bytes = new TextEncoder().encode(text);
    const local = `${runDir}/pattern-${mode}.txt`;
    await Deno.writeFile(local, bytes);
    await s.files!.upload(local, "/tmp/pattern.txt", { timeoutMs: 300_000 });
    const capture = s.machine!.consoleCapturePath;
    const con = s.console!.stream;
    const before = con.bytesReceived;
    const write = mode === "full-speed"
      ? "cat /tmp/pattern.txt > /dev/ttyAMA0"
      // 15 000 bytes every 100 ms
      : `n=$(( ($(wc -c < /tmp/pattern.txt) + 14999) / 15000 )); i=0; ` +
        `while [ $i -lt $n ]; do dd if=/tmp/pattern.txt bs=15000 skip=$i count=1 ` +
        `2>/dev/null; usleep 100000; i=$((i+1)); done > /dev/ttyAMA0`;
    const t0 = performance.now();
    const r = await s.command.run(
      `stty -F /dev/ttyAMA0 -opost; dmesg -n 1; ${write}`,
      { via: "ssh-exec", timeoutMs: 300_000 },
    );
    if (r.exitStatus !== 0) throw new Error(`pattern writer failed: ${r.stdout}`);
    // The guest's write returns when the bytes are in its UART; wait for the host side.
    const deadline = performance.now() + 60_000;
    while (con.bytesReceived - before < bytes.length && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 200));
    const got = await Deno.readFile(capture);
    const begin = indexOf(got, new TextEncoder().encode(`RKHIL-PATTERN-BEGIN-${mode}\n`));
    let mismatches = 0;
    let firstMismatch = -1;
    const n = begin < 0 ? 0 : Math.min(bytes.length, got.length - begin);
    for (let i = 0; i < n; i++) {
      if (got[begin + i] !== bytes[i]) {
        mismatches++;
        if (firstMismatch < 0) firstMismatch = i;
      }
    }
    const c = {
      mode,
      bytes: bytes.length,
      received: con.bytesReceived - before,
      found: begin >= 0,
      lost: bytes.length - n,
      mismatches,
      firstMismatch,
      seconds: Math.round(seconds * 100) / 100,
      bytesPerSecond: Math.round(bytes.length / seconds),
      baudRateSet: 1_500_000,
    };
    captures.push(c);
    console.log(`capture ${mode}: ${JSON.stringify(c)}`);
  }
  out.consoleCapture = captures;
} finally {
  await s.close();
}

await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  new URL("./results/target.json", import.meta.url),
  JSON.stringify(out, null, 2) + "\n",
);
console.log(JSON.stringify(out, null, 2));

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
