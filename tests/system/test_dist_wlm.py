# SPDX-License-Identifier: GPL-2.0-or-later
"""
Distributed VIPA (issue 12): the weighted methods end to end, on the
topology of test_distribute.py.

    n1 (192.0.2.1)    n2 (192.0.2.2)    n3 (192.0.2.3)    client c (192.0.2.100)
    VIPADEFINE        VIPABACKUP 200    VIPABACKUP 100
          \\                 |                 |                 /
           +------------------ switch: br0 -----------------------+

BASEWLM: n3's spare CPU comes from a file the test advances (DVIPAD_PROC_STAT,
dvipad(8): the namespaces share the machine's CPUs), the others' is frozen.
SERVERWLM: n3's listener never accepts, so its accept queue fills. Both
prove that a weight measured on a target reaches every node's table alike
and the dataplane; the CPU reading of /proc/stat itself is tested in
tests/unit/test_wlm.c. WEIGHTEDACTIVE: WEIGHT 1 (n2) and 3 (n3), and the
distributor's count of open connections. Quiesce of another node, across
that node's restart.
"""
import json
import re
import subprocess
import threading
import time

from conftest import SERVER, figure, reconfigure, wait_for
from test_distribute import (CLIENT, NFT_RUN, PORT, STREAM, TABLE_S, VIPA, confs, connect,
                             distributed_everywhere, stop_servers, targets)


def serve_on(cluster, names):
    for name in names:
        n = cluster.nodes[name]
        cluster.servers.append(n.ns.popen("/usr/bin/python3", "-c", SERVER, "0.0.0.0", name, PORT))


def kernel_slots(node):
    """How many slots of node's kernel map name each mark (target index
    + 1): what the dataplane draws from, which a background transaction
    may still be writing after dvipactl targets shows the new shares."""
    out = node.ns.exec(NFT_RUN, input="list map netdev dvipa s0_slots\n").stdout
    marks = [int(v, 0) for v in re.findall(r":\s*(0x[0-9a-f]+|\d+)", out.split("elements", 1)[-1])]
    return {m: marks.count(m) for m in set(marks)}


def rows_of(node):
    """dvipactl targets on node: {target: row}."""
    return {r["node"]: r for r in targets(node)}


def weights_everywhere(cluster):
    """Every node's view of the targets' weights (the same: replicated)."""
    return [{t: r["weight"] for t, r in rows_of(n).items()} for n in cluster.nodes.values()]


class BusyCpu:
    """n's /proc/stat as if its CPUs had `spare` idle share: the counters
    advance with time, rewritten every 0.2 s, until stopped."""

    def __init__(self, node, spare):
        self.path, self.spare = node.proc_stat, spare
        self.done = threading.Event()
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.wait(0.2):
            jiffies = int((time.monotonic() - self.t0) * 100) + 1000
            idle = int(jiffies * self.spare)
            tmp = self.path.with_suffix(".new")
            tmp.write_text(f"cpu  {jiffies - idle} 0 0 {idle} 0 0 0 0 0 0\n")
            tmp.rename(self.path)

    def stop(self):
        self.done.set()
        self.thread.join()


def test_basewlm_weights_from_spare_cpu(cluster):
    """n3 all busy: weight 1 against 16 on every node, about 1/33 of the
    slots and of the connections; idle again, 16 (after the 10 s hold)."""
    n1, n3 = cluster.nodes["n1"], cluster.nodes["n3"]
    client = cluster.lan.hosts["c"]
    cluster.servers = []
    busy = None
    try:
        serve_on(cluster, ("n1", "n2", "n3"))
        reconfigure(cluster, confs())
        wait_for(lambda: distributed_everywhere(cluster), timeout=10, what="VIPA on n1 and on every lo")
        wait_for(lambda: all(w == {"n1": 16, "n2": 16, "n3": 16} for w in weights_everywhere(cluster)),
                 timeout=TABLE_S, interval=0.2, what="every target ready, weight 16 (no load seen)")
        busy = BusyCpu(n3, 0.0)
        # A 3 s window, then n3's report through the stream.
        wait_for(lambda: all(w == {"n1": 16, "n2": 16, "n3": 1} for w in weights_everywhere(cluster)),
                 timeout=TABLE_S, interval=0.2, what="n3's weight 1 on every node")
        rows = rows_of(n1)
        m = rows["n1"]["m"]
        wait_for(lambda: rows_of(n1)["n3"]["slots"] < m / 20, timeout=TABLE_S, interval=0.2,
                 what="n3's slots down to its weight")
        rows = rows_of(n1)
        # Weighted Maglev: shares within 1 % of m of 16:16:1.
        for t, w in (("n1", 16), ("n2", 16), ("n3", 1)):
            assert abs(rows[t]["slots"] - m * w / 33) < m * 0.01, rows
        want = {k + 1: rows[t]["slots"] for k, t in enumerate(("n1", "n2", "n3"))}
        wait_for(lambda: kernel_slots(n1) == want, timeout=TABLE_S, interval=0.2,
                 what="those slots in n1's kernel map")
        # The dataplane follows: 330 connections, n3 expects 10 (sd 3.1).
        got = connect(client, range(42000, 42330))
        shares = {n: list(got.values()).count(n) for n in ("n1", "n2", "n3")}
        figure("BASEWLM: n3 all busy (weight 1 of 16:16:1), 330 connections", str(shares))
        assert "-" not in got.values() and shares["n3"] <= 25 and min(shares["n1"], shares["n2"]) >= 120, shares
        busy.stop()
        busy = BusyCpu(n3, 1.0)
        wait_for(lambda: all(w["n3"] == 16 for w in weights_everywhere(cluster)), timeout=TABLE_S + 15,
                 interval=0.5, what="n3 idle: weight 16 again")
    finally:
        if busy:
            busy.stop()
        stop_servers(cluster)


# Listens with a backlog of 2 and never accepts: connections fill its queue.
NO_ACCEPT = """
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(2)
time.sleep(3600)
"""

HOLD = """
import socket, sys, time
conns = [socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) for _ in range(int(sys.argv[3]))]
print("held", flush=True)
sys.stdin.read()
"""


def test_serverwlm_weights_from_the_accept_queue(cluster):
    """n3's listener has a full accept queue: weight 1 (at least 1 while it
    listens) against 16, on every node; its queue drained (the listener
    gone and back), 16 again."""
    n1, n3 = cluster.nodes["n1"], cluster.nodes["n3"]
    client = cluster.lan.hosts["c"]
    cluster.servers = []
    hold = None
    try:
        serve_on(cluster, ("n1", "n2"))
        stuck = n3.ns.popen("/usr/bin/python3", "-c", NO_ACCEPT, PORT)
        cluster.servers.append(stuck)
        reconfigure(cluster, confs(method="SERVERWLM"))
        wait_for(lambda: distributed_everywhere(cluster), timeout=10, what="VIPA on n1 and on every lo")
        wait_for(lambda: all(w == {"n1": 16, "n2": 16, "n3": 16} for w in weights_everywhere(cluster)),
                 timeout=TABLE_S, interval=0.2, what="every target ready, weight 16 (empty queues)")
        # Straight to n3's own address: 3 connections fill a backlog of 2.
        hold = client.popen("/usr/bin/python3", "-c", HOLD, "192.0.2.3", PORT, "3", stdin=subprocess.PIPE)
        assert hold.stdout.readline().strip() == "held"
        wait_for(lambda: all(w == {"n1": 16, "n2": 16, "n3": 1} for w in weights_everywhere(cluster)),
                 timeout=TABLE_S, interval=0.2, what="n3's weight 1 on every node")
        m = rows_of(n1)["n1"]["m"]
        wait_for(lambda: abs(rows_of(n1)["n3"]["slots"] - m / 33) < m * 0.01, timeout=TABLE_S, interval=0.2,
                 what="n3's slots 1/33 of the table")
        assert rows_of(n1)["n3"]["state"] == "ready"
        figure("SERVERWLM: n3's accept queue full -> weights", str(weights_everywhere(cluster)[0]))
        hold.stdin.close()
        hold.wait()
        hold = None
        stuck.kill()
        stuck.wait()
        serve_on(cluster, ("n3",))
        wait_for(lambda: all(w["n3"] == 16 for w in weights_everywhere(cluster)), timeout=TABLE_S, interval=0.2,
                 what="n3's weight 16 again")
    finally:
        if hold:
            hold.kill()
            hold.wait()
        stop_servers(cluster)


def test_weightedactive_shares_by_weight_and_by_open_connections(cluster):
    """DESTIP n2 WEIGHT 1 n3 WEIGHT 3: short connections split 1:3. With 40
    streams open on n3 only (n2 without a server then), n2 gets most of the
    new connections until it has its share; the streams closed, 1:3 again."""
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    client = cluster.lan.hosts["c"]
    cluster.servers = []
    stream = None
    try:
        serve_on(cluster, ("n3",))
        reconfigure(cluster, confs(method="WEIGHTEDACTIVE", destip="n2 WEIGHT 1 n3 WEIGHT 3"))
        wait_for(lambda: n1.ns.has_addr(VIPA) and n3.ns.has_addr(VIPA, dev="lo"), timeout=10,
                 what="VIPA on n1 and on n3's lo")
        wait_for(lambda: rows_of(n1)["n3"]["slots"] == 2520, timeout=TABLE_S, interval=0.2,
                 what="n3 alone in n1's slots")
        stream = client.popen("/usr/bin/python3", "-c", STREAM, VIPA, PORT, CLIENT, *map(str, range(50000, 50040)),
                              stdin=subprocess.PIPE, bufsize=1)
        line = stream.stdout.readline().split(maxsplit=1)
        assert line and line[0] == "ready" and set(json.loads(line[1])) == {"n3"}, stream.stderr.read()

        # n2 listens: active 0 of 40 against a fair 10 -> (10 + 4) / 4 x
        # weight 1; n3 has 40 against 30 -> (30 + 4) / (40 + 4) x 3:
        # 3.5 : 2.32 of 2,520 slots.
        serve_on(cluster, ("n2",))
        wait_for(lambda: rows_of(n1)["n2"]["slots"] == 1516, timeout=TABLE_S, interval=0.2,
                 what="n2's slots: 3.5 / 5.82 of 2,520")
        wait_for(lambda: kernel_slots(n1).get(1) == 1516, timeout=TABLE_S, interval=0.2,
                 what="n2's 1,516 slots in n1's kernel map")
        rows = rows_of(n2)  # another node: the weights alone
        assert rows["n2"]["slots"] == 630 and rows["n3"]["slots"] == 1890, rows
        assert rows["n2"]["weight"] == 1 and rows["n3"]["weight"] == 3, rows
        # Short connections, closed at once (their pins close): 160 new,
        # n2 expects 96 (sd 6.2).
        got = connect(client, range(43000, 43160))
        split = {n: list(got.values()).count(n) for n in ("n2", "n3")}
        figure("WEIGHTEDACTIVE 1:3, 40 streams on n3: 160 new connections", str(split))
        assert "-" not in got.values() and split["n2"] >= 80, split
        stream.stdin.close()
        result = json.loads(stream.stdout.readline())
        assert all(r[2] is None for r in result), result
        stream.wait()
        stream = None

        # No open connection: the weights' shares, 630 : 1,890.
        wait_for(lambda: rows_of(n1)["n2"]["slots"] == 630, timeout=TABLE_S + 15, interval=0.5,
                 what="n2's slots back to 1/4 once the pins closed")
        wait_for(lambda: kernel_slots(n1) == {1: 630, 2: 1890}, timeout=TABLE_S, interval=0.2,
                 what="630 : 1,890 in n1's kernel map")
        got = connect(client, range(44000, 44400))
        split = {n: list(got.values()).count(n) for n in ("n2", "n3")}
        figure("WEIGHTEDACTIVE 1:3, no open connection: 400 new connections", str(split))
        # n2 expects 100 (sd 8.7): within 4 sd.
        assert "-" not in got.values() and 65 <= split["n2"] <= 135, split
    finally:
        if stream and stream.poll() is None:
            stream.kill()
            stream.wait()
        stop_servers(cluster)


def states_everywhere(cluster):
    """Every node's view of the targets' states."""
    return [{t: r["state"] for t, r in rows_of(n).items()} for n in cluster.nodes.values()]


def test_quiesce_another_node_survives_its_restart(cluster):
    """quiesce --node n3 asked on n1: "quiesced" on every node and no new
    connection to n3; n3's dvipad restarts: still quiesced; resume asked on
    n2: n3 gets new connections again."""
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    client = cluster.lan.hosts["c"]
    cluster.servers = []
    fresh = iter(range(45000, 60000))
    try:
        serve_on(cluster, ("n1", "n2", "n3"))
        reconfigure(cluster, confs())
        wait_for(lambda: distributed_everywhere(cluster), timeout=10, what="VIPA on n1 and on every lo")
        wait_for(lambda: all(s == {"n1": "ready", "n2": "ready", "n3": "ready"} for s in states_everywhere(cluster)),
                 timeout=TABLE_S, interval=0.2, what="every target ready everywhere")

        r = n1.ctl("quiesce", VIPA, "--node", "n3", check=False, user="daemon")
        assert r.returncode == 5 and "only root may quiesce" in r.stderr, r.stderr
        n1.ctl("quiesce", VIPA, "--node", "n3")
        wait_for(lambda: all(s["n3"] == "quiesced" for s in states_everywhere(cluster)), timeout=TABLE_S,
                 interval=0.2, what="n3 quiesced on every node")
        wait_for(lambda: rows_of(n1)["n3"]["slots"] == 0, timeout=TABLE_S, interval=0.2,
                 what="n3 out of n1's slots")
        got = connect(client, [next(fresh) for _ in range(60)])
        assert "n3" not in got.values() and "-" not in got.values(), got

        # n3's dvipad restarts: the quiesce is the cluster's, not n3's.
        n3.stop()
        n3.start()
        wait_for(lambda: n3.ns.has_addr(VIPA, dev="lo"), timeout=TABLE_S, what="VIPA on n3's lo again")
        assert all(s["n3"] == "quiesced" for s in states_everywhere(cluster)), states_everywhere(cluster)
        # n3 listens and reports it: still no new connection goes there.
        time.sleep(2)
        assert rows_of(n1)["n3"]["slots"] == 0
        got = connect(client, [next(fresh) for _ in range(60)])
        assert "n3" not in got.values() and "-" not in got.values(), got

        n2.ctl("resume", VIPA, "--node", "n3")
        wait_for(lambda: all(s["n3"] == "ready" for s in states_everywhere(cluster)), timeout=TABLE_S,
                 interval=0.2, what="n3 ready again on every node")
        wait_for(lambda: "n3" in connect(client, [next(fresh) for _ in range(20)]).values(), timeout=TABLE_S,
                 interval=0.5, what="new connections to n3 again")
        figure("quiesce --node n3 (asked on n1) across n3's dvipad restart",
               "quiesced on every node before and after; 120 new connections meanwhile, 0 to n3; resumed on n2")
    finally:
        stop_servers(cluster)
