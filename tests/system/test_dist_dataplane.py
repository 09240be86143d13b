# SPDX-License-Identifier: GPL-2.0-or-later
"""
The distributed VIPA's dataplane, as dist_rules.c writes it and
kernel_nft.c loads it (through tests/dist-apply), without dvipad:

    client c (192.0.2.100)
        |                       switch br0
    distributor d (eth0 192.0.2.1, the VIPA on eth0: answers ARP/ND; target "d", served here)
    targets t1 t2 t3 (eth0 192.0.2.11..13, the VIPA on lo, arp_ignore=1, arp_announce=2)

    VIPA 192.0.2.200 or 2001:db8::200 (each test runs for both)

A server on every host answers each connection with its host's name, then
echoes. Connections must go exactly where the Maglev table and the jhash
replica say; a slot-table change must not move an established connection
(its pin) while new connections follow the new table.
"""
import os
import re
import subprocess
import time

import pytest

from conftest import BUILD, SERVER, Lan, figure, wait_for

DIST_APPLY = BUILD / "tests" / "dist-apply"
NFT_RUN = BUILD / "tests" / "nft-run"
NFT_JHASH = BUILD / "tests" / "nft-jhash"
PORT, SEED, M = 8080, 0x5EED1234, 65537
ADDRS = {4: ("192.0.2.200", "192.0.2.100"), 6: ("2001:db8::200", "2001:db8::100")}  # VIPA, client
N_CONN = 120

# Opens connections from the given source ports; prints "PORT NAME" for
# each; with --hold, keeps the first open and echoes "ping" through it on
# every line of stdin, printing what comes back; with reset, closes each
# with a RST instead of a FIN.
CLIENT_PY = """
import socket, struct, sys
vipa, port, client = sys.argv[1], int(sys.argv[2]), sys.argv[3]
hold = sys.argv[4] == "hold"
for sport in map(int, sys.argv[5:]):
    c = socket.create_connection((vipa, port), timeout=5, source_address=(client, sport))
    f = c.makefile("rb")
    print(sport, f.readline().decode().strip(), flush=True)
    if sys.argv[4] == "reset":  # close with a RST
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if hold:
        for line in sys.stdin:
            c.sendall(b"ping\\n")
            print(f.readline().decode().strip(), flush=True)
        break
    c.close()
"""


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def dsr(request):
    vipa, _ = ADDRS[request.param]
    plen = 32 if request.param == 4 else 128
    lan = Lan(f"dd{os.getpid() % 100000}{abs(hash(request.node.name)) % 1000}")
    procs = []
    try:
        d = lan.add_host("d", "192.0.2.1", "2001:db8::1")
        lan.add_host("c", "192.0.2.100", "2001:db8::100")
        d.ip("addr", "add", f"{vipa}/{plen}", "dev", "eth0", *(["nodad"] if plen == 128 else []))
        hosts = {"d": d}
        for i in (1, 2, 3):
            t = lan.add_host(f"t{i}", f"192.0.2.1{i}", f"2001:db8::1{i}")
            for k, v in (("net.ipv4.conf.all.arp_ignore", 1), ("net.ipv4.conf.all.arp_announce", 2),
                         ("net.ipv4.conf.eth0.arp_ignore", 1), ("net.ipv4.conf.eth0.arp_announce", 2)):
                t.sysctl(k, v)
            t.ip("addr", "add", f"{vipa}/{plen}", "dev", "lo")
            hosts[f"t{i}"] = t
        for name, h in hosts.items():
            procs.append(h.popen("/usr/bin/python3", "-c", SERVER, vipa, name, PORT))
        for name, h in hosts.items():
            wait_for(lambda: f":{PORT}" in h.exec("ss", "-Hltn").stdout, what=f"server on {name}")
        yield lan, hosts, request.param
    finally:
        for p in procs:
            p.kill()
            p.wait()
        lan.delete()


def apply(d, hosts, vipa, *opts):
    targets = ["d=local"]
    src = d.mac()
    for name in ("t1", "t2", "t3"):
        targets.append(f"{name}=ether:eth0:{hosts[name].mac()}:{src}")
    return d.exec(DIST_APPLY, *opts, "--table", "eth0", vipa, PORT, SEED, M, *targets).stdout


def predict(table_text, client, sports):
    table = [line.split()[1] for line in table_text.splitlines()]
    out = subprocess.run([NFT_JHASH, str(SEED), str(M)], input="".join(f"{client} {p}\n" for p in sports),
                         capture_output=True, text=True, check=True).stdout
    return {int(p): table[int(b)] for _, p, b in (line.split() for line in out.splitlines())}


def test_connections_follow_maglev(dsr):
    lan, hosts, family = dsr
    vipa, caddr = ADDRS[family]
    d, client = hosts["d"], lan.hosts["c"]
    want = predict(apply(d, hosts, vipa), caddr, range(41000, 41000 + N_CONN))
    out = client.exec("/usr/bin/python3", "-c", CLIENT_PY, vipa, PORT, caddr, "once",
                      *map(str, range(41000, 41000 + N_CONN))).stdout
    got = {int(p): n for p, n in (line.split() for line in out.splitlines())}
    assert got == want
    shares = {n: list(got.values()).count(n) for n in sorted(set(want.values()))}
    figure(f"IPv{family} distributed connections, d/t1/t2/t3 (as Maglev predicts)", f"{shares} of {N_CONN}")
    # Every host served some: the distributor's own local target included.
    assert set(shares) == {"d", "t1", "t2", "t3"}


def test_roundrobin_pins_the_drawn_target(dsr):
    """ROUNDROBIN draws on the SYN only (numgen per packet would scatter a
    connection): each connection completes its exchange on the target its
    SYN drew, and the targets take turns."""
    lan, hosts, family = dsr
    vipa, caddr = ADDRS[family]
    d, client = hosts["d"], lan.hosts["c"]
    apply(d, hosts, vipa, "--roundrobin")
    out = client.exec("/usr/bin/python3", "-c", CLIENT_PY, vipa, PORT, caddr, "once",
                      *map(str, range(44000, 44040))).stdout
    names = [line.split()[1] for line in out.splitlines()]
    assert len(names) == 40
    assert {n: names.count(n) for n in set(names)} == {"d": 10, "t1": 10, "t2": 10, "t3": 10}


def test_pin_survives_slot_change(dsr):
    lan, hosts, family = dsr
    vipa, caddr = ADDRS[family]
    d, client = hosts["d"], lan.hosts["c"]
    table = apply(d, hosts, vipa)
    sport = 42000
    first = predict(table, caddr, [sport])[sport]
    held = client.popen("/usr/bin/python3", "-c", CLIENT_PY, vipa, PORT, caddr, "hold", str(sport),
                        stdin=subprocess.PIPE, bufsize=1)
    try:
        line = held.stdout.readline().split()
        assert line == [str(sport), first]
        held.stdin.write("x\n")
        assert held.stdout.readline().strip() == "ping"
        # Every slot to another target, pins kept.
        other = "t3" if first != "t3" else "t1"
        new = apply(d, hosts, vipa, "--slots", "--only", other)
        assert set(predict(new, caddr, range(43000, 43010)).values()) == {other}
        out = client.exec("/usr/bin/python3", "-c", CLIENT_PY, vipa, PORT, caddr, "once",
                          *map(str, range(43000, 43010))).stdout
        assert {line.split()[1] for line in out.splitlines()} == {other}
        for _ in range(20):
            held.stdin.write("x\n")
            assert held.stdout.readline().strip() == "ping"
        figure(f"IPv{family} pinned connection across a slot-table change", "20/20 messages, 0 resets")
    finally:
        held.kill()
        held.wait()


def duration_s(text):
    """nft's "2h4m59s980ms" in seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)(ms|d|h|m|s)", text))


def pins(d, family):
    """{client port: seconds until its pin expires} of service 0 (IPv6:
    a set whose elements end with the target's mark)."""
    out = d.exec(NFT_RUN, input=f"list {'map' if family == 4 else 'set'} netdev dvipa s0_vcrt\n").stdout
    body = out[out.index("s0_vcrt"):]
    return {int(p): duration_s(e) for p, e in re.findall(r"\. (\d+) \. %d (?:\. \S+ )?(?:timeout \S+ )?expires (\S+)" % PORT,
                                                        body)}


def test_pin_timeouts(dsr):
    """An open connection's pin lasts DV_DIST_PIN_TIMEOUT_S (7,500 s) after
    its last packet; once the client closed (FIN, its last ACK included) or
    reset it, DV_DIST_PIN_CLOSE_S (10 s): the map holds the open
    connections and the last seconds' closed ones, not two hours of them."""
    lan, hosts, family = dsr
    vipa, caddr = ADDRS[family]
    d, client = hosts["d"], lan.hosts["c"]
    apply(d, hosts, vipa)
    held = client.popen("/usr/bin/python3", "-c", CLIENT_PY, vipa, PORT, caddr, "hold", "45000",
                        stdin=subprocess.PIPE, bufsize=1)
    try:
        assert held.stdout.readline().split()[0] == "45000"
        fins, rsts = range(45100, 45110), range(45200, 45205)
        client.exec("/usr/bin/python3", "-c", CLIENT_PY, vipa, PORT, caddr, "once", *map(str, fins))
        client.exec("/usr/bin/python3", "-c", CLIENT_PY, vipa, PORT, caddr, "reset", *map(str, rsts))
        # The server's FIN and the client's last ACK take a moment.
        wait_for(lambda: all(pins(d, family).get(p, 99) <= 10 for p in fins), what="closed connections' pins shortened")
        now = pins(d, family)
        assert now[45000] > 7000
        assert all(p in now and now[p] <= 10 for p in (*fins, *rsts)), now
        # A new connection on the port of one just reset is open: its SYN
        # forgets the old one's closing (the client has no TIME_WAIT
        # after a RST, so the port is free at once).
        again = client.popen("/usr/bin/python3", "-c", CLIENT_PY, vipa, PORT, caddr, "hold", str(rsts[0]),
                             stdin=subprocess.PIPE, bufsize=1)
        try:
            assert again.stdout.readline().split()[0] == str(rsts[0])
            again.stdin.write("x\n")
            assert again.stdout.readline().strip() == "ping"
            assert pins(d, family)[rsts[0]] > 7000
        finally:
            again.kill()
            again.wait()
        rsts = rsts[1:]
        # They go; the open one stays (its deadline: 10 s and the
        # kernel's garbage collection, on a loaded machine).
        wait_for(lambda: not set(pins(d, family)) & {*fins, *rsts}, timeout=40, interval=1,
                 what="closed connections' pins gone")
        assert 45000 in pins(d, family)
        held.stdin.write("x\n")
        assert held.stdout.readline().strip() == "ping"
        figure(f"IPv{family} pin timeouts", f"open {now[45000]:.0f} s, after FIN {max(now[p] for p in fins):.1f} s, "
               f"after RST {max(now[p] for p in rsts):.1f} s")
    finally:
        held.kill()
        held.wait()
