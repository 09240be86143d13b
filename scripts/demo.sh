#!/bin/bash
# The main job. First on the embedded default (CLUSTER NONE): build dvipa, start
# dvipad on a small network of namespaces, run a server on a VIPA with a hot
# standby beside it, kill the primary, and watch the standby take over while
# a client keeps reaching the same address. Then the same on three hosts
# coordinated through Corosync (scripts/demo-cluster.sh). Cleans up after itself.
#
#   client (192.0.2.100) ---- br0 ---- host (192.0.2.1): dvipad, VIPAs in 192.0.2.128/26
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
B=$PWD/build

P=dvdemo$$
TMP=$(mktemp -d)
SOCK=$TMP/dvipad.sock
VIPA=192.0.2.130
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for n in host client sw; do ip netns del $P-$n 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_host() { ip netns exec $P-host "$@"; }
in_client() { ip netns exec $P-client "$@"; }
ctl() { in_host "$B/dvipactl" -S "$SOCK" "$@"; }
ask() { in_client nc -w 1 $VIPA 8080 2>/dev/null || echo "(no answer)"; }
wait_until() { # wait_until SECONDS CMD...: poll, never sleep blindly for long
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || { echo "timed out waiting for: $*" >&2; return 1; }
		sleep 0.05
	done
}

step "network: a host and a client namespace on a bridge"
ip netns add $P-sw; ip netns add $P-host; ip netns add $P-client
ip -n $P-sw link add br0 type bridge; ip -n $P-sw link set br0 up
for n in host client; do
	ip -n $P-sw link add p-$n type veth peer name eth0 netns $P-$n
	ip -n $P-sw link set p-$n master br0 up
	ip -n $P-$n link set lo up; ip -n $P-$n link set eth0 up
done
ip -n $P-host addr add 192.0.2.1/24 dev eth0
ip -n $P-client addr add 192.0.2.100/24 dev eth0

step "dvipad with this configuration"
cat > "$TMP/dvipa.conf" <<CONF
NODE demo-host
INTERFACE eth0
VIPADYNAMIC
  VIPARange DEFINE 255.255.255.192 192.0.2.128
ENDVIPADYNAMIC
CONF
cat "$TMP/dvipa.conf"
ip netns exec $P-host "$B/dvipad" -d -f "$TMP/dvipa.conf" -S "$SOCK" 2>"$TMP/dvipad.log" &
pids+=($!)
wait_until 5 ctl status

step "primary server on $VIPA:8080, and a hot standby (rank 100) for the same VIPA"
ip netns exec $P-host "$B/dvipa-holder" -S "$SOCK" --name primary $VIPA 8080 >"$TMP/primary.out" &
primary=$!; pids+=($primary)
wait_until 5 grep -q listening "$TMP/primary.out"
ip netns exec $P-host "$B/dvipa-holder" -S "$SOCK" --standby 100 --name standby $VIPA 8080 >"$TMP/standby.out" &
pids+=($!)
wait_until 5 sh -c "'$B/dvipactl' -S '$SOCK' status --json | grep -q '\"rank\"'"
ctl status
echo "client asks $VIPA:8080 -> $(ask)"

step "kill -9 the primary"
kill -9 $primary
wait_until 5 grep -q listening "$TMP/standby.out"
ctl status
echo "client asks $VIPA:8080 -> $(ask)"

step "dvipad's log"
cat "$TMP/dvipad.log"
step "done; cleaning up"
cleanup
trap - EXIT
# The same daemon across hosts: three nodes on Corosync (DEMO=single skips it).
if [ "${DEMO:-}" != single ]; then
	exec ./scripts/demo-cluster.sh
fi
