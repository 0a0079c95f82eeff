/**
 * Stopping a timed-out command of an SSH exec channel with everything it started, on any
 * POSIX target (busybox ash + dropbear in the QEMU guest, dash or bash + OpenSSH on a Debian
 * board), without `pkill` or `ps`.
 *
 * Killing the channel's shell alone is not enough: dropbear starts no new process group per
 * session, so `kill -- -PID` misses, and the children of `echo a; sleep 600; echo b` outlive
 * the shell. The exec wrapper therefore tags the command: it exports
 * `RKHIL_EXEC_ID=<token>` ({@linkcode execTagLine}, a builtin: no fork on the hot path), which
 * every process the command starts inherits. On timeout, {@linkcode killTreeScript} runs on a
 * second channel and, reading only /proc:
 *
 * 1. freezes the command: SIGSTOP to the shell, then, pass after pass until a pass finds no new
 *    one, to every process that is a child of one already found, carries the tag in
 *    /proc/PID/environ (orphans that were reparented to init), or is in the shell's process
 *    group when the shell leads one (OpenSSH's setsid per session). A stopped process cannot
 *    fork, so the passes end;
 * 2. sends SIGTERM and SIGCONT to all of them and waits up to the grace period for them to
 *    end (zombies count as ended);
 * 3. freezes again (a TERM handler may have started more), sends SIGKILL to every survivor
 *    and waits for them; prints `rkhil-kill: found N left M` (M processes still alive).
 *
 * A process that both leaves the command's process tree (double fork) and drops the
 * environment (`env -i`, `sudo`) while the shell leads no process group escapes.
 *
 * @module
 */

/** Name of the environment variable that tags a command's processes. */
export const EXEC_TAG_VAR = "RKHIL_EXEC_ID";

/** Default TERM → KILL grace period of {@linkcode killTreeScript} in milliseconds. */
export const KILL_GRACE_MS = 1_000;

/** A fresh tag for one exec: 16 lowercase hex digits. */
export function newExecTag(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

function checkTag(tag: string): void {
  if (!/^[0-9a-f]{8,64}$/.test(tag)) {
    throw new RangeError(`exec tag must be 8-64 lowercase hex digits, got ${JSON.stringify(tag)}`);
  }
}

/**
 * The line the exec wrapper runs first: `export RKHIL_EXEC_ID=<tag>;` (no newline).
 *
 * @throws {RangeError} when `tag` is not 8-64 lowercase hex digits.
 */
export function execTagLine(tag: string): string {
  checkTag(tag);
  return `export ${EXEC_TAG_VAR}=${tag};`;
}

/** What {@linkcode parseKillReport} read from the script's output. */
export interface KillReport {
  /** Processes of the command found (the shell included). */
  readonly found: number;
  /** Processes still alive after SIGKILL (0 when everything ended). */
  readonly left: number;
}

/**
 * The report line of {@linkcode killTreeScript}'s output, or null when there is none (the
 * script did not run to its end: the connection broke, the target hung).
 */
export function parseKillReport(out: string): KillReport | null {
  const m = /^rkhil-kill: found (\d{1,9}) left (\d{1,9})$/m.exec(out);
  return m ? { found: Number(m[1]), left: Number(m[2]) } : null;
}

/**
 * What stopping a timed-out command did, as the report says it, for an error's hint and the
 * log: `its 3 processes found in the target were killed` (left 0: a process that escaped the
 * search, see the module doc, is not counted), `stopping it in the target left 1 of its 3
 * processes running`, or, with no report (null: the script did not finish), `stopping it in the
 * target did not finish: processes of it may be left running`.
 */
export function describeKill(report: KillReport | null): string {
  if (!report) {
    return "stopping it in the target did not finish: processes of it may be left running";
  }
  const n = (k: number) => `${k} process${k === 1 ? "" : "es"}`;
  if (report.left > 0) {
    return `stopping it in the target left ${report.left} of its ${n(report.found)} running`;
  }
  return `its ${n(report.found)} found in the target ${report.found === 1 ? "was" : "were"} killed`;
}

/**
 * A POSIX sh script that stops the command whose exec shell is `pid` and every process it
 * started (see the module doc), TERM first and KILL after `graceMs`. It uses only shell
 * builtins, `grep -z` (busybox and GNU) and `sleep` with a fraction. Its exit status is 0
 * when nothing is left, 1 otherwise; its output ends with the report line
 * ({@linkcode parseKillReport}).
 *
 * @param pid the exec shell's PID (from the wrapper's PID line)
 * @param tag the command's tag ({@linkcode execTagLine})
 * @param graceMs TERM → KILL grace period in ms (rounded up to 100 ms steps, at most 60 s)
 * @throws {RangeError} on a PID that is not a positive integer, a bad tag or grace period.
 */
export function killTreeScript(pid: number, tag: string, graceMs = KILL_GRACE_MS): string {
  if (!Number.isSafeInteger(pid) || pid < 2) {
    throw new RangeError(`exec shell PID must be an integer above 1, got ${pid}`);
  }
  checkTag(tag);
  if (!(graceMs >= 0 && graceMs <= 60_000)) {
    throw new RangeError(`kill grace period must be 0-60000 ms, got ${graceMs}`);
  }
  const tenths = Math.ceil(graceMs / 100);
  return `exec 2>/dev/null
r=${pid} all=" ${pid} " lead=
if read -r s </proc/$r/stat; then set -- \${s##*) }; [ "$3" = "$r" ] && lead=$r; fi
kill -STOP $r
freeze() {
  i=0
  while [ $i -lt 200 ]; do
    i=$((i + 1)); new=
    for f in $(grep -lszxF ${EXEC_TAG_VAR}=${tag} /proc/[0-9]*/environ); do
      p=\${f#/proc/}; p=\${p%/environ}
      case "$all$new " in *" $p "*) ;; *) new="$new $p" ;; esac
    done
    for f in /proc/[0-9]*/stat; do
      p=\${f#/proc/}; p=\${p%/stat}
      case "$all$new " in *" $p "*) continue ;; esac
      read -r s <"$f" || continue
      set -- \${s##*) }
      case "$all" in *" $2 "*) new="$new $p"; continue ;; esac
      [ -n "$lead" ] && [ "$3" = "$lead" ] && new="$new $p"
    done
    [ -z "$new" ] && return
    kill -STOP $new
    all="$all\${new# } "
  done
}
alive() {
  n=0
  for p in $all; do
    read -r s </proc/$p/stat || continue
    set -- \${s##*) }
    [ "$1" = Z ] || n=$((n + 1))
  done
  [ $n -gt 0 ]
}
waitgone() {
  w=0
  while alive && [ $w -lt $1 ]; do sleep 0.1; w=$((w + 1)); done
}
freeze
kill -TERM $all
kill -CONT $all
waitgone ${tenths}
freeze
kill -KILL $all
waitgone 20
found=0
for p in $all; do found=$((found + 1)); done
alive
echo "rkhil-kill: found $found left $n"
[ $n -eq 0 ]
`;
}
