# SPDX-License-Identifier: GPL-2.0-or-later
"""
dvipad's replica of nft's "jhash ip saddr . tcp sport mod M seed S"
(src/dvipad/jhash.c, through tests/nft-jhash) against the kernel's own
choices, IPv4 and IPv6, a Maglev-sized and a small modulus.

    client (eth0 192.0.2.100 + .101...; 2001:db8::100 + ::101...)
       |  SYNs from many (address, port) pairs to a closed port
    host (eth0): netdev ingress: meta mark set jhash ... ; add @seen { saddr . sport . mark }

Every SYN the host receives records which bucket the kernel chose; the
replica must name the same bucket for every pair.
"""
import json
import subprocess

import pytest

from conftest import BUILD, figure, wait_for

NFT_JHASH = BUILD / "tests" / "nft-jhash"
NFT_RUN = BUILD / "tests" / "nft-run"
N_ADDRS, N_PORTS = 10, 20
CASES = [(65537, 0x5EED1234), (7, 0xFFFFFFFF)]  # (modulus, seed)

RULESET = """\
table netdev dvipa_jhash_test {{
{sets}
  chain in {{
    type filter hook ingress device eth0 priority 0;
{rules}
  }}
}}
"""

SEND_SYNS = """
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
for line in sys.stdin:
    addr, port = line.split()
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind((addr, int(port)))
    s.connect_ex((sys.argv[1], 9))
    s.close()
"""


def ruleset():
    sets, rules = [], []
    for fam, saddr, atype in (("4", "ip saddr", "ipv4_addr"), ("6", "ip6 saddr", "ipv6_addr")):
        for i, (mod, seed) in enumerate(CASES):
            name = f"seen{fam}_{i}"
            sets.append(f"  set {name} {{ type {atype} . inet_service . mark; size 65535; flags dynamic; }}")
            rules.append(f"    tcp dport 9 tcp flags & (syn | ack) == syn meta mark set jhash {saddr} . tcp sport "
                         f"mod {mod} seed {seed:#x} add @{name} {{ {saddr} . tcp sport . meta mark }}")
    return RULESET.format(sets="\n".join(sets), rules="\n".join(rules))


def kernel_choices(host, name):
    out = json.loads(host.exec(NFT_RUN, "-j", input=f"list set netdev dvipa_jhash_test {name}\n").stdout)
    res = {}
    for item in out["nftables"]:
        for e in item.get("set", {}).get("elem", []):
            addr, port, mark = e["concat"] if "concat" in e else e["elem"]["val"]["concat"]
            res[(addr, int(port))] = int(mark)
    return res


def replica_choices(pairs, mod, seed):
    text = "".join(f"{a} {p}\n" for a, p in pairs)
    out = subprocess.run([NFT_JHASH, str(seed), str(mod)], input=text, capture_output=True, text=True,
                         check=True).stdout
    res = {}
    for line in out.splitlines():
        a, p, b = line.split()
        res[(a, int(p))] = int(b)
    return res


@pytest.mark.parametrize("family", ["4", "6"])
def test_jhash_replica_matches_kernel(lan, family):
    host, client = lan.hosts["h"], lan.hosts["c"]
    host.exec(NFT_RUN, input=ruleset(), text=True)
    if family == "4":
        addrs = [f"192.0.2.{101 + i}" for i in range(N_ADDRS)]
        dst, plen = "192.0.2.1", 24
    else:
        addrs = [f"2001:db8::{101 + i:x}" for i in range(N_ADDRS)]
        dst, plen = "2001:db8::1", 64
    for a in addrs:
        client.ip("addr", "add", f"{a}/{plen}", "dev", "eth0", *(["nodad"] if family == "6" else []))
    pairs = [(a, 30000 + 7 * j) for a in addrs for j in range(N_PORTS)]
    client.exec("/usr/bin/python3", "-c", SEND_SYNS, dst, input="".join(f"{a} {p}\n" for a, p in pairs),
                text=True)
    for i, (mod, seed) in enumerate(CASES):
        name = f"seen{family}_{i}"
        wait_for(lambda: len(kernel_choices(host, name)) >= len(pairs), timeout=10,
                 what=f"{len(pairs)} SYNs recorded in {name}")
        kernel = kernel_choices(host, name)
        replica = replica_choices(pairs, mod, seed)
        assert set(kernel) == set(replica)
        wrong = {k: (kernel[k], replica[k]) for k in kernel if kernel[k] != replica[k]}
        assert not wrong, f"mod {mod} seed {seed:#x}: kernel vs replica differ for {len(wrong)} flows: " \
                          f"{list(wrong.items())[:5]}"
        figure(f"jhash replica = kernel, IPv{family}, mod {mod}", f"{len(kernel)}/{len(pairs)} flows")
        # Not a degenerate hash: the pairs spread over the buckets.
        assert len(set(kernel.values())) >= min(mod, len(pairs)) // 2
