#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
The programs' own messages, without a daemon or privileges:

    test_cli.py DVIPAD DVIPACTL HOLDER VERSION

--help (usage on stdout, exit 0) and --version ("NAME VERSION", exit 0) of
every program; dvipad on a configuration file it cannot read (one line
naming the file and the OS error, exit 1); dvipactl and dvipa-holder on a
control socket that is missing, stale, a directory or a plain file (one
line naming the path and what to do, exit 6).
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile

DVIPAD, DVIPACTL, HOLDER, VERSION = sys.argv[1:5]
DEFAULT_SOCKET = "/run/dvipa/dvipad.sock"
UNREACH = 6
failures = []


def run(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVIPA_")}
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=60)


def check(name, cond, r):
    print(("ok   " if cond else "FAIL ") + name)
    if not cond:
        failures.append(name)
        print(f"    exit {r.returncode}\n    stdout: {r.stdout!r}\n    stderr: {r.stderr!r}")


def one_line(r):
    return r.stderr.count("\n") == 1 and r.stderr.endswith("\n")


for prog, name in ((DVIPAD, "dvipad"), (DVIPACTL, "dvipactl"), (HOLDER, "dvipa-holder")):
    for opt in ("--help", "-h"):
        r = run(prog, opt)
        check(f"{name} {opt}", r.returncode == 0 and r.stdout.startswith(f"usage: {name} ") and not r.stderr, r)
    r = run(prog, "--version")
    check(f"{name} --version", r.returncode == 0 and r.stdout.split("\n")[0].split()[:2] == [name, VERSION]
          and not r.stderr, r)
    r = run(prog, "--no-such-option")
    check(f"{name} bad option", r.returncode != 0 and "usage:" in r.stderr and not r.stdout, r)

with tempfile.TemporaryDirectory() as tmp:
    missing = os.path.join(tmp, "nonexistent.conf")
    for args in (["-f", missing], ["-n", "-f", missing], ["-d", "-f", missing]):
        r = run(DVIPAD, *args)
        check(f"dvipad {' '.join(args[:-1])} missing file",
              r.returncode == 1 and r.stderr == f"dvipad: cannot read {missing}: No such file or directory\n"
              and not r.stdout, r)
    r = run(DVIPAD, "-f", tmp)
    check("dvipad -f directory", r.returncode == 1 and r.stderr == f"dvipad: cannot read {tmp}: Is a directory\n", r)
    # Root reads any file: as root, read it as nobody.
    unreadable = os.path.join(tmp, "unreadable.conf")
    with open(unreadable, "w") as f:
        f.write("NODE n1\n")
    os.chmod(unreadable, 0)
    as_user = [] if os.geteuid() != 0 else ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if not as_user or shutil.which("setpriv"):
        os.chmod(tmp, 0o755)
        r = run(*as_user, DVIPAD, "-f", unreadable)
        if as_user and r.stderr.startswith("setpriv:"):
            print("skip dvipad -f unreadable: nobody cannot run the build's dvipad")
        else:
            check("dvipad -f unreadable", r.returncode == 1
                  and r.stderr == f"dvipad: cannot read {unreadable}: Permission denied\n", r)

    # Configuration errors are still every error, then the summary.
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("NODE n1\nBOGUS 1\nBOGUS 2\n")
    r = run(DVIPAD, "-f", bad)
    lines = r.stderr.splitlines()
    check("dvipad -f with errors", r.returncode == 1 and len(lines) == 3 and lines[0].startswith(f"{bad}:2:")
          and lines[2] == f"dvipad: {bad}: 2 error(s); not starting", r)

    stale = os.path.join(tmp, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(stale)
    s.close()
    plain = os.path.join(tmp, "plain")
    open(plain, "w").close()
    nosock = os.path.join(tmp, "nothing.sock")
    cases = (
        (nosock, f"no socket at '{nosock}': is dvipad running?"),
        (stale, f"nothing listens on '{stale}': is dvipad running?"),
        (tmp, f"'{tmp}' is a directory, not dvipad's socket"),
        (plain, f"'{plain}' is not a socket"),
    )
    for path, want in cases:
        for verb in (["status"], ["activate", "192.0.2.5"], ["run", "--vipa", "192.0.2.5", "--", "true"]):
            r = run(DVIPACTL, "-S", path, *verb)
            check(f"dvipactl -S {os.path.basename(path)} {verb[0]}",
                  r.returncode == UNREACH and one_line(r) and want in r.stderr and DEFAULT_SOCKET in r.stderr, r)
    r = run(HOLDER, "-S", nosock, "192.0.2.5", "80")
    check("dvipa-holder -S missing", r.returncode == UNREACH and one_line(r) and nosock in r.stderr, r)

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
