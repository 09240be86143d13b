# SPDX-License-Identifier: GPL-2.0-or-later
"""
Listen sets (issue 13 item 5, Connect:Direct's TCP.API.LISTEN): one program
listens on its VIPA and on ANYADDR of the same port. A connection to the
VIPA reaches the VIPA's socket, one to the host's own address the
wildcard's; the VIPA is held while the program runs and goes when it ends.
Through dvipactl run --listen and the shim (an unmodified python server and
socat), and through dvipa_listen() of libdvipa. Topology (conftest.py):

    client (eth0 192.0.2.100, 2001:db8::100)
                 \\
                  +-- switch: br0
                 /
    host (eth0 192.0.2.1, 2001:db8::1)   dvipad; the listening programs run here
"""
import os
import select
import signal
import time

from conftest import BUILD, DVIPACTL, fetch, figure, wait_for
from test_cluster import LIBDVIPA, libdvipa_env

SHIM = BUILD / "libdvipa-preload.so"
PYTHON = "/usr/bin/python3"  # Debian's, whatever PATH says

VIPA = "192.0.2.150"
VIPA2 = "192.0.2.151"
VIPA6 = "2001:db8::1:15"
HOST = "192.0.2.1"
HOST6 = "2001:db8::1"

# An unmodified server: binds ADDR:PORT, then WILDCARD:PORT, plain sockets
# (no SO_REUSEPORT of its own), and answers each connection with the name
# of the socket that accepted it. "ready" once both listen; the bind's
# error and exit 3 when one fails.
SERVER = """
import select, socket, sys
addr, wild, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
socks = {}
for name, a in (("vipa", addr), ("any", wild)):
    s = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        s.bind((a, port))
        s.listen(64)
    except OSError as e:
        print(f"bind {a}:{port}: {e.strerror}", flush=True)
        sys.exit(3)
    socks[s] = name
print("ready", flush=True)
while True:
    for s in select.select(list(socks), [], [])[0]:
        c, _ = s.accept()
        c.sendall(socks[s].encode() + b"\\n")
        c.close()
"""


def shim_env(dvipad, **extra):
    env = dict(os.environ)
    for k in ("DVIPA_SOURCE", "DVIPA_STANDBY", "DVIPA_DEBUG", "DVIPA_QUIET", "DVIPA_LISTEN", "LD_PRELOAD"):
        env.pop(k, None)
    env["DVIPA_PRELOAD_LIB"] = str(SHIM)
    env["DVIPA_SOCKET"] = str(dvipad.sock)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_listen(dvipad, pairs, *cmd, vipa=None):
    """dvipactl run --listen PAIR... -- CMD, started in the host namespace."""
    args = [DVIPACTL, "-S", dvipad.sock, "run"]
    for p in pairs:
        args += ["--listen", p]
    if vipa:
        args += ["--vipa", vipa]
    return dvipad.ns.popen(*args, "--", *cmd, env=shim_env(dvipad))


def ready(p, timeout=15):
    """The server's first line: 'ready', or why it failed; '' if it said
    nothing before it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([p.stdout], [], [], 0.1)[0]:
            return p.stdout.readline().strip()
    raise AssertionError("the server said nothing in time")


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    p.wait(10)


def holds(dvipad, addr):
    v = dvipad.vipa(addr)
    return sorted(h["kind"] for h in v["holds"]) if v and v["state"] == "active" else []


def test_python_server_on_vipa_and_anyaddr(lan, dvipad):
    """The issue's case: without a listen set the second bind fails with
    EADDRINUSE; with one, both sockets listen, and each connection reaches
    the socket of the address it was made to."""
    dvipad.start()
    host, client = lan.hosts["h"], lan.hosts["c"]

    # What the issue saw: the VIPA's socket, then 0.0.0.0 of the port.
    p = run_listen(dvipad, [], PYTHON, "-c", SERVER, VIPA, "0.0.0.0", 8080, vipa=VIPA)
    assert ready(p) == "bind 0.0.0.0:8080: Address already in use"
    assert p.wait(10) == 3

    p = run_listen(dvipad, [f"{VIPA}:8080", "ANYADDR:8080"], PYTHON, "-c", SERVER, VIPA, "0.0.0.0", 8080)
    try:
        assert ready(p) == "ready", p.stderr.read() if p.poll() is not None else ""
        # Held for the program: dvipactl's hold and the socket's.
        assert holds(dvipad, VIPA) == ["api", "socket"]
        assert host.has_addr(VIPA)
        got = {"vipa": [fetch(client, VIPA, 8080) for _ in range(20)],
               "host": [fetch(client, HOST, 8080) for _ in range(20)],
               "local": [fetch(host, "127.0.0.1", 8080) for _ in range(5)],
               "local-vipa": [fetch(host, VIPA, 8080) for _ in range(5)]}
        assert got == {"vipa": ["vipa"] * 20, "host": ["any"] * 20, "local": ["any"] * 5,
                       "local-vipa": ["vipa"] * 5}, got
        figure("listen set: connections that reached the socket of the address they were made to",
               "20/20 to the VIPA, 20/20 to the host address, 10/10 from the host itself")
    finally:
        stop(p)
    # The program is gone: so is the VIPA.
    wait_for(lambda: not host.has_addr(VIPA), timeout=10, what="the VIPA to go with the program")
    assert dvipad.vipa(VIPA) is None or dvipad.vipa(VIPA)["state"] != "active"


def test_ipv6_listen_set_and_a_second_instance(lan, dvipad):
    """An IPv6 VIPA with ANYADDR6; a second instance with the same set is
    refused (EADDRINUSE) instead of sharing the first one's connections,
    which SO_REUSEPORT alone would let it do."""
    dvipad.start()
    host, client = lan.hosts["h"], lan.hosts["c"]
    pairs = [f"[{VIPA6}]:8081", "ANYADDR6:8081"]
    p = run_listen(dvipad, pairs, PYTHON, "-c", SERVER, VIPA6, "::", 8081)
    try:
        assert ready(p) == "ready", p.stderr.read() if p.poll() is not None else ""
        assert fetch(client, VIPA6, 8081) == "vipa"
        assert fetch(client, HOST6, 8081) == "any"

        second = run_listen(dvipad, pairs, PYTHON, "-c", SERVER, VIPA6, "::", 8081)
        assert ready(second) == f"bind {VIPA6}:8081: Address already in use"
        assert second.wait(10) == 3
        err = second.stderr.read()
        assert f"dvipa: bind [{VIPA6}]:8081 failed: a TCP socket listens there already: DVIPA_LISTEN shares a " \
               "port only among the pairs of its set" in err, err
        # The first one has all the connections still.
        assert [fetch(client, VIPA6, 8081) for _ in range(10)] == ["vipa"] * 10
    finally:
        stop(p)
    wait_for(lambda: not host.has_addr(VIPA6), timeout=10, what="the VIPA to go with the program")


def test_socat_pair_under_one_run(lan, dvipad):
    """Two unmodified socat processes of one command, one on the VIPA and
    one on 0.0.0.0 of the same port: both are the set's."""
    dvipad.start()
    host, client = lan.hosts["h"], lan.hosts["c"]
    script = (f"socat TCP-LISTEN:8082,bind={VIPA2},fork SYSTEM:'echo vipa' & a=$!; "
              f"socat TCP-LISTEN:8082,bind=0.0.0.0,fork SYSTEM:'echo any' & b=$!; "
              "trap 'kill $a $b' TERM; wait")
    p = run_listen(dvipad, [f"{VIPA2}:8082", "ANYADDR:8082"], "sh", "-c", script)
    try:
        wait_for(lambda: fetch(client, VIPA2, 8082) == "vipa" or p.poll() is not None, timeout=10,
                 what="socat on the VIPA")
        assert p.poll() is None, p.stderr.read()
        wait_for(lambda: fetch(client, HOST, 8082) == "any", what="socat on 0.0.0.0")
        assert [fetch(client, VIPA2, 8082) for _ in range(5)] == ["vipa"] * 5
        assert [fetch(client, HOST, 8082) for _ in range(5)] == ["any"] * 5
    finally:
        stop(p)
    wait_for(lambda: not host.has_addr(VIPA2), timeout=10, what="the VIPA to go with socat")


def test_bad_listen_sets_are_refused(lan, dvipad):
    """dvipactl run --listen says what is wrong with which pair (exit 2),
    and the shim says once why it ignores a malformed DVIPA_LISTEN."""
    dvipad.start()
    host = lan.hosts["h"]
    cases = [
        (["0.0.0.0:80", f"{VIPA}:80"], "--listen '0.0.0.0:80': the first pair is the VIPA, a specific address; "
                                       "ANYADDR and ANYADDR6 come after it"),
        ([f"{VIPA}:80", f"{VIPA2}:80"], f"--listen '{VIPA2}:80': only the first pair names an address (the VIPA)"),
        ([f"{VIPA}:80", "ANYADDR6:80"], "--listen 'ANYADDR6:80': ANYADDR6 does not go with an IPv4 VIPA"),
        ([f"{VIPA}:80"] + [f"ANYADDR:{p}" for p in range(81, 89)],
         "--listen 'ANYADDR:88': a listen set has at most 8 pairs"),
        ([f"{VIPA}"], f"--listen '{VIPA}': no port; a pair is ADDR:PORT"),
        ([f"{VIPA}:http"], f"--listen '{VIPA}:http': the port is not a number in 1..65535"),
        ([f"{VIPA6}:80"], f"--listen '{VIPA6}:80': an IPv6 address goes in brackets: [ADDR]:PORT"),
    ]
    for pairs, what in cases:
        args = []
        for pr in pairs:
            args += ["--listen", pr]
        r = dvipad.ctl("run", *args, "--", "true", check=False)
        assert r.returncode == 2 and f"dvipactl: {what}" in r.stderr, (pairs, r.stderr)
    # Nothing was activated for them.
    assert dvipad.vipa(VIPA) is None

    # A malformed DVIPA_LISTEN: the program runs as without it, and its
    # first bind says why.
    r = host.exec(PYTHON, "-c", SERVER, VIPA, "0.0.0.0", 8083, check=False,
                  env=shim_env(dvipad, LD_PRELOAD=SHIM, DVIPA_LISTEN=f"{VIPA}:8083,ANYADDR:80x"))
    assert r.returncode == 3 and "bind 0.0.0.0:8083: Address already in use" in r.stdout, (r.stdout, r.stderr)
    assert r.stderr.count("dvipa: DVIPA_LISTEN ignored: pair 2 'ANYADDR:80x': the port is not a number in "
                          "1..65535") == 1, r.stderr


# dvipa_listen() through ctypes: PAIRS..., then 'fds N M' or 'error CODE
# REASON'; then serves each connection with the index of its socket.
LIB_SERVER = """
import ctypes, select, socket, sys
lib = ctypes.CDLL(sys.argv[1])
lib.dvipa_reason.restype = ctypes.c_char_p
pairs = sys.argv[2:]
arr = (ctypes.c_char_p * len(pairs))(*[p.encode() for p in pairs])
fds = (ctypes.c_int * len(pairs))()
r = lib.dvipa_listen(arr, ctypes.c_size_t(len(pairs)), 64, fds)
if r < 0:
    print("error", -r, lib.dvipa_reason(None).decode(), flush=True)
    sys.exit(1)
print("fds", *fds, flush=True)
socks = {socket.socket(fileno=fd): i for i, fd in enumerate(fds)}
while True:
    for s in select.select(list(socks), [], [])[0]:
        c, _ = s.accept()
        c.sendall(b"pair %d\\n" % socks[s])
        c.close()
"""


def test_dvipa_listen(lan, dvipad):
    """libdvipa's dvipa_listen(): the fds of the set, the VIPA held by
    the socket while the program lives, dvipad's refusal said."""
    dvipad.start()
    host, client = lan.hosts["h"], lan.hosts["c"]
    env = libdvipa_env(dvipad)
    p = host.popen(PYTHON, "-c", LIB_SERVER, LIBDVIPA, f"{VIPA}:1363", "ANYADDR:1363", "ANYADDR:1364", env=env)
    try:
        line = ready(p)
        assert line.startswith("fds "), line + (p.stderr.read() if p.poll() is not None else "")
        assert holds(dvipad, VIPA) == ["socket"]
        assert fetch(client, VIPA, 1363) == "pair 0"
        assert fetch(client, HOST, 1363) == "pair 1"
        assert fetch(client, HOST, 1364) == "pair 2"
        assert fetch(client, VIPA, 1364) == "pair 2"  # ANYADDR of that port
    finally:
        stop(p)
    wait_for(lambda: not host.has_addr(VIPA), timeout=10, what="the VIPA to go with the program")

    # A VIPA in no range: dvipad's reason, and no socket left behind.
    r = host.exec(PYTHON, "-c", LIB_SERVER, LIBDVIPA, "198.51.100.7:1363", "ANYADDR:1363", env=env, check=False)
    assert r.returncode == 1 and r.stdout.startswith("error 3 pair 1 198.51.100.7:1363: ") \
        and "in no VIPARANGE" in r.stdout, r.stdout
    r = host.exec(PYTHON, "-c", LIB_SERVER, LIBDVIPA, "ANYADDR:1363", f"{VIPA}:1363", env=env, check=False)
    assert r.stdout.strip() == "error 2 pair 1 'ANYADDR:1363': the first pair is the VIPA, a specific address; " \
                               "ANYADDR and ANYADDR6 come after it", r.stdout
