# SPDX-License-Identifier: GPL-2.0-or-later
"""
dvipad on one host (CLUSTER NONE), end to end. Topology: see conftest.py.
"""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import BUILD, DVIPACTL, fetch, figure, run, wait_for

VIPA = "192.0.2.130"       # plain range, NONDISRUPTIVE
VIPA_DAEMON = "192.0.2.200"  # ALLOW USER daemon
VIPA_UNIQUE = "192.0.2.230"
VIPA6 = "2001:db8::1:5"


def test_vipa_reachable_only_while_held(lan, dvipad):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.start()
    assert not host.has_addr(VIPA)
    assert fetch(client, VIPA, 8080, timeout=1) is None

    h = dvipad.holder(VIPA, 8080, "--name", "primary")
    dvipad.holders.append(h)
    h.wait_line("listening")
    a = host.addrs()[VIPA]
    assert a["prefixlen"] == 32
    # Finite kernel lifetime: the address expires by itself if dvipad dies.
    assert a["valid_life_time"] <= 30
    assert fetch(client, VIPA, 8080) == "primary"
    v = dvipad.vipa(VIPA)
    assert v["state"] == "active" and v["origin"] == "api" and v["installed"] is True
    assert v["holds"][0]["pid"] == h.proc.pid and v["holds"][0]["command"] == "dvipa-holder", v["holds"]

    # kill -9 of the holder: the connection closes, the hold ends, the address goes.
    t0 = time.monotonic()
    h.kill()
    wait_for(lambda: not host.has_addr(VIPA), timeout=1.0, interval=0.002, what="address removal")
    figure("holder kill -9 to address removed (one sample, incl. polling)", f"{(time.monotonic() - t0) * 1000:.1f} ms")
    assert fetch(client, VIPA, 8080, timeout=1) is None
    assert dvipad.vipa(VIPA) is None


def test_announcement_updates_client_neighbour(lan, dvipad):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.start()
    # The client believes the VIPA is elsewhere (a previous owner).
    client.ip("neigh", "replace", VIPA, "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale")
    tcpdump = client.popen("tcpdump", "-l", "-n", "-e", "-i", "eth0", "arp", stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # tcpdump has no readiness signal; give it a moment to attach
        h = dvipad.holder(VIPA, 8080)
        dvipad.holders.append(h)
        h.wait_line("granted")
        hostmac = host.mac()
        # RFC 5227 announcement: ARP request, sender IP = target IP = VIPA, from the host's MAC.
        pat = f"{hostmac} > ff:ff:ff:ff:ff:ff"
        line = None
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            l = tcpdump.stdout.readline()
            if pat in l and f"who-has {VIPA} tell {VIPA}" in l:
                line = l
                break
        assert line, "no gratuitous ARP seen"
        n = wait_for(lambda: (client.neigh(VIPA) or {}).get("lladdr") == hostmac and client.neigh(VIPA),
                     timeout=2, what="client neighbour entry to follow the announcement")
        assert n["lladdr"] == hostmac
    finally:
        tcpdump.kill()
        tcpdump.wait()


def test_ipv6_activation_and_unsolicited_na(lan, dvipad):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.start()
    client.ip("neigh", "replace", VIPA6, "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale")
    tcpdump = client.popen("tcpdump", "-l", "-n", "-v", "-e", "-i", "eth0", "icmp6 and ip6[40] == 136",
                           stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        h = dvipad.holder(VIPA6, 8080, "--name", "six")
        dvipad.holders.append(h)
        h.wait_line("listening")
        a = host.addrs()[VIPA6]
        assert a["prefixlen"] == 128
        assert "tentative" not in a  # IFA_F_NODAD: usable at once
        hostmac = host.mac()
        seen = False
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not seen:
            l = tcpdump.stdout.readline()
            seen = f"neighbor advertisement, tgt is {VIPA6}" in l or (hostmac in l and "advertisement" in l)
        assert seen, "no unsolicited neighbour advertisement seen"
        wait_for(lambda: (client.neigh(VIPA6) or {}).get("lladdr") == hostmac, timeout=2,
                 what="client IPv6 neighbour entry to follow the NA")
        assert fetch(client, VIPA6, 8080) == "six"
    finally:
        tcpdump.kill()
        tcpdump.wait()


def test_unauthorized_uid_refused_and_nothing_changes(lan, dvipad):
    host = lan.hosts["h"]
    dvipad.start()
    before = dvipad.status()["vipas"]
    # nobody (65534) is not in any ALLOW list: refused with exit code 5.
    r = dvipad.ctl("activate", VIPA_DAEMON, check=False, user=65534)
    assert r.returncode == 5, r.stderr
    assert "not allowed" in r.stderr
    h = dvipad.holder(VIPA, 8080, user=65534)
    assert h.proc.wait(5) == 5
    assert dvipad.status()["vipas"] == before
    assert not host.has_addr(VIPA_DAEMON) and not host.has_addr(VIPA)
    # Reading status needs no privilege.
    assert dvipad.ctl("status", user=65534).returncode == 0
    # daemon (uid 1) is allowed in its range, and only there.
    h = dvipad.holder(VIPA_DAEMON, 8080, user=1)
    dvipad.holders.append(h)
    h.wait_line("listening")
    assert host.has_addr(VIPA_DAEMON)
    assert dvipad.holder(VIPA, 8081, user=1).proc.wait(5) == 5


def test_operator_activation_survives_clients(lan, dvipad):
    host = lan.hosts["h"]
    dvipad.start()
    dvipad.ctl("activate", VIPA)
    assert host.has_addr(VIPA)
    v = dvipad.vipa(VIPA)
    assert v["origin"] == "operator"
    # Still there after the activating dvipactl exited.
    assert host.has_addr(VIPA)
    dvipad.ctl("deactivate", VIPA)
    assert not host.has_addr(VIPA)
    r = dvipad.ctl("deactivate", VIPA, check=False)
    assert r.returncode == 8


def test_dvipactl_exit_codes(lan, dvipad):
    dvipad.start()
    assert dvipad.ctl("activate", "192.0.2.20", check=False).returncode == 3   # in no range
    assert dvipad.ctl("activate", "not-an-address", check=False).returncode == 2
    assert dvipad.ctl("frobnicate", check=False).returncode == 2
    r = lan.hosts["h"].exec(DVIPACTL, "-S", "/nonexistent/sock", "status", check=False)
    assert r.returncode == 6


def test_standby_takes_over_when_primary_killed(lan, dvipad):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.start()
    p = dvipad.holder(VIPA, 8080, "--name", "primary")
    dvipad.holders.append(p)
    p.wait_line("listening")
    s = dvipad.holder(VIPA, 8080, "--standby", "100", "--name", "standby")
    dvipad.holders.append(s)
    wait_for(lambda: len((dvipad.vipa(VIPA) or {}).get("standbys", [])) == 1, what="standby registered")
    assert fetch(client, VIPA, 8080) == "primary"

    t0 = time.monotonic()
    p.kill()
    s.wait_line("listening")
    figure("local standby takeover, kill -9 to standby listening (one sample)",
           f"{(time.monotonic() - t0) * 1000:.1f} ms")
    assert fetch(client, VIPA, 8080) == "standby"
    assert host.has_addr(VIPA)
    v = dvipad.vipa(VIPA)
    assert v["holds"][0]["pid"] == s.proc.pid and v["standbys"] == []


def test_standby_ranks(lan, dvipad):
    dvipad.start()
    p = dvipad.holder(VIPA, 8080, "--name", "primary")
    dvipad.holders.append(p)
    p.wait_line("listening")
    low = dvipad.holder(VIPA, 8080, "--standby", "10", "--name", "low")
    high = dvipad.holder(VIPA, 8080, "--standby", "200", "--name", "high")
    dvipad.holders += [low, high]
    wait_for(lambda: len((dvipad.vipa(VIPA) or {}).get("standbys", [])) == 2, what="two standbys")
    p.kill()
    high.wait_line("listening")
    assert fetch(lan.hosts["c"], VIPA, 8080) == "high"
    assert low.proc.poll() is None and not any(l.startswith("granted") for l in low.lines)


def test_second_unique_claim_refused(lan, dvipad):
    dvipad.start()
    h = dvipad.holder(VIPA_UNIQUE, 8080)
    dvipad.holders.append(h)
    h.wait_line("listening")
    second = dvipad.holder(VIPA_UNIQUE, 8081)
    assert second.proc.wait(5) == 4  # DVIPA_E_HELD
    assert "held" in second.proc.stderr.read().lower()
    r = dvipad.ctl("activate", VIPA_UNIQUE, check=False)
    assert r.returncode == 4
    # A non-UNIQUE range shares the address between holders of one host.
    a = dvipad.holder(VIPA, 8080)
    b = dvipad.holder(VIPA, 8081)
    dvipad.holders += [a, b]
    a.wait_line("listening")
    b.wait_line("listening")
    assert len(dvipad.vipa(VIPA)["holds"]) == 2


def test_foreign_host_makes_activation_fail(lan, dvipad):
    foreign = lan.add_host("f", "192.0.2.50", "2001:db8::50")
    foreign.ip("addr", "add", "192.0.2.140/24", "dev", "eth0")
    foreign.ip("addr", "add", "2001:db8::1:140/64", "dev", "eth0", "nodad")
    dvipad.start()
    r = dvipad.ctl("activate", "192.0.2.140", check=False)
    assert r.returncode == 7, r.stderr
    assert foreign.mac() in r.stderr
    assert not lan.hosts["h"].has_addr("192.0.2.140")
    r = dvipad.ctl("activate", "2001:db8::1:140", check=False)
    assert r.returncode == 7, r.stderr
    assert foreign.mac() in r.stderr
    # Once the stranger is gone, the address can be had.
    foreign.ip("addr", "del", "192.0.2.140/24", "dev", "eth0")
    dvipad.ctl("activate", "192.0.2.140")
    assert lan.hosts["h"].has_addr("192.0.2.140")


def test_dvipad_kill9_leaves_nothing_and_restart_reconciles(lan, tmp_path):
    from conftest import Dvipad
    host = lan.hosts["h"]
    d = Dvipad(host, tmp_path, lease=6)
    d.start()
    try:
        d.ctl("activate", VIPA)
        d.ctl("activate", VIPA6)
        d.stop(signal.SIGKILL)
        assert host.has_addr(VIPA)  # left behind by the crash, for now...
        # ...but tagged, so a restarted dvipad removes it at once.
        d.start()
        wait_for(lambda: not host.has_addr(VIPA) and not host.has_addr(VIPA6), timeout=2,
                 what="restart to remove leftovers")
        d.ctl("activate", VIPA)
        d.stop(signal.SIGKILL)
        t0 = time.monotonic()
        # Nobody restarts it this time: the kernel lifetime (LEASE 6) runs out.
        wait_for(lambda: not host.has_addr(VIPA), timeout=10, interval=0.1, what="lease expiry")
        figure("address gone after dvipad kill -9 (LEASE 6)", f"{time.monotonic() - t0:.1f} s")
    finally:
        d.stop(signal.SIGKILL)
        d.cleanup()


def test_sigterm_removes_addresses(lan, dvipad):
    host = lan.hosts["h"]
    dvipad.start()
    dvipad.ctl("activate", VIPA)
    assert host.has_addr(VIPA)
    dvipad.stop()
    assert dvipad.proc.returncode == 0
    assert not host.has_addr(VIPA)


def test_address_removed_from_outside_is_readded(lan, dvipad):
    host = lan.hosts["h"]
    dvipad.start()
    dvipad.ctl("activate", VIPA)
    host.ip("addr", "del", f"{VIPA}/32", "dev", "eth0")
    wait_for(lambda: host.has_addr(VIPA), timeout=2, what="re-add")
    assert "re-added" in dvipad.log.read_text()


def test_bad_reload_changes_nothing(lan, dvipad):
    host = lan.hosts["h"]
    dvipad.start()
    dvipad.ctl("activate", VIPA)
    before = dvipad.ctl("config").stdout
    good = dvipad.conf.read_text()
    dvipad.conf.write_text(good + "VIPADYNAMIC\n  VIPARANGE DEFINE 255.0.255.0 10.0.0.0\nBOGUS\n")
    r = dvipad.ctl("reload", check=False)
    assert r.returncode == 2
    assert "non-contiguous" in r.stderr
    dvipad.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "nothing changed" in dvipad.log.read_text(), what="SIGHUP reload refused")
    assert dvipad.ctl("config").stdout == before
    assert host.has_addr(VIPA) and dvipad.alive()
    # A good reload that deletes the range keeps the active VIPA (z/OS VIPARANGE DELETE).
    dvipad.conf.write_text(good.replace("VIPARANGE DEFINE 255.255.255.192 192.0.2.128",
                                        "VIPARANGE DEFINE 255.255.255.192 192.0.2.128\n"
                                        "  VIPARANGE DELETE 192.0.2.128/26"))
    dvipad.ctl("reload")
    assert host.has_addr(VIPA)
    assert dvipad.ctl("activate", "192.0.2.131", check=False).returncode == 3
    dvipad.ctl("deactivate", VIPA)
    assert not host.has_addr(VIPA)


def test_define_active_from_start(lan, dvipad):
    dvipad.write_conf(extra="  VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 192.0.2.10\n")
    dvipad.start()
    wait_for(lambda: lan.hosts["h"].has_addr("192.0.2.10"), what="define address")
    v = dvipad.vipa("192.0.2.10")
    assert v["origin"] == "define"


def test_dvipactl_run(lan, dvipad):
    host = lan.hosts["h"]
    dvipad.start()
    r = dvipad.ctl("run", "--vipa", VIPA, "--", "sh", "-c", f"ip -o addr show dev eth0 | grep -c {VIPA}; exit 7",
                   check=False)
    assert r.returncode == 7
    assert r.stdout.strip() == "1"
    assert not host.has_addr(VIPA)


def test_dvipactl_run_standby_and_lost(lan, dvipad):
    host, client = lan.hosts["h"], lan.hosts["c"]
    dvipad.start()
    p = dvipad.holder(VIPA, 8080, "--name", "primary")
    dvipad.holders.append(p)
    p.wait_line("listening")
    # An unmodified server (bound to INADDR_ANY) as a standby under dvipactl run.
    run_ = host.popen(DVIPACTL, "-S", dvipad.sock, "run", "--standby", "--rank", "50", "--vipa", VIPA, "--",
                      "sh", "-c", "echo started; exec python3 -m http.server 8080 >/dev/null 2>&1")
    try:
        wait_for(lambda: len((dvipad.vipa(VIPA) or {}).get("standbys", [])) == 1, what="run standby")
        assert run_.poll() is None
        p.kill()
        line = run_.stdout.readline()
        assert line.strip() == "started"
        assert host.has_addr(VIPA)
    finally:
        run_.send_signal(signal.SIGTERM)
        run_.wait(5)
    wait_for(lambda: not host.has_addr(VIPA), what="release after run ends")


def _raw(sock_path, payload):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(3)
    s.connect(str(sock_path))
    s.send(payload)
    try:
        return s.recv(70000)
    except (ConnectionResetError, socket.timeout, OSError):
        return b""
    finally:
        s.close()


def test_control_socket_survives_bad_messages(lan, dvipad):
    dvipad.start()
    dvipad.ctl("activate", VIPA)
    hdr = lambda typ, ln, seq=1, magic=0x50495644, ver=1: struct.pack("=IHHII", magic, ver, typ, ln, seq)
    cases = [
        b"",                                 # nothing (connection just closes)
        b"\x00",                             # truncated header
        b"garbage" * 3,
        hdr(1, 16, magic=0xdeadbeef),         # bad magic
        hdr(1, 16, ver=99),                   # other version
        hdr(1, 999),                          # length mismatch
        hdr(1, 20) + struct.pack("=HH", 1, 200),  # attribute overruns
        hdr(1, 16),                           # ACTIVATE without address
        hdr(3, 24) + struct.pack("=HHI", 3, 8, 0),  # STANDBY rank 0, no address
        hdr(64, 16),                          # a reply type sent as request
        hdr(1, 70000) + b"\x00" * (70000 - 16),   # oversized
    ]
    for c in cases:
        if c:
            _raw(dvipad.sock, c)
        assert dvipad.alive(), f"dvipad died on {c[:32]!r}"
    # Random bytes, many of them.
    import random
    rnd = random.Random(1)
    for _ in range(300):
        _raw(dvipad.sock, bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 200))))
    assert dvipad.alive()
    assert lan.hosts["h"].has_addr(VIPA)
    assert dvipad.vipa(VIPA)["origin"] == "operator"
    reply = _raw(dvipad.sock, hdr(1, 16))
    magic, ver, typ, ln, seq = struct.unpack("=IHHII", reply[:16])
    assert typ == 64 and seq == 1


def test_define_with_trackport_follows_its_listener(lan, dvipad):
    host = lan.hosts["h"]
    dvipad.write_conf(extra="  VIPADEFINE 255.255.255.0 192.0.2.11 TRACKPORT 7000\n")
    dvipad.start()
    # Nothing listens on 7000: this node is not eligible.
    time.sleep(0.6)  # more than two TRACKPORT polls (250 ms)
    assert not host.has_addr("192.0.2.11")
    assert dvipad.vipa("192.0.2.11")["state"] == "inactive"
    srv = host.popen("/usr/bin/python3", "-c",
                     "import socket,sys; s=socket.socket(); s.bind(('0.0.0.0',7000)); s.listen(); "
                     "print('up', flush=True); sys.stdin.read()", stdin=subprocess.PIPE)
    try:
        assert srv.stdout.readline().strip() == "up"
        wait_for(lambda: host.has_addr("192.0.2.11"), timeout=3, what="define to become eligible")
        assert dvipad.vipa("192.0.2.11")["origin"] == "define"
    finally:
        srv.kill()
        srv.wait()
    wait_for(lambda: not host.has_addr("192.0.2.11"), timeout=3, what="define to lose its listener")


def hold_many(host, d, count, procs):
    """A program holding count VIPAs from 10.88.0.0 on d (dvipa-bench hold)."""
    from conftest import BUILD
    hold = host.popen(BUILD / "dvipa-bench", d.sock, "hold", count, "10.88.0.0", 1, 0)
    procs.append(hold)
    assert hold.stdout.readline().strip() == "ready", hold.stderr.read()


def stop_all(procs, d):
    """Kill the programs a test started, then its dvipad."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    d.cleanup()


def test_client_flood_leaves_every_address(lan, tmp_path):
    """Kernel work goes before clients (issue 11): 60 local clients that
    keep 50 whole-table status requests in flight each, for more than two
    LEASE periods with 2,000 VIPAs active, make not one address lapse,
    whether root or a user floods; during a user's flood root still gets
    its own status in seconds."""
    from conftest import BUILD, Dvipad
    host = lan.hosts["h"]
    count = 2000
    d = Dvipad(host, tmp_path, lease=6, extra="  VIPARANGE DEFINE 10.88.0.0/20\n")
    d.start()
    procs = []
    try:
        hold_many(host, d, count, procs)

        def installed():
            return sum(1 for a in host.addrs() if a.startswith("10.88."))

        wait_for(lambda: installed() == count, timeout=30, interval=0.2, what=f"{count} addresses")
        # What one whole-table request costs on this machine now (other
        # work on it included): root's wait during a flood is compared
        # with it, not with an idle machine's.
        alone = []
        for _ in range(3):
            t = time.monotonic()
            d.ctl("status")
            alone.append(time.monotonic() - t)
        figure("status of 2,000 VIPAs, no flood", f"{max(alone):.2f} s")
        # Root's own flood is served in full: the leases must still go
        # first. A user's flood is also cut by the caps on queued replies,
        # and root's requests go before it.
        for who in ("root", "nobody"):
            as_user = [] if who == "root" else ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
            flood = host.popen(*as_user, BUILD / "dvipa-bench", d.sock, "flood", 60, 15)
            procs.append(flood)
            assert flood.stdout.readline().strip() == "flooding", flood.stderr.read()
            t0 = time.monotonic()
            lowest, waits = count, []
            while time.monotonic() - t0 < 14:
                lowest = min(lowest, installed())
                t = time.monotonic()
                r = d.ctl("status", check=False)
                waits.append(time.monotonic() - t if r.returncode == 0 else float("inf"))
                time.sleep(0.2)
            out = flood.communicate(timeout=60)[0]
            assert flood.returncode == 0 and "flood_status_answered" in out, flood.stderr
            figure(f"client flood by {who} (60 x 50 status in flight, 2,000 VIPAs, 15 s): answered", out.strip())
            figure(f"client flood by {who}: root's status, longest wait", f"{max(waits):.2f} s")
            assert lowest == count, f"{count - lowest} address(es) lapsed during the flood by {who}"
            if who == "nobody":
                # At most the whole-table request being handled is ahead
                # of root's own (0.2 s each here, idle): a few of them
                # with the machine loaded, never the user's queue.
                bound = max(5.0, 4 * max(alone) + 1)
                assert max(waits) < bound, \
                    f"root waited {max(waits):.2f} s for its status during a user's flood (bound {bound:.1f} s)"
        assert d.alive()
    finally:
        stop_all(procs, d)


def test_address_lifetime_is_what_dvipad_says(lan, tmp_path):
    """The crash guarantee at scale (issue 15): refreshing every address
    costs the kernel O(n^2), so with thousands dvipad may lengthen their
    lifetime beyond LEASE (dvipad(8)). Whatever it chose, no address carries
    a longer lifetime than LEASE or one dvipad logged, and none lapses while
    held, over several refresh periods."""
    from conftest import BUILD, Dvipad
    host = lan.hosts["h"]
    count, lease = 4000, 6
    d = Dvipad(host, tmp_path, lease=lease, extra="  VIPARANGE DEFINE 10.88.0.0/20\n")
    d.start()
    hold = None
    try:
        hold = host.popen(BUILD / "dvipa-bench", d.sock, "hold", count, "10.88.0.0", 1, 0)
        assert hold.stdout.readline().strip() == "ready", hold.stderr.read()
        t0, lowest, longest, said = time.monotonic(), count, 0, [lease]
        while time.monotonic() - t0 < 3 * lease:
            mine = [a for k, a in host.addrs().items() if k.startswith("10.88.")]
            # Read after the addresses: a lifetime is logged before any
            # address gets it.
            said = [lease] + [int(x) for x in re.findall(r"now get a lifetime of (\d+) s", d.log.read_text())]
            lowest = min(lowest, len(mine))
            for a in mine:
                assert 0 < a["valid_life_time"] <= max(said), f"{a['local']}: {a['valid_life_time']} s, said {said}"
                longest = max(longest, a["valid_life_time"])
            time.sleep(0.5)
        figure(f"lifetime of {count} addresses with LEASE {lease}", f"logged {said[1:] or 'nothing'}, "
               f"longest seen {longest} s")
        assert lowest == count, f"{count - lowest} address(es) lapsed while held"
        assert d.alive()
    finally:
        if hold and hold.poll() is None:
            hold.kill()
            hold.wait()
        d.cleanup()


def test_no_lapse_after_the_lease_falls_back(lan, tmp_path):
    """The refresh is planned from every address's own lifetime (issue 15):
    thousands of addresses lengthen the lifetime; once they are released
    the lifetime falls back to LEASE, and addresses added then, with that
    short lifetime, must be refreshed in time. The pass after the release
    used to be planned a third of the long lifetime away: they lapsed."""
    from conftest import BUILD, Dvipad
    host = lan.hosts["h"]
    count, lease, few = 8000, 6, 100
    d = Dvipad(host, tmp_path, lease=lease, extra="  VIPARANGE DEFINE 10.88.0.0/18\n")
    d.start()
    hold = few_hold = None

    def lifetimes():
        return [int(x) for x in re.findall(r"now get a lifetime of (\d+) s", d.log.read_text())]

    def mine():
        return [a for k, a in host.addrs().items() if k.startswith("10.88.")]

    try:
        hold = host.popen(BUILD / "dvipa-bench", d.sock, "hold", count, "10.88.0.0", 1, 0)
        assert hold.stdout.readline().strip() == "ready", hold.stderr.read()
        # A refresh over them measures its cost and lengthens the lifetime.
        wait_for(lambda: any(x >= 3 * lease for x in lifetimes()), timeout=120, interval=0.5,
                 what=f"a lifetime of {3 * lease} s or more for {count} addresses")
        longest = max(lifetimes())
        hold.kill()
        hold.wait()
        seen = len(lifetimes())
        # The pass over the empty set says LEASE again.
        wait_for(lambda: lease in lifetimes()[seen:], timeout=longest, interval=0.5,
                 what=f"the lifetime back to {lease} s")
        wait_for(lambda: not mine(), timeout=60, interval=0.5, what="the addresses released")
        few_hold = host.popen(BUILD / "dvipa-bench", d.sock, "hold", few, "10.88.63.0", 1, 0)
        assert few_hold.stdout.readline().strip() == "ready", few_hold.stderr.read()
        t0, lowest = time.monotonic(), few
        while time.monotonic() - t0 < 3 * lease:
            lowest = min(lowest, len(mine()))
            time.sleep(0.3)
        figure(f"lifetime after {count} released (LEASE {lease})", f"logged {lifetimes()}")
        assert lowest == few, f"{few - lowest} of {few} address(es) lapsed while held"
        assert "re-added" not in d.log.read_text()
        assert d.alive()
    finally:
        for p in (hold, few_hold):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        d.cleanup()


# Opens N connections to dvipad's socket as the user it runs as, prints how
# many dvipad kept (the others it closed at once), and holds them.
NONREADER = r"""
import socket, struct, sys, time
# Connections that ask for the whole status again and again and never read.
conns = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    s.setblocking(False)
    conns.append(s)
sent = 0
for seq in range(1, int(sys.argv[3]) + 1):
    for s in conns:
        try:
            s.send(struct.pack("=IHHII", 0x50495644, 1, 4, 16, seq))
            sent += 1
        except OSError:
            pass
print("sent", sent, flush=True)
time.sleep(60)
"""


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_unread_replies_are_bounded(lan, tmp_path, monkeypatch):
    """A user who asks for the status of 2,000 VIPAs on 60 connections, 50
    times each, and never reads the answers cannot grow the daemon past
    its caps on queued bytes (64 MiB per uid; issue 11 measured 1.98 GB
    before them); root still gets its answers, and the memory goes back
    when the user's connections close."""
    from conftest import Dvipad
    host = lan.hosts["h"]
    count = 2000
    d = Dvipad(host, tmp_path, extra="  VIPARANGE DEFINE 10.88.0.0/20\n")
    # Freed memory goes back at once, as without AddressSanitizer.
    if os.environ.get("ASAN_OPTIONS"):
        monkeypatch.setenv("ASAN_OPTIONS", os.environ["ASAN_OPTIONS"] + ":quarantine_size_mb=0")
    d.start()
    procs = []
    try:
        hold_many(host, d, count, procs)
        wait_for(lambda: d.vipa("10.88.7.207") is not None, timeout=30, interval=0.2, what=f"{count} VIPAs")
        base = rss_kib(d.proc.pid)
        hog = host.popen("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                         "/usr/bin/python3", "-c", NONREADER, d.sock, 60, 50)
        procs.append(hog)
        assert hog.stdout.readline().split()[:1] == ["sent"], hog.stderr.read()
        peak, queued, t0 = base, 0, time.monotonic()
        while time.monotonic() - t0 < 15 and "the queues of its uid are full" not in d.log.read_text():
            peak = max(peak, rss_kib(d.proc.pid))
            time.sleep(0.1)
        for _ in range(10):
            peak = max(peak, rss_kib(d.proc.pid))
            queued = max(queued, d.status()["daemon"]["queued_bytes"])
        figure("60 connections x 50 unread status (2,000 VIPAs): replies queued, most", f"{queued / 2**20:.1f} MiB")
        figure("60 connections x 50 unread status (2,000 VIPAs): dvipad RSS growth", f"{(peak - base) / 1024:.0f} MiB")
        assert "the queues of its uid are full" in d.log.read_text()
        assert queued <= 64 * 2**20
        assert (peak - base) < 192 * 1024, f"dvipad grew {(peak - base) / 1024:.0f} MiB"
        t = time.monotonic()
        d.ctl("status")
        figure("unread status flood: root's status", f"{time.monotonic() - t:.2f} s")
        hog.kill()
        hog.wait()
        wait_for(lambda: d.status()["daemon"]["queued_bytes"] == 0, timeout=10, interval=0.2,
                 what="the queues freed")
        assert d.alive()
    finally:
        stop_all(procs, d)


HOG = r"""
import socket, sys, time
conns = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(sys.argv[1])
    except OSError:
        break
    conns.append(s)
time.sleep(1.0)
kept = 0
for s in conns:
    try:
        s.recv(64, socket.MSG_DONTWAIT)  # a refusal (why, then EOF)
    except BlockingIOError:
        kept += 1
print("kept", kept, flush=True)
time.sleep(60)
"""


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def test_connection_hog_cannot_lock_out_root(lan, dvipad):
    """A local user who opens hundreds of idle connections gets at most
    DV_CONTROL_MAX_PER_UID of them; root still gets answers; the refusals
    make a few log lines, not one per connection (issue 11)."""
    dvipad.start()
    host = lan.hosts["h"]
    hog = host.popen("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                     "/usr/bin/python3", "-c", HOG, dvipad.sock, 600)
    try:
        line = hog.stdout.readline().split()
        assert line[:1] == ["kept"], hog.stderr.read()
        assert int(line[1]) == 256
        t = time.monotonic()
        dvipad.ctl("activate", VIPA)
        figure("256 idle connections of one user: root's activate", f"{(time.monotonic() - t) * 1000:.0f} ms")
        # The user's next connection is told why it is refused.
        r = host.exec("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", DVIPACTL, "-S",
                      dvipad.sock, "status", check=False)
        assert r.returncode == 9, (r.returncode, r.stderr)
        assert "dvipad refused the connection: this uid has its maximum of connections" in r.stderr
        log = dvipad.log.read_text()
        assert "this uid has its maximum of connections" in log
        assert log.count("refused a control connection") <= 2
    finally:
        hog.kill()
        hog.wait()


def _release_request(addr, kind, seq=7):
    """A RELEASE of addr naming a hold kind, as the wire has it."""
    a = struct.pack("=HHB", 1, 9, socket.AF_INET) + socket.inet_aton(addr) + b"\x00" * 3
    k = struct.pack("=HHI", 2, 8, kind)
    return struct.pack("=IHHII", 0x50495644, 1, 2, 16 + len(a) + len(k), seq) + a + k


def _result_reason(reply):
    """The verdict and reason of a RESULT reply."""
    off, verdict, reason = 16, None, ""
    while off + 4 <= len(reply):
        t, ln = struct.unpack("=HH", reply[off:off + 4])
        if t == 4:
            verdict = struct.unpack("=I", reply[off + 4:off + 8])[0]
        if t == 5:
            reason = reply[off + 4:off + ln].split(b"\0")[0].decode()
        off += (ln + 3) & ~3
    return verdict, reason


def test_holds_are_their_makers(lan, dvipad):
    """Another user may not end root's operator activation, even inside a
    range that allows it; its maker may; and nobody ends a socket hold by a
    request, only by closing the sockets (issue 11, item 3)."""
    host = lan.hosts["h"]
    dvipad.start()
    dvipad.ctl("activate", VIPA_DAEMON)
    r = dvipad.ctl("deactivate", VIPA_DAEMON, user="daemon", check=False)
    assert r.returncode != 0
    assert "made by uid 0" in r.stderr + r.stdout
    assert host.has_addr(VIPA_DAEMON) and dvipad.vipa(VIPA_DAEMON)["origin"] == "operator"
    assert "made by uid 0" in dvipad.log.read_text()  # refusals are logged
    # The user's own activation is the user's to end.
    other = "192.0.2.201"
    dvipad.ctl("activate", other, user="daemon")
    dvipad.ctl("deactivate", other, user="daemon")
    wait_for(lambda: not host.has_addr(other), what=f"{other} deactivated by its maker")
    # Root may end anyone's.
    dvipad.ctl("activate", other, user="daemon")
    dvipad.ctl("deactivate", other)
    wait_for(lambda: not host.has_addr(other), what=f"{other} deactivated by root")

    # A socket hold (a server bound through the shim) outlives a RELEASE
    # naming it, from root as from anyone.
    srv = host.popen("env", f"LD_PRELOAD={BUILD / 'libdvipa-preload.so'}", f"DVIPA_SOCKET={dvipad.sock}",
                     "/usr/bin/python3", "-c",
                     "import socket,sys; s=socket.socket(); s.bind(('192.0.2.202', 7100)); s.listen(); "
                     "print('up', flush=True); sys.stdin.read()", stdin=subprocess.PIPE)
    try:
        assert srv.stdout.readline().strip() == "up", srv.stderr.read()
        verdict, reason = _result_reason(_raw(dvipad.sock, _release_request("192.0.2.202", 3)))
        assert verdict is not None and verdict != 0 and "ends only when its sockets close" in reason, reason
        time.sleep(0.3)
        assert host.has_addr("192.0.2.202")
        assert any(h["kind"] == "socket" for h in dvipad.vipa("192.0.2.202")["holds"])
    finally:
        srv.kill()
        srv.wait()


def test_reload_of_garbage_is_bounded(lan, dvipad):
    """Reloading a 15 MiB file that is no configuration is refused after 100
    errors: a hundred log lines, not a million, the daemon answers at once,
    and nothing active changes (issue 11: 30-80 s blocked, every VIPA
    lapsed)."""
    host = lan.hosts["h"]
    dvipad.start()
    dvipad.ctl("activate", VIPA)
    good = dvipad.conf.read_text()
    import base64
    import random
    rnd = random.Random(11)
    dvipad.conf.write_text("\n".join(base64.b64encode(rnd.randbytes(75)).decode() for _ in range(150000)))
    try:
        t = time.monotonic()
        r = dvipad.ctl("reload", check=False)
        figure("reload of a 15 MiB file of garbage: refused after", f"{time.monotonic() - t:.2f} s")
        assert r.returncode != 0
        assert "100 errors: not reading further" in r.stdout + r.stderr
        assert dvipad.log.read_text().count("unknown keyword") <= 100
        assert host.has_addr(VIPA) and dvipad.vipa(VIPA)["origin"] == "operator"
    finally:
        dvipad.conf.write_text(good)


DROPPER = r"""
import os, socket, struct, sys
# Connect as root, then become nobody and ask for an address only root may
# have: the request is the sender's, not the connection's.
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
a = struct.pack("=HHB", 1, 9, socket.AF_INET) + socket.inet_aton(sys.argv[2]) + b"\0" * 3
s.send(struct.pack("=IHHII", 0x50495644, 1, 1, 16 + len(a), 5) + a)
sys.stdout.buffer.write(s.recv(4096))
"""


def test_request_authorized_as_its_sender(lan, dvipad):
    """A process that connected as root and then dropped to nobody (or a
    child it handed the connection to) asks with nobody's rights: the
    request's own credentials (SCM_CREDENTIALS) count, not the connection's
    (issue 11, item 4)."""
    host = lan.hosts["h"]
    dvipad.start()
    r = host.exec("/usr/bin/python3", "-c", DROPPER, dvipad.sock, VIPA, capture_output=True, text=False)
    verdict, reason = _result_reason(r.stdout)
    assert verdict == 5, (verdict, reason)  # DV_R_PERM
    assert "uid 65534" in reason, reason
    assert not host.has_addr(VIPA)


def test_one_user_cannot_fill_the_node(lan, dvipad):
    """A user the range allows gets MAXUSERVIPAS addresses and standbys on
    this node, then a clear refusal (exit 9); root is not capped (issue 11:
    one user took the whole 65,536-VIPA table and root was refused in its
    own range)."""
    from conftest import BASE_CONF
    host = lan.hosts["h"]
    dvipad.write_conf(text=BASE_CONF.format(lease=30, extra="").replace("LEASE 30\n", "LEASE 30\nMAXUSERVIPAS 3\n"))
    dvipad.start()
    for i in range(3):
        dvipad.ctl("activate", f"192.0.2.{201 + i}", user="daemon")
    r = dvipad.ctl("activate", "192.0.2.204", user="daemon", check=False)
    assert r.returncode == 9, (r.returncode, r.stderr)
    assert "has its maximum of 3 VIPAs and standbys on node host1 (MAXUSERVIPAS)" in r.stderr
    assert not host.has_addr("192.0.2.204")
    dvipad.ctl("activate", "192.0.2.204")  # root
    # One released: room again.
    dvipad.ctl("deactivate", "192.0.2.201", user="daemon")
    dvipad.ctl("activate", "192.0.2.205", user="daemon")
    assert host.has_addr("192.0.2.205")


def nice_of(pid):
    """The nice value of a process (/proc/PID/stat, field 19)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def test_nice_raises_dvipads_priority(lan, dvipad):
    """NICE raises dvipad's scheduling priority at start and reload, and
    never lowers one it was started with; without it dvipad keeps the one
    it was started with (issue 15 item 5)."""
    from conftest import BASE_CONF
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert base > -12, "the test runs at nice -12 or below already"

    def with_nice(n):
        return BASE_CONF.format(lease=30, extra="").replace("LEASE 30\n", f"LEASE 30\nNICE {n}\n")

    dvipad.start()
    assert nice_of(dvipad.proc.pid) == base
    dvipad.stop()

    dvipad.write_conf(text=with_nice(-10))
    dvipad.start()
    assert nice_of(dvipad.proc.pid) == -10
    assert dvipad.logged_at(f"scheduling priority raised from nice {base} to -10 (NICE)") is not None
    # Raised by a reload, never lowered (not by a reload either).
    dvipad.write_conf(text=with_nice(-12))
    dvipad.ctl("reload")
    assert nice_of(dvipad.proc.pid) == -12
    dvipad.write_conf(text=with_nice(0))
    dvipad.ctl("reload")
    assert nice_of(dvipad.proc.pid) == -12
    dvipad.stop()

    # Started at more than NICE asks (an operator's nice(1)): kept.
    dvipad.wrap = ["nice", "-n", str(-15 - base)]
    dvipad.write_conf(text=with_nice(-10))
    dvipad.start()
    assert nice_of(dvipad.proc.pid) == -15


def test_out_of_descriptors_does_not_spin(lan, dvipad):
    """With its descriptors gone (a low limit here), dvipad pauses accepting
    instead of spinning on a listener that stays readable, and logs the
    cause a few times, not millions (issue 11)."""
    dvipad.start()
    host = lan.hosts["h"]
    run("prlimit", f"--pid={dvipad.proc.pid}", "--nofile=64:64")
    hog = host.popen("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                     "/usr/bin/python3", "-c", HOG, dvipad.sock, 120)
    try:
        assert hog.stdout.readline().split()[:1] == ["kept"], hog.stderr.read()
        before = cpu_seconds(dvipad.proc.pid)
        time.sleep(3)
        spent = cpu_seconds(dvipad.proc.pid) - before
        figure("out of descriptors, 3 s: dvipad CPU", f"{spent:.2f} s")
        assert spent < 1.0, f"dvipad used {spent:.2f} s of CPU in 3 s"
        log = dvipad.log.read_text()
        assert "pausing accepts" in log
        assert log.count("cannot accept control connections") <= 3
    finally:
        hog.kill()
        hog.wait()
    # Descriptors back: root is answered again.
    wait_for(lambda: dvipad.ctl("status", check=False).returncode == 0, timeout=5, what="root answered")
