# SPDX-License-Identifier: GPL-2.0-or-later
"""
SYSPLEXPORTS (issue 12, item 6): outbound connections from the shared
address of a distributed VIPA, on every host at once.

    n1 (distributor)   n2   n3        client c (192.0.2.100)

Every node runs a program that only connects to the client (unmodified but
for `dvipactl run --source VIPA`, or libdvipa's dvipa_bind_source). The
client's server answers each connection with the address and port it sees
and then echoes. The client sends every reply to the VIPA, i.e. to n1; n1
sends those for another node's ports to that node. A connection whose
replies went to the wrong host would be reset, so every echo is proof.
"""
import json
import os
import subprocess

from conftest import BUILD, figure, reconfigure, wait_for
from test_cluster import BIND_SOURCE, LIBDVIPA, libdvipa_env
from test_distribute import (DEFINES, NFT_RUN, PORT, TABLE_S, VIPA, distributed_everywhere, serve, stop_servers,
                             targets)

CLIENT, ECHO_PORT = "192.0.2.100", 9000
SHIM = BUILD / "libdvipa-preload.so"
ROUNDS = 20

# The client's server: "ADDR PORT" of the peer, then an echo of each line.
PEER_ECHO = """
import socket, sys, threading
srv = socket.create_server(("0.0.0.0", int(sys.argv[1])), backlog=512)
def serve(c, peer):
    with c:
        c.sendall(f"{peer[0]} {peer[1]}\\n".encode())
        f = c.makefile("rb")
        for line in f:
            c.sendall(line)
while True:
    c, peer = srv.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
"""

# K connections at once to the client, then ROUNDS lines through each;
# prints [[peer addr, peer port, echoes, error or null], ...] as JSON.
OUTBOUND = """
import json, socket, sys
host, port, name, k, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
conns = []
for _ in range(k):
    c = socket.create_connection((host, port), timeout=15)
    f = c.makefile("rb")
    a, p = f.readline().decode().split()
    conns.append([c, f, a, int(p), 0, None])
for i in range(rounds):
    for x in conns:
        if x[5] is None:
            try:
                line = f"{name} {i}\\n".encode()
                x[0].sendall(line)
                if x[1].readline() != line:
                    raise ConnectionError("echo differs")
                x[4] += 1
            except OSError as e:
                x[5] = repr(e)
print(json.dumps([x[2:] for x in conns]), flush=True)
"""


def confs():
    dist = f"  VIPADISTRIBUTE DEFINE SYSPLEXPORTS {VIPA} PORT {PORT} DESTIP ALL\n"
    return {n: d + dist for n, d in DEFINES.items()}


def ingress(node):
    return node.ns.exec(NFT_RUN, input="list chain netdev dvipa ingress\n").stdout


def slices(node):
    """{target: (lo, hi)} from dvipactl targets on node."""
    out = {}
    for r in targets(node):
        if r.get("source_ports"):
            lo, hi = r["source_ports"].split("-")
            out[r["node"]] = (int(lo), int(hi))
    return out


def run_source(node, name, k):
    """OUTBOUND on node through `dvipactl run --source VIPA`."""
    env = dict(os.environ, DVIPA_PRELOAD_LIB=str(SHIM))
    for key in ("DVIPA_SOURCE", "DVIPA_SOCKET", "LD_PRELOAD"):
        env.pop(key, None)
    return node.ns.popen(str(BUILD / "dvipactl"), "-S", str(node.sock), "run", "--source", VIPA, "--",
                         "/usr/bin/python3", "-c", OUTBOUND, CLIENT, str(ECHO_PORT), name, str(k), str(ROUNDS),
                         env=env)


def test_outbound_from_the_shared_vipa_on_every_host(cluster):
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    client = cluster.lan.hosts["c"]
    echo = client.popen("/usr/bin/python3", "-c", PEER_ECHO, str(ECHO_PORT))
    cluster.servers = []
    try:
        serve(cluster)
        reconfigure(cluster, confs())
        wait_for(lambda: distributed_everywhere(cluster), timeout=10, what="VIPA on n1 and on every lo")
        wait_for(lambda: len(slices(n1)) == 3, timeout=TABLE_S, what="a port slice for every node")
        got = slices(n2)
        assert got == slices(n1) == slices(n3)  # replicated
        spans = sorted(got.values())
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:])), spans  # disjoint
        assert all(32768 <= lo and hi <= 60927 and (hi - lo + 1) % 64 == 0 for lo, hi in spans), spans
        wait_for(lambda: all(f"th dport {lo}-{hi}" in ingress(n1) for name, (lo, hi) in got.items() if name != "n1"),
                 timeout=TABLE_S, what="n1 steering n2's and n3's ports")

        # 30 connections on each node at once, each with 20 echoes.
        procs = {n.name: run_source(n, n.name, 30) for n in (n1, n2, n3)}
        results = {}
        for name, p in procs.items():
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, f"{name}: {err}"
            results[name] = json.loads(out)
        for name, rows in results.items():
            lo, hi = got[name]
            assert all(r[0] == VIPA for r in rows), (name, rows)
            assert all(lo <= r[1] <= hi for r in rows), (name, lo, hi, sorted(r[1] for r in rows))
            assert all(r[2] == ROUNDS and r[3] is None for r in rows), (name, rows)
        figure("SYSPLEXPORTS: outbound connections from the distributed VIPA, all three nodes at once",
               f"{sum(len(r) for r in results.values())} connections, each {ROUNDS} echoes answered on its own "
               f"host; slices {got}")

        # libdvipa: dvipa_bind_source() takes n3's slice too.
        r = n3.ns.exec("/usr/bin/python3", "-c", BIND_SOURCE_CONNECT, str(LIBDVIPA), VIPA, CLIENT,
                       str(ECHO_PORT), env=libdvipa_env(n3))
        rc, addr, port = r.stdout.split()
        assert rc == "0" and addr == VIPA and got["n3"][0] <= int(port) <= got["n3"][1], r.stdout

        # Using the address as a source moved nothing: n1 still has it.
        assert n1.owner(VIPA) == "n1" and n1.ns.has_addr(VIPA)

        # n3 is cut off: its slice goes back to the pool, and n1 no longer
        # sends anything to it.
        cluster.lan.switch.ip("link", "set", "p-n3", "down")
        wait_for(lambda: "n3" not in slices(n1), timeout=30, what="n3's slice back in the pool")
        wait_for(lambda: "th dport %d-%d" % got["n3"] not in ingress(n1), timeout=10, what="n1's rule for n3 gone")
        assert slices(n1) == {k: v for k, v in got.items() if k != "n3"}
    finally:
        stop_servers(cluster)
        echo.kill()
        echo.wait()


# dvipa_bind_source() on a new socket, then a connection to the client:
# "RESULT ADDR PORT" as the client saw them.
BIND_SOURCE_CONNECT = BIND_SOURCE.replace(
    "print(lib.dvipa_bind_source(s.fileno(), sys.argv[2].encode()))",
    "r = lib.dvipa_bind_source(s.fileno(), sys.argv[2].encode())\n"
    "s.connect((sys.argv[3], int(sys.argv[4])))\n"
    "print(r, s.makefile('rb').readline().decode().strip())")


def test_run_source_arguments():
    for args, what in ((["--source", "not-an-address"], "'not-an-address' is not a numeric IPv4 or IPv6 address"),
                       (["--source", VIPA, "--standby"], "--standby needs a --vipa"),
                       (["--source", VIPA, "--source", VIPA], "--source is given twice"),
                       ([], "at least one --vipa, a --listen or a --source is required")):
        r = subprocess.run([str(BUILD / "dvipactl"), "run", *args, "--", "true"], capture_output=True, text=True)
        assert r.returncode == 2 and what in r.stderr, (args, r.stderr)
