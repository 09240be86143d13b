# SPDX-License-Identifier: GPL-2.0-or-later
"""
Distributed VIPA (issue 12), dvipad end to end.

    n1 (192.0.2.1)    n2 (192.0.2.2)    n3 (192.0.2.3)    client c (192.0.2.100)
    VIPADEFINE        VIPABACKUP 200    VIPABACKUP 100
          \\                 |                 |                 /
           +------------------ switch: br0 -----------------------+

Every node: corosync, dvipad with the same VIPADISTRIBUTE DESTIP ALL, and a
server on the wildcard that answers each connection with its node's name,
then echoes. The owner of VIPA (n1, then the best backup) distributes; all
three hold VIPA on lo without answering ARP for it and answer the client
directly.
"""
import contextlib
import json
import re
import signal
import subprocess
import time

import pytest

from conftest import BUILD, SERVER, Netns, figure, reconfigure, wait_for

VIPA, PORT = "192.0.2.200", 8080
CLIENT = "192.0.2.100"
NFT_RUN = BUILD / "tests" / "nft-run"
NFT_JHASH = BUILD / "tests" / "nft-jhash"
DIST_APPLY = BUILD / "tests" / "dist-apply"
# Slot maps are written in the background: seconds under ASan on a loaded
# machine.
TABLE_S = 40

DEFINES = {"n1": f"  VIPADEFINE MOVEABLE IMMEDIATE {VIPA}\n",
           "n2": f"  VIPABACKUP 200 MOVEABLE IMMEDIATE 255.255.255.255 {VIPA}\n",
           "n3": f"  VIPABACKUP 100 {VIPA}\n"}


def confs(method="BASEWLM", destip="ALL"):
    """The same VIPADISTRIBUTE on every node."""
    dist = f"  VIPADISTRIBUTE DEFINE DISTMETHOD {method} {VIPA} PORT {PORT} DESTIP {destip}\n"
    return {n: d + dist for n, d in DEFINES.items()}

# Connects from each given source port; prints "PORT NAME", or "PORT -" when
# the connection failed.
CONNECT = """
import socket, sys
vipa, port, client = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for sport in map(int, sys.argv[4:]):
    try:
        # 10 s: a SYN that a target with no server dropped is sent again
        # after 1 s, then 2 s more, as any client's
        with socket.create_connection((vipa, port), timeout=10, source_address=(client, sport)) as c:
            name = c.makefile("rb").readline().decode().strip()
    except OSError:
        name = ""
    print(sport, name or "-", flush=True)
"""

# Opens one connection per source port, prints "ready" and the names, then
# sends a line through each connection every 50 ms until stdin closes, and
# prints [name, echoes, error or null] per connection as JSON.
STREAM = """
import json, socket, sys, threading, time
vipa, port, client = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = []
for sport in map(int, sys.argv[4:]):
    c = socket.create_connection((vipa, port), timeout=15, source_address=(client, sport))
    f = c.makefile("rb")
    conns.append([c, f, f.readline().decode().strip(), 0, None])
print("ready", json.dumps([x[2] for x in conns]), flush=True)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
while not stop.is_set():
    for x in conns:
        if x[4] is None:
            try:
                x[0].sendall(b"ping\\n")
                if x[1].readline() != b"ping\\n":
                    raise ConnectionError("closed")
                x[3] += 1
            except OSError as e:
                x[4] = repr(e)
    time.sleep(0.05)
print(json.dumps([x[2:] for x in conns]), flush=True)
"""


def connect(client, sports):
    out = client.exec("/usr/bin/python3", "-c", CONNECT, VIPA, PORT, CLIENT, *map(str, sports)).stdout
    return {int(p): n for p, n in (line.split() for line in out.splitlines())}


def targets(node):
    """dvipactl targets --json on node."""
    return json.loads(node.ctl("targets", "--json").stdout)["targets"]


def serve(cluster):
    procs = {}
    for name, n in cluster.nodes.items():
        procs[name] = n.ns.popen("/usr/bin/python3", "-c", SERVER, "0.0.0.0", name, PORT)
        cluster.servers.append(procs[name])
    return procs


def slots_loaded(node):
    """How many "new slots" and "loaded" lines node's log has."""
    log = node.log.read_text()
    return log.count("distributed VIPAs: new slots") + log.count("distributed VIPAs: table 'netdev dvipa' loaded")


def hash_on(node):
    """The jhash modulus and seed of the service in node's table."""
    out = node.ns.exec(NFT_RUN, input="list chain netdev dvipa s0\n").stdout
    return int(out.split(" mod ")[1].split()[0]), int(out.split(" seed ")[1].split()[0], 16)


def predict(m, seed, targets, sports):
    """Where Maglev and nft's jhash send each source port: the slot table
    computed by maglev.c (tests/dist-apply, in a namespace of its own) and
    the bucket by the jhash replica."""
    ns = Netns(f"dt{time.monotonic_ns() % 10**9}")
    try:
        ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        table = ns.exec(DIST_APPLY, "--table", "eth0", VIPA, PORT, seed, m,
                        *(f"{t}=local" for t in targets)).stdout
    finally:
        ns.delete()
    slots = [line.split()[1] for line in table.splitlines()]
    out = subprocess.run([NFT_JHASH, str(seed), str(m)], input="".join(f"{CLIENT} {p}\n" for p in sports),
                         capture_output=True, text=True, check=True).stdout
    return {int(p): slots[int(b)] for _, p, b in (line.split() for line in out.splitlines())}


def distributed_everywhere(cluster):
    """VIPA up on n1's interface and on every node's lo."""
    return (cluster.nodes["n1"].ns.has_addr(VIPA) and
            all(n.ns.has_addr(VIPA, dev="lo") for n in cluster.nodes.values()))


def start_distribution(cluster, **kw):
    cluster.servers = []
    procs = serve(cluster)
    reconfigure(cluster, confs(**kw))
    wait_for(lambda: distributed_everywhere(cluster), timeout=10, what="VIPA on n1 and on every lo")
    # Each node answered ARP for VIPA only while it owned it.
    for n in cluster.nodes.values():
        assert n.ns.exec("sysctl", "-n", "net.ipv4.conf.eth0.arp_ignore").stdout.strip() == "1"
    return procs


def stop_servers(cluster):
    for p in getattr(cluster, "servers", []):
        if p.poll() is None:
            p.kill()
            p.wait()


def test_connections_spread_as_maglev_says_and_avoid_a_dead_server(cluster):
    n1 = cluster.nodes["n1"]
    client = cluster.lan.hosts["c"]
    try:
        procs = start_distribution(cluster)
        # Until every target's listener has reached n1's table.
        probe = iter(range(30000, 31000))
        wait_for(lambda: set(connect(client, [next(probe) for _ in range(12)]).values()) == {"n1", "n2", "n3"},
                 timeout=TABLE_S, interval=0.2, what="all three targets in the table")

        sports = range(40000, 40300)
        got = connect(client, sports)
        m, seed = hash_on(n1)
        assert m == 3001  # the first prime above 1,000 per target
        want = predict(m, seed, ["n1", "n2", "n3"], sports)
        assert got == want
        shares = {n: list(got.values()).count(n) for n in ("n1", "n2", "n3")}
        figure("distributed VIPA: 300 connections over n1/n2/n3 (exactly where Maglev + jhash say)",
               str(shares))
        # Maglev gives each a third of the slots; 300 hashed flows are a
        # sample of that: 3.7 sigma.
        assert all(70 <= c <= 130 for c in shares.values()), shares
        # dvipactl targets, on any node: what the table has.
        rows = targets(cluster.nodes["n3"])
        assert {r["node"]: r["state"] for r in rows} == {"n1": "ready", "n2": "ready", "n3": "ready"}
        assert sum(r["slots"] for r in rows) == m and all(abs(r["slots"] - m / 3) < m * 0.01 for r in rows)
        assert {r["distributor"] for r in rows} == {"n1"} and {r["port"] for r in rows} == {PORT}
        text = n1.ctl("targets").stdout
        assert text.split("\n")[0].split() == ["ADDR", "PORT", "TARGET", "STATE", "WEIGHT", "SLOTS", "DISTRIBUTOR"]
        assert f"{VIPA}  {PORT}  n3" in text, text
        r = n1.ctl("targets", "192.0.2.99", check=False)
        assert r.returncode == 8 and "192.0.2.99 is not distributed" in r.stderr, r.stderr

        # n3's server dies: its share goes to the others once n3's report
        # has reached n1's slots. Meanwhile n3 drops the SYNs it gets (no
        # socket takes them: the targets' table), and their retransmissions
        # choose again: no new connection fails, some wait a second or three.
        loaded = slots_loaded(n1)
        t0 = time.monotonic()
        procs["n3"].kill()
        procs["n3"].wait()
        # Four clients, each connecting again and again from new ports.
        clients = [client.popen("/usr/bin/python3", "-c", CONNECT, VIPA, PORT, CLIENT,
                                *map(str, range(41000 + 100 * k, 41000 + 100 * k + 12))) for k in range(4)]
        while slots_loaded(n1) == loaded:
            assert time.monotonic() - t0 < TABLE_S, "n1's slots never changed"
            time.sleep(0.05)
        t_table = time.monotonic() - t0
        res = {}
        for c in clients:
            out, _ = c.communicate(timeout=120)
            res.update({int(p): n for p, n in (line.split() for line in out.splitlines())})
        t_all = time.monotonic() - t0
        tried, failed = len(res), list(res.values()).count("-")
        assert tried == 48 and failed == 0, f"{failed} of {tried} new connections failed while the slots moved"
        fresh = iter(range(42000, 49000))
        after = connect(client, [next(fresh) for _ in range(150)])
        assert "-" not in after.values() and "n3" not in after.values(), after
        split = {n: list(after.values()).count(n) for n in ("n1", "n2")}
        assert all(45 <= c <= 105 for c in split.values()), split
        rows = {r["node"]: r for r in targets(n1)}
        assert rows["n3"]["state"] == "not listening" and rows["n3"]["slots"] == 0 and not rows["n3"]["ready"]
        figure("distributed VIPA: n3's server killed -> n1's slots without n3",
               f"{t_table:.2f} s; 48 new connections from 4 clients since the kill: {failed} failed,"
               f" {list(res.values()).count('n3')} reached n3, all done after {t_all:.2f} s;"
               f" after: 0 of 150, {split}")
    finally:
        stop_servers(cluster)


@contextlib.contextmanager
def streams_on_every_target(cluster, sports, **kw):
    """Distribution started (kw: confs()), every target in the table, and
    one long-lived stream from the client for each port of sports (STREAM):
    yields the streams' process and {port: target}; the process ends with
    the block."""
    client = cluster.lan.hosts["c"]
    start_distribution(cluster, **kw)
    probe = iter(range(30000, 31000))
    wait_for(lambda: set(connect(client, [next(probe) for _ in range(12)]).values()) == {"n1", "n2", "n3"},
             timeout=TABLE_S, interval=0.2, what="all three targets in the table")
    stream = client.popen("/usr/bin/python3", "-c", STREAM, VIPA, PORT, CLIENT, *map(str, sports),
                          stdin=subprocess.PIPE, bufsize=1)
    try:
        line = stream.stdout.readline().split(maxsplit=1)
        assert line and line[0] == "ready", stream.stderr.read()
        yield stream, dict(zip(sports, json.loads(line[1])))
    finally:
        if stream.poll() is None:
            stream.kill()
        stream.wait()


@pytest.mark.parametrize("method", ["BASEWLM", "ROUNDROBIN"])
def test_backup_takes_over_distribution(cluster, method):
    """BASEWLM: the backup computes where each stream is. ROUNDROBIN: a
    draw cannot be computed again; the targets send their connections when
    the membership changes, and the backup drops (does not refuse) their
    packets until it has the pins."""
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    client = cluster.lan.hosts["c"]
    try:
        with streams_on_every_target(cluster, range(50000, 50024), method=method) as (stream, names):
            # Every node has the table, only the owner steers.
            for n in (n2, n3):
                assert " jump s0" not in n.ns.exec(NFT_RUN, input="list chain netdev dvipa ingress\n").stdout
            time.sleep(0.5)  # traffic before the cut

            t0 = time.monotonic()
            cluster.lan.switch.ip("link", "set", "p-n1", "down")
            wait_for(lambda: n2.ns.has_addr(VIPA), timeout=10, interval=0.005, what="VIPA on n2")
            t_vipa = time.monotonic() - t0
            fresh = iter(range(51000, 59000))
            wait_for(lambda: "-" not in connect(client, [next(fresh)]).values(), timeout=TABLE_S, interval=0.01,
                     what="a new connection through n2")
            t_first = time.monotonic() - t0
            # n1 is gone from n2's slots: new connections all succeed.
            wait_for(lambda: "-" not in connect(client, [next(fresh) for _ in range(30)]).values(),
                     timeout=TABLE_S, interval=0.2, what="n2's slots without n1")
            t_all = time.monotonic() - t0
            time.sleep(1)  # traffic after the takeover
            stream.stdin.close()
            result = json.loads(stream.stdout.readline())
        survivors = [r for r in result if r[0] != "n1"]
        resets = [r for r in survivors if r[2] is not None]
        lost_with_n1 = sum(1 for r in result if r[0] == "n1")
        figure(f"distributed VIPA ({method}): distributor n1 cut off -> VIPA on n2", f"{t_vipa * 1000:.0f} ms")
        figure(f"distributed VIPA ({method}): n1 cut off -> first new connection through n2 / all new connections"
               " succeed", f"{t_first * 1000:.0f} ms / {t_all * 1000:.0f} ms")
        figure(f"distributed VIPA ({method}): streams on n2/n3 across the takeover",
               f"{len(survivors)} streams, {len(resets)} reset ({lost_with_n1} more were on n1, which was cut off)")
        assert len(survivors) + lost_with_n1 == len(names) and survivors
        assert not resets, resets
        assert all(r[1] > 0 for r in survivors)  # echoes went through
        assert " jump s0" in n2.ns.exec(NFT_RUN, input="list chain netdev dvipa ingress\n").stdout
        if method == "ROUNDROBIN":
            # No hash finds them: n2 has their pins from n2's and n3's lists.
            assert {p for p, n in names.items() if n != "n1"} <= pinned_ports(n2)
    finally:
        stop_servers(cluster)


def conns(node, *args):
    """dvipactl conns --json on node: {client port: row}."""
    rows = json.loads(node.ctl("conns", "--json", *args).stdout)["conns"]
    return {r["client_port"]: r for r in rows if r["client"] == CLIENT}


def test_conns_and_quiesce(cluster):
    """dvipactl conns lists the distributor's pins; quiesce on a target
    (weight 0) sends new connections elsewhere while its established ones
    go on; resume brings it back."""
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    client = cluster.lan.hosts["c"]
    try:
        with streams_on_every_target(cluster, range(52000, 52030)) as (stream, names):
            assert "n3" in names.values(), names

            # The distributor's pins: each stream, open, on its target;
            # connections just closed, closing.
            connect(client, range(31000, 31005))
            rows = conns(n1, VIPA)
            for p, name in names.items():
                assert rows[p]["target"] == name and rows[p]["state"] == "open", rows.get(p)
                assert rows[p]["port"] == PORT and rows[p]["addr"] == VIPA
                assert 7000_000 < rows[p]["expires_ms"] <= 7500_000
            closed = [rows.get(p) for p in range(31000, 31005)]
            assert all(r and r["state"] == "closing" and r["expires_ms"] <= 10_000 for r in closed), closed
            text = n1.ctl("conns").stdout.splitlines()
            assert text[0].split() == ["ADDR", "PORT", "CLIENT", "CPORT", "TARGET", "STATE", "EXPIRES"]
            assert any(line.split()[3:6] == ["52000", names[52000], "open"] for line in text[1:]), text
            r = n2.ctl("conns", VIPA, check=False)
            assert r.returncode == 8 and "does not distribute" in r.stderr and "n1" in r.stderr, r.stderr
            r = n1.ctl("conns", "192.0.2.99", check=False)
            assert r.returncode == 8 and "not distributed" in r.stderr, r.stderr

            # Refusals, each naming what is wrong.
            r = n3.ctl("quiesce", VIPA, "--node", "n9", check=False)
            assert r.returncode == 8 and "node 'n9' is not a target of" in r.stderr, r.stderr
            r = n3.ctl("quiesce", VIPA, "--port", "9999", check=False)
            assert r.returncode == 2 and "port 9999" in r.stderr, r.stderr
            r = n3.ctl("quiesce", VIPA, "--port", "0", check=False)
            assert r.returncode == 2 and "not a port" in r.stderr, r.stderr
            r = n3.ctl("quiesce", VIPA, user="daemon", check=False)
            assert r.returncode == 5 and "only root may quiesce" in r.stderr, r.stderr

            # Quiesce n3: its slots go to n1 and n2, its streams stay.
            n3.ctl("quiesce", VIPA, "--node", "n3", "--port", str(PORT))
            wait_for(lambda: {r["node"]: r["slots"] for r in targets(n1)}["n3"] == 0, timeout=TABLE_S,
                     interval=0.2, what="n3 out of n1's slots")
            rows3 = {r["node"]: r for r in targets(n3)}
            assert rows3["n3"]["state"] == "quiesced" and rows3["n3"]["weight"] == 0
            quiet = iter(range(53000, 53100))
            wait_for(lambda: "n3" not in connect(client, [next(quiet) for _ in range(10)]).values(),
                     timeout=TABLE_S, interval=0.5, what="no new connection to n3")
            fresh = connect(client, range(53100, 53160))
            assert "n3" not in fresh.values() and "-" not in fresh.values(), fresh
            assert {r["target"] for p, r in conns(n1, VIPA).items() if p in names} == set(names.values())

            # Resume: n3 takes new connections again.
            # Fresh ports each try: a SYN on a port still pinned follows
            # its pin.
            n3.ctl("resume", VIPA)
            again = iter(range(53200, 54000))
            wait_for(lambda: "n3" in connect(client, [next(again) for _ in range(20)]).values(), timeout=TABLE_S,
                     interval=0.5, what="new connections to n3 again")
            time.sleep(0.5)  # traffic after the resume
            stream.stdin.close()
            result = json.loads(stream.stdout.readline())
        resets = [r for r in result if r[2] is not None]
        on_n3 = sum(1 for r in result if r[0] == "n3")
        figure("distributed VIPA: streams across quiesce and resume of n3",
               f"{len(result)} streams ({on_n3} on n3), {len(resets)} reset; 60 new connections while "
               "quiesced, 0 to n3")
        assert not resets, resets
        assert all(r[1] > 0 for r in result)

        # More pins than one reply shows: refused, saying so.
        els = ", ".join(f"10.9.{i // 250}.{i % 250 + 1} . {1024 + i} . {PORT} : 0x1" for i in range(20001))
        n1.ns.exec(NFT_RUN, input=f"add element netdev dvipa s0_vcrt {{ {els} }}\n")
        r = n1.ctl("conns", check=False)
        assert r.returncode == 9 and "more than 20000 pinned connections" in r.stderr, r.stderr
    finally:
        stop_servers(cluster)


def pinned_ports(node):
    """The client ports node's table has pins for (its map, distributor or not)."""
    out = node.ns.exec(NFT_RUN, input="list map netdev dvipa s0_vcrt\n").stdout
    return {int(p) for p in re.findall(r"%s \. (\d+) \. %d" % (re.escape(CLIENT), PORT), out)}


def test_takeover_keeps_connections_the_table_moved(cluster):
    """Streams open; then n3 is quiesced, so the table sends n3's streams
    elsewhere; then the distributor n1 is cut off. n3 sent its connections
    to the others when its table changed, the backup n2 pinned them before
    it took over: none of the streams on n2 or n3 is reset."""
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    client = cluster.lan.hosts["c"]
    try:
        with streams_on_every_target(cluster, range(54000, 54030)) as (stream, names):
            on_n3 = {p for p, n in names.items() if n == "n3"}
            assert on_n3, names

            # The table changes under n3's streams; n2 gets their pins.
            t0 = time.monotonic()
            n3.ctl("quiesce", VIPA)
            wait_for(lambda: on_n3 <= pinned_ports(n2), timeout=TABLE_S, interval=0.1,
                     what="n3's streams pinned on n2")
            t_pins = time.monotonic() - t0
            wait_for(lambda: {r["node"]: r["slots"] for r in targets(n1)}["n3"] == 0, timeout=TABLE_S,
                     interval=0.2, what="n3 out of n1's slots")
            time.sleep(0.5)  # traffic before the cut

            t0 = time.monotonic()
            cluster.lan.switch.ip("link", "set", "p-n1", "down")
            wait_for(lambda: n2.ns.has_addr(VIPA), timeout=10, interval=0.005, what="VIPA on n2")
            t_vipa = time.monotonic() - t0
            fresh = iter(range(55000, 59000))
            wait_for(lambda: "-" not in connect(client, [next(fresh)]).values(), timeout=TABLE_S, interval=0.01,
                     what="a new connection through n2")
            t_first = time.monotonic() - t0
            time.sleep(1.5)  # traffic after the takeover
            stream.stdin.close()
            result = json.loads(stream.stdout.readline())
        kept = [r for r in result if r[0] != "n1"]
        resets = [r for r in kept if r[2] is not None]
        figure("distributed VIPA: n3 quiesced -> its streams pinned on the backup n2", f"{t_pins * 1000:.0f} ms")
        figure("distributed VIPA: table changed, then distributor n1 cut off: streams on n2/n3 kept",
               f"{len(kept) - len(resets)} of {len(kept)} ({len(on_n3)} on n3, which the table no longer "
               f"names), {len(result) - len(kept)} more were on n1; VIPA on n2 after {t_vipa * 1000:.0f} ms, "
               f"first new connection after {t_first * 1000:.0f} ms")
        assert not resets, resets
        assert all(r[1] > 0 for r in kept)
    finally:
        stop_servers(cluster)


def test_roundrobin_and_hotstandby(cluster):
    client = cluster.lan.hosts["c"]
    fresh = iter(range(40000, 60000))
    try:
        procs = start_distribution(cluster, method="ROUNDROBIN")
        wait_for(lambda: set(connect(client, [next(fresh) for _ in range(12)]).values()) == {"n1", "n2", "n3"},
                 timeout=TABLE_S, interval=0.2, what="all three targets in the table")
        # Each SYN draws the next slot: the targets take turns.
        names = list(connect(client, [next(fresh) for _ in range(30)]).values())
        assert {n: names.count(n) for n in set(names)} == {"n1": 10, "n2": 10, "n3": 10}, names
        assert all(names[i] != names[i + 1] for i in range(29)), names
        # TIMEDAFFINITY: this client keeps its first target.
        reconfigure(cluster, confs(method="ROUNDROBIN TIMEDAFFINITY 60"))
        wait_for(lambda: "TIMEDAFFINITY 60" in cluster.nodes["n1"].ctl("config").stdout, what="n1 reloaded")
        # (Without affinity, three connections in a row go to three targets.)
        wait_for(lambda: len(set(connect(client, [next(fresh) for _ in range(3)]).values()) - {"-"}) == 1,
                 timeout=TABLE_S, interval=0.2, what="the new table, with the affinity")
        kept = set(connect(client, [next(fresh) for _ in range(12)]).values())
        assert len(kept) == 1 and "-" not in kept, kept
        # Its target's server dies: the client's SYNs pass the affinity over
        # once the slots have moved, and none fails meanwhile.
        (first,) = kept
        procs[first].kill()
        procs[first].wait()
        res = connect(client, [next(fresh) for _ in range(8)])
        assert "-" not in res.values(), res
        wait_for(lambda: first not in connect(client, [next(fresh) for _ in range(3)]).values(), timeout=TABLE_S,
                 interval=0.2, what=f"new connections past {first}")
        procs[first] = cluster.nodes[first].ns.popen("/usr/bin/python3", "-c", SERVER, "0.0.0.0", first, PORT)
        cluster.servers.append(procs[first])

        # HOTSTANDBY: every connection to the ready target of highest rank.
        # n9 is no node of the cluster: said, and never a target.
        reconfigure(cluster, confs(method="HOTSTANDBY", destip="n2 PREFERRED n3 BACKUP 100 n1 BACKUP 50 n9 BACKUP 200"))
        wait_for(lambda: set(connect(client, [next(fresh) for _ in range(6)]).values()) == {"n2"},
                 timeout=TABLE_S, interval=0.2, what="every connection to n2 (PREFERRED)")
        n1 = cluster.nodes["n1"]
        assert f"{n1.conf}:11: VIPADISTRIBUTE: DESTIP node 'n9' is not in Corosync's node list" in n1.log.read_text()
        assert "n9" not in {r["node"] for r in targets(n1)}
        procs["n2"].kill()
        procs["n2"].wait()
        wait_for(lambda: set(connect(client, [next(fresh) for _ in range(6)]).values()) == {"n3"},
                 timeout=TABLE_S, interval=0.2, what="every connection to n3 (BACKUP 100)")
        assert set(connect(client, [next(fresh) for _ in range(20)]).values()) == {"n3"}
    finally:
        stop_servers(cluster)


# ---- one host (CLUSTER NONE): see conftest.py ----

SOLO = ("  VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 192.0.2.10\n"
        "  VIPADISTRIBUTE DISTMETHOD {method} 192.0.2.10 PORT 80 DESTIP host1\n")


def test_what_cannot_be_honoured_is_refused(lan, dvipad):
    # A distributed port inside the SYSPLEXPORTS pool would collide with
    # the nodes' outbound ports: refused at start, naming its line ...
    bad = SOLO.format(method="ROUNDROBIN SYSPLEXPORTS").replace("PORT 80", "PORT 40000")
    what = "port 40000 is in the SYSPLEXPORTS pool"
    dvipad.write_conf(extra=bad)
    dvipad.start(wait=False)
    dvipad.proc.wait(timeout=30)
    assert dvipad.proc.returncode != 0
    log = dvipad.log.read_text()
    assert f"{dvipad.conf}:12: {what}" in log, log
    assert not lan.hosts["h"].has_addr("192.0.2.10")
    dvipad.stop()
    # ... and on reload, which keeps the running configuration.
    dvipad.write_conf()
    dvipad.start()
    before = dvipad.ctl("config").stdout
    dvipad.write_conf(extra=bad)
    r = dvipad.ctl("reload", check=False)
    assert r.returncode == 2 and what in r.stderr, r.stderr
    assert dvipad.ctl("config").stdout == before and dvipad.alive()


def test_no_table_and_no_address_on_lo_left_behind(lan, dvipad):
    h = lan.hosts["h"]

    def table():
        return h.exec(NFT_RUN, input="list tables\n").stdout.strip()

    def arp_ignore():
        return h.exec("sysctl", "-n", "net.ipv4.conf.eth0.arp_ignore").stdout.strip()

    def distributing():
        return h.has_addr("192.0.2.10", dev="lo") and h.has_addr("192.0.2.10") and table() == "table netdev dvipa\ntable inet dvipa"

    dvipad.write_conf(extra=SOLO.format(method="BASEWLM"))
    # A clean stop takes everything away and puts the ARP settings back.
    dvipad.start()
    wait_for(distributing, timeout=TABLE_S, what="VIPA on eth0 and lo, the table")
    assert arp_ignore() == "1"
    dvipad.stop()
    assert not h.has_addr("192.0.2.10", dev="lo") and table() == "" and arp_ignore() == "0"
    # After a crash, the next start removes them, whatever its configuration.
    dvipad.start()
    wait_for(distributing, timeout=TABLE_S, what="VIPA on eth0 and lo, the table")
    dvipad.stop(signal.SIGKILL)
    assert h.has_addr("192.0.2.10", dev="lo") and table()  # until its lease ends
    dvipad.write_conf()
    dvipad.start()
    assert not h.has_addr("192.0.2.10", dev="lo") and table() == ""


def test_conns_ipv6(lan, dvipad):
    """dvipactl conns reads IPv6 pins (a set keyed by the connection and
    its target's mark): one node distributing to itself."""
    h, c = lan.hosts["h"], lan.hosts["c"]
    vipa, port = "2001:db8::2:10", 8080
    dvipad.write_conf(extra=f"  VIPADEFINE MOVEABLE IMMEDIATE {vipa}\n"
                            f"  VIPADISTRIBUTE DISTMETHOD BASEWLM {vipa} PORT {port} DESTIP host1\n")
    server = h.popen("/usr/bin/python3", "-c", SERVER, "::", "host1", port)
    try:
        dvipad.start()
        wait_for(lambda: h.has_addr(vipa) and h.has_addr(vipa, dev="lo"), timeout=TABLE_S,
                 what="VIPA on eth0 and lo")
        # Until the listener's readiness has reached the slots.
        probe = iter(range(30000, 31000))
        wait_for(lambda: c.exec("/usr/bin/python3", "-c", CONNECT, vipa, port, "2001:db8::100",
                                str(next(probe))).stdout.split()[1] == "host1",
                 timeout=TABLE_S, interval=0.2, what="a connection through the table")
        held = c.popen("/usr/bin/python3", "-c", STREAM, vipa, port, "2001:db8::100", "46000", "46001",
                       stdin=subprocess.PIPE, bufsize=1)
        try:
            assert held.stdout.readline().split()[0] == "ready"
            c.exec("/usr/bin/python3", "-c", CONNECT, vipa, port, "2001:db8::100", "46100")
            rows = {r["client_port"]: r for r in json.loads(dvipad.ctl("conns", "--json", vipa).stdout)["conns"]}
            for p in (46000, 46001):
                assert rows[p]["client"] == "2001:db8::100" and rows[p]["target"] == "host1", rows[p]
                assert rows[p]["state"] == "open" and rows[p]["port"] == port and rows[p]["addr"] == vipa
            assert rows[46100]["state"] == "closing" and rows[46100]["expires_ms"] <= 10_000, rows[46100]
        finally:
            held.kill()
            held.wait()
    finally:
        server.kill()
        server.wait()
