# SPDX-License-Identifier: GPL-2.0-or-later
"""
Shared fixtures of the system tests: real dvipad, real kernel, network
namespaces (like the kernel's netns selftests).

    client (eth0 192.0.2.100, 2001:db8::100)    foreign (eth0 192.0.2.50, 2001:db8::50)
                 \\                                      /
                  +------------ switch: br0 -----------+
                 /
    host (eth0 192.0.2.1, 2001:db8::1)   dvipad, VIPA ranges in 192.0.2.128/25, 2001:db8::1:0/112

Every test gets its own namespaces, named after the test process, removed in
the fixture finalizer. Conditions are polled with a deadline, never slept on.
"""
import json
import os
import re
import shutil
import signal
import tempfile
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("DVIPA_BUILD", ROOT / "build"))
DVIPAD = BUILD / "dvipad"
DVIPACTL = BUILD / "dvipactl"
HOLDER = BUILD / "dvipa-holder"

FIGURES = []  # (name, value) measured by the tests, printed at the end
LOGS = []  # logs of the daemons the running test started, shown if it fails


def figure(name, value):
    FIGURES.append((name, value))


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("measured figures")
        for name, value in FIGURES:
            terminalreporter.write_line(f"{name}: {value}")


def pytest_runtest_setup(item):
    LOGS.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the end of every daemon log it made: a failure
    on a CI machine is then read from its output, not guessed at."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "teardown" or not rep.failed:
        return
    for log in LOGS:
        if log.exists():
            lines = log.read_text(errors="replace").splitlines()
            rep.sections.append((f"{log.parent.name}/{log.name} (last {min(len(lines), 80)} lines)", "\n".join(lines[-80:])))


# `ip netns exec` mounts a sysfs of its own over /sys, without the cgroup
# mounts under it; dvipad's connection index (a BPF program on the cgroup
# root, dvipad(8)) needs the cgroup v2 hierarchy, as a host's dvipad has it.
# sh execs the command: the pid stays the command's.
WITH_CGROUP2 = ["sh", "-c", 'mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null; exec "$@"', "sh"]


def unit_capabilities():
    """setpriv's arguments that give dvipad the capabilities of the packaged
    unit (dist/dvipad.service.in), read from the unit itself."""
    text = (ROOT / "dist" / "dvipad.service.in").read_text()
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M).group(1).split()
    bounding = ",".join("+" + c.lower().removeprefix("cap_") for c in caps)
    return ["setpriv", f"--bounding-set=-all,{bounding}", "--inh-caps=-all"]


def run(*args, check=True, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run([str(a) for a in args], **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


def wait_for(cond, timeout=5.0, interval=0.01, what="condition"):
    """Poll cond() until it returns a true value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def signal_and_wait(proc, sig):
    """Send sig to a running proc and reap it; SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def remove_ipc_of(pid):
    """The shared memory of a dead corosync (libqb IPC rings, its blackbox):
    it removes it itself only when it stops cleanly, and /dev/shm is RAM."""
    for d in [*Path("/dev/shm").glob(f"qb-{pid}-*"), *Path("/dev/shm").glob(f"qb-corosync-{pid}-*")]:
        if d.is_dir():
            shutil.rmtree(d, ignore_errors=True)
        else:
            d.unlink(missing_ok=True)


class Netns:
    def __init__(self, name):
        self.name = name
        run("ip", "netns", "add", name)
        self.ip("link", "set", "lo", "up")

    def ip(self, *args, check=True):
        return run("ip", "-n", self.name, *args, check=check)

    def exec(self, *args, check=True, **kw):
        return run("ip", "netns", "exec", self.name, *args, check=check, **kw)

    def popen(self, *args, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        return subprocess.Popen(["ip", "netns", "exec", self.name] + [str(a) for a in args], **kw)

    def sysctl(self, key, value):
        self.exec("sysctl", "-qw", f"{key}={value}")

    def addrs(self, dev="eth0"):
        """Addresses on dev: {addr: {"proto": ..., "valid_life_time": ...}}."""
        out = self.ip("-j", "-d", "addr", "show", "dev", dev).stdout
        res = {}
        for link in json.loads(out or "[]"):
            for a in link.get("addr_info", []):
                res[a["local"]] = a
        return res

    def has_addr(self, addr, dev="eth0"):
        return addr in self.addrs(dev)

    def mac(self, dev="eth0"):
        return json.loads(self.ip("-j", "link", "show", "dev", dev).stdout)[0]["address"]

    def neigh(self, addr, dev="eth0"):
        out = json.loads(self.ip("-j", "neigh", "show", addr, "dev", dev).stdout or "[]")
        return out[0] if out else None

    def delete(self):
        run("ip", "netns", "pids", self.name, check=False)
        pids = run("ip", "netns", "pids", self.name, check=False).stdout.split()
        for p in pids:
            try:
                os.kill(int(p), signal.SIGKILL)
            except ProcessLookupError:
                pass
        run("ip", "netns", "del", self.name, check=False)


class Lan:
    """A switch namespace with a bridge, and hosts plugged into it."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.switch = Netns(f"{prefix}sw")
        self.switch.ip("link", "add", "br0", "type", "bridge")
        self.switch.ip("link", "set", "br0", "up")
        self.hosts = {}

    def add_host(self, short, v4, v6):
        ns = Netns(f"{self.prefix}{short}")
        port = f"p-{short}"
        # veth created in the switch, one end moved into the host as eth0.
        self.switch.ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
        self.switch.ip("link", "set", port, "master", "br0", "up")
        ns.sysctl("net.ipv6.conf.eth0.accept_dad", 0)
        ns.ip("addr", "add", f"{v4}/24", "dev", "eth0")
        ns.ip("addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
        ns.ip("link", "set", "eth0", "up")
        self.hosts[short] = ns
        return ns

    def delete(self):
        for ns in self.hosts.values():
            ns.delete()
        self.switch.delete()


BASE_CONF = """\
NODE host1
INTERFACE eth0
ANNOUNCE COUNT 3 INTERVAL 200
PROBE COUNT 2 INTERVAL 50
LEASE {lease}
VIPADYNAMIC
  VIPARANGE DEFINE 255.255.255.192 192.0.2.128
  VIPARANGE DEFINE MOVEABLE NONDISRUPTIVE 192.0.2.192/27 ALLOW USER daemon
  VIPARANGE DEFINE UNIQUE 192.0.2.224/28
  VIPARANGE DEFINE 2001:db8::1:0/112
{extra}ENDVIPADYNAMIC
"""


class Dvipad:
    """One dvipad in a namespace, with a private config, socket and log."""

    def __init__(self, ns, tmp, lease=30, extra=""):
        self.ns = ns
        self.tmp = Path(tmp)
        self.conf = self.tmp / "dvipa.conf"
        # The socket lives where unprivileged test users can reach it
        # (pytest's tmp_path is private to root).
        self.sockdir = Path(tempfile.mkdtemp(prefix="dvipa-test-", dir="/run"))
        self.sockdir.chmod(0o755)
        self.sock = self.sockdir / "dvipad.sock"
        self.log = self.tmp / "dvipad.log"
        LOGS.append(self.log)
        self.write_conf(lease=lease, extra=extra)
        self.proc = None
        self.logf = None
        self.wrap = []  # a command dvipad is started through (unit_capabilities())
        # Its spare CPU (BASEWLM, SERVERWLM weights) comes from this file in
        # /proc/stat's format (DVIPAD_PROC_STAT, dvipad(8)): the namespaces
        # share the machine's CPUs, so the real one would give every node
        # about the same weight at different moments. Frozen, it keeps the
        # first weight (16) on every node; set_spare_cpu() makes it move.
        self.proc_stat = self.tmp / "proc-stat"
        self.proc_stat.write_text("cpu  100 0 0 100 0 0 0 0 0 0\n")

    def write_conf(self, lease=30, extra="", text=None):
        self.conf.write_text(text if text is not None else BASE_CONF.format(lease=lease, extra=extra))

    def start(self, wait=True):
        self.logf = open(self.log, "a")
        self.proc = self.ns.popen(*WITH_CGROUP2, *self.wrap, DVIPAD, "-d", "-v", "-f", self.conf, "-S", self.sock,
                                  stdout=self.logf, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, DVIPAD_PROC_STAT=str(self.proc_stat)))
        if wait:
            # Start-up is no guarantee of dvipad's: a generous deadline, for
            # an ASan build on a loaded machine (5 s was once too short
            # beside a starting corosync).
            wait_for(lambda: self.ctl("status", check=False).returncode == 0 or self.proc.poll() is not None,
                     timeout=30, what="dvipad to answer")
            assert self.proc.poll() is None, f"dvipad exited: {self.log.read_text()}"
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc:
            signal_and_wait(self.proc, sig)
        if self.logf:
            self.logf.close()
            self.logf = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.sockdir, ignore_errors=True)

    def ctl(self, *args, check=True, user=None):
        cmd = [DVIPACTL, "-S", self.sock, *args]
        if user:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
        return self.ns.exec(*cmd, check=check)

    def status(self):
        return json.loads(self.ctl("status", "--json").stdout)

    def vipa(self, addr):
        for v in self.status().get("vipas", []):
            if v["addr"] == addr:
                return v
        return None

    def holder(self, addr, port, *args, user=None):
        cmd = [HOLDER, "-S", self.sock, *args, addr, str(port)]
        if user:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
        return Holder(self.ns.popen(*cmd))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def logged_at(self, text, start=0):
        """When this dvipad first logged a line containing text, past byte
        start of its log: seconds since midnight, to the millisecond, on the
        machine's clock (every namespace's). None if it did not."""
        for line in self.log.read_bytes()[start:].decode(errors="replace").splitlines():
            if text in line:
                h, m, s = line.split(" ", 1)[0].split(":")
                return int(h) * 3600 + int(m) * 60 + float(s)
        return None


class Holder:
    """A dvipa-holder process: prints 'granted ADDR', 'listening ADDR PORT'."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []

    def wait_line(self, prefix, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for l in self.lines:
                if l.startswith(prefix):
                    return l
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    raise AssertionError(f"holder exited {self.proc.returncode}: {self.proc.stderr.read()}")
                continue
            self.lines.append(line.strip())
        raise AssertionError(f"holder did not print {prefix!r}: {self.lines}")

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            # ip netns exec execs the command: the pid is the holder itself.
            self.proc.send_signal(sig)
        self.proc.wait(5)


@pytest.fixture
def lan(request):
    prefix = f"dv{os.getpid() % 100000}{abs(hash(request.node.name)) % 1000}"
    lan = Lan(prefix)
    try:
        lan.add_host("h", "192.0.2.1", "2001:db8::1")
        lan.add_host("c", "192.0.2.100", "2001:db8::100")
    except Exception:
        lan.delete()
        raise
    yield lan
    lan.delete()


@pytest.fixture
def dvipad(lan, tmp_path):
    d = Dvipad(lan.hosts["h"], tmp_path)
    holders = []
    d.holders = holders
    yield d
    for h in holders:
        if h.proc.poll() is None:
            h.proc.kill()
            h.proc.wait()
    d.cleanup()


# A TCP server that answers each connection with its name, then echoes:
# SERVER ADDR NAME PORT (ADDR may be 0.0.0.0 or ::).
SERVER = """
import socket, sys, threading
name = sys.argv[2].encode()
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[3])))
s.listen(128)
def serve(c):
    with c:
        c.sendall(name + b"\\n")
        while True:
            d = c.recv(4096)
            if not d:
                return
            c.sendall(d)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""


def fetch(ns, addr, port, timeout=2.0):
    """Connect from ns to addr:port and return what the server says, or None."""
    r = ns.exec("nc", "-w", str(int(max(1, timeout))), addr, str(port), check=False)
    return r.stdout.strip() if r.returncode == 0 and r.stdout else None


# ---- clusters: three dvipad nodes on Corosync, and a client ----
#
#    n1 (eth0 192.0.2.1)   n2 (192.0.2.2)   n3 (192.0.2.3)   client (192.0.2.100)
#          \\                  |                 |                 /
#           +----------------- switch: br0 ------------------------+
#
# Each node runs its own corosync (knet over the bridge, votequorum, 3 votes)
# in a private mount namespace with its own /run, and a dvipad with
# CLUSTER COROSYNC in the same network namespace.

COROSYNC_CONF = """\
totem {{
  version: 2
  cluster_name: dvtest
  transport: knet
  crypto_cipher: none
  crypto_hash: none
  token: 200
  token_coefficient: 0
  consensus: 240
  interface {{
    linknumber: 0
    knet_ping_interval: 200
    knet_ping_timeout: 600
    knet_pong_count: 1
  }}
}}
nodelist {{
{nodes}}}
quorum {{
  provider: corosync_votequorum
}}
logging {{
  to_logfile: yes
  logfile: {log}
  to_stderr: no
  to_syslog: no
  timestamp: hires
}}
"""

CLUSTER_DVIPA_CONF = """\
NODE {name}
INTERFACE eth0
CLUSTER COROSYNC GROUP dvipa
ANNOUNCE COUNT 3 INTERVAL 200
PROBE COUNT 2 INTERVAL 50
LEASE 30
VIPADYNAMIC
  VIPARANGE DEFINE 255.255.255.192 192.0.2.128
  VIPARANGE DEFINE UNIQUE 192.0.2.224/28
{extra}ENDVIPADYNAMIC
"""

CLUSTER_NODES = {"n1": ("192.0.2.1", "2001:db8::1", 1), "n2": ("192.0.2.2", "2001:db8::2", 2),
                 "n3": ("192.0.2.3", "2001:db8::3", 3)}


# How long a healed link may take to make the ring whole again. Corosync
# decides that, not dvipad: a CI run saw a ring re-form on link up, lose its
# token at once, and answer no client for 9.5 s before it formed again.
HEAL_S = 30


class Corosync:
    """One corosync in a node namespace, with a private /run."""

    def __init__(self, ns, tmp, name, members=None):
        """members: {name: (v4, v6, nodeid)} of the whole cluster, by
        default CLUSTER_NODES (the campaign has five)."""
        self.ns = ns
        self.name = name
        self.conf = Path(tmp) / f"corosync-{name}.conf"
        self.log = Path(tmp) / f"corosync-{name}.log"
        LOGS.append(self.log)
        nodes = "".join(f"  node {{\n    ring0_addr: {v4}\n    nodeid: {nid}\n    name: {n}\n  }}\n"
                        for n, (v4, _, nid) in (members or CLUSTER_NODES).items())
        self.conf.write_text(COROSYNC_CONF.format(nodes=nodes, log=self.log))
        self.proc = None

    def start(self):
        self.proc = self.ns.popen("unshare", "-m", "--propagation", "private", "sh", "-c",
                                  "mount -t tmpfs none /run && mkdir -p /run/corosync && "
                                  f"exec corosync -f -c {self.conf}",
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def tool(self, *args):
        """A corosync tool's output, run against this corosync."""
        r = self.ns.exec("nsenter", f"--mount=/proc/{self.proc.pid}/ns/mnt", *args, check=False)
        return r.stdout + r.stderr

    def quorate(self):
        return "Quorate:          Yes" in self.tool("corosync-quorumtool", "-s")

    def kill(self, sig=signal.SIGKILL):
        if self.proc:
            signal_and_wait(self.proc, sig)
            remove_ipc_of(self.proc.pid)


class ClusterNode(Dvipad):
    """A dvipad with CLUSTER COROSYNC next to its corosync."""

    def __init__(self, ns, tmp, name, extra="", members=None):
        tmp = Path(tmp) / name
        tmp.mkdir(exist_ok=True)
        super().__init__(ns, tmp)
        self.name = name
        self.write_conf(text=CLUSTER_DVIPA_CONF.format(name=name, extra=extra))
        self.corosync = Corosync(ns, tmp, name, members)

    def start(self, wait=True):
        super().start(wait=wait)
        if wait:
            wait_for(lambda: self.in_sync() or not self.alive(), timeout=10, what=f"{self.name} in sync")
            assert self.alive(), f"dvipad exited: {self.log.read_text()}"
        return self

    def in_sync(self):
        r = self.ctl("status", "--json", check=False)
        if r.returncode != 0:
            return False
        st = json.loads(r.stdout)
        return any(m.get("self") and m.get("name") == self.name for m in st.get("members", []))

    def owner(self, addr):
        v = self.vipa(addr)
        return v and v.get("state") == "active" and (v.get("owner_name") or v.get("owner"))


def reconfigure(cluster, confs):
    """Give each named node the cluster configuration plus its extra
    statements, and make it reload (SIGHUP)."""
    for name, extra in confs.items():
        n = cluster.nodes[name]
        n.write_conf(text=CLUSTER_DVIPA_CONF.format(name=name, extra=extra))
        n.proc.send_signal(signal.SIGHUP)


class Cluster:
    def __init__(self, lan, tmp):
        self.lan = lan
        self.tmp = tmp
        self.nodes = {}
        self.holders = []

    def add(self, name, extra=""):
        ns = self.lan.hosts[name]
        self.nodes[name] = ClusterNode(ns, self.tmp, name, extra=extra)
        return self.nodes[name]

    def start_corosync(self, names):
        for n in names:
            self.nodes[n].corosync.start()
        wait_for(lambda: all(self.nodes[n].corosync.quorate() for n in names), timeout=20, interval=0.1,
                 what="corosync quorum")

    def wait_whole(self, names=None, quorate=True, timeout=HEAL_S):
        """Wait until every named node (all by default) sees all the nodes
        as members, and quorate if asked. On a timeout, Corosync's own view
        of each node's links and quorum is in the error."""
        names = names or list(self.nodes)
        want = len(self.nodes)

        def whole(n):
            st = self.nodes[n].status()
            return len(st["members"]) == want and (not quorate or st["daemon"]["quorate"])
        try:
            for n in names:
                wait_for(lambda: whole(n), timeout=timeout, interval=0.05, what=f"{n} to see the group whole")
        except AssertionError as e:
            def view(c):
                out = c.corosync.tool("corosync-cfgtool", "-s") + c.corosync.tool("corosync-quorumtool", "-s")
                return "; ".join(" ".join(l.split()) for l in out.splitlines()
                                 if l.strip().startswith(("nodeid:", "Ring ID:", "Quorate:", "Nodes:")))
            views = "".join(f"\n  {m}: {view(c)}" for m, c in self.nodes.items())
            raise AssertionError(f"{e}; Corosync's links and quorum:{views}") from None

    def holder(self, node, *args, **kw):
        h = self.nodes[node].holder(*args, **kw)
        self.holders.append(h)
        return h

    def cleanup(self):
        for h in self.holders:
            if h.proc.poll() is None:
                h.proc.kill()
                h.proc.wait()
        for n in self.nodes.values():
            n.cleanup()
        for n in self.nodes.values():
            n.corosync.kill()
        # UBSan reports without stopping the program: fail on any report.
        for n in self.nodes.values():
            log = n.log.read_text() if n.log.exists() else ""
            assert "runtime error:" not in log and "Sanitizer" not in log, f"{n.name}: {log}"


@pytest.fixture
def cluster(request, tmp_path):
    """Three nodes with corosync and dvipad running, and a client."""
    prefix = f"dc{os.getpid() % 100000}{abs(hash(request.node.name)) % 1000}"
    lan = Lan(prefix)
    c = Cluster(lan, tmp_path)
    try:
        for n, (v4, v6, _) in CLUSTER_NODES.items():
            lan.add_host(n, v4, v6)
            c.add(n)
        lan.add_host("c", "192.0.2.100", "2001:db8::100")
        c.start_corosync(list(CLUSTER_NODES))
        for n in c.nodes.values():
            n.start()
        yield c
    finally:
        c.cleanup()
        lan.delete()
