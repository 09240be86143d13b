# SPDX-License-Identifier: GPL-2.0-or-later
"""
The distributed VIPAs' generated rulesets (tests/rules/*.nft, from
dist_rules.c through tests/dist-rules-example) load into a real kernel
through libnftables, list back (nft 1.0.6 crashes listing some map
declarations), and take a slot-map update in one transaction without
losing the pins. Runs in the "h" namespace of conftest's topology, whose
eth0 the base chain hooks.
"""
import json

import pytest

from conftest import BUILD, figure, run

EXAMPLE = BUILD / "tests" / "dist-rules-example"
NFT_RUN = BUILD / "tests" / "nft-run"
NAMES = run(EXAMPLE, "--list").stdout.split()


def nft(host, text, *flags, check=True):
    return host.exec(NFT_RUN, *flags, input=text, text=True, check=check)


@pytest.mark.parametrize("name", NAMES)
def test_ruleset_loads(lan, name):
    host = lan.hosts["h"]
    table = run(EXAMPLE, name).stdout
    nft(host, table)
    listed = json.loads(nft(host, "list table netdev dvipa\n", "-j").stdout)["nftables"]
    chains = {o["chain"]["name"] for o in listed if "chain" in o}
    assert "ingress" in chains and "s0" in chains
    maps = {o[k]["name"]: o[k] for o in listed for k in ("map", "set") if k in o}
    slots = maps["s0_slots"].get("elem", [])
    # A pin written now must survive the slot update (one transaction).
    pinned = "1.2.3.4 . 5000 . 80 : 2" if "map s0_vcrt" in table else "2001:db8::99 . 5000 . 80 . 2"
    nft(host, f"add element netdev dvipa s0_vcrt {{ {pinned} }}\n")
    nft(host, run(EXAMPLE, name, "0").stdout)
    listed = json.loads(nft(host, "list table netdev dvipa\n", "-j").stdout)["nftables"]
    maps = {o[k]["name"]: o[k] for o in listed for k in ("map", "set") if k in o}
    assert len(maps["s0_slots"].get("elem", [])) == len(slots)
    assert len(maps["s0_vcrt"].get("elem", [])) == 1
    if name == "maglev-full":
        figure("Maglev slot map loaded and listed", f"{len(slots)} slots")
