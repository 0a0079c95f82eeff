/**
 * rkhil and labgrid 0.4.1 side by side on ONE QEMU guest (Debian trixie 6.12, 8 GiB, TCG),
 * interleaved, written to `bench/results/labgrid.json` (issue 13).
 *
 * labgrid is Debian's `python3-labgrid`, driven by `bench/labgrid_side.py` under the system
 * Python (installed through runner/debian/host_tools.ts when missing). It reaches the guest as
 * a lab reaches a board, without its QEMUDriver: SSHDriver on the forwarded SSH port (root, the
 * image's client key; its ControlMaster, as labgrid always runs it), SerialDriver +
 * ShellDriver on the console pseudo-terminal. rkhil and labgrid take turns on that pty
 * (bench/_shared_pty.ts: one reader at a time).
 *
 * Rows (labgrid's call vs rkhil's):
 * - `ssh-command`: `SSHDriver.run("true")` vs the Target's `command.run("true")` over
 *   `ssh-exec` (its default over SSH), both on their open connection;
 * - `ssh-exec-floor`: the same labgrid call vs a bare exec channel running `true` (no wrapper,
 *   no PID line: what any exec channel costs on this guest, the floor of `ssh-command`);
 * - `ssh-framed-shell`: the same labgrid call vs `command.run` over `ssh-shell`;
 * - `serial-command`: `ShellDriver.run("true")` vs `command.run` over `serial` (the framed
 *   console shell, subshell per command as labgrid's `sh -c`);
 * - `ssh-first`: a new SSHDriver activated + `run("true")` vs a new SSH connection (the
 *   Target's `SshLink`) + the first `ssh-exec` command;
 * - `ssh-first-framed`: the same labgrid call vs a new connection + framed shell start + command;
 * - `serial-first`: a new SerialDriver + ShellDriver activated + `run("true")` vs a framed shell
 *   started on the console (as the Target starts it) + its first command.
 *
 * Each round runs both tools once, the order rotated every round; the first `--warmup` rounds
 * are discarded. Per row: each tool's summary, the ratio of medians (labgrid / rkhil: > 1 means
 * rkhil is faster) with its 95 % bootstrap interval over rounds, the load average around it.
 * Times are wall times around the call, in milliseconds, taken in each tool's own process.
 *
 * `serial-first`'s labgrid side is mostly an idle wait: ShellDriver's activation first waits
 * `await_login_timeout` whole seconds for the prompt, and on an idle console (the prompt was
 * printed before labgrid opened it) nothing comes, so it then sends a newline. This benchmark
 * sets it to `--await-login-timeout` (default 1; labgrid's own default, used by the recorded
 * row, is 2).
 *
 * Run: deno run -A bench/labgrid.ts [--samples 200] [--warmup 5] [--kernel debian:trixie]
 *      [--rows ssh-command,serial-command,...] [--await-login-timeout 1] [--out FILE]
 * (default output: all rows `bench/results/labgrid.json`, some rows
 * `bench/results/labgrid-rows.json`). The file is written after each row with the rows so far
 * (`complete: false` until the last); a failure is one line on stderr and exit 1, bad options
 * exit 2 before any work.
 *
 * @module
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { bootstrapRatio, stats } from "./stats.ts";
import { SharedPtyConsole } from "./_shared_pty.ts";
import { QemuTarget } from "../runner/qemu/target.ts";
import { consoleTap } from "../runner/qemu/console.ts";
import { FramedShell } from "../runner/shell/framed.ts";
import { SshLink } from "../runner/target/ssh_link.ts";
import { execCommandLine } from "../runner/target/commands.ts";
import { aptInstall, ensureHostTools, hostCommand } from "../runner/debian/host_tools.ts";

const ROWS = [
  "ssh-command",
  "ssh-exec-floor",
  "ssh-framed-shell",
  "serial-command",
  "ssh-first",
  "ssh-first-framed",
  "serial-first",
] as const;
type Row = typeof ROWS[number];

function usage(msg: string): never {
  console.error(`bench/labgrid.ts: ${msg}`);
  Deno.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    options: {
      samples: { type: "string", default: "200" },
      warmup: { type: "string", default: "5" },
      kernel: { type: "string", default: "debian:trixie" },
      rows: { type: "string", default: ROWS.join(",") },
      "await-login-timeout": { type: "string", default: "1" },
      out: { type: "string" },
    },
    strict: true,
  });
} catch (err) {
  usage(
    `${(err as Error).message} (options: --samples N --warmup N --kernel SPEC --rows A,B ` +
      `--await-login-timeout S --out FILE)`,
  );
}
const count = (name: string, v: string, min: number, max = 100_000) => {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    usage(`--${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`);
  }
  return Number(v);
};
const samples = count("samples", parsed.values.samples, 1);
const warmup = count("warmup", parsed.values.warmup, 0);
// Whole seconds: labgrid's ShellDriver validates it as an int.
const awaitLoginTimeout = count("await-login-timeout", parsed.values["await-login-timeout"], 0, 60);
const spec = parsed.values.kernel;
const rows = parsed.values.rows.split(",").map((r) => r.trim()).filter(Boolean);
for (const r of rows) {
  if (!(ROWS as readonly string[]).includes(r)) {
    usage(`unknown row ${JSON.stringify(r)}: rows are ${ROWS.join(", ")}`);
  }
}
// The recorded file holds every row; a run of some rows goes beside it; --out anywhere else.
const outFile = parsed.values.out ?? fileURLToPath(
  new URL(
    `./results/${rows.length === ROWS.length ? "labgrid.json" : "labgrid-rows.json"}`,
    import.meta.url,
  ),
);
{
  const dir = dirname(outFile);
  if (outFile.endsWith("/") || !(await Deno.stat(dir).then((s) => s.isDirectory, () => false))) {
    usage(`--out ${JSON.stringify(outFile)}: give a file path in an existing directory`);
  }
}

try {
  await main();
} catch (err) {
  console.error(`bench/labgrid.ts: ${err instanceof Error ? err.message : String(err)}`);
  Deno.exit(1);
}

async function main(): Promise<void> {
  // --- labgrid on this host: the system Python, labgrid, and the ssh it starts ----------------
  const PYTHON = "/usr/bin/python3";
  await ensureHostTools([PYTHON, "ssh"]);
  async function py(code: string): Promise<{ ok: boolean; out: string }> {
    const r = await (await hostCommand(PYTHON, { args: ["-c", code], stdin: "null" })).output();
    return { ok: r.success, out: new TextDecoder().decode(r.stdout).trim() };
  }
  if (!(await py("import labgrid")).ok) {
    await aptInstall(
      ["python3-labgrid"],
      "bench/labgrid.ts: labgrid for the side-by-side benchmark",
    );
  }
  const lgVersion = (await py("import importlib.metadata as m; print(m.version('labgrid'))")).out;

  // --- one guest -----------------------------------------------------------------------------
  const runDir = await Deno.makeTempDir({ prefix: "rkhil-labgrid-bench-" });
  let shared: SharedPtyConsole | undefined;
  const target = await QemuTarget.prepare({
    kernel: spec,
    runDir,
    memory: "8G",
    openConsole: async (pty, log) => (shared = await SharedPtyConsole.open(pty, log)),
  });
  const loads: number[][] = [];
  const out: Record<string, unknown> = {
    date: new Date().toISOString(),
    spec,
    labgrid: lgVersion,
    host: { cpus: navigator.hardwareConcurrency, loadavgStart: Deno.loadavg() },
    guest: "qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 8G (TCG)",
    samples,
    warmup,
    awaitLoginTimeoutS: awaitLoginTimeout,
    complete: false,
    unit: "ms",
    ratio: "labgrid median / rkhil median (> 1: rkhil faster); 95 % bootstrap over rounds",
  };
  const save = async () => {
    out.host = { ...(out.host as object), loadavgEnd: Deno.loadavg() };
    await Deno.writeTextFile(outFile, JSON.stringify(out, null, 2) + "\n");
  };
  let side: Deno.ChildProcess | undefined;
  let writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  let floorLink: SshLink | undefined;
  try {
    await target.ready();
    out.kernel = target.release;
    const con = shared!;
    // The console shell first: rkhil normalises it (PS1 'rkhil$ '), labgrid then finds that prompt.
    for (const via of ["serial", "ssh-exec", "ssh-shell"] as const) {
      const r = await target.command.run("true", { via });
      if (r.exitStatus !== 0) throw new Error(`warm-up over ${via} failed: ${r.stdout}`);
    }
    const ep = await target.driver.sshEndpoint();
    const cfg = {
      host: ep.host,
      port: ep.port,
      user: ep.user,
      keyfile: target.image.clientKey.privateKeyPath,
      pty: con.ptyPath,
      prompt: String.raw`rkhil\$ `,
      await_login_timeout: awaitLoginTimeout,
    };
    side = (await hostCommand(PYTHON, {
      args: [new URL("./labgrid_side.py", import.meta.url).pathname, JSON.stringify(cfg)],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    })).spawn();
    const sideIn = writer = side.stdin.getWriter();
    const reader = side.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let pending = "";
    const nextLine = async (): Promise<string | undefined> => {
      for (;;) {
        const nl = pending.indexOf("\n");
        if (nl >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          return line;
        }
        const { value, done } = await reader.read();
        if (done) return undefined;
        pending += value;
      }
    };
    const lab = async (op: string, extra: Record<string, unknown> = {}): Promise<number[]> => {
      await sideIn.write(new TextEncoder().encode(JSON.stringify({ op, ...extra }) + "\n"));
      const value = await nextLine();
      if (value === undefined) throw new Error(`labgrid side ended during ${op}`);
      const a = JSON.parse(value) as { ok: boolean; ms?: number[]; error?: string };
      if (!a.ok) throw new Error(`labgrid ${op}: ${a.error}`);
      return a.ms!;
    };
    const timed = async (fn: () => Promise<unknown>) => {
      const t0 = performance.now();
      await fn();
      return performance.now() - t0;
    };
    const ok = (what: string) => (r: { exitStatus: number; stdout: string }) => {
      if (r.exitStatus !== 0 || r.stdout !== "") {
        throw new Error(`${what}: exit ${r.exitStatus}, output ${JSON.stringify(r.stdout)}`);
      }
    };
    const cmd = (via: "ssh-exec" | "ssh-shell" | "serial") => () =>
      timed(async () => ok(via)(await target.command.run("true", { via })));
    const floor = floorLink = new SshLink("bench floor", 30_000, () => {});
    const consoleOpts = {
      name: "bench console",
      quietMs: 300,
      loginTimeoutMs: 30_000,
      syncTimeoutMs: 10_000,
    };
    const sides: Record<
      Row,
      { serial: boolean; lab: () => Promise<number>; rk: () => Promise<number> }
    > = {
      "ssh-command": {
        serial: false,
        lab: async () => (await lab("ssh_run"))[0],
        rk: cmd("ssh-exec"),
      },
      "ssh-exec-floor": {
        serial: false,
        lab: async () => (await lab("ssh_run"))[0],
        rk: async () => {
          const ssh = await floor.session(ep, 0);
          return await timed(async () => {
            const r = await ssh.exec("true", { killOnTimeout: false, timeoutMs: 30_000 });
            ok("bare exec")({ exitStatus: r.exitStatus ?? -1, stdout: r.stdout + r.stderr });
          });
        },
      },
      "ssh-framed-shell": {
        serial: false,
        lab: async () => (await lab("ssh_run"))[0],
        rk: cmd("ssh-shell"),
      },
      "serial-command": {
        serial: true,
        lab: async () => (await lab("serial_run"))[0],
        rk: cmd("serial"),
      },
      "ssh-first": {
        serial: false,
        lab: async () => (await lab("ssh_first"))[0],
        rk: async () => {
          const link = new SshLink("bench", 30_000, () => {});
          try {
            return await timed(async () => {
              const ssh = await link.session(ep, 0);
              const r = await ssh.exec(execCommandLine("true", false), { timeoutMs: 30_000 });
              ok("first ssh-exec")({ exitStatus: r.exitStatus ?? -1, stdout: r.stdout + r.stderr });
            });
          } finally {
            await link.close();
          }
        },
      },
      "ssh-first-framed": {
        serial: false,
        lab: async () => (await lab("ssh_first"))[0],
        rk: async () => {
          const link = new SshLink("bench", 30_000, () => {});
          try {
            return await timed(async () =>
              ok("first ssh-shell")(await (await link.shell(ep, 0, "bench ssh shell")).run("true"))
            );
          } finally {
            await link.close();
          }
        },
      },
      "serial-first": {
        serial: true,
        lab: async () => (await lab("serial_first"))[0],
        rk: async () => {
          let sh: FramedShell | undefined;
          try {
            return await timed(async () => {
              sh = await FramedShell.start(consoleTap(con), consoleOpts);
              ok("first serial")(await sh.run("true"));
            });
          } finally {
            await sh?.close();
          }
        },
      },
    };
    const results: Record<string, unknown> = {};
    out.rows = results;
    for (const row of rows as Row[]) {
      const s = sides[row];
      const labMs: number[] = [];
      const rkMs: number[] = [];
      const loadBefore = Deno.loadavg();
      loads.push(loadBefore);
      const turn = async (who: "lab" | "rk", keep: boolean) => {
        if (s.serial && who === "lab") await con.detach();
        if (s.serial && who === "rk") await con.attach();
        const ms = await s[who]();
        if (keep) (who === "lab" ? labMs : rkMs).push(ms);
      };
      for (let i = 0; i < warmup + samples; i++) {
        const order = i % 2 === 0 ? ["rk", "lab"] as const : ["lab", "rk"] as const;
        for (const who of order) await turn(who, i >= warmup);
      }
      await con.attach();
      const l = stats(labMs);
      const r = stats(rkMs);
      const ratio = bootstrapRatio(labMs, rkMs);
      results[row] = {
        labgridMs: l,
        rkhilMs: r,
        ratio,
        loadavg: { before: loadBefore, after: Deno.loadavg() },
      };
      console.log(
        `${row}: labgrid ${l.median} ms, rkhil ${r.median} ms, ratio ${ratio.ratio} ` +
          `[${ratio.low}, ${ratio.high}] (load ${loadBefore[0]})`,
      );
      // The rows so far, so a later failure loses none of them.
      await save();
    }
    // labgrid_side.py deactivates its drivers (its ssh ControlMasters) before it answers.
    await lab("quit");
    out.complete = true;
  } finally {
    await floorLink?.close().catch(() => {});
    await shared?.attach().catch(() => {});
    if (side) {
      // End of stdin also ends the side's loop and deactivates its drivers; SIGTERM only if it
      // has not exited within 5 s (its handler still deactivates them), SIGKILL 10 s later.
      await writer?.close().catch(() => {});
      const child = side;
      const exitedWithin = async (ms: number) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const exited = await Promise.race([
          child.status.then(() => true),
          new Promise<false>((res) => timer = setTimeout(() => res(false), ms)),
        ]);
        clearTimeout(timer);
        return exited;
      };
      for (const [ms, signal] of [[5_000, "SIGTERM"], [10_000, "SIGKILL"]] as const) {
        if (await exitedWithin(ms)) break;
        try {
          child.kill(signal);
        } catch { /* ended meanwhile */ }
      }
      await child.status;
    }
    await target.close();
  }
  await save();
  console.log(JSON.stringify(out.rows, null, 2));
}
