# SPDX-License-Identifier: GPL-2.0-or-later
"""
A short fault campaign on real Corosync (bench/campaign.py, issue 9): 40
random faults from a fixed seed against three nodes, addresses sampled
every ~20 ms.

    n1 (192.0.2.1)   n2 (192.0.2.2)   n3 (192.0.2.3)   client (192.0.2.100)
          \\               |                |               /
           +--------------- switch: br0 --------------------+

Each node: corosync and dvipad (conftest.py's ClusterNode), a program per
service (dvipa-holder or python under the shim; one active, the others
standbys), two defines with backups. See bench/campaign.py for the faults
and for what each count means.
"""
import os
import sys

from conftest import BUILD, ROOT, figure

sys.path.insert(0, str(ROOT / "bench"))
import campaign  # noqa: E402

FAULTS = 40
SEED = 9


def test_fault_campaign(request, tmp_path):
    prefix = f"dk{os.getpid() % 100000}{abs(hash(request.node.name)) % 1000}"
    camp = campaign.Campaign(FAULTS, nodes=3, seed=SEED, build=BUILD, tmp=tmp_path, prefix=prefix,
                             settle_timeout=20)
    try:
        camp.run()
    finally:
        camp.cleanup()
    r = camp.result()
    figure(f"campaign: {r['faults']} faults, seed {SEED}, takeover p50 / p99",
           f"{r['takeover_p50_ms']} / {r['takeover_p99_ms']} ms (n {r['takeovers']})")
    figure("campaign: failed rounds", r["failed_rounds"])
    # Every finding, in one message: which VIPA, on which nodes, when (UTC,
    # as in the dvipad.log of each node under tmp_path).
    report = {k: r[k] for k in ("dual_owner_list", "leftover_episodes", "lost_list", "standby_lost_at_heal_list",
                                "unreachable_list", "logs")}
    assert r["faults"] == FAULTS
    assert r["dual_owner_samples"] == 0, report
    assert r["leftover_samples"] == 0, report
    assert r["lost"] == 0 and r["standby_lost_at_heal"] == 0, report
    assert r["unreachable"] == 0, report
