# SPDX-License-Identifier: GPL-2.0-or-later
"""What an operator watches: metrics (dvipactl metrics, METRICS LISTEN) and
the event stream (dvipactl monitor).

    [h: dvipad, METRICS LISTEN 127.0.0.1:9101] --br0-- [c]

The metrics are parsed with a real OpenMetrics parser (prometheus_client's),
and their values must move with real events: an activation, a refusal,
announcements sent on the link.
"""
import json
import signal
import threading

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import BASE_CONF, DVIPACTL, figure, wait_for

VIPA = "192.0.2.130"
METRICS_CONF = "METRICS LISTEN 127.0.0.1:9101\n" + BASE_CONF


def parse(text):
    """{(sample name, frozenset(labels)): value}; the parser raises on
    anything that is not valid OpenMetrics (a missing # EOF included)."""
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def ctl_metrics(dvipad):
    return parse(dvipad.ctl("metrics").stdout)


def http_metrics(dvipad):
    """GET /metrics from inside the host's namespace; (content type, samples)."""
    code = ("import urllib.request, json\n"
            "r = urllib.request.urlopen('http://127.0.0.1:9101/metrics', timeout=5)\n"
            "print(json.dumps([r.headers['Content-Type'], r.read().decode()]))\n")
    ctype, text = json.loads(dvipad.ns.exec("/usr/bin/python3", "-c", code).stdout)
    return ctype, parse(text)


def test_metrics_move_with_events(lan, dvipad):
    dvipad.write_conf(text=METRICS_CONF.format(lease=30, extra=""))
    dvipad.start()
    m = ctl_metrics(dvipad)
    assert value(m, "dvipa_activations_total", origin="operator") == 0
    assert value(m, "dvipa_vipas", state="active", origin="operator") == 0
    assert value(m, "dvipa_quorate") == 1
    assert value(m, "dvipa_members") == 1
    assert [dict(k)["node"] for (n, k) in m if n == "dvipa_build_info"] == ["host1"]

    dvipad.ctl("activate", VIPA)
    m = ctl_metrics(dvipad)
    assert value(m, "dvipa_activations_total", origin="operator") == 1
    assert value(m, "dvipa_vipas", state="active", origin="operator") == 1
    assert value(m, "dvipa_addresses_installed") == 1
    assert value(m, "dvipa_probes_total") == 1
    assert value(m, "dvipa_control_requests_total", type="activate") == 1
    # ANNOUNCE COUNT 3: three gratuitous ARPs, 200 ms apart.
    wait_for(lambda: value(ctl_metrics(dvipad), "dvipa_announcements_total") == 3, what="3 announcements counted")

    # 192.0.2.131's range has no ALLOW list: a user is refused.
    r = dvipad.ctl("activate", "192.0.2.131", user="daemon", check=False)
    assert r.returncode == 5, r.stderr
    m = ctl_metrics(dvipad)
    assert value(m, "dvipa_refusals_total", reason="permission-denied") == 1
    # Anyone may read them, as anyone may read status.
    assert parse(dvipad.ctl("metrics", user="daemon").stdout)[("dvipa_refusals_total", frozenset(
        {("reason", "permission-denied")}))] == 1
    assert value(m, "dvipa_activations_total", origin="operator") == 1

    dvipad.ctl("deactivate", VIPA)
    m = ctl_metrics(dvipad)
    assert value(m, "dvipa_deactivations_total") == 1
    assert value(m, "dvipa_vipas", state="active", origin="operator") == 0
    assert value(m, "dvipa_addresses_installed") == 0

    # The endpoint serves the same counters, as OpenMetrics.
    ctype, h = http_metrics(dvipad)
    assert ctype.startswith("application/openmetrics-text")
    for key in [("dvipa_activations_total", frozenset({("origin", "operator")})),
                ("dvipa_refusals_total", frozenset({("reason", "permission-denied")})),
                ("dvipa_deactivations_total", frozenset())]:
        assert h[key] == m[key], key


def test_metrics_listen_refused_port_is_said(lan, dvipad):
    """A METRICS LISTEN that cannot listen stops dvipad with the reason."""
    blocker = dvipad.ns.popen("/usr/bin/python3", "-c",
                              "import socket, sys, time\n"
                              "s = socket.socket(); s.bind(('127.0.0.1', 9101)); s.listen()\n"
                              "print('ready', flush=True); time.sleep(60)\n")
    try:
        assert blocker.stdout.readline().strip() == "ready"
        dvipad.write_conf(text=METRICS_CONF.format(lease=30, extra=""))
        dvipad.start(wait=False)
        assert dvipad.proc.wait(10) != 0
        log = dvipad.log.read_text()
        assert "METRICS LISTEN 127.0.0.1 port 9101: cannot listen" in log, log
        assert "another dvipad" not in log, log
    finally:
        blocker.kill()
        blocker.wait()


class Monitor:
    """dvipactl monitor --json in the background; its lines, parsed, as
    they come. Subscribed once dvipad has counted the request."""

    def __init__(self, dvipad, *args):
        self.before = value(ctl_metrics(dvipad), "dvipa_control_requests_total", type="monitor")
        self.proc = dvipad.ns.popen(DVIPACTL, "-S", dvipad.sock, "monitor", *args)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_for(lambda: value(ctl_metrics(dvipad), "dvipa_control_requests_total", type="monitor") > self.before,
                 what="the monitor to subscribe")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_lines(self, n, timeout=5.0):
        wait_for(lambda: len(self.lines) >= n, timeout=timeout, what=f"{n} monitor lines, have {self.lines}")
        return self.lines[:n]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.reader.join(5)


def test_monitor_prints_changes_in_order(lan, dvipad):
    dvipad.start()
    mon = Monitor(dvipad, "--json")
    text = Monitor(dvipad)
    try:
        dvipad.ctl("activate", VIPA)
        dvipad.ctl("deactivate", VIPA)
        # A standby that is granted when the program holding the VIPA dies.
        p = dvipad.holder(VIPA, 8080, "--name", "primary")
        p.wait_line("listening")
        s = dvipad.holder(VIPA, 8080, "--standby", "100", "--name", "standby")
        wait_for(lambda: len((dvipad.vipa(VIPA) or {}).get("standbys", [])) == 1, what="standby registered")
        p.kill()
        s.wait_line("granted")
        s.kill()
        got = [json.loads(l) for l in mon.wait_lines(5)]
        assert [(e["event"], e["addr"]) for e in got] == [
            ("activation", VIPA), ("release", VIPA),  # dvipactl activate, deactivate
            ("activation", VIPA),                     # the primary's bind
            ("grant", VIPA),                          # it died: its standby on this node has the VIPA
            ("release", VIPA),                        # the standby died too
        ], got
        assert got[3]["to"] == "host1" and "standby rank 100" in got[3]["reason"]
        assert got[3]["pid"] == s.proc.pid  # ip netns exec execs the holder
        assert got[0]["to"] == "host1" and got[0]["origin"] == "operator"
        assert got[1]["from"] == "host1" and "to" not in got[1]
        for e in got:
            assert isinstance(e["time"], int)
        # The text form says the same, a line each.
        lines = text.wait_lines(2)
        assert " activation " + VIPA + " on host1 (operator)" in lines[0]
        assert " release " + VIPA + " from host1" in lines[1]
    finally:
        mon.stop()
        text.stop()


def test_takeovers_counted_and_monitored_in_a_cluster(cluster):
    """Two takeovers on three Corosync nodes, each counted with its duration
    by the node that took over, and seen in order by a monitor on n3:

      holder on n1 (kill -9)   -> standby on n2 granted  (cause: n1's client gone)
      dvipad on n2 (kill -9)   -> standby on n3 granted  (cause: n2 left the group)
    """
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    mon = Monitor(n3, "--json")
    try:
        p = cluster.holder("n1", VIPA, 8080, "--name", "primary")
        p.wait_line("listening")
        s2 = cluster.holder("n2", VIPA, 8080, "--standby", "100", "--name", "standby2")
        s3 = cluster.holder("n3", VIPA, 8080, "--standby", "50", "--name", "standby3")
        wait_for(lambda: len((n3.vipa(VIPA) or {}).get("standbys", [])) == 2, what="standbys registered")
        assert value(ctl_metrics(n2), "dvipa_takeovers_total") == 0

        p.kill()
        s2.wait_line("listening")
        m = ctl_metrics(n2)
        assert value(m, "dvipa_takeovers_total") == 1
        assert value(m, "dvipa_takeover_duration_seconds_count") == 1
        assert 0 < value(m, "dvipa_takeover_duration_seconds_sum") < 5
        figure("takeover duration by dvipa_takeover_duration_seconds, holder on n1 kill -9 -> n2",
               f"{value(m, 'dvipa_takeover_duration_seconds_sum') * 1000:.1f} ms")
        assert value(m, "dvipa_takeover_duration_seconds_bucket", le="+Inf") == 1
        assert value(m, "dvipa_activations_total", origin="api") == 1
        assert value(ctl_metrics(n1), "dvipa_deactivations_total") == 1
        assert value(ctl_metrics(n1), "dvipa_takeovers_total") == 0

        n2.stop(sig=signal.SIGKILL)
        s3.wait_line("listening")
        m = ctl_metrics(n3)
        assert value(m, "dvipa_takeovers_total") == 1
        assert 0 < value(m, "dvipa_takeover_duration_seconds_sum") < 10
        figure("takeover duration by dvipa_takeover_duration_seconds, dvipad on n2 kill -9 -> n3",
               f"{value(m, 'dvipa_takeover_duration_seconds_sum') * 1000:.1f} ms")
        assert value(m, "dvipa_members") == 2
        assert value(m, "dvipa_quorate") == 1

        def changes():
            return [json.loads(l) for l in mon.lines]

        wait_for(lambda: any(e["event"] == "membership" and e["members"] == "n1,n3" for e in changes()),
                 what="n2's departure in the monitor")
        got = [(e["event"], e.get("from"), e.get("to")) for e in changes() if e.get("addr") == VIPA]
        # n2's departure leaves the VIPA without owner until the group
        # confirms its quorum; then n3's standby takes it over.
        assert got == [("activation", None, "n1"), ("takeover", "n1", "n2"), ("release", "n2", None),
                       ("takeover", "n2", "n3"), ("grant", None, "n3")], got
    finally:
        mon.stop()


def test_monitor_that_does_not_read_is_dropped(lan, dvipad):
    """A stopped monitor is told it overran and is disconnected once 1 MiB
    of changes waits for it; what waited for it is freed at once."""
    dvipad.write_conf(text=BASE_CONF.format(lease=30, extra="").replace("PROBE COUNT 2", "PROBE COUNT 0"))
    dvipad.start()
    mon = Monitor(dvipad)
    mon.proc.send_signal(signal.SIGSTOP)
    vipas = [arg for i in range(256) for arg in ("--vipa", f"2001:db8::1:{i + 1:x}")]
    try:
        # 512 changes a run, about 90 KiB: the cap and the socket's
        # buffers are passed within 20 runs.
        for _ in range(40):
            dvipad.ctl("run", *vipas, "--", "true")
            if "does not keep up with the changes" in dvipad.log.read_text():
                break
        else:
            raise AssertionError("the stopped monitor was never dropped")
        # Its changes are dropped at once; only its last message waits.
        queued = dvipad.status()["daemon"]["queued_bytes"]
        assert 0 < queued < 512, queued
    finally:
        mon.proc.send_signal(signal.SIGCONT)
    assert mon.proc.wait(10) == 9
    mon.reader.join(5)
    assert "overrun" in mon.proc.stderr.read()
    # What the socket held before the overrun still arrives, in order.
    assert mon.lines and " activation 2001:db8::1:1 on host1 (api)" in mon.lines[0], mon.lines[:1]
