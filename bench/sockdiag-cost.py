#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
What one sock_diag dump of TCP sockets costs here, by the states asked for
(a benchmark, not a test). The old owner of a MOVEABLE NONDISRUPTIVE address
makes such dumps on the takeover's path (dvipad(8), "Moves that keep
connections"): any state but LISTEN makes the kernel walk its whole
established table, shared by every namespace and sized from the RAM
(`dmesg | grep "TCP established hash"`), however few sockets match; LISTEN
alone reads only the listening table.

    bench/sockdiag-cost.py [REPS]

Runs in a namespace of its own (so that it counts no socket of this host's)
and prints, for each set of states, the milliseconds of each dump (request
sent until its last reply read), then the median.
"""
import os
import socket
import statistics
import struct
import subprocess
import sys
import time

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_ESTABLISHED, TCP_LISTEN = 1, 10


def dump_ms(states):
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as s:
        # inet_diag_req_v2: family, protocol, ext, pad, states, then a
        # zeroed inet_diag_sockid (48 bytes).
        req = struct.pack("=BBBxI", socket.AF_INET, socket.IPPROTO_TCP, 0, states) + bytes(48)
        hdr = struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        t = time.perf_counter()
        s.send(hdr + req)
        while True:
            data = s.recv(65536)
            if struct.unpack("=IHHII", data[:16])[1] in (NLMSG_DONE, NLMSG_ERROR):
                break
        return (time.perf_counter() - t) * 1000


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    if os.environ.get("SOCKDIAG_COST_NS") is None:
        ns = f"sdcost{os.getpid()}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            return subprocess.run(["ip", "netns", "exec", ns, sys.executable, __file__, str(reps)],
                                  env=dict(os.environ, SOCKDIAG_COST_NS=ns)).returncode
        finally:
            subprocess.run(["ip", "netns", "del", ns])
    for name, states in (("LISTEN only (listening table)", 1 << TCP_LISTEN),
                         ("ESTABLISHED (established table)", 1 << TCP_ESTABLISHED),
                         ("every state", 0xFFF)):
        v = [dump_ms(states) for _ in range(reps)]
        print(f"{name:32s} median {statistics.median(v):6.2f} ms  max {max(v):6.2f} ms  (n {reps})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
