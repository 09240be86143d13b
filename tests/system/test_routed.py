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
import json
import re
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
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
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

# The nf_tables generation of the namespace: one more per committed
# transaction (NFT_MSG_GETGEN, attribute NFTA_GEN_ID).
GETGEN = """
import socket, struct
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
s.send(struct.pack("=IHHIIBBH", 20, (10 << 8) | 16, 1, 1, 0, 0, 0, 0))
d = s.recv(65536)
off = 20
while off + 8 <= len(d):
    length, kind = struct.unpack_from("=HH", d, off)
    if kind == 1:
        print(struct.unpack_from(">I", d, off + 4)[0])
        break
    off += (length + 3) & ~3
"""

BENCH = BUILD / "dvipa-bench"
NFT_RUN = BUILD / "tests" / "nft-run"

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


def nft_generation(host):
    return int(host.exec("python3", "-c", GETGEN).stdout)


def active_set(host):
    """The addresses in the ip table's active set."""
    out = json.loads(host.exec(NFT_RUN, "-j", input="list set ip dvipa_routed active\n").stdout)
    for item in out["nftables"]:
        if "set" in item:
            return sorted(e if isinstance(e, str) else str(e) for e in item["set"].get("elem", []))
    return []


def lift_icmp_limits(host):
    """dvipa-bench tells a released address by the ICMP error a datagram
    to it gets: the kernel's rate limits would hold most of them back."""
    host.sysctl("net.ipv4.icmp_ratelimit", 0)
    host.sysctl("net.ipv4.icmp_msgs_per_sec", 1000000)
    host.sysctl("net.ipv4.icmp_msgs_burst", 1000000)


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


def test_routed_batch_usable_when_granted(lan, dvipad, routed):
    """Many activations at once from one client go to the kernel in a few
    transactions, and each address is usable when its reply says so; the
    client gone, all go in one or two more."""
    host = lan.hosts["h"]
    configure(dvipad)
    dvipad.start()
    lift_icmp_limits(host)
    n = 2000
    gen0 = nft_generation(host)
    r = host.exec(BENCH, dvipad.sock, "granted", n, "198.18.16.0", check=False)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert f"granted n={n} not_usable=0" in r.stdout
    assert "released" in r.stdout
    transactions = nft_generation(host) - gen0
    figure(f"ROUTED: nf_tables transactions for {n} activations and their release", str(transactions))
    # Logged by transaction beyond 16 changes, each address at debug level
    # (dvipad(8)): every addition said once at info level (the n, and
    # DEFINED at the start).
    log = dvipad.log.read_text()
    each = len(re.findall(r"info: address '198\.18\.[0-9.]+' added to 'ROUTED range'", log))
    summed = sum(int(k) for k in re.findall(r"info: ([0-9]+) addresses added to 'ROUTED range', '198\.18\.", log))
    assert summed > 0 and each + summed == n + 1, (each, summed)
    assert len(re.findall(r"debug: address '198\.18\.[0-9.]+' added to 'ROUTED range'", log)) == summed
    # One per activation and release (4,000) without the queue; the
    # activations come 64 per read of the control socket, the release at
    # once. A refresh may add one.
    assert transactions <= n // 16, transactions
    assert active_set(host) == [DEFINED]
    assert dvipad.vipa("198.18.16.1") is None


def test_routed_kill9_during_batches_leaves_nothing(lan, dvipad, routed):
    """dvipad killed while a burst of activations goes through: what was in
    the set goes at the restart, nothing queued ever reaches the kernel."""
    host, client = lan.hosts["h"], lan.hosts["c"]
    configure(dvipad)
    dvipad.start()
    n = 4000
    hold = host.popen(BENCH, dvipad.sock, "hold", n, "198.18.32.0", 1, 0)
    try:
        wait_for(lambda: len(active_set(host)) > 1, timeout=10, what="the first activations in the set")
        dvipad.stop(signal.SIGKILL)
        hold.kill()
        hold.wait()
        before = len(active_set(host))
        assert 1 < before <= n + 1
        dvipad.start()
        assert active_set(host) == [DEFINED]
        assert not arp_answered(client, "198.18.32.1")
        assert arp_answered(client, DEFINED)
    finally:
        if hold.poll() is None:
            hold.kill()
            hold.wait()


RANGE6 = "fd00:5ca1::/64"
VIPA6 = "fd00:5ca1::10"
IDLE6 = "fd00:5ca1::11"  # in the range, never activated

CONF6 = """\
NODE host1
INTERFACE eth0
ANNOUNCE COUNT 3 INTERVAL 200
LEASE {lease}
VIPADYNAMIC
  VIPARANGE DEFINE {range} ROUTED
ENDVIPADYNAMIC
"""


def mdb_groups(lan, port):
    """The multicast groups the switch's snooping has for port."""
    out = json.loads(lan.switch.exec("bridge", "-j", "mdb", "show").stdout or "[]")
    return {e["grp"] for d in out for e in d.get("mdb", []) if e.get("port") == port}


def test_routed_ipv6_serve_nd_dad_deactivate(lan, dvipad, routed):
    """An IPv6 ROUTED range: the kernel answers no neighbour solicitation
    for an address of a local route, dvipad answers them for the active
    ones (and defends them against another host's DAD); a program binds
    without IPV6_FREEBIND (dvipad sets ip_nonlocal_bind)."""
    host, client = lan.hosts["h"], lan.hosts["c"]
    client.ip("-6", "route", "add", RANGE6, "dev", "eth0")
    dvipad.write_conf(text=CONF6.format(lease=30, range=RANGE6))
    dvipad.start()
    assert "proto 218" in host.ip("-6", "route", "show", "table", "local", RANGE6).stdout
    dvipad.ctl("activate", VIPA6)
    assert not host.has_addr(VIPA6)
    assert dvipad.vipa(VIPA6)["installed"] is True
    routed(VIPA6, "routed6")
    wait_for(lambda: fetch(client, VIPA6, 8080, timeout=1) == "routed6", timeout=10, what="the server on the VIPA")
    # The client resolved it by a solicitation dvipad answered.
    assert client.neigh(VIPA6)["lladdr"] == host.mac()
    # The switch (snooping on, the Linux bridge's default) learned from
    # dvipad's MLD report that the host listens to the VIPA's
    # solicited-node group: a switch that prunes multicast sends it there.
    wait_for(lambda: "ff02::1:ff00:10" in mdb_groups(lan, "p-h"), timeout=5, what="the VIPA's group at the switch")
    assert "ff02::1:ff00:11" not in mdb_groups(lan, "p-h")
    # The reports are repeated (every 20 s): a switch that forgot the group
    # learns it again, before its own timeout (260 s) could forget it.
    lan.switch.exec("bridge", "mdb", "del", "dev", "br0", "port", "p-h", "grp", "ff02::1:ff00:10")
    assert "ff02::1:ff00:10" not in mdb_groups(lan, "p-h")
    wait_for(lambda: "ff02::1:ff00:10" in mdb_groups(lan, "p-h"), timeout=30, interval=0.5,
             what="the VIPA's group at the switch again")
    client.ip("neigh", "flush", "dev", "eth0")
    assert fetch(client, VIPA6, 8080, timeout=2) == "routed6"
    assert client.neigh(VIPA6)["lladdr"] == host.mac()

    # An inactive address: no answer to its solicitation, and nothing
    # through a wildcard listener when the client is given the MAC.
    routed("::", "wildcard", 8081)
    wait_for(lambda: fetch(client, VIPA6, 8081, timeout=1) == "wildcard", timeout=10, what="the wildcard server")
    client.exec("ping", "-6", "-c", "1", "-W", "1", IDLE6, check=False)
    n = client.neigh(IDLE6)
    assert not (n and n.get("lladdr")), n
    client.ip("neigh", "replace", IDLE6, "lladdr", host.mac(), "dev", "eth0")
    assert fetch(client, IDLE6, 8081, timeout=1) is None
    r = host.exec("python3", "-c", REFUSED, IDLE6, "8081", check=False)
    assert r.stdout.strip() in ("EACCES", "EHOSTUNREACH"), r

    # Another host's duplicate-address detection finds the active address
    # in use; an inactive one it gets.
    client.sysctl("net.ipv6.conf.eth0.accept_dad", 1)
    client.ip("addr", "add", f"{VIPA6}/128", "dev", "eth0")
    client.ip("addr", "add", f"{IDLE6}/128", "dev", "eth0")
    wait_for(lambda: client.addrs()[VIPA6].get("dadfailed"), timeout=10, what="the client's DAD of the VIPA to fail")
    wait_for(lambda: not client.addrs()[IDLE6].get("tentative"), timeout=10, what="the client's DAD of an idle one")
    assert not client.addrs()[IDLE6].get("dadfailed")
    client.ip("addr", "del", f"{VIPA6}/128", "dev", "eth0")
    client.ip("addr", "del", f"{IDLE6}/128", "dev", "eth0")
    client.ip("neigh", "flush", "dev", "eth0")

    # Deactivated: no answer, no packets.
    dvipad.ctl("deactivate", VIPA6)
    wait_for(lambda: dvipad.vipa(VIPA6) is None, what="deactivation")
    assert fetch(client, VIPA6, 8080, timeout=1) is None
    n = client.neigh(VIPA6)
    assert not (n and n.get("lladdr")), n

    # A batch: each address usable (reached from ::1 through its local
    # route and the set) when its reply says so.
    host.sysctl("net.ipv6.icmp.ratelimit", 0)
    r = host.exec(BENCH, dvipad.sock, "granted", 500, "fd00:5ca1::1:0", check=False)
    assert r.returncode == 0 and "granted n=500 not_usable=0" in r.stdout, (r.stdout, r.stderr)

    dvipad.stop()
    assert "proto 218" not in host.ip("-6", "route", "show", "table", "local", RANGE6).stdout
