# SPDX-License-Identifier: GPL-2.0-or-later
"""
Bind watch: programs the preload shim cannot reach (here a statically linked
server, built by the test) get their VIPA by binding to it. Topology: see
conftest.py; the host's dvipad has the BINDWATCH range 192.0.2.160/27.
"""
import subprocess
import time

import pytest

from conftest import fetch, figure, run, wait_for
from test_preload import curl, nginx_conf, pid_alive, shim_env, socket_hold

EXTRA = "  VIPARANGE DEFINE 192.0.2.160/27 BINDWATCH\n"
VIPA = "192.0.2.170"

SERVER_C = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A tiny TCP server: listen on ADDR:PORT, answer "static" to everyone. */
int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (argc != 3 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
		return 2;
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		perror("bind/listen");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c >= 0) {
			(void)!write(c, "static\n", 7);
			close(c);
		}
	}
}
"""


@pytest.fixture(scope="module")
def static_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("static")
    src = d / "server.c"
    src.write_text(SERVER_C)
    exe = d / "server"
    run("cc", "-static", "-O2", "-o", exe, src)
    # Really static: no interpreter, so LD_PRELOAD could never reach it.
    ldd = run("ldd", exe, check=False)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr
    return exe


def test_static_server_gets_its_vipa_by_binding(lan, dvipad, static_server):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.write_conf(extra=EXTRA)
    dvipad.start()
    # BINDWATCH lets programs bind before the address exists.
    assert host.exec("sysctl", "-n", "net.ipv4.ip_nonlocal_bind").stdout.strip() == "1"
    assert not host.has_addr(VIPA)

    srv = host.popen(static_server, VIPA, 8080)
    try:
        assert srv.stdout.readline().strip() == "listening"
        t0 = time.monotonic()
        wait_for(lambda: host.has_addr(VIPA), timeout=2, interval=0.002, what="bind watch to activate")
        figure("bind watch: listen() to address installed (one sample, incl. polling)",
               f"{(time.monotonic() - t0) * 1000:.1f} ms")
        v = dvipad.vipa(VIPA)
        assert v["origin"] == "bind" and v["holds"][0]["kind"] == "socket"
        assert fetch(client, VIPA, 8080) == "static"
    finally:
        srv.kill()
        srv.wait()
    t0 = time.monotonic()
    wait_for(lambda: not host.has_addr(VIPA), timeout=2, interval=0.002, what="address removal")
    figure("bind watch: server kill -9 to address removed (one sample)",
           f"{(time.monotonic() - t0) * 1000:.1f} ms")
    assert dvipad.vipa(VIPA) is None


def test_bind_outside_bindwatch_range_does_nothing(lan, dvipad, static_server):
    host = lan.hosts["h"]
    dvipad.write_conf(extra=EXTRA)
    dvipad.start()
    # 192.0.2.130 is in a range without BINDWATCH: nonlocal bind succeeds
    # (the sysctl is per namespace) but nothing is activated.
    srv = host.popen(static_server, "192.0.2.130", 8080)
    try:
        assert srv.stdout.readline().strip() == "listening"
        time.sleep(0.3)  # several bind-watch polls (20 ms): nothing may happen
        assert not host.has_addr("192.0.2.130")
        assert dvipad.vipa("192.0.2.130") is None
    finally:
        srv.kill()
        srv.wait()


def test_bindwatch_beside_an_ordinary_range(lan, dvipad, static_server, tmp_path):
    """
    One BINDWATCH range sets ip_nonlocal_bind for the whole namespace, so
    every bind() succeeds: the shim must still claim addresses of the other
    ranges. nginx under the shim on the ordinary range, the static server
    on the BINDWATCH one, side by side.
    """
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.write_conf(extra=EXTRA)
    dvipad.start()
    assert host.exec("sysctl", "-n", "net.ipv4.ip_nonlocal_bind").stdout.strip() == "1"
    nginx_vipa = "192.0.2.140"  # 192.0.2.128/26: no BINDWATCH
    conf = nginx_conf(tmp_path, nginx_vipa, 8080)
    nginx = ["nginx", "-e", tmp_path / "nginx-startup.log", "-c", conf]
    env = shim_env(dvipad)

    srv = host.popen(static_server, VIPA, 8081)
    try:
        assert srv.stdout.readline().strip() == "listening"
        r = host.exec(*nginx, env=env)
        assert f"dvipa-preload: bind {nginx_vipa}: activated" in r.stderr, r.stderr
        assert host.has_addr(nginx_vipa)
        assert socket_hold(dvipad, nginx_vipa)
        wait_for(lambda: host.has_addr(VIPA), what="bind watch to activate")
        rc, out, err = curl(client, f"http://{nginx_vipa}:8080/")
        assert rc == 0 and out == "nginx on a dynamic VIPA\n", err
        assert fetch(client, VIPA, 8081) == "static"

        # Each goes with its program.
        master = int((tmp_path / "nginx.pid").read_text())
        host.exec(*nginx, "-s", "quit", env=env)
        wait_for(lambda: not pid_alive(master), timeout=10, what="nginx to quit")
        wait_for(lambda: not host.has_addr(nginx_vipa), what="nginx's address to go")
        assert host.has_addr(VIPA) and fetch(client, VIPA, 8081) == "static"
    finally:
        srv.kill()
        srv.wait()
    wait_for(lambda: not host.has_addr(VIPA), what="the static server's address to go")



ONE_CONNECTION = """
import socket, sys
if sys.argv[2] == "mapped":  # a dual-stack socket: only in the IPv6 tables
    l = socket.socket(socket.AF_INET6)
    l.bind(("::ffff:" + sys.argv[1], 8083))
else:
    l = socket.socket()
    l.bind((sys.argv[1], 8083))  # before the address exists: ip_nonlocal_bind
l.listen(1)
print("listening", flush=True)
c, _ = l.accept()
l.close()
print("accepted", flush=True)
while c.recv(100):
    pass
c.close()
print("closed", flush=True)
sys.stdin.readline()
"""

HOLD_OPEN = """
import socket, sys
s = socket.create_connection((sys.argv[1], 8083))
print("connected", flush=True)
sys.stdin.readline()
"""


@pytest.mark.parametrize("family", ["inet", "mapped"])
def test_connection_outlives_its_listener(lan, dvipad, family):
    """A server that closes its listener but still serves a connection
    keeps its address (the removal is decided on the listeners first, then
    on the connections, of both families); the last socket closed, the
    address goes, while the server still runs."""
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.write_conf(extra=EXTRA)
    dvipad.start()
    srv = host.popen("/usr/bin/python3", "-c", ONE_CONNECTION, VIPA, family, stdin=subprocess.PIPE)
    cli = None
    try:
        assert srv.stdout.readline().strip() == "listening"
        wait_for(lambda: host.has_addr(VIPA), what="bind watch to activate")
        cli = client.popen("/usr/bin/python3", "-c", HOLD_OPEN, VIPA, stdin=subprocess.PIPE)
        assert cli.stdout.readline().strip() == "connected"
        assert srv.stdout.readline().strip() == "accepted"
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert host.has_addr(VIPA), "the address went with the listener, under a live connection"
            time.sleep(0.02)
        cli.stdin.close()
        cli.wait(5)
        assert srv.stdout.readline().strip() == "closed"
        t0 = time.monotonic()
        wait_for(lambda: not host.has_addr(VIPA), timeout=2, interval=0.002, what="address removal")
        figure(f"bind watch: last connection ({family}) closed to address removed (one sample)",
               f"{(time.monotonic() - t0) * 1000:.1f} ms")
        assert srv.poll() is None
    finally:
        for p in (srv, cli):
            if p and p.poll() is None:
                p.kill()
                p.wait()
