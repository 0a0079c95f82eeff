"""labgrid's side of bench/labgrid.ts: drives one QEMU guest with labgrid 0.4.1 (Debian's
python3-labgrid, run with the system Python), timing each call with time.perf_counter.

The guest is reached the way a lab reaches a board without labgrid's QEMUDriver: SSHDriver on a
NetworkService (the guest's forwarded SSH port, root, the image's client key) and
SerialDriver + ShellDriver on a RawSerialPort (the guest's console pseudo-terminal).

Protocol: one JSON object per line on stdin, one JSON answer per line on stdout:
  {"op": "ssh_run", "n": N}       N times SSHDriver.run("true") on the persistent connection
  {"op": "serial_run", "n": N}    N times ShellDriver.run("true") on the persistent console
  {"op": "ssh_first"}             new SSHDriver: activate + run("true"); deactivate untimed
  {"op": "serial_first"}          new SerialDriver + ShellDriver: activate + run("true")
  {"op": "quit"}                  deactivate every driver, then answer and exit
Answer: {"ok": true, "ms": [...]} or {"ok": false, "error": "..."}. A command whose exit status
is not 0 or whose output is not empty is an error (nothing is timed as a success that failed).
Arguments: a JSON object on argv[1] with host, port, user, keyfile, pty, prompt and
await_login_timeout (whole seconds of console silence ShellDriver waits before it sends a newline
when it activates; labgrid's default is 2).

No ssh process outlives this program: every driver is deactivated (SSHDriver's deactivation
stops its keepalive and exits its ControlMaster, which runs in its own session, `ssh -f` with
ControlPersist) before `quit` is answered, when a timed call raises, when stdin ends and on
SIGTERM.
"""

import json
import os
import signal
import subprocess
import sys
import time

from labgrid import Target
from labgrid.driver import SerialDriver, ShellDriver, SSHDriver
from labgrid.resource import NetworkService, RawSerialPort


def main():
    cfg = json.loads(sys.argv[1])
    # SIGTERM (bench/labgrid.ts when this side does not end in time) unwinds through the
    # finally clauses below instead of leaving the drivers' ssh processes behind.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))
    counter = [0]

    def ssh_target():
        counter[0] += 1
        t = Target(f"bench-ssh-{counter[0]}")
        NetworkService(t, name=None, address=cfg["host"], port=int(cfg["port"]),
                       username=cfg["user"])
        drv = SSHDriver(t, name=None, keyfile=cfg["keyfile"])
        return t, drv

    def serial_target():
        counter[0] += 1
        t = Target(f"bench-serial-{counter[0]}")
        RawSerialPort(t, name=None, port=cfg["pty"], speed=1500000)
        SerialDriver(t, name=None)
        sh = ShellDriver(t, name=None, prompt=cfg["prompt"], login_prompt="login: ",
                         username="root",
                         await_login_timeout=int(cfg.get("await_login_timeout", 2)))
        return t, sh

    def check(res, what):
        out, _err, code = res
        if code != 0 or any(line.strip() for line in out):
            raise RuntimeError(f"{what}: exit {code}, output {out!r}")

    def close(t, drv):
        """Deactivates t's drivers. If drv is an SSHDriver whose activation raised after its
        ControlMaster started (labgrid then leaves it inactive, so deactivation skips it), that
        master is told to exit as well."""
        try:
            t.deactivate_all_drivers()
        finally:
            control = getattr(drv, "control", None)
            if isinstance(drv, SSHDriver) and control and os.path.exists(control):
                subprocess.call(["ssh", "-F", "none", "-o", f"ControlPath={control}", "-O", "exit",
                                 "x"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    ssh_t, ssh = ssh_target()
    persistent = []  # [(target, ShellDriver)] once the first serial_run opens it

    def persistent_shell():
        if not persistent:
            t, sh = serial_target()
            persistent.append((t, sh))
            t.activate(sh)
        return persistent[0][1]

    def close_all():
        try:
            while persistent:
                close(*persistent.pop())
        finally:
            close(ssh_t, ssh)

    try:
        ssh_t.activate(ssh)
        for line in sys.stdin:
            req = json.loads(line)
            op = req["op"]
            try:
                ms = []
                if op == "quit":
                    close_all()
                    print(json.dumps({"ok": True, "ms": []}), flush=True)
                    return
                if op == "ssh_run":
                    for _ in range(int(req.get("n", 1))):
                        t0 = time.perf_counter()
                        res = ssh.run("true")
                        ms.append((time.perf_counter() - t0) * 1000)
                        check(res, "SSHDriver.run")
                elif op == "serial_run":
                    sh = persistent_shell()
                    for _ in range(int(req.get("n", 1))):
                        t0 = time.perf_counter()
                        res = sh.run("true")
                        ms.append((time.perf_counter() - t0) * 1000)
                        check(res, "ShellDriver.run")
                elif op == "ssh_first":
                    t, drv = ssh_target()
                    try:
                        t0 = time.perf_counter()
                        t.activate(drv)
                        res = drv.run("true")
                        ms.append((time.perf_counter() - t0) * 1000)
                    finally:
                        close(t, drv)
                    check(res, "first SSHDriver.run")
                elif op == "serial_first":
                    t, sh = serial_target()
                    try:
                        t0 = time.perf_counter()
                        t.activate(sh)
                        res = sh.run("true")
                        ms.append((time.perf_counter() - t0) * 1000)
                    finally:
                        close(t, sh)
                    check(res, "first ShellDriver.run")
                else:
                    raise ValueError(f"unknown op {op!r}")
                print(json.dumps({"ok": True, "ms": ms}), flush=True)
            except Exception as e:  # pylint: disable=broad-except
                print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}),
                      flush=True)
    finally:
        close_all()


if __name__ == "__main__":
    main()
