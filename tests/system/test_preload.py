# SPDX-License-Identifier: GPL-2.0-or-later
"""
Unmodified programs get their VIPA through libdvipa-preload.so (LD_PRELOAD):
nginx, vsftpd with a hot standby, a socat client with DVIPA_SOURCE, python's
http.server on an IPv6 VIPA, and the cases where the shim must stay out of
the way. Topology (conftest.py):

    client (eth0 192.0.2.100, 2001:db8::100)
                 \\
                  +-- switch: br0
                 /
    host (eth0 192.0.2.1, 2001:db8::1)   dvipad; programs run here under the shim

The programs are Debian's, started as a user would, with their
configuration, pid files and logs in the test's tmp_path.
"""
import hashlib
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import BUILD, DVIPACTL, fetch, figure, unit_capabilities, wait_for

SHIM = BUILD / "libdvipa-preload.so"

VIPA_NGINX = "192.0.2.140"
VIPA_FTP = "192.0.2.141"
VIPA_SOCAT = "192.0.2.142"
VIPA_AUTO = "192.0.2.143"
VIPA_MISC = "192.0.2.144"
VIPA_SOURCEVIPA = "192.0.2.241"  # range added by the test, SOURCEVIPA
VIPA_DAEMON = "192.0.2.200"  # range with ALLOW USER daemon
VIPA6 = "2001:db8::1:8"
OUTSIDE = "198.51.100.7"  # in no range, not local
PYTHON = "/usr/bin/python3"  # Debian's, whatever PATH says


def shim_env(dvipad, debug=True, **extra):
    """The environment of a program run under the shim."""
    env = dict(os.environ)
    for k in ("DVIPA_SOURCE", "DVIPA_STANDBY", "DVIPA_DEBUG", "DVIPA_QUIET"):
        env.pop(k, None)
    env["LD_PRELOAD"] = str(SHIM)
    env["DVIPA_SOCKET"] = str(dvipad.sock)
    if debug:
        env["DVIPA_DEBUG"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def stays(cond, duration, interval=0.05, what="condition"):
    """Assert that cond() holds during the whole of duration seconds."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        assert cond(), f"{what} stopped holding"
        time.sleep(interval)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(p) for p in f.read().split()}
    except FileNotFoundError:
        return set()


def curl(ns, url, out=None, timeout=3):
    """curl from ns: (returncode, stdout, stderr)."""
    args = ["curl", "-sS", "-g", "-v", "--max-time", str(timeout), url]
    if out:
        args += ["-o", str(out)]
    r = ns.exec(*args, check=False)
    return r.returncode, r.stdout, r.stderr


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def socket_hold(dvipad, addr):
    v = dvipad.vipa(addr)
    return v if v and v["state"] == "active" and any(h["kind"] == "socket" for h in v["holds"]) else None


@pytest.fixture
def procs():
    """Processes a test starts; killed at the end, whatever happened."""
    ps = []
    yield ps
    for p in ps:
        if p.poll() is None:
            p.kill()
        p.wait()


# ---- nginx ----

def nginx_conf(tmp, addr, port):
    www = tmp / "www"
    www.mkdir()
    (www / "index.html").write_text("nginx on a dynamic VIPA\n")
    conf = tmp / "nginx.conf"
    conf.write_text(f"""\
user root;
worker_processes 2;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen {addr}:{port};
        root {www};
    }}
}}
""")
    return conf


def test_nginx_on_vipa(lan, dvipad, tmp_path):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.start()
    conf = nginx_conf(tmp_path, VIPA_NGINX, 8080)
    nginx = ["nginx", "-e", tmp_path / "nginx-startup.log", "-c", conf]
    env = shim_env(dvipad)
    assert not host.has_addr(VIPA_NGINX)

    # daemon on (the default): the command returns once the master runs,
    # and it has bound its listening socket before daemonizing.
    t0 = time.monotonic()
    r = host.exec(*nginx, env=env)
    figure("nginx start under the shim, VIPA activation included", f"{(time.monotonic() - t0) * 1000:.0f} ms")
    assert f"dvipa-preload: bind {VIPA_NGINX}: activated" in r.stderr
    assert host.has_addr(VIPA_NGINX)
    master = int((tmp_path / "nginx.pid").read_text())
    v = socket_hold(dvipad, VIPA_NGINX)
    assert v and v["origin"] == "bind", dvipad.vipa(VIPA_NGINX)

    rc, out, err = curl(client, f"http://{VIPA_NGINX}:8080/")
    assert rc == 0 and out == "nginx on a dynamic VIPA\n", err

    # Reload: new workers, the master keeps its listening socket, and with
    # it the address.
    old_workers = wait_for(lambda: children(master), what="nginx workers")
    host.exec(*nginx, "-s", "reload", env=env)
    wait_for(lambda: not (children(master) & old_workers) and children(master), timeout=10,
             what="nginx workers to be replaced")
    assert host.has_addr(VIPA_NGINX)
    stays(lambda: host.has_addr(VIPA_NGINX), 1.0, what="the VIPA after nginx -s reload")
    rc, out, err = curl(client, f"http://{VIPA_NGINX}:8080/")
    assert rc == 0 and out == "nginx on a dynamic VIPA\n", err

    # Quit: the last socket bound to the address closes, the address goes.
    host.exec(*nginx, "-s", "quit", env=env)
    wait_for(lambda: not pid_alive(master), timeout=10, what="nginx to quit")
    t0 = time.monotonic()
    wait_for(lambda: not host.has_addr(VIPA_NGINX), timeout=5, interval=0.002, what="address removal")
    figure("nginx master gone to VIPA removed (one sample, incl. polling)",
           f"{(time.monotonic() - t0) * 1000:.1f} ms")
    assert dvipad.vipa(VIPA_NGINX) is None
    rc, _, _ = curl(client, f"http://{VIPA_NGINX}:8080/", timeout=1)
    assert rc != 0


# ---- vsftpd with a hot standby ----

FTP_PORT = 2121


def vsftpd_conf(tmp, name, addr, port):
    conf = tmp / f"vsftpd-{name}.conf"
    conf.write_text(f"""\
listen=YES
listen_ipv6=NO
listen_address={addr}
listen_port={port}
background=NO
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
anonymous_enable=YES
no_anon_password=YES
anon_root={tmp}/ftp
local_enable=NO
write_enable=NO
secure_chroot_dir={tmp}/empty
connect_from_port_20=NO
xferlog_enable=NO
ftpd_banner=dvipa {name}
""")
    return conf


def test_vsftpd_hot_standby(lan, dvipad, tmp_path, procs):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.start()
    # vsftpd refuses an anonymous root the ftp user may write to.
    for d in ("ftp", "empty"):
        (tmp_path / d).mkdir(mode=0o755)
    data = tmp_path / "ftp" / "data.bin"
    data.write_bytes(os.urandom(1 << 20))
    data.chmod(0o644)
    url = f"ftp://{VIPA_FTP}:{FTP_PORT}/data.bin"

    primary = host.popen("vsftpd", vsftpd_conf(tmp_path, "primary", VIPA_FTP, FTP_PORT), env=shim_env(dvipad))
    procs.append(primary)
    wait_for(lambda: socket_hold(dvipad, VIPA_FTP) or primary.poll() is not None, what="the primary's VIPA")
    assert primary.poll() is None, primary.stderr.read()
    assert host.has_addr(VIPA_FTP)

    out1 = tmp_path / "got1.bin"
    rc, _, err = curl(client, url, out1, timeout=10)
    assert rc == 0 and "220 dvipa primary" in err, err
    assert sha256(out1) == sha256(data)

    # Same host, same address and port: the standby's bind() finds the port
    # taken, registers as standby and blocks.
    standby = host.popen("vsftpd", vsftpd_conf(tmp_path, "standby", VIPA_FTP, FTP_PORT),
                         env=shim_env(dvipad, DVIPA_STANDBY=100))
    procs.append(standby)
    v = wait_for(lambda: (dvipad.vipa(VIPA_FTP) or {}).get("standbys") and dvipad.vipa(VIPA_FTP),
                 what="the standby registration")
    assert v["standbys"][0]["rank"] == 100 and v["standbys"][0]["pid"] == standby.pid
    assert standby.poll() is None

    # kill -9 of the primary: its listening socket closes, the hold ends,
    # the standby is granted the address, binds and serves.
    t0 = time.monotonic()
    primary.kill()
    primary.wait()

    def standby_serves():
        rc, _, err = curl(client, url, tmp_path / "got2.bin", timeout=2)
        return rc == 0 and "220 dvipa standby" in err

    wait_for(standby_serves, timeout=10, interval=0.05, what="the standby to serve")
    figure("vsftpd primary kill -9 to standby serving a transfer (incl. polling)",
           f"{(time.monotonic() - t0) * 1000:.0f} ms")
    assert sha256(tmp_path / "got2.bin") == sha256(data)
    assert host.has_addr(VIPA_FTP)
    v = dvipad.vipa(VIPA_FTP)
    assert v["state"] == "active" and not v["standbys"]
    assert standby.poll() is None


# ---- source VIPA ----

def peer_server(ns, port, procs):
    """A TCP server in ns that answers every connection with the peer's address."""
    p = ns.popen("socat", f"TCP-LISTEN:{port},reuseaddr,fork", "SYSTEM:echo $SOCAT_PEERADDR")
    procs.append(p)
    wait_for(lambda: ns.exec("ss", "-Hltn", f"sport = :{port}").stdout.strip() or p.poll() is not None,
             what="the peer-address server")
    assert p.poll() is None, p.stderr.read()
    return p


def test_socat_source_vipa(lan, dvipad, procs):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.start()
    peer_server(client, 7000, procs)

    # Without DVIPA_SOURCE the server sees the host's own address.
    r = host.exec("socat", "-u", "TCP:192.0.2.100:7000", "STDOUT", env=shim_env(dvipad))
    assert r.stdout.strip() == "192.0.2.1"
    assert not host.has_addr(VIPA_SOCAT)

    # With it, the VIPA is activated for the outbound socket and is its source.
    r = host.exec("socat", "-u", "TCP:192.0.2.100:7000", "STDOUT", env=shim_env(dvipad, DVIPA_SOURCE=VIPA_SOCAT))
    assert r.stdout.strip() == VIPA_SOCAT, r.stderr
    assert f"dvipa-preload: source {VIPA_SOCAT}: activated" in r.stderr


AUTO_CLIENT = """
import socket, sys
srv = socket.socket()
srv.bind((sys.argv[1], 8081))  # activates the VIPA through the shim
srv.listen()
c = socket.create_connection(("192.0.2.100", 7000))
print(c.makefile().readline().strip())
"""


def test_source_auto_follows_activated_vipa(lan, dvipad, procs):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.start()
    peer_server(client, 7000, procs)
    r = host.exec(PYTHON, "-c", AUTO_CLIENT, VIPA_AUTO, env=shim_env(dvipad, DVIPA_SOURCE="auto"))
    assert r.stdout.strip() == VIPA_AUTO, r.stderr


def test_sourcevipa_range_is_the_default_source(lan, dvipad, procs):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.write_conf(extra="  VIPARANGE DEFINE 192.0.2.240/28 SOURCEVIPA\n")
    dvipad.start()
    peer_server(client, 7000, procs)
    # No DVIPA_SOURCE: an address of a SOURCEVIPA range becomes the source
    # of the process's outbound connections once it activated it...
    r = host.exec(PYTHON, "-c", AUTO_CLIENT, VIPA_SOURCEVIPA, env=shim_env(dvipad))
    assert r.stdout.strip() == VIPA_SOURCEVIPA, r.stderr
    # ... and one of an ordinary range does not.
    r = host.exec(PYTHON, "-c", AUTO_CLIENT, VIPA_AUTO, env=shim_env(dvipad))
    assert r.stdout.strip() == "192.0.2.1", r.stderr


# ---- IPv6 ----

def test_http_server_on_ipv6_vipa(lan, dvipad, tmp_path, procs):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.start()
    www = tmp_path / "www"
    www.mkdir()
    (www / "hello.txt").write_text("python on an IPv6 VIPA\n")
    server = host.popen(PYTHON, "-m", "http.server", "--bind", VIPA6, "--directory", www, "8000",
                        env=shim_env(dvipad))
    procs.append(server)

    def served():
        assert server.poll() is None, server.stderr.read()
        rc, out, _ = curl(client, f"http://[{VIPA6}]:8000/hello.txt", timeout=1)
        return rc == 0 and out

    assert wait_for(served, timeout=10, what="http.server on the VIPA") == "python on an IPv6 VIPA\n"
    assert host.has_addr(VIPA6)
    v = socket_hold(dvipad, VIPA6)
    assert v and v["origin"] == "bind"

    server.kill()
    server.wait()
    wait_for(lambda: not host.has_addr(VIPA6), timeout=5, what="IPv6 VIPA removal")


# ---- the shim stays out of the way ----

BIND = """
import errno, socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError as e:
    print(errno.errorcode[e.errno])
else:
    print("bound", s.getsockname()[0])
"""


def shim_bind(host, addr, env, port=0, user=None, prefix="dvipa-preload"):
    """Bind addr:port under the shim: what the program saw, and the lines of
    stderr that start with prefix ("dvipa-preload": the DVIPA_DEBUG lines;
    "dvipa:": the line that says why an activation failed)."""
    cmd = [PYTHON, "-c", BIND, addr, str(port)]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
    r = host.exec(*cmd, env=env)
    return r.stdout.strip(), [l for l in r.stderr.splitlines() if l.startswith(prefix)]


def test_bind_outside_ranges_and_failures(lan, dvipad, tmp_path):
    host = lan.hosts["h"]
    dvipad.start()

    # Local addresses: no daemon round trip, nothing said even with DEBUG.
    assert shim_bind(host, "192.0.2.1", shim_env(dvipad)) == ("bound 192.0.2.1", [])
    assert shim_bind(host, "127.0.0.1", shim_env(dvipad)) == ("bound 127.0.0.1", [])

    # Outside every range: the program's own error; one debug line with
    # DEBUG (the line that says why is test_refusal_is_said_unless_quiet's).
    assert shim_bind(host, OUTSIDE, shim_env(dvipad, debug=False)) == ("EADDRNOTAVAIL", [])
    out, lines = shim_bind(host, OUTSIDE, shim_env(dvipad))
    assert out == "EADDRNOTAVAIL" and len(lines) == 1 and "in no range" in lines[0], lines

    # dvipad absent, or a malformed environment: the same error.
    gone = shim_env(dvipad, DVIPA_SOCKET=tmp_path / "nothing.sock")
    out, lines = shim_bind(host, VIPA_MISC, gone)
    assert out == "EADDRNOTAVAIL" and len(lines) == 1 and "cannot reach dvipad" in lines[0], lines
    out, lines = shim_bind(host, VIPA_MISC, shim_env(dvipad, DVIPA_STANDBY="high"))
    assert out == "EADDRNOTAVAIL" and len(lines) == 1 and "DVIPA_STANDBY" in lines[0], lines
    out, lines = shim_bind(host, VIPA_MISC, shim_env(dvipad, DVIPA_SOCKET="/" + "x" * 200))
    assert out == "EADDRNOTAVAIL" and len(lines) == 1, lines
    assert not host.has_addr(VIPA_MISC)

    # A malformed DVIPA_SOURCE is ignored, said once.
    r = host.exec(PYTHON, "-c", "import socket; socket.create_connection(('192.0.2.1', 9), 1)",
                  env=shim_env(dvipad, DVIPA_SOURCE="not-an-address"), check=False)
    assert [l for l in r.stderr.splitlines() if l.startswith("dvipa-preload")] == \
        ['dvipa-preload: source: DVIPA_SOURCE is neither an address nor "auto"; ignored']
    assert "ConnectionRefusedError" in r.stderr  # the connect() itself went ahead


def test_refusal_is_said_unless_quiet(lan, dvipad, tmp_path):
    """The program sees EADDRNOTAVAIL only; one line on stderr says why,
    unless DVIPA_QUIET."""
    host = lan.hosts["h"]
    dvipad.start()
    quiet = shim_env(dvipad, debug=False, DVIPA_QUIET=1)

    out, lines = shim_bind(host, OUTSIDE, shim_env(dvipad, debug=False), port=8080, prefix="dvipa:")
    assert out == "EADDRNOTAVAIL"
    assert lines == [f"dvipa: bind {OUTSIDE}:8080 refused: address {OUTSIDE} is in no VIPARANGE of node host1"], lines
    assert shim_bind(host, OUTSIDE, quiet, port=8080, prefix="dvipa") == ("EADDRNOTAVAIL", [])

    # dvipad's reason, whatever it is; IPv6 in brackets; port 0 not shown.
    out, lines = shim_bind(host, VIPA_DAEMON, shim_env(dvipad, debug=False), port=8080, user=65534,
                           prefix="dvipa:")
    assert out == "EADDRNOTAVAIL" and len(lines) == 1, lines
    assert lines[0].startswith(f"dvipa: bind {VIPA_DAEMON}:8080 refused: uid 65534 is not allowed"), lines
    outside6 = "2001:db8:ffff::7"
    out, lines = shim_bind(host, outside6, shim_env(dvipad, debug=False), port=80, prefix="dvipa:")
    assert out == "EADDRNOTAVAIL" and len(lines) == 1 and lines[0].startswith(f"dvipa: bind [{outside6}]:80 refused: ")
    out, lines = shim_bind(host, OUTSIDE, shim_env(dvipad, debug=False), prefix="dvipa:")
    assert lines == [f"dvipa: bind {OUTSIDE} refused: address {OUTSIDE} is in no VIPARANGE of node host1"], lines

    # Not a refusal, the same line: dvipad absent.
    gone = shim_env(dvipad, debug=False, DVIPA_SOCKET=tmp_path / "nothing.sock")
    out, lines = shim_bind(host, VIPA_MISC, gone, port=8080, prefix="dvipa:")
    assert out == "EADDRNOTAVAIL" and lines == [
        f"dvipa: bind {VIPA_MISC}:8080 failed: cannot reach dvipad: {tmp_path}/nothing.sock: "
        "No such file or directory"], lines
    assert shim_bind(host, VIPA_MISC, dict(gone, DVIPA_QUIET="1"), prefix="dvipa") == ("EADDRNOTAVAIL", [])

    # A success says nothing.
    r = host.exec(PYTHON, "-c", BIND, VIPA_MISC, "8080", env=shim_env(dvipad, debug=False))
    assert r.stdout.strip() == f"bound {VIPA_MISC}" and r.stderr == ""


SHIM_LIMIT = 30  # seconds: DV_CTL_TIMEOUT_S, libdvipa-preload(8)
# What a loaded machine may add to it: starting python, the shim's retry
# interval (50 ms), scheduling.
SHIM_MARGIN = 20


def listen_queue(ns, path):
    """Connections waiting in the listen queue of the UNIX socket path."""
    for line in ns.exec("ss", "-Hxl").stdout.splitlines():
        f = line.split()
        if str(path) in f:
            return int(f[2])  # Netid State Recv-Q ...
    return None


def test_stopped_dvipad_does_not_hang_bind(lan, dvipad, procs):
    """
    dvipad stopped (SIGSTOP): a bind() under the shim fails with
    EADDRNOTAVAIL within the limit, whether its connect() finds room in the
    listen queue (then it waits for the answer) or finds the queue full
    (then it waits for room): one deadline bounds the whole exchange.
    """
    host = lan.hosts["h"]
    dvipad.start()
    env = shim_env(dvipad, debug=False)
    fillers = []
    os.kill(dvipad.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        waits_answer = host.popen(PYTHON, "-c", BIND, VIPA_MISC, "8080", env=env)
        procs.append(waits_answer)
        wait_for(lambda: listen_queue(host, dvipad.sock) == 1, timeout=SHIM_MARGIN,
                 what="the first binder's connection in dvipad's listen queue")
        # Fill the queue (the backlog is 128) until a connect would block.
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.setblocking(False)
            try:
                s.connect(str(dvipad.sock))
            except BlockingIOError:
                s.close()
                break
            fillers.append(s)
            assert len(fillers) < 10000
        t1 = time.monotonic()
        waits_room = host.popen(PYTHON, "-c", BIND, VIPA_MISC, "8081", env=env)
        procs.append(waits_room)

        for p, start, port, why in ((waits_answer, t0, 8080, "no answer from dvipad within 30 s"),
                                    (waits_room, t1, 8081, f"cannot reach dvipad: {dvipad.sock}: "
                                                           "no connection accepted within 30 s")):
            out, err = p.communicate(timeout=SHIM_LIMIT + SHIM_MARGIN)
            took = time.monotonic() - start
            assert out.strip() == "EADDRNOTAVAIL", err
            assert f"dvipa: bind {VIPA_MISC}:{port} failed: {why}\n" in err, err
            assert SHIM_LIMIT - 1 < took < SHIM_LIMIT + SHIM_MARGIN, took
        figure("bind() under the shim, dvipad stopped, listen queue full: returns after",
               f"{time.monotonic() - t1:.1f} s")
    finally:
        for s in fillers:
            s.close()
        os.kill(dvipad.proc.pid, signal.SIGCONT)
    # And dvipad, once it runs again, serves the shim as before.
    out, lines = shim_bind(host, VIPA_MISC, env, port=8082, prefix="dvipa")
    assert out == f"bound {VIPA_MISC}" and lines == [], lines


LISTENER = """
import socket, sys, time
s = socket.socket()
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print("bound", flush=True)
time.sleep(60)
"""


def test_bind_v4_mapped_and_permissions(lan, dvipad):
    host = lan.hosts["h"]
    dvipad.start()

    # v4-mapped on an IPv6 socket activates the IPv4 address.
    out, lines = shim_bind(host, f"::ffff:{VIPA_MISC}", shim_env(dvipad))
    assert out == f"bound ::ffff:{VIPA_MISC}", lines
    assert lines == [f"dvipa-preload: bind {VIPA_MISC}: activated"]

    # The range's ALLOW list decides, by the caller's uid (SO_PEERCRED).
    out, lines = shim_bind(host, VIPA_DAEMON, shim_env(dvipad), port=8080, user=65534)
    assert out == "EADDRNOTAVAIL" and "permission denied" in lines[0], lines
    assert not host.has_addr(VIPA_DAEMON)
    # (A listener that stays: a hold ends as soon as its program is gone.)
    p = host.popen("setpriv", "--reuid=1", "--regid=1", "--clear-groups", PYTHON, "-c", LISTENER, VIPA_DAEMON,
                   "8080", env=shim_env(dvipad, debug=False))
    try:
        assert p.stdout.readline().strip() == "bound"
        holds = dvipad.vipa(VIPA_DAEMON)["holds"]
        assert holds[0]["kind"] == "socket" and holds[0]["uid"] == 1
    finally:
        p.kill()
        p.wait()


# A server under the shim that keeps its listening socket across re-exec and
# hands it to another process over SCM_RIGHTS, each step driven from stdin.
HANDOVER = r"""
import os, socket, sys, array
step = sys.argv[1]
if step == "start":
    s = socket.socket()
    s.bind((sys.argv[2], 8080))
    s.listen()
    s.set_inheritable(True)
    print("bound", flush=True)
    sys.stdin.readline()
    # Upgrade in place: re-exec with the socket inherited.
    os.execv(sys.executable, [sys.executable, "-c", PROG, "reexeced", str(s.fileno()), sys.argv[3]])
elif step == "reexeced":
    s = socket.socket(fileno=int(sys.argv[2]))
    print("reexeced", flush=True)
    sys.stdin.readline()
    # Hand the socket over to the receiver, then exit.
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.connect(sys.argv[3])
    u.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [s.fileno()]))])
    u.close()
    print("handed", flush=True)
elif step == "receive":
    l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    l.bind(sys.argv[2])
    l.listen()
    print("ready", flush=True)
    c, _ = l.accept()
    msg, anc, _, _ = c.recvmsg(1, socket.CMSG_SPACE(4))
    fd = array.array("i", anc[0][2][:4])[0]
    s = socket.socket(fileno=fd)
    print("received", flush=True)
    sys.stdin.readline()
"""


def test_hold_follows_the_socket_across_exec_and_scm_rights(lan, dvipad, tmp_path, procs):
    host = lan.hosts["h"]
    dvipad.start()
    prog = HANDOVER.replace("PROG", repr(HANDOVER))
    usock = str(tmp_path / "handover.sock")
    recv = host.popen(PYTHON, "-c", prog, "receive", usock, stdin=subprocess.PIPE)
    procs.append(recv)
    assert recv.stdout.readline().strip() == "ready"
    srv = host.popen(PYTHON, "-c", prog, "start", VIPA_MISC, usock, stdin=subprocess.PIPE,
                     env=shim_env(dvipad, debug=False))
    procs.append(srv)
    assert srv.stdout.readline().strip() == "bound"
    wait_for(lambda: socket_hold(dvipad, VIPA_MISC), what="the socket hold")

    srv.stdin.write("\n")
    srv.stdin.flush()
    assert srv.stdout.readline().strip() == "reexeced"
    time.sleep(0.1)  # a removal would take ~1 ms: give it many times that
    assert host.has_addr(VIPA_MISC), "re-exec lost the address"

    srv.stdin.write("\n")
    srv.stdin.flush()
    assert srv.stdout.readline().strip() == "handed"
    assert recv.stdout.readline().strip() == "received"
    srv.wait(5)
    time.sleep(0.1)
    assert host.has_addr(VIPA_MISC), "the address went with the process, not with the socket"

    recv.stdin.write("\n")
    recv.stdin.flush()
    recv.wait(5)
    wait_for(lambda: not host.has_addr(VIPA_MISC), timeout=2, what="the address to go with the last socket")


# ---- a bind to an address that is already active is a claim too ----

VIPA_UNIQUE = "192.0.2.230"  # BASE_CONF's UNIQUE range 192.0.2.224/28
VIPA_UNIQUE2 = "192.0.2.231"
VIPA_SHARED = "192.0.2.145"  # an ordinary (MOVEABLE NONDISRUPTIVE) range


def socat_server(host, dvipad, addr, port, procs, **env):
    """socat under the shim serving "socat PORT" on addr:port."""
    p = host.popen("socat", f"TCP-LISTEN:{port},bind={addr},reuseaddr,fork", f"SYSTEM:echo socat {port}",
                   env=shim_env(dvipad, debug=False, **env))
    procs.append(p)
    return p


def api_holder(dvipad, addr, port):
    """A libdvipa program holding addr and listening on port."""
    h = dvipad.holder(addr, port)
    dvipad.holders.append(h)
    h.wait_line("granted")
    return h


def listening(host, addr, port):
    return bool(host.exec("ss", "-Hltn", f"src = {addr} and sport = :{port}").stdout.strip())


TWO_PORTS = """
import socket, sys
a, b = socket.socket(), socket.socket()
a.bind((sys.argv[1], 7005))
a.listen()
try:
    b.bind((sys.argv[1], 7006))
    b.listen()
except OSError as e:
    print("second port:", e)
else:
    print("two ports")
"""


def test_unique_refuses_a_second_program_on_the_same_host(lan, dvipad, procs):
    host, client = lan.hosts["h"], lan.hosts["c"]
    # With the packaged unit's capabilities: telling a program's own
    # sockets from another's reads /proc/PID/fd (CAP_SYS_PTRACE).
    dvipad.wrap = unit_capabilities()
    dvipad.start()
    assert "no CAP_SYS_PTRACE" not in dvipad.log.read_text()

    # A library holder has the address: socat's bind fails EADDRINUSE and
    # says why, though the address is local.
    holder = api_holder(dvipad, VIPA_UNIQUE, 7001)
    p = socat_server(host, dvipad, VIPA_UNIQUE, 7002, procs)
    assert p.wait(10) != 0
    err = p.stderr.read()
    assert "Address already in use" in err, err
    lines = [l for l in err.splitlines() if l.startswith("dvipa:")]
    assert len(lines) == 1 and lines[0].startswith(f"dvipa: bind {VIPA_UNIQUE}:7002 refused: {VIPA_UNIQUE} is bound by pid {holder.proc.pid} (dvipa-holder) ")
    assert lines[0].endswith("and its range 192.0.2.224/28 is UNIQUE"), lines
    assert not listening(host, VIPA_UNIQUE, 7002)
    # The operator is told too: who asked, and why not.
    assert f"refused '{VIPA_UNIQUE}' to pid {p.pid} (socat) uid 0: {VIPA_UNIQUE} is bound by pid " \
        f"{holder.proc.pid} (dvipa-holder)" in dvipad.log.read_text()

    # A socket hold: the program that has it may bind more ports (and its
    # forked children serve); a second program is refused, named.
    first = socat_server(host, dvipad, VIPA_UNIQUE2, 7003, procs)
    wait_for(lambda: listening(host, VIPA_UNIQUE2, 7003) or first.poll() is not None, what="socat to listen")
    assert fetch(client, VIPA_UNIQUE2, 7003) == "socat 7003"
    r = host.exec(PYTHON, "-c", BIND, VIPA_UNIQUE2, "7004", env=shim_env(dvipad, debug=False), check=False)
    assert r.stdout.strip() == "EADDRINUSE", r
    assert f"{VIPA_UNIQUE2} is bound by pid {first.pid} (socat) and its range 192.0.2.224/28 is UNIQUE" \
        in r.stderr, r.stderr
    first.kill()
    first.wait()
    # Its socket gone, the address is free for the next program.
    wait_for(lambda: not host.has_addr(VIPA_UNIQUE2), what="the address to go")
    r = host.exec(PYTHON, "-c", BIND, VIPA_UNIQUE2, "7004", env=shim_env(dvipad, debug=False))
    assert r.stdout.strip() == f"bound {VIPA_UNIQUE2}", r

    # One program, two ports: its second bind finds only its own socket.
    wait_for(lambda: not host.has_addr(VIPA_UNIQUE2), what="the address to go")
    r = host.exec(PYTHON, "-c", TWO_PORTS, VIPA_UNIQUE2, env=shim_env(dvipad, debug=False), check=False)
    assert r.stdout.strip() == "two ports", r


def test_bind_to_an_active_address_adds_a_socket_hold(lan, dvipad, procs):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.start()
    holder = api_holder(dvipad, VIPA_SHARED, 7001)
    assert [h["kind"] for h in dvipad.vipa(VIPA_SHARED)["holds"]] == ["api"]

    socat_server(host, dvipad, VIPA_SHARED, 7005, procs)
    wait_for(lambda: socket_hold(dvipad, VIPA_SHARED), what="socat's socket hold")
    assert sorted(h["kind"] for h in dvipad.vipa(VIPA_SHARED)["holds"]) == ["api", "socket"]

    # The first holder goes: the address stays for socat.
    holder.kill()
    wait_for(lambda: [h["kind"] for h in dvipad.vipa(VIPA_SHARED)["holds"]] == ["socket"],
             what="the api hold to end")
    stays(lambda: host.has_addr(VIPA_SHARED), 0.5, what="the VIPA socat listens on")
    assert fetch(client, VIPA_SHARED, 7005) == "socat 7005"

    # dvipactl run beside it: a hold more, and socat's outlives it.
    host.exec(DVIPACTL, "-S", dvipad.sock, "run", "--vipa", VIPA_SHARED, "--", "true")
    assert host.has_addr(VIPA_SHARED)
    assert fetch(client, VIPA_SHARED, 7005) == "socat 7005"
    for p in procs:
        p.kill()
        p.wait()
    wait_for(lambda: not host.has_addr(VIPA_SHARED), what="the address to go with socat")


BIND_AND_GO = """
import os, socket, sys, time
s = socket.socket()
s.bind((sys.argv[1], 7006))
print("bound", flush=True)
if sys.argv[2] == "close":
    s.close()  # before sock_diag could see it: no listener
    time.sleep(30)
os._exit(0)
"""


def test_socket_hold_grace_ends_with_its_program(lan, dvipad, procs):
    """The grace a fresh socket hold gets (its program may not have bound
    yet) never outlasts the program: gone, its address goes at once; alive
    with the socket closed, the grace (2 s) runs out."""
    host = lan.hosts["h"]
    dvipad.start()
    for how in ("exit", "close"):
        p = host.popen(PYTHON, "-c", BIND_AND_GO, VIPA_MISC, how, env=shim_env(dvipad, debug=False))
        procs.append(p)
        assert p.stdout.readline().strip() == "bound"
        if how == "close":
            # The program lives: the address stays for the grace.
            assert host.has_addr(VIPA_MISC)
            stays(lambda: host.has_addr(VIPA_MISC), 1.0, what="the address during the grace")
            p.kill()
        p.wait()
        t0 = time.monotonic()
        wait_for(lambda: not host.has_addr(VIPA_MISC), timeout=1.0, interval=0.002,
                 what=f"the address to go once its program is gone ({how})")
        figure(f"socket hold, program {'killed' if how == 'close' else 'exited'} to address removed",
               f"{(time.monotonic() - t0) * 1000:.0f} ms")


def test_restarted_dvipad_takes_socket_holds_again(lan, dvipad, tmp_path, procs):
    """dvipad killed (-9) and started again rebuilds the socket holds of the
    programs still bound in its ranges (socat, and python's http.server on
    IPv6, which never asked the new dvipad for anything): their addresses
    come back, status names each program, and an address goes when its
    program exits. With the packaged unit's capabilities (finding the
    program of a socket takes CAP_SYS_PTRACE)."""
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.wrap = unit_capabilities()
    dvipad.start()
    socat = socat_server(host, dvipad, VIPA_SHARED, 7010, procs)
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("http.server on a VIPA\n")
    http = host.popen(PYTHON, "-m", "http.server", "--bind", VIPA6, "8081", "--directory", www,
                      env=shim_env(dvipad, debug=False))
    procs.append(http)
    for addr in (VIPA_SHARED, VIPA6):
        wait_for(lambda: socket_hold(dvipad, addr), what=f"the socket hold of {addr}")

    def holder_of(addr):
        v = socket_hold(dvipad, addr)
        return v and [(h["pid"], h["command"]) for h in v["holds"] if h["kind"] == "socket"]

    assert holder_of(VIPA_SHARED) == [(socat.pid, "socat")]
    assert holder_of(VIPA6) == [(http.pid, "python3")]
    text = dvipad.ctl("status").stdout
    assert f"hold socket on host1 (uid 0, pid {socat.pid} (socat))" in text, text

    dvipad.stop(signal.SIGKILL)
    dvipad.start()
    for addr in (VIPA_SHARED, VIPA6):
        wait_for(lambda: host.has_addr(addr), what=f"{addr} back after the restart")
    assert holder_of(VIPA_SHARED) == [(socat.pid, "socat")]
    assert holder_of(VIPA6) == [(http.pid, "python3")]
    assert fetch(client, VIPA_SHARED, 7010) == "socat 7010"
    rc, out, err = curl(client, f"http://[{VIPA6}]:8081/")
    assert rc == 0 and out == "http.server on a VIPA\n", err
    log = dvipad.log.read_text()
    assert f"pid {socat.pid} (socat) still has sockets bound to '{VIPA_SHARED}': taking its socket hold again" \
        in log, log

    # The holds are the sockets', as before the restart: each address goes
    # with its program.
    socat.kill()
    socat.wait()
    wait_for(lambda: not host.has_addr(VIPA_SHARED), what="the address to go with socat")
    assert host.has_addr(VIPA6)
    http.kill()
    http.wait()
    wait_for(lambda: not host.has_addr(VIPA6), what="the address to go with http.server")
