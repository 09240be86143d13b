# SPDX-License-Identifier: GPL-2.0-or-later
"""
ROUTED ranges (VIPARANGE ... ROUTED): the range is one local route and an
nftables set of the active addresses decides which of them answer.

    client (eth0 192.0.2.100, route 198.18.0.0/16 on-link)
                 \\
                  +------------ switch: br0
                 /
    host (eth0 192.0.2.1)   dvipad, ROUTED range 198.18.0.0/16

The client reaches range addresses on-link, so it ARPs for each one: an
answer is the host's own, never a router's.
"""
import signal
import subprocess
import time

import pytest

from conftest import BUILD, SERVER, fetch, figure, run, wait_for

RANGE = "198.18.0.0/16"
VIPA = "198.18.1.10"
IDLE = "198.18.1.11"  # in the range, never activated
DEFINED = "198.18.2.1"  # VIPADEFINE: up from the start, and again after a restart

# connect() from this host: the errno's name, or "connected".
REFUSED = """
import errno, socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e)))
"""

# Poll ADDR:PORT from the client until a connection fails; print
# "polling" first, then the seconds from then until the failure.
UNTIL_SILENT = """
import socket, sys, time
addr, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
print("polling", flush=True)
t0 = time.monotonic()
while time.monotonic() - t0 < limit:
    try:
        socket.create_connection((addr, port), timeout=0.2).close()
    except OSError:
        print(f"{time.monotonic() - t0:.3f}")
        sys.exit(0)
    time.sleep(0.05)
print("never")
"""

CONF = """\
NODE host1
INTERFACE eth0
ANNOUNCE COUNT 3 INTERVAL 200
PROBE COUNT 2 INTERVAL 50
LEASE {lease}
VIPADYNAMIC
  VIPARANGE DEFINE {range} ROUTED
  VIPADEFINE {defined}
ENDVIPADYNAMIC
"""


@pytest.fixture
def routed(lan, dvipad):
    lan.hosts["c"].ip("route", "add", RANGE, "dev", "eth0")
    servers = []

    def serve(addr, name, port=8080):
        p = lan.hosts["h"].popen("python3", "-c", SERVER, addr, name, str(port))
        servers.append(p)
        return p

    yield serve
    for p in servers:
        p.kill()
        p.wait()


def configure(dvipad, lease=30):
    dvipad.write_conf(text=CONF.format(lease=lease, range=RANGE, defined=DEFINED))


def our_route(host):
    out = host.ip("route", "show", "table", "local", RANGE).stdout
    return "proto 218" in out and "local" in out


def arp_answered(client, addr):
    """Whether addr answers ARP: a fresh neighbour entry from a ping."""
    client.ip("neigh", "flush", "dev", "eth0", check=False)
    client.exec("ping", "-c", "1", "-W", "1", addr, check=False)
    n = client.neigh(addr)
    return bool(n and n.get("lladdr"))


def test_routed_serve_arp_deactivate(lan, dvipad, routed):
    host, client = lan.hosts["h"], lan.hosts["c"]
    configure(dvipad)
    dvipad.start()
    assert our_route(host)
    assert arp_answered(client, DEFINED)  # the VIPADEFINE is active at start
    assert not arp_answered(client, VIPA)

    dvipad.ctl("activate", VIPA)
    # No address: the route and the set make it local.
    assert not host.has_addr(VIPA) and not host.has_addr(DEFINED)
    assert dvipad.vipa(VIPA)["installed"] is True
    # A program binds without IP_FREEBIND and serves; the client reaches it.
    srv = routed(VIPA, "routed")
    wait_for(lambda: fetch(client, VIPA, 8080, timeout=1) == "routed", timeout=10, what="the server on the VIPA")
    assert client.neigh(VIPA)["lladdr"] == host.mac()

    # An inactive address of the range: no ARP answer, and with a wildcard
    # listener on the host, nothing either (the client given the MAC).
    routed("0.0.0.0", "wildcard", 8081)
    wait_for(lambda: fetch(client, VIPA, 8081, timeout=1) == "wildcard", timeout=10, what="the wildcard server")
    assert not arp_answered(client, IDLE)
    client.ip("neigh", "replace", IDLE, "lladdr", host.mac(), "dev", "eth0")
    assert fetch(client, IDLE, 8081, timeout=1) is None
    # Nor from the host itself (through 'lo'): refused at once.
    r = host.exec("python3", "-c", REFUSED, IDLE, "8081", check=False)
    assert r.stdout.strip() == "EHOSTUNREACH", r

    # Deactivated: the server still listens, the address does not answer.
    dvipad.ctl("deactivate", VIPA)
    wait_for(lambda: dvipad.vipa(VIPA) is None, what="deactivation")
    assert srv.poll() is None
    assert fetch(client, VIPA, 8080, timeout=1) is None
    assert not arp_answered(client, VIPA)

    # A clean stop removes the route and the tables: nothing answers, the
    # host's address list never had them.
    dvipad.stop()
    assert not our_route(host)
    assert not arp_answered(client, DEFINED)


def test_routed_shim_bind_activates(lan, dvipad, routed):
    """bind() through the preload shim claims an address of a ROUTED range
    although the plain bind would succeed (every range address is local)."""
    host, client = lan.hosts["h"], lan.hosts["c"]
    configure(dvipad)
    dvipad.start()
    addr = "198.18.7.7"
    srv = host.popen("env", f"LD_PRELOAD={BUILD / 'libdvipa-preload.so'}", f"DVIPA_SOCKET={dvipad.sock}",
                     "python3", "-c", SERVER, addr, "shim", "8080")
    try:
        wait_for(lambda: fetch(client, addr, 8080, timeout=1) == "shim", timeout=10, what="the shim's server")
        assert dvipad.vipa(addr)["holds"][0]["kind"] == "socket"
        srv.kill()
        srv.wait()
        # The socket hold ends with its socket.
        wait_for(lambda: dvipad.vipa(addr) is None, timeout=5, what="the socket hold to end")
        assert not arp_answered(client, addr)
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


def test_routed_kill9_restart_reconciles(lan, dvipad, routed):
    host, client = lan.hosts["h"], lan.hosts["c"]
    bound = "198.18.1.12"  # a program stays bound to it: its hold is taken back
    configure(dvipad)
    dvipad.start()
    dvipad.ctl("activate", VIPA)
    dvipad.ctl("activate", bound)
    routed("0.0.0.0", "wildcard")
    routed(bound, "bound", 8081)
    wait_for(lambda: fetch(client, VIPA, 8080, timeout=1) == "wildcard", timeout=10, what="the server")
    wait_for(lambda: fetch(client, bound, 8081, timeout=1) == "bound", timeout=10, what="the bound server")

    dvipad.stop(signal.SIGKILL)
    # Within the lease (30 s) the leftovers still answer: what follows is
    # the restart's doing, not the expiry's.
    assert fetch(client, VIPA, 8080, timeout=1) == "wildcard"
    t0 = time.monotonic()
    dvipad.start()
    figure("ROUTED restart after kill -9 until dvipad answers", f"{(time.monotonic() - t0) * 1000:.0f} ms")
    # The operator's activation died with the daemon: gone from the set at
    # once. The address a program is still bound to is taken back as a
    # socket hold, as for an address on the interface; the VIPADEFINE is
    # back; the route is there once.
    assert fetch(client, VIPA, 8080, timeout=1) is None
    assert dvipad.vipa(VIPA) is None
    wait_for(lambda: dvipad.vipa(bound), what="the bound address taken back")
    assert dvipad.vipa(bound)["holds"][0]["kind"] == "socket"
    assert fetch(client, bound, 8081, timeout=1) == "bound"
    assert arp_answered(client, DEFINED)
    assert host.ip("route", "show", "table", "local", RANGE).stdout.count("198.18.0.0/16") == 1
    dvipad.ctl("activate", VIPA)
    wait_for(lambda: fetch(client, VIPA, 8080, timeout=1) == "wildcard", timeout=10, what="the VIPA again")


def test_routed_kill9_stops_answering_within_lease(lan, dvipad, routed):
    host, client = lan.hosts["h"], lan.hosts["c"]
    lease = 6
    configure(dvipad, lease=lease)
    dvipad.start()
    dvipad.ctl("activate", VIPA)
    routed(VIPA, "routed")
    wait_for(lambda: fetch(client, VIPA, 8080, timeout=1) == "routed", timeout=10, what="the server on the VIPA")
    # Past one lease: the refresh keeps it answering.
    time.sleep(lease + 1)
    assert fetch(client, VIPA, 8080, timeout=1) == "routed"

    # One client process polls (a connection every 50 ms, 200 ms timeout)
    # and says how long after the kill the VIPA stopped answering.
    poll = client.popen("python3", "-c", UNTIL_SILENT, VIPA, "8080", str(lease + 5))
    assert poll.stdout.readline().strip() == "polling"
    dvipad.stop(signal.SIGKILL)
    out, err = poll.communicate(timeout=lease + 10)
    assert out.strip() != "never", err
    gone = float(out.strip())  # from before the kill: an upper bound
    figure(f"ROUTED kill -9 (no restart) until the VIPA stops answering, LEASE {lease}", f"{gone:.2f} s")
    assert gone <= lease + 0.5, (out, err)
    assert not arp_answered(client, VIPA)
    assert not arp_answered(client, DEFINED)
    # Left behind: the route, inert.
    assert our_route(host)
