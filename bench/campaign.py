#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
Fault campaign on real Corosync: random faults from a seed against three
(or five) dvipad nodes, while every node's addresses are sampled every
~20 ms. Prints a table (and --json); a benchmark, not a test
(tests/system/test_campaign.py runs a short one in CI).

    n1 192.0.2.1   n2 .2   n3 .3  [n4 .4  n5 .5]      client 192.0.2.100
          \\          |       |       |      |           /
           +------------------- switch: br0 -----------+

Each node: corosync (knet, votequorum, token 200 ms) and dvipad (CLUSTER
COROSYNC, LEASE 6) from tests/system/conftest.py, one copy of that
plumbing. On every node an instance of each service: a VIPA in the
MOVEABLE range held by one instance (the others are standbys with random
ranks); half the services are dvipa-holder (libdvipa), half python under
the LD_PRELOAD shim (DVIPA_STANDBY for the standbys). Two VIPADEFINEs with
VIPABACKUPs on every other node. A wildcard server on port 7000 of each node
answers its name (the client reaches a define's owner through it).

A round injects 1 to 4 faults 0.2 to 3 s apart, each repaired after a
random delay or at the round's end: kill -9 of a program, of dvipad
(restarted, sometimes after more than LEASE), of corosync (restarted, its
/dev/shm files removed), a node's link cut and healed, two nodes cut
~150 ms apart and healed ~150 ms apart, corosync of two nodes killed and
started again ~150 ms apart, two nodes cut, their dvipad restarted while cut
and their links healed ~150 ms apart (issue 9's drift), `dvipactl reload`.
Then everything is repaired, the cluster settles (every dvipad quorate with
every member), killed programs come back as standbys (all at once, as
service managers on every host would restart them), and the client
connects to every VIPA. The seed fixes the draws; what the cluster does
between them depends on timing, so a run is not replayed exactly.

The partitions are known because the campaign makes them: a node whose link
is down or whose corosync is dead is alone, the others form one partition,
quorate with a majority of the votes. Counted:
  dual-owner   a VIPA on two nodes of the quorate partition whose dvipad
               runs (a sample, confirmed by dumping the first node again)
  leftover     a VIPA on a node whose dvipad has been dead for more than
               LEASE + 1 s
  lost         a program told LOST, exited, or whose address went away,
               while its node stayed in the quorate partition with dvipad
               and corosync running since the program started (and its
               dvipad logged no loss of quorum or ring from Corosync:
               Corosync can merge a healed node later than its link)
  standby lost at heal   a standby told LOST or ended after a cut of its
               node healed (issue 9 item 5), dvipad and corosync alive
  unreachable  a VIPA the client cannot connect to once the round settled
  takeover     fault -> the VIPA sampled on another node of the quorate
               partition (faults that take the owner away); also counted:
               no takeover before the round's heal, and none possible
               (the quorate partition went too)
A round whose cluster does not settle within 30 s is counted as failed; the
whole cluster is then restarted and the campaign goes on.

  bench/campaign.py --faults 1000 --nodes 3 --seed 1 [--json]

Needs root; DVIPA_BUILD (or --build) names the build directory (default
build/), which must hold dvipad, dvipactl, dvipa-holder and
libdvipa-preload.so.
"""
import argparse
import ctypes
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LEASE = 6
SAMPLE_INTERVAL = 0.02
SETTLE_TIMEOUT = 30.0
STAGGER = 0.15
WILDCARD_PORT = 7000
SERVICE_PORT = 8080

# The shim's program: binds (the shim activates the VIPA, or registers a
# standby and blocks until granted), then answers every connection with
# its name.
SHIM_SERVER = """
import socket, sys
addr, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(16)
print("listening", addr, port, flush=True)
while True:
    c, _ = s.accept()
    c.sendall((name + "\\n").encode())
    c.close()
"""

# The client's check: connect to each ADDR:PORT until it answers or the
# deadline passes; prints {addr: answer or null}.
CLIENT_CHECK = """
import json, socket, sys, time
res = {}
for target in sys.argv[2:]:
    addr, port = target.rsplit(":", 1)
    deadline = time.monotonic() + float(sys.argv[1])
    res[addr] = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((addr, int(port)), timeout=0.5) as c:
                c.settimeout(0.5)
                res[addr] = c.recv(100).decode().strip() or None
        except OSError:
            pass
        if res[addr]:
            break
        time.sleep(0.05)
print(json.dumps(res))
"""

# ---- addresses by rtnetlink, one socket per namespace ----

CLONE_NEWNET = 0x40000000
RTM_NEWADDR, RTM_GETADDR = 20, 22
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFA_LOCAL = 2

_libc = ctypes.CDLL(None, use_errno=True)


def netns_socket(name):
    """A NETLINK_ROUTE socket in network namespace name. setns() moves only
    the calling thread; it returns to its own namespace at once, and the
    socket stays in the one it was created in."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
        try:
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)
    s.bind((0, 0))
    s.settimeout(1.0)
    return s


class AddrDumper:
    """The IPv4 addresses of a namespace, by one RTM_GETADDR dump."""

    def __init__(self, ns_name):
        self.sock = netns_socket(ns_name)
        self.seq = 0

    def dump(self):
        self.seq += 1
        seq = self.seq
        self.sock.send(struct.pack("=IHHII", 24, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) +
                       struct.pack("=BBBBI", socket.AF_INET, 0, 0, 0, 0))
        addrs = set()
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, typ, _, s, _ = struct.unpack_from("=IHHII", data, off)
                if length < 16:
                    raise OSError("bad netlink message")
                if s == seq and typ == NLMSG_DONE:
                    return addrs
                if s == seq and typ == NLMSG_ERROR:
                    raise OSError("netlink dump failed")
                if s == seq and typ == RTM_NEWADDR:
                    a, end = off + 24, off + length  # nlmsghdr + ifaddrmsg
                    while a + 4 <= end:
                        alen, atype = struct.unpack_from("=HH", data, a)
                        if alen < 4:
                            break
                        if atype == IFA_LOCAL and alen == 8:
                            addrs.add(socket.inet_ntoa(data[a + 4:a + 8]))
                        a += (alen + 3) & ~3
                off += (length + 3) & ~3

    def close(self):
        self.sock.close()


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else None


def reason_class(why):
    """The kind of a lost hold's reason, for the summary."""
    for text, kind in (("in use by another host", "refused: another host answered the duplicate probe"),
                       ("not quorate", "refused: not quorate"), ("went away", "dvipad went away"),
                       ("address gone", "address gone, program not told"), ("lost ", "told LOST")):
        if text in why:
            return kind
    return why.split(":")[0]


def utc(t_wall):
    return time.strftime("%H:%M:%S", time.gmtime(t_wall)) + f".{int(t_wall * 1000) % 1000:03d}"


class Episode:
    """Consecutive bad samples of one kind for one key."""

    def __init__(self, key, t, wall, detail):
        self.key, self.start, self.end, self.wall, self.detail = key, t, t, wall, detail

    def record(self):
        return {"key": self.key, "start_utc": utc(self.wall), "duration_ms": round((self.end - self.start) * 1000),
                "detail": self.detail}


class Instance:
    """One program for a service on one node (dvipa-holder or python under
    the shim), read by its own thread."""

    def __init__(self, camp, svc, node, rank, serial):
        self.camp, self.svc, self.node, self.rank = camp, svc, node, rank
        self.name = f"{svc['kind']}-{node}-{serial}"
        self.killed = False
        self.granted_at = None
        self.granted = False
        self.ended = False
        self.lines = []
        self.epoch0 = camp.epoch[node]
        self.hard0 = camp.hard_epoch[node]
        self.t0 = time.time()
        self.counted = False
        n = camp.nodes[node]
        if svc["kind"] == "holder":
            args = [camp.conftest.HOLDER, "-S", n.sock, "--name", self.name]
            if rank:
                args += ["--standby", rank]
            self.proc = n.ns.popen(*args, svc["addr"], SERVICE_PORT)
        else:
            env = dict(os.environ, LD_PRELOAD=str(camp.build / "libdvipa-preload.so"), DVIPA_SOCKET=str(n.sock))
            for k in ("DVIPA_STANDBY", "DVIPA_SOURCE"):
                env.pop(k, None)
            env["DVIPA_DEBUG"] = "1"  # the shim's reason on stderr, for the report
            if rank:
                env["DVIPA_STANDBY"] = str(rank)
            self.proc = n.ns.popen("/usr/bin/python3", "-c", SHIM_SERVER, svc["addr"], SERVICE_PORT, self.name,
                                   env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            self.lines.append(line)
            if line.startswith("granted"):  # dvipa-holder, before it listens
                self.granted = True
            elif line.startswith("listening"):
                self.granted = True
                self.granted_at = time.monotonic()
            elif line.startswith("lost"):
                self.camp.program_ended(self, line)
        self.proc.wait()
        err = self.proc.stderr.read().strip().splitlines()
        # The shim's last word (DVIPA_DEBUG) says why, python's last line what.
        why = [l for l in err if l.startswith("dvipa-preload") and not l.endswith("activated")][-1:] + err[-1:]
        self.ended = True
        self.camp.program_ended(self, f"exit {self.proc.returncode}" + (f": {' / '.join(why)}" if why else ""))

    def alive(self):
        return not self.ended and self.proc.poll() is None

    def kill(self):
        self.killed = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Campaign:
    def __init__(self, faults, nodes=3, seed=1, build=None, tmp=None, prefix=None, log=print,
                 settle_timeout=SETTLE_TIMEOUT):
        self.faults_wanted = faults
        self.n = nodes
        self.seed = seed
        self.settle_timeout = settle_timeout
        self.rng = random.Random(seed)
        self.log = log
        self.build = Path(build or os.environ.get("DVIPA_BUILD", ROOT / "build")).resolve()
        os.environ["DVIPA_BUILD"] = str(self.build)  # conftest reads it when imported
        sys.path.insert(0, str(ROOT / "tests" / "system"))
        import conftest
        self.conftest = conftest
        self.tmp = Path(tmp or tempfile.mkdtemp(prefix="dvipa-campaign-"))
        self.prefix = prefix or f"dk{os.getpid() % 100000}"
        self.names = [f"n{i}" for i in range(1, nodes + 1)]
        self.members = {n: (f"192.0.2.{i}", f"2001:db8::{i}", i) for i, n in enumerate(self.names, 1)}
        kinds = ("holder", "shim")
        self.services = [{"addr": f"192.0.2.{130 + i}", "kind": kinds[i % 2]} for i in range(nodes + 1)]
        self.defines = [f"192.0.2.{200 + i}" for i in range(2)]
        self.vipas = [s["addr"] for s in self.services] + self.defines

        self.lock = threading.RLock()
        self.linked = {n: True for n in self.names}
        self.coro_alive = {n: False for n in self.names}
        self.dvipad_ready = {n: False for n in self.names}
        self.dvipad_dead_since = {n: None for n in self.names}
        self.epoch = {n: 0 for n in self.names}       # bumped when a node leaves the quorate partition
        self.hard_epoch = {n: 0 for n in self.names}  # bumped when its dvipad or corosync dies
        self.instances = []
        self.serial = 0
        self.last = {n: set() for n in self.names}  # the latest sample
        self.pending_takeovers = []                 # [vipa, t0, from node, fault kind]

        self.faults = {}
        self.failed_rounds = 0
        self.rounds = 0
        self.samples = 0
        self.sample_errors = 0
        self.dual_samples = 0
        self.dual_episodes = []
        self.dual_open = {}
        self.leftover_samples = 0
        self.leftover_episodes = []
        self.leftover_open = {}
        self.lost = []
        self.standby_lost_at_heal = []
        self.unreachable = []
        self.takeovers = []  # (kind, seconds)
        self.takeover_list = []
        self.dvipad_kills = 0
        self.standbys_unseen = 0  # rounds whose standbys were not all registered in time
        self.dvipad_dead_beyond_lease = 0  # deaths long enough for the leftover check
        self.takeovers_missed = 0      # not before the round's heal
        self.takeovers_impossible = 0  # the quorate partition went too
        self.t_start = None
        self.settle_times = []
        self.lan = None
        self.stop = threading.Event()

    # ---- the partitions the campaign made ----

    def quorate_set(self):
        """The nodes of the quorate partition (empty if there is none)."""
        with self.lock:
            part = [n for n in self.names if self.linked[n] and self.coro_alive[n]]
            return set(part) if 2 * len(part) > self.n else set()

    def world_changed(self):
        """Every node outside the quorate partition has been disrupted;
        without a quorate partition no takeover can come."""
        with self.lock:
            q = self.quorate_set()
            for n in self.names:
                if n not in q:
                    self.epoch[n] += 1
            if not q:
                self.takeovers_impossible += len(self.pending_takeovers)
                self.pending_takeovers.clear()

    # ---- set-up and recovery ----

    def node_conf(self, name):
        i = self.names.index(name)
        extra = ""
        for k, d in enumerate(self.defines):
            owner = self.names[k % self.n]
            if name == owner:
                extra += f"  VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.255 {d}\n"
            else:
                # ranks descend along the ring after the define's node
                rank = 200 - 10 * ((i - k) % self.n)
                extra += f"  VIPABACKUP {rank} MOVEABLE IMMEDIATE 255.255.255.255 {d}\n"
        return self.conftest.CLUSTER_DVIPA_CONF.format(name=name, extra=extra).replace("LEASE 30", f"LEASE {LEASE}")

    def setup(self):
        cf = self.conftest
        self.lan = cf.Lan(self.prefix)
        self.nodes = {}
        for n, (v4, v6, _) in self.members.items():
            ns = self.lan.add_host(n, v4, v6)
            self.nodes[n] = cf.ClusterNode(ns, self.tmp, n, members=self.members)
            self.nodes[n].write_conf(text=self.node_conf(n))
        self.client = self.lan.add_host("c", "192.0.2.100", "2001:db8::100")
        # For reading the logs: dvipad names a probe's answer by its MAC.
        self.log("MACs: " + ", ".join(f"{n} {self.nodes[n].ns.mac()}" for n in self.names))
        self.dumpers = {n: AddrDumper(self.nodes[n].ns.name) for n in self.names}
        for n in self.names:
            self.nodes[n].ns.popen("/usr/bin/python3", "-c", SHIM_SERVER, "0.0.0.0", WILDCARD_PORT, n,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.sampler = threading.Thread(target=self.sample_loop, daemon=True)
        self.sampler.start()

    def start_everything(self):
        """Corosync and dvipad on every node, then one active instance per
        service and standbys on the other nodes. Returns False on failure."""
        cf = self.conftest
        for n in self.names:
            self.nodes[n].corosync.start()
            with self.lock:
                self.coro_alive[n] = True
        try:
            cf.wait_for(lambda: all(self.nodes[n].corosync.quorate() for n in self.names), timeout=30,
                        interval=0.2, what="corosync quorum")
        except AssertionError:
            return False
        for n in self.names:
            if not self.start_dvipad(n):
                return False
        if not self.wait_settled():
            return False
        actives = [self.start_instance(svc, self.names[i % self.n], None) for i, svc in enumerate(self.services)]
        # The standbys come once the active ones listen (otherwise they
        # race for the free address: see the settling's restarts).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(a.granted_at or not a.alive() for a in actives):
            time.sleep(0.05)
        for i, svc in enumerate(self.services):
            for n in self.names:
                if n != self.names[i % self.n]:
                    self.start_instance(svc, n, self.rng.randint(1, 254))
        return True

    def stop_everything(self):
        for inst in self.instances:
            inst.kill()
        self.instances = []
        for n in self.names:
            with self.lock:
                self.dvipad_ready[n] = False
                self.coro_alive[n] = False
                self.hard_epoch[n] += 1
            self.nodes[n].stop(sig=signal.SIGKILL)
            self.nodes[n].corosync.kill()
        self.world_changed()
        for n in self.names:
            self.link(n, True)
        with self.lock:
            self.dvipad_dead_since = {n: None for n in self.names}
        # Their leases will not be waited for: remove what is left.
        for n in self.names:
            self.nodes[n].ns.ip("addr", "flush", "dev", "eth0", "to", "192.0.2.128/25", check=False)

    def recover(self):
        """Restart the whole cluster after a round that did not settle."""
        self.log("  recovering: the whole cluster is restarted")
        for attempt in range(3):
            self.stop_everything()
            if self.start_everything():
                return True
            self.failed_rounds += 1
            self.log(f"  recovery attempt {attempt + 1} failed")
        return False

    def start_dvipad(self, n):
        node = self.nodes[n]
        with self.lock:
            since = self.dvipad_dead_since[n]
            if since is not None and time.monotonic() - since > LEASE + 1.0:
                self.dvipad_dead_beyond_lease += 1
            # Alive from now on (it may install addresses before it
            # answers), in the group's counts once it answers.
            self.dvipad_dead_since[n] = None
        try:
            # Dvipad.start: wait for it to answer, not to be in the group
            # (its corosync may be down or its link cut).
            self.conftest.Dvipad.start(node)
        except AssertionError as e:
            self.log(f"  dvipad on {n} did not start: {e}")
            node.stop(sig=signal.SIGKILL)
            return False
        with self.lock:
            self.dvipad_ready[n] = True
            self.dvipad_dead_since[n] = None
        return True

    def start_instance(self, svc, node, rank):
        self.serial += 1
        inst = Instance(self, svc, node, rank, self.serial)
        self.instances.append(inst)
        return inst

    def link(self, n, up):
        with self.lock:
            if not up:
                self.linked[n] = False
        self.lan.switch.ip("link", "set", f"p-{n}", "up" if up else "down", check=False)
        with self.lock:
            if up:
                self.linked[n] = True
        self.world_changed()

    # ---- the sampler ----

    def sample_loop(self):
        next_t = time.monotonic()
        while not self.stop.is_set():
            try:
                self.sample_once()
            except OSError:
                self.sample_errors += 1
            next_t += SAMPLE_INTERVAL
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()

    def sample_once(self):
        order = list(self.names)
        snap = {n: self.dumpers[n].dump() & set(self.vipas) for n in order}
        now, wall = time.monotonic(), time.time()
        with self.lock:
            q = self.quorate_set()
            ready = dict(self.dvipad_ready)
            dead_since = dict(self.dvipad_dead_since)
        self.samples += 1
        if self.samples == 1:
            self.first_sample = now
        self.last_sample = now
        self.last = snap

        for vipa in self.vipas:
            on = [n for n in order if n in q and ready[n] and vipa in snap[n]]
            if len(on) >= 2:
                # The nodes were dumped one after the other: the address may
                # have moved in between. Two owners at once only if the
                # first node still has it after the last was dumped.
                again = self.dumpers[on[0]].dump()
                if vipa not in again:
                    on = []
            self.track(self.dual_open, self.dual_episodes, vipa, len(on) >= 2, now, wall, ",".join(on))
            if len(on) >= 2:
                self.dual_samples += 1

        for n in order:
            left = dead_since[n] is not None and now - dead_since[n] > LEASE + 1.0 and snap[n]
            self.track(self.leftover_open, self.leftover_episodes, n, bool(left), now, wall,
                       ",".join(sorted(snap[n])) if left else "")
            if left:
                self.leftover_samples += 1

        with self.lock:
            for p in list(self.pending_takeovers):
                vipa, t0, frm, kind = p
                to = [m for m in q if m != frm and ready[m] and vipa in snap[m]]
                if to:
                    self.takeovers.append((kind, now - t0))
                    self.takeover_list.append({"kind": kind, "vipa": vipa, "from": frm, "to": to[0],
                                               "ms": round((now - t0) * 1000), "utc": utc(wall - (now - t0))})
                    self.pending_takeovers.remove(p)

    def track(self, open_, episodes, key, bad, now, wall, detail):
        ep = open_.get(key)
        if bad:
            if ep is None:
                ep = open_[key] = Episode(key, now, wall, detail)
                episodes.append(ep)
                self.log(f"  ! {'dual owner' if open_ is self.dual_open else 'leftover'} {key}: {detail} "
                         f"at {utc(wall)} UTC")
            ep.end = now
        elif ep is not None:
            del open_[key]

    # ---- programs ----

    def program_ended(self, inst, why):
        """A program said LOST or ended: lost unless the campaign killed it
        or its node left the quorate partition (or lost dvipad or corosync)
        since it started."""
        with self.lock:
            if inst.killed or inst.counted:
                return
            inst.counted = True
            n = inst.node
            rec = {"program": inst.name, "vipa": inst.svc["addr"], "node": n,
                   "role": "standby" if inst.rank and not inst.granted else "active",
                   "why": why, "utc": utc(time.time())}
            if self.epoch[n] == inst.epoch0 and not self.left_quorum_since(n, inst.t0):
                self.lost.append(rec)
                self.log(f"  ! lost: {rec}")
            elif rec["role"] == "standby" and self.hard_epoch[n] == inst.hard0:
                # Its node was cut off or without quorum, and came back:
                # the standby must have been registered again silently.
                self.standby_lost_at_heal.append(rec)
                self.log(f"  ! standby lost at heal: {rec}")

    def left_quorum_since(self, n, t0):
        """Node n's dvipad logged, since wall time t0, that Corosync took
        its partition's quorum or its ring away. The campaign's partitions
        are what it did to the links, and Corosync can lag them: with n1's
        link up again and n3's cut, Corosync left n2 alone for 2 s before
        it merged n1, and the majority took n2's addresses, as it should
        (seed 601). A loss that only dvipad's own timed-out quorum read
        made does not count: that would hide a defect."""
        try:
            lines = self.nodes[n].log.read_text(errors="replace").splitlines()
        except OSError:
            return False
        tm = time.localtime(t0)
        t0_sod = tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec + t0 % 1
        recent = ["", ""]
        for line in lines:
            try:
                h, m, s = line[:12].split(":")
                sod = int(h) * 3600 + int(m) * 60 + float(s)
            except ValueError:
                continue
            if sod < t0_sod - 43200:
                sod += 86400  # after midnight
            timed_out = any("did not answer" in r for r in recent)
            recent = [recent[1], line]
            if sod < t0_sod:
                continue
            if ("partition lost quorum" in line and not timed_out) or "ring lease ran out" in line or \
                    "lost the connection to Corosync" in line:
                return True
        return False

    # ---- faults ----

    def node_fault_targets(self):
        """Nodes whose link is up and whose daemons run."""
        with self.lock:
            return [n for n in self.names if self.linked[n] and self.coro_alive[n] and self.dvipad_ready[n]]

    def owned_by(self, n):
        return [v for v in self.vipas if v in self.last.get(n, ())]

    def expect_takeover(self, vipas, frm, kind):
        """The fault took these VIPAs' owner away: time until another node
        of the quorate partition has them."""
        if not self.quorate_set() - {frm}:
            return
        t0 = time.monotonic()
        with self.lock:
            for v in vipas:
                self.pending_takeovers.append([v, t0, frm, kind])

    def inject(self, repairs):
        kinds = [("kill-program", 25), ("kill-dvipad", 12), ("kill-corosync", 10), ("cut", 18),
                 ("cut-two-staggered", 8), ("corosync-two-staggered", 5), ("start-cut-staggered", 6),
                 ("reload", 12)]
        kind = self.rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        targets = self.node_fault_targets()
        now = time.monotonic()
        rnd = self.rng
        if kind == "kill-program":
            live = [i for i in self.instances if i.alive() and not i.killed]
            if not live:
                return None
            # Mostly the owner of a VIPA: that is what forces a takeover.
            active = [i for i in live if i.granted_at is not None]
            inst = rnd.choice(active if active and rnd.random() < 0.7 else live)
            owner = inst.granted_at is not None and inst.svc["addr"] in self.last.get(inst.node, ())
            if owner:
                self.expect_takeover([inst.svc["addr"]], inst.node, kind)
            inst.kill()
            return f"{kind} {inst.name}"
        if kind in ("kill-dvipad", "kill-corosync", "cut", "reload") and not targets:
            return None
        if kind in ("cut-two-staggered", "corosync-two-staggered", "start-cut-staggered") and len(targets) < 2:
            return None
        if kind == "reload":
            n = rnd.choice(targets)
            r = self.nodes[n].ctl("reload", check=False)
            return f"{kind} {n}" + ("" if r.returncode == 0 else f" (failed {r.returncode})")
        if kind == "kill-dvipad":
            n = rnd.choice(targets)
            self.expect_takeover(self.owned_by(n), n, kind)
            self.kill_dvipad(n)
            # Sometimes for longer than LEASE: the leftover must expire.
            repairs.append((now + rnd.uniform(0.3, LEASE + 3), "dvipad", [n]))
            return f"{kind} {n}"
        if kind == "kill-corosync":
            n = rnd.choice(targets)
            self.expect_takeover(self.owned_by(n), n, kind)
            self.kill_corosync(n)
            repairs.append((now + rnd.uniform(0.5, 5), "corosync", [n]))
            return f"{kind} {n}"
        if kind == "cut":
            n = rnd.choice(targets)
            self.expect_takeover(self.owned_by(n), n, kind)
            self.link(n, False)
            repairs.append((now + rnd.uniform(1.5, 6), "link", [n]))
            return f"{kind} {n}"
        a, b = rnd.sample(targets, 2)
        if kind == "corosync-two-staggered":
            for n in (a, b):
                self.expect_takeover(self.owned_by(n), n, kind)
                self.kill_corosync(n)
            repairs.append((now + rnd.uniform(0.5, 4), "corosync", [a, b]))
            return f"{kind} {a} {b}"
        self.expect_takeover(self.owned_by(a), a, kind)
        self.link(a, False)
        time.sleep(STAGGER)
        self.expect_takeover(self.owned_by(b), b, kind)
        self.link(b, False)
        if kind == "start-cut-staggered":
            # dvipad restarted while its host is cut off, then the links
            # come up one after the other: issue 9's drift
            for n in (a, b):
                self.kill_dvipad(n)
            time.sleep(0.2)
            for n in (a, b):
                self.start_dvipad(n)
        repairs.append((now + rnd.uniform(1.5, 6), "link", [a, b]))
        return f"{kind} {a} {b}"

    def kill_dvipad(self, n):
        with self.lock:
            self.dvipad_kills += 1
            self.dvipad_ready[n] = False
            self.dvipad_dead_since[n] = time.monotonic()
            self.hard_epoch[n] += 1
            self.epoch[n] += 1
        self.nodes[n].stop(sig=signal.SIGKILL)

    def kill_corosync(self, n):
        with self.lock:
            self.coro_alive[n] = False
            self.hard_epoch[n] += 1
        self.world_changed()
        self.nodes[n].corosync.kill()

    def repair(self, what, nodes):
        for i, n in enumerate(nodes):
            if i:
                time.sleep(STAGGER)
            if what == "link":
                with self.lock:
                    down = not self.linked[n]
                if down:
                    self.link(n, True)
            elif what == "corosync":
                with self.lock:
                    dead = not self.coro_alive[n]
                if dead:
                    self.nodes[n].corosync.start()
                    with self.lock:
                        self.coro_alive[n] = True
                    self.world_changed()
            elif what == "dvipad":
                with self.lock:
                    dead = not self.dvipad_ready[n]
                if dead:
                    self.start_dvipad(n)

    # ---- settling and checks ----

    def node_settled(self, n):
        r = self.nodes[n].ctl("status", "--json", check=False)
        if r.returncode != 0:
            return False
        st = json.loads(r.stdout)
        names = sorted(m.get("name") or "" for m in st.get("members", []))
        return st["daemon"].get("quorate") is True and names == self.names

    def wait_settled(self):
        deadline = time.monotonic() + self.settle_timeout
        while time.monotonic() < deadline:
            if all(self.node_settled(n) for n in self.names):
                return True
            time.sleep(0.2)
        return False

    def owners(self, n):
        """VIPA -> owner name, in node n's status (None if it does not
        answer)."""
        r = self.nodes[n].ctl("status", "--json", check=False)
        if r.returncode != 0:
            return None
        return {v["addr"]: v.get("owner_name") for v in json.loads(r.stdout).get("vipas", [])
                if v.get("state") == "active"}

    def check_orphans(self):
        """A granted program whose node no longer owns its VIPA: the hold
        went away (the shim's programs are not told); ended and restarted."""
        views = {n: self.owners(n) for n in self.names}
        for inst in list(self.instances):
            if inst.killed or not inst.alive() or inst.granted_at is None or views[inst.node] is None:
                continue
            if views[inst.node].get(inst.svc["addr"]) != inst.node:
                self.program_ended(inst, f"address gone, owner {views[inst.node].get(inst.svc['addr'])}")
                inst.kill()

    def wait_one_owner(self, timeout=10.0):
        """Every VIPA on exactly one node."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.last
            if all(sum(1 for n in self.names if v in last[n]) == 1 for v in self.vipas):
                return True
            time.sleep(0.05)
        return False

    def check_reachable(self):
        targets = [f"{s['addr']}:{SERVICE_PORT}" for s in self.services] + \
                  [f"{d}:{WILDCARD_PORT}" for d in self.defines]
        r = self.client.exec("/usr/bin/python3", "-c", CLIENT_CHECK, "3", *targets, check=False)
        try:
            res = json.loads(r.stdout)
        except ValueError:
            res = {}
        for v in self.vipas:
            if not res.get(v):
                on = [n for n in self.names if v in self.last[n]]
                rec = {"vipa": v, "on": on, "round": self.rounds, "utc": utc(time.time())}
                self.unreachable.append(rec)
                self.log(f"  ! unreachable: {rec}")

    def settle(self, repairs):
        """Repair everything, let the cluster settle, bring killed programs
        back as standbys, check every VIPA from the client. False if the
        cluster does not settle."""
        for due, what, nodes in sorted(repairs, key=lambda r: r[0]):
            # A dead dvipad stays dead as long as drawn (up to LEASE + 3 s):
            # its addresses must expire by themselves meanwhile.
            if what == "dvipad":
                time.sleep(max(0.0, due - time.monotonic()))
            self.repair(what, nodes)
        repairs.clear()
        for n in self.names:  # a dvipad that would not start
            with self.lock:
                dead = not self.dvipad_ready[n]
            if dead and not self.start_dvipad(n):
                return False
        t0 = time.monotonic()
        if not self.wait_settled():
            return False
        with self.lock:
            self.takeovers_missed += len(self.pending_takeovers)
            self.pending_takeovers.clear()
        self.check_orphans()
        self.instances = [i for i in self.instances if i.alive() and not i.killed]
        for svc in self.services:
            have = {i.node for i in self.instances if i.svc is svc}
            for n in self.names:
                if n not in have:
                    self.start_instance(svc, n, self.rng.randint(1, 254))
        ok = self.wait_one_owner()
        self.settle_times.append(time.monotonic() - t0)
        self.check_reachable()
        if not ok:
            self.log("  VIPAs not on exactly one node after settling: " +
                     ", ".join(f"{v}@{[n for n in self.names if v in self.last[n]]}" for v in self.vipas))
        if not self.wait_standbys():
            self.standbys_unseen += 1
            self.log("  standbys not all registered within 5 s")
        return True

    def wait_standbys(self, timeout=5.0):
        """Every standby registered (seen in n1's status) before the next
        faults: a registration still in flight is not what is measured."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.nodes[self.names[0]].ctl("status", "--json", check=False)
            if r.returncode == 0:
                # (pids are shown only for the node's own clients)
                seen = {(v["addr"], s.get("node_name")) for v in json.loads(r.stdout).get("vipas", [])
                        for s in v.get("standbys", [])}
                want = {(i.svc["addr"], i.node) for i in self.instances if i.alive() and i.granted_at is None}
                if want <= seen:
                    return True
            time.sleep(0.1)
        return False

    # ---- the run ----

    def run(self):
        self.setup()
        self.log(f"campaign: {self.faults_wanted} faults, {self.n} nodes, seed {self.seed}, "
                 f"namespaces {self.prefix}*, logs in {self.tmp}")
        if not self.start_everything():
            self.failed_rounds += 1
            if not self.recover():
                raise RuntimeError("the cluster does not start")
        self.wait_standbys()
        injected = 0
        t_start = self.t_start = time.monotonic()
        while injected < self.faults_wanted:
            self.rounds += 1
            round_utc = utc(time.time())[:8]
            repairs = []
            done = []
            for _ in range(self.rng.randint(1, 4)):
                if injected >= self.faults_wanted:
                    break
                what = self.inject(repairs)
                if what:
                    injected += 1
                    kind = what.split()[0]
                    self.faults[kind] = self.faults.get(kind, 0) + 1
                    done.append(what)
                wait_until = time.monotonic() + self.rng.uniform(0.2, 3.0)
                while time.monotonic() < wait_until:
                    due = [r for r in repairs if r[0] <= time.monotonic()]
                    for r in due:
                        repairs.remove(r)
                        self.repair(r[1], r[2])
                    time.sleep(0.02)
            ok = self.settle(repairs)
            elapsed = time.monotonic() - t_start
            self.log(f"[{self.rounds}] {round_utc} {injected}/{self.faults_wanted} ({elapsed:.0f} s) "
                     f"{'; '.join(done) or '-'}: "
                     f"{'settled' if ok else 'DID NOT SETTLE'}; dual {self.dual_samples} leftover "
                     f"{self.leftover_samples} lost {len(self.lost)} unreachable {len(self.unreachable)}")
            if not ok:
                self.failed_rounds += 1
                self.recover()

    def cleanup(self):
        self.stop.set()
        for inst in self.instances:
            try:
                inst.kill()
            except Exception:
                pass
        for n in getattr(self, "nodes", {}).values():
            n.cleanup()
            n.corosync.kill()
        if self.lan:
            self.lan.delete()

    # ---- the report ----

    def result(self):
        def ms(x):
            return None if x is None else round(x * 1000)

        tk = [t for _, t in self.takeovers]
        lost = self.lost + self.standby_lost_at_heal
        return {
            "seed": self.seed, "nodes": self.n, "faults": sum(self.faults.values()),
            "faults_by_kind": dict(sorted(self.faults.items())), "rounds": self.rounds,
            "failed_rounds": self.failed_rounds,
            "seconds": round(time.monotonic() - self.t_start) if self.t_start else 0,
            "samples": self.samples, "sample_errors": self.sample_errors,
            "sample_interval_ms": round((self.last_sample - self.first_sample) / max(1, self.samples - 1) * 1000, 1)
                                  if self.samples > 1 else None,
            "dual_owner_samples": self.dual_samples,
            "dual_owner_episodes": len(self.dual_episodes),
            "dual_owner_longest_ms": max((round((e.end - e.start) * 1000) for e in self.dual_episodes), default=0),
            "dual_owner_list": [e.record() for e in self.dual_episodes],
            "leftover_samples": self.leftover_samples, "dvipad_kills": self.dvipad_kills,
            "dvipad_dead_beyond_lease": self.dvipad_dead_beyond_lease,
            "leftover_episodes": [e.record() for e in self.leftover_episodes],
            "lost": len(self.lost), "lost_list": self.lost,
            "lost_by_reason": {k: sum(1 for x in lost if reason_class(x["why"]) == k)
                               for k in sorted({reason_class(x["why"]) for x in lost})},
            "standby_lost_at_heal": len(self.standby_lost_at_heal),
            "standby_lost_at_heal_list": self.standby_lost_at_heal,
            "unreachable": len(self.unreachable), "unreachable_list": self.unreachable,
            "takeovers": len(tk), "takeover_p50_ms": ms(pct(tk, 50)), "takeover_p99_ms": ms(pct(tk, 99)),
            "takeover_max_ms": ms(max(tk, default=None)),
            "takeover_by_kind": {k: {"n": len(v), "p50_ms": ms(pct(v, 50)), "p99_ms": ms(pct(v, 99))}
                                 for k in sorted({k for k, _ in self.takeovers})
                                 for v in [[t for kk, t in self.takeovers if kk == k]]},
            "takeover_slowest": sorted(self.takeover_list, key=lambda t: -t["ms"])[:5],
            "takeovers_missed": self.takeovers_missed, "takeovers_impossible": self.takeovers_impossible,
            "standbys_unseen_rounds": self.standbys_unseen,
            "settle_p50_ms": ms(pct(self.settle_times, 50)), "settle_max_ms": ms(max(self.settle_times, default=None)),
            "logs": str(self.tmp),
        }


def print_table(r):
    rows = [
        ("nodes / seed", f"{r['nodes']} / {r['seed']}"),
        ("faults injected", f"{r['faults']} in {r['rounds']} rounds, {r['seconds']} s"),
        *[(f"  {k}", v) for k, v in r["faults_by_kind"].items()],
        ("failed rounds", r["failed_rounds"]),
        ("address samples", f"{r['samples']} (every {r['sample_interval_ms']} ms, {r['sample_errors']} errors)"),
        ("dual-owner samples (goal 0)", r["dual_owner_samples"]),
        ("dual-owner episodes, longest", f"{r['dual_owner_episodes']}, {r['dual_owner_longest_ms']} ms"),
        ("leftover beyond LEASE samples (goal 0)", f"{r['leftover_samples']} ({r['dvipad_dead_beyond_lease']} of "
                                                   f"{r['dvipad_kills']} dvipad deaths outlived LEASE + 1 s)"),
        ("holds and standbys lost (goal 0)", r["lost"]),
        ("standbys lost at a heal (goal 0)", r["standby_lost_at_heal"]),
        *[(f"  {k}", v) for k, v in r["lost_by_reason"].items()],
        ("unreachable after settling (goal 0)", r["unreachable"]),
        ("takeovers p50 / p99 / max", f"{r['takeover_p50_ms']} / {r['takeover_p99_ms']} / {r['takeover_max_ms']} ms "
                                      f"(n {r['takeovers']})"),
        ("no takeover before the heal / no quorum left", f"{r['takeovers_missed']} / {r['takeovers_impossible']}"),
        *[(f"  {k}", f"p50 {v['p50_ms']} ms, p99 {v['p99_ms']} ms (n {v['n']})")
          for k, v in r["takeover_by_kind"].items()],
        ("settling p50 / max", f"{r['settle_p50_ms']} / {r['settle_max_ms']} ms"),
        ("rounds whose standbys did not all register in 5 s", r["standbys_unseen_rounds"]),
    ]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    for e in r["dual_owner_list"][:20]:
        print(f"dual owner {e['key']} on {e['detail']} at {e['start_utc']} UTC for {e['duration_ms']} ms")
    for e in r["leftover_episodes"][:20]:
        print(f"leftover on {e['key']}: {e['detail']} at {e['start_utc']} UTC for {e['duration_ms']} ms")
    for t in r["takeover_slowest"]:
        print(f"slow takeover: {t['kind']} at {t['utc']} UTC, {t['vipa']} {t['from']} -> {t['to']}: {t['ms']} ms")
    for x in r["lost_list"][:20] + r["standby_lost_at_heal_list"][:20] + r["unreachable_list"][:20]:
        print(x)
    print(f"logs: {r['logs']}")


def main():
    ap = argparse.ArgumentParser(description="fault campaign on real Corosync (see the header)")
    ap.add_argument("--faults", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build", help="build directory (default $DVIPA_BUILD or build/)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("campaign.py: needs root (namespaces, addresses)")

    def progress(msg):
        print(msg, file=sys.stderr if args.json else sys.stdout, flush=True)

    camp = Campaign(args.faults, args.nodes, args.seed, build=args.build, log=progress)
    for prog in ("dvipad", "dvipactl", "dvipa-holder", "libdvipa-preload.so"):
        if not (camp.build / prog).exists():
            sys.exit(f"campaign.py: cannot set up: {camp.build / prog} not found")
    def on_term(*_):
        raise KeyboardInterrupt

    # SIGTERM ends the run as Ctrl-C does, through the finally below; and
    # Ctrl-C does even if the shell that started us ignored SIGINT.
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        camp.run()
    except KeyboardInterrupt:
        progress("interrupted: the figures so far")
    finally:
        camp.cleanup()
    r = camp.result()
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        print_table(r)


if __name__ == "__main__":
    main()
