#!/bin/bash
# The packaged, sandboxed dvipad.service under a real systemd. Boots this
# host's Debian in a container (systemd-nspawn over a tmpfs overlay of /,
# with its own network namespace; nothing on the host changes), installs
# the .deb files with dpkg, then checks that the service starts and keeps
# its watchdog, activates and announces an address on a veth, answers an
# unprivileged dvipactl, serves its metrics over HTTP, sets the BINDWATCH tunables on reload, and joins a
# one-node Corosync cluster, with nothing denied in its journal.
# Usage: check-unit.sh DEBDIR (as left by check-package.sh DEBDIR). Root;
# needs systemd-container.
set -euo pipefail
debs=$(realpath "$1")
work=$(mktemp -d)
root=$work/root
nspid=""

cleanup() {
	if [ -n "$nspid" ] && kill -0 "$nspid" 2>/dev/null; then
		kill "$nspid" 2>/dev/null || true
		wait "$nspid" 2>/dev/null || true
	fi
	umount "$root" 2>/dev/null || true
	umount "$work/rw" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
fail() {
	echo "check-unit: $*" >&2
	[ -z "${leader:-}" ] || ct journalctl -u dvipad -u corosync --no-pager -n 30 >&2 || true
	exit 1
}
# until SECONDS CMD...: poll CMD every 0.2 s until it succeeds.
until_ok() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.2
	done
}

mkdir -p "$work/rw" "$root"
mount -t tmpfs none "$work/rw"
mkdir "$work/rw/upper" "$work/rw/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/rw/upper,workdir=$work/rw/work" "$root"
mkdir -p "$root/var/lib/dvipa-debs"
cp "$debs"/*.deb "$root/var/lib/dvipa-debs/"

# CAP_BPF and bpf(): nspawn keeps them from its containers by default; the
# unit gives them to dvipad (its connection index, checked below).
systemd-nspawn --register=no --keep-unit --link-journal=no --private-network \
	--capability=CAP_BPF --system-call-filter=bpf \
	-D "$root" -M "dvipa-unit-$$" \
	-b -- systemd.unit=basic.target >"$work/boot.log" 2>&1 &
nspid=$!
leader=""
find_leader() {
	local c
	for c in $(pgrep -P "$nspid"); do
		if [ "$(cat "/proc/$c/comm")" = systemd ]; then
			leader=$c
			return 0
		fi
	done
	return 1
}
until_ok 60 find_leader || fail "the container did not boot: $(tail -n 5 "$work/boot.log")"
find_leader
ct() {
	nsenter -t "$leader" -m -u -i -n -p -- "$@"
}
# on_eth0 ADDR: ADDR is on the container's eth0. Outputs are read whole
# before grep: "grep -q" may close a pipe early, which pipefail counts.
on_eth0() {
	local out
	out=$(ct ip -o addr show dev eth0)
	grep -qF " $1/" <<<"$out"
}
until_ok 120 ct systemctl is-active basic.target || fail "the container did not reach basic.target"

ct sh -c 'DEBIAN_FRONTEND=noninteractive dpkg -i /var/lib/dvipa-debs/*.deb' >"$work/dpkg.log" 2>&1 ||
	fail "dpkg -i failed: $(tail -n 5 "$work/dpkg.log")"
state=$(ct systemctl is-enabled dvipad || true)
[ "$state" = disabled ] || fail "dvipad.service is '$state' after installation, not disabled (README.Debian)"

# The example configuration's interface, on a veth of the container.
ct ip link add eth0 type veth peer name eth0-peer
ct ip link set eth0 up
ct ip link set eth0-peer up
# The metrics endpoint (AF_INET, IP traffic on this host only).
ct sed -i '1i METRICS LISTEN 127.0.0.1:9101' /etc/dvipa/dvipa.conf
ct systemctl start dvipad || fail "dvipad.service does not start"
# The sandbox is in force: four capabilities (CAP_NET_ADMIN 12, CAP_NET_RAW
# 13, CAP_SYS_PTRACE 19, CAP_BPF 39), no new privileges, a seccomp filter.
# shellcheck disable=SC2016 # expanded in the container, where the pid is
ct sh -c 'cat /proc/$(systemctl show dvipad -p MainPID --value)/status' >"$work/status"
grep -q '^CapBnd:.*0000008000083000$' "$work/status" || fail "dvipad's capabilities are not the unit's"
grep -q '^NoNewPrivs:.*1$' "$work/status" || fail "dvipad may gain privileges"
grep -q '^Seccomp:.*2$' "$work/status" || fail "dvipad runs without a system call filter"
# The probe and gratuitous ARP (AF_PACKET, CAP_NET_RAW) reach the link.
ct timeout 20 tcpdump -l -n -c 1 -i eth0-peer arp and host 10.1.1.5 >"$work/arp" 2>"$work/arp.err" &
arp=$!
until_ok 10 grep -q 'listening on' "$work/arp.err" || fail "tcpdump did not start: $(cat "$work/arp.err")"
ct dvipactl activate 10.1.1.5 || fail "dvipactl activate 10.1.1.5 failed under the sandbox"
on_eth0 10.1.1.5 || fail "10.1.1.5 is not on eth0"
wait "$arp" || true
grep -q 'ARP.*10\.1\.1\.5' "$work/arp" || fail "no ARP for 10.1.1.5 on the link"
grep -qF 10.1.1.5 <<<"$(ct runuser -u nobody -- dvipactl status)" || fail "an unprivileged dvipactl status does not show 10.1.1.5"
metrics=$(ct curl -sf http://127.0.0.1:9101/metrics) || fail "no metrics at 127.0.0.1:9101 under the sandbox"
grep -qx 'dvipa_activations_total{origin="operator"} 1' <<<"$metrics" ||
	fail "the metrics endpoint does not count the activation"
ct dvipactl deactivate 10.1.1.5
until_ok 10 eval '! on_eth0 10.1.1.5' ||
	fail "10.1.1.5 stayed on eth0 after deactivate"

# BINDWATCH writes the two ip_nonlocal_bind tunables, the only ones the
# unit leaves writable.
ct sh -c 'echo 0 >/proc/sys/net/ipv4/ip_nonlocal_bind'
ct sed -i 's|^  VIPARANGE fd00:1::/64$|  VIPARANGE fd00:1::/64 BINDWATCH|' /etc/dvipa/dvipa.conf
ct systemctl reload dvipad
until_ok 10 sh -c "[ \$(nsenter -t $leader -n cat /proc/sys/net/ipv4/ip_nonlocal_bind) = 1 ]" ||
	fail "BINDWATCH did not set net.ipv4.ip_nonlocal_bind"

# Corosync's IPC (abstract sockets, /dev/shm) from inside the sandbox.
ct sh -c 'cat >/etc/corosync/corosync.conf' <<'EOF'
totem {
	version: 2
	cluster_name: unitcheck
	transport: knet
}
nodelist {
	node {
		ring0_addr: 127.0.0.1
		nodeid: 1
		name: n1
	}
}
quorum {
	provider: corosync_votequorum
}
EOF
ct systemctl start corosync || fail "corosync does not start"
ct sed -i 's|^CLUSTER NONE$|CLUSTER COROSYNC|; s|^#NODE node1$|NODE n1|' /etc/dvipa/dvipa.conf
ct systemctl restart dvipad || fail "dvipad.service does not start with CLUSTER COROSYNC"
until_ok 30 ct dvipactl activate 10.1.1.6 || fail "no activation through Corosync"
on_eth0 10.1.1.6 || fail "10.1.1.6 is not on eth0"
# In a cluster, the connection index: the sandbox lets dvipad make its maps
# and load its program (CAP_BPF, bpf()). It then attaches it, or, as here,
# refuses to: the container's cgroup root is a cgroup namespace's, whose
# program would miss sockets of processes outside it (dvipad(8)).
ct journalctl -u dvipad --no-pager |
	grep -Eq 'connection index: a BPF sock_ops program|connection index unavailable .* \(a cgroup namespace\)' ||
	fail "the sandbox kept dvipad from loading its connection index"

# The watchdog (WatchdogSec=10) is kept: still running after 12 s.
sleep 12
[ "$(ct systemctl is-active dvipad)" = active ] || fail "dvipad.service did not stay active"
[ "$(ct systemctl show dvipad -p NRestarts --value)" = 0 ] || fail "dvipad.service was restarted"
if ct journalctl -u dvipad --no-pager | grep -Ei 'not permitted|permission denied|read-only file system|bad system call|cannot set|no CAP_'; then
	fail "the sandbox denied dvipad something"
fi
ct systemctl poweroff || true
wait "$nspid" || true
nspid=""
echo "check-unit: ok (sandboxed dvipad.service: addresses, announcements, BINDWATCH, Corosync, watchdog)"
