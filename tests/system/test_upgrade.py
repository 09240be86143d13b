"""A rolling upgrade: one node still runs the dvipad of the version before
(DVIPA_OLD_DVIPAD names its binary; without it these tests are skipped).
Build it from the commit before batches, for instance:
    git worktree add /tmp/old 971f445 && meson setup /tmp/old/build /tmp/old \\
        -Dtests=disabled && ninja -C /tmp/old/build
    DVIPA_OLD_DVIPAD=/tmp/old/build/dvipad pytest-3 tests/system/test_upgrade.py
A dvipad from before batches drops a batch as a message of an unknown kind
(its events lost, its engine wrong until a digest check repairs it): the
newer nodes must send it nothing batched (docs/cluster.md)."""
import os

import pytest

import conftest
from conftest import BUILD, Holder, reconfigure, wait_for

OLD = os.environ.get("DVIPA_OLD_DVIPAD")
pytestmark = pytest.mark.skipif(not OLD, reason="DVIPA_OLD_DVIPAD names no older dvipad")


def restart_with(node, binary):
    node.stop()
    new = conftest.DVIPAD
    conftest.DVIPAD = binary
    try:
        node.start()
    finally:
        conftest.DVIPAD = new


def test_older_member_gets_nothing_batched(cluster):
    """4,000 holds taken and dropped on n1 in bursts (batches between new
    nodes), n3 on the older version: n3 applies every event (it drops no
    message, nobody asks for a repair), and the new nodes say once that n3
    is older."""
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    restart_with(n3, OLD)
    count = 4000
    reconfigure(cluster, {n: "  VIPARANGE DEFINE 10.77.0.0/20\n" for n in cluster.nodes})
    for n in cluster.nodes.values():
        wait_for(lambda: "10.77.0.0/20" in n.ctl("config", check=False).stdout, what=f"{n.name} reloaded")
    bench = n1.ns.popen(BUILD / "dvipa-bench", n1.sock, "hold", count, "10.77.0.0", 1, 0)
    cluster.holders.append(Holder(bench))
    assert bench.stdout.readline().strip() == "ready", bench.stderr.read()

    def on_n1(n):
        return sum(1 for v in n.status()["vipas"] if v["addr"].startswith("10.77.") and v["owner_name"] == "n1")

    for n in cluster.nodes.values():
        wait_for(lambda: on_n1(n) == count, timeout=20, what=f"{n.name}: {count} on n1")
    bench.kill()
    for n in cluster.nodes.values():
        wait_for(lambda: on_n1(n) == 0, timeout=20, what=f"{n.name}: none on n1")
    old = n3.log.read_text()
    assert "unknown kind" not in old
    assert "asked for a new state exchange" not in old
    for n in (n1, n2):
        log = n.log.read_text()
        assert log.count("node 3 announced no protocol") == 1, log
        assert "asked for a new state exchange" not in log
    # Upgraded, n3 announces its protocol: no new warning about it.
    # (That the three batch again is test_sync.c's to check.)
    restart_with(n3, conftest.DVIPAD)
    cluster.wait_whole()
    assert n1.log.read_text().count("announced no protocol") == 1
