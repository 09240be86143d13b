# SPDX-License-Identifier: GPL-2.0-or-later
"""
Distributed VIPA (issue 12). Topology: see conftest.py.

Until the dataplane is wired into the daemon, a VIPADISTRIBUTE that parses
must still be refused, at start and on reload, never silently ignored.
"""
from conftest import wait_for

DIST = ("  VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 192.0.2.10\n"
        "  VIPADISTRIBUTE DISTMETHOD ROUNDROBIN 192.0.2.10 PORT 80 DESTIP host1\n")
REFUSED = "VIPADISTRIBUTE: distribution is not yet honoured by this build"


def test_distribute_refused_at_start(lan, dvipad):
    dvipad.write_conf(extra=DIST)
    dvipad.start(wait=False)
    dvipad.proc.wait(timeout=30)
    assert dvipad.proc.returncode != 0
    log = dvipad.log.read_text()
    assert f"{dvipad.conf}:12: {REFUSED}" in log, log
    assert not lan.hosts["h"].has_addr("192.0.2.10")


def test_distribute_refused_on_reload(lan, dvipad):
    dvipad.start()
    before = dvipad.ctl("config").stdout
    dvipad.write_conf(extra=DIST)
    r = dvipad.ctl("reload", check=False)
    assert r.returncode == 2
    assert f"{dvipad.conf}:12: {REFUSED}" in r.stderr, r.stderr
    assert dvipad.ctl("config").stdout == before and dvipad.alive()
    assert not lan.hosts["h"].has_addr("192.0.2.10")
