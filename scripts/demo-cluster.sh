#!/bin/bash
# Three dvipad nodes on Corosync (CLUSTER COROSYNC): a server holding a VIPA
# on n1 with hot standbys on n2 (rank 100) and n3 (rank 50). Kill the
# server on n1: n2 takes over. Cut n2 off: it loses quorum and drops the
# address, n3 takes over. Heal: one owner, announced. Cleans up after itself
# (KEEP=1 keeps the logs and configurations in the temporary directory).
#
#   n1 192.0.2.1   n2 192.0.2.2   n3 192.0.2.3   client 192.0.2.100
#        \              |              |              /
#         +------------------ br0 -------------------+
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
B=$PWD/build

P=dvc$$
TMP=$(mktemp -d)
VIPA=192.0.2.130
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	# A killed corosync leaves its shared memory (IPC rings, blackbox) behind.
	for p in "${pids[@]}"; do rm -rf /dev/shm/qb-"$p"-* /dev/shm/qb-corosync-"$p"-*; done
	for n in n1 n2 n3 client sw; do ip netns del $P-$n 2>/dev/null || true; done
	[ -n "${KEEP:-}" ] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ctl() { local n=$1; shift; ip netns exec $P-$n "$B/dvipactl" -S "$TMP/$n.sock" "$@"; }
ask() { ip netns exec $P-client nc -w 1 $VIPA 8080 2>/dev/null || echo "(no answer)"; }
wait_until() { # wait_until SECONDS CMD...: poll, never sleep blindly for long
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || { echo "timed out waiting for: $*" >&2; return 1; }
		sleep 0.05
	done
}

step "network: three hosts and a client on a bridge"
ip netns add $P-sw
ip -n $P-sw link add br0 type bridge; ip -n $P-sw link set br0 up
i=0
for n in n1 n2 n3 client; do
	i=$((i + 1))
	ip netns add $P-$n
	ip -n $P-sw link add p-$n type veth peer name eth0 netns $P-$n
	ip -n $P-sw link set p-$n master br0 up
	ip -n $P-$n link set lo up; ip -n $P-$n link set eth0 up
	[ $n = client ] && ip -n $P-$n addr add 192.0.2.100/24 dev eth0 || ip -n $P-$n addr add 192.0.2.$i/24 dev eth0
done

step "a Corosync per host (fast profile: token 200 ms), and dvipad with CLUSTER COROSYNC"
. scripts/corosync-conf.sh
for i in 1 2 3; do
	corosync_conf "$TMP/corosync-n$i.conf" "$TMP/corosync-n$i.log" dvdemo 200 240 \
		192.0.2.1 192.0.2.2 192.0.2.3
	cat > "$TMP/n$i.conf" <<CONF
NODE n$i
INTERFACE eth0
CLUSTER COROSYNC GROUP dvipa
VIPADYNAMIC
  VIPARange DEFINE 255.255.255.192 192.0.2.128
ENDVIPADYNAMIC
CONF
	# Each corosync needs its own /run: a private mount namespace.
	ip netns exec $P-n$i unshare -m --propagation private sh -c \
		"mount -t tmpfs none /run && mkdir -p /run/corosync && exec corosync -f -c $TMP/corosync-n$i.conf" &
	pids+=($!)
done
for i in 1 2 3; do
	ip netns exec $P-n$i "$B/dvipad" -d -f "$TMP/n$i.conf" -S "$TMP/n$i.sock" 2>"$TMP/dvipad-n$i.log" &
	pids+=($!)
done
for i in 1 2 3; do
	wait_until 30 sh -c "'$B/dvipactl' -S '$TMP/n$i.sock' status --json | grep -Eq '\"quorate\": *true'"
done
ctl n3 status

step "server on n1 holds $VIPA; standbys on n2 (rank 100) and n3 (rank 50)"
ip netns exec $P-n1 "$B/dvipa-holder" -S "$TMP/n1.sock" --name server-on-n1 $VIPA 8080 >"$TMP/h1.out" &
h1=$!; pids+=($h1)
wait_until 10 grep -q listening "$TMP/h1.out"
ip netns exec $P-n2 "$B/dvipa-holder" -S "$TMP/n2.sock" --standby 100 --name server-on-n2 $VIPA 8080 >"$TMP/h2.out" &
pids+=($!)
ip netns exec $P-n3 "$B/dvipa-holder" -S "$TMP/n3.sock" --standby 50 --name server-on-n3 $VIPA 8080 >"$TMP/h3.out" &
pids+=($!)
wait_until 10 sh -c "[ \$('$B/dvipactl' -S '$TMP/n1.sock' status --json | grep -c '\"rank\"') -ge 2 ]"
ctl n1 status
echo "client asks $VIPA:8080 -> $(ask)"

step "kill -9 the server on n1: the standby on n2 takes over"
kill -9 $h1
wait_until 10 grep -q listening "$TMP/h2.out"
echo "client asks $VIPA:8080 -> $(ask)"
ctl n3 status

step "cut n2 off the network: it loses quorum and drops $VIPA; n3's standby takes over"
ip -n $P-sw link set p-n2 down
wait_until 10 grep -q listening "$TMP/h3.out"
echo "client asks $VIPA:8080 -> $(ask)"
echo "n2 has $VIPA: $(ip -n $P-n2 -o addr show dev eth0 | grep -c "$VIPA " || true) (0 = dropped)"
ctl n1 status

step "heal n2: one owner, and it is announced again"
ip -n $P-sw link set p-n2 up
wait_until 30 sh -c "'$B/dvipactl' -S '$TMP/n2.sock' status --json | grep -Eq '\"quorate\": *true'"
ctl n2 status
echo "client asks $VIPA:8080 -> $(ask)"
step "done; cleaning up"
