#!/bin/bash
# dvipa benchmark harness: prints a table of figures (not a test).
# Builds an optimized dvipad (no sanitizers), starts it in a network
# namespace plugged into a bridge, and measures with bench/dvipa-bench:
#   activation latency (request -> address usable), p50/p99 over 1000
#   first activation of a new address (includes the duplicate probe), over 20
#   local standby takeover after kill -9 of the holder, p50/p99 over 50
#   10,000 VIPAs from one client: total time, daemon RSS
#   control-socket requests per second
#   bind() through the preload shim until the address is usable, over 200
#   BINDWATCH detection delay and last-socket-to-removal delay, over 100
#   extra cost of the preload shim per call outside every range
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
[ -d build-bench ] || meson setup build-bench --buildtype=release -Dtests=disabled >/dev/null
ninja -C build-bench >/dev/null
B=$PWD/build-bench

N_ACT=${N_ACT:-1000}
N_TAKEOVER=${N_TAKEOVER:-50}
N_MANY=${N_MANY:-10000}

P=dvbench$$
TMP=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	for n in host peer sw; do ip netns del $P-$n 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT

ip netns add $P-sw; ip netns add $P-host; ip netns add $P-peer
ip -n $P-sw link add br0 type bridge; ip -n $P-sw link set br0 up
for n in host peer; do
	ip -n $P-sw link add p-$n type veth peer name eth0 netns $P-$n
	ip -n $P-sw link set p-$n master br0 up
	ip -n $P-$n link set lo up; ip -n $P-$n link set eth0 up
done
ip -n $P-host addr add 192.0.2.1/24 dev eth0
ip -n $P-peer addr add 192.0.2.2/24 dev eth0

# start_dvipad EXTRA_RANGE: (re)start dvipad with 198.18.0.0/16 and EXTRA_RANGE.
start_dvipad() {
	if [ -n "$pid" ]; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
	cat > "$TMP/dvipa.conf" <<CONF
NODE bench
INTERFACE eth0
VIPADYNAMIC
  VIPARANGE DEFINE 198.18.0.0/16
  $1
ENDVIPADYNAMIC
CONF
	ip netns exec $P-host "$B/dvipad" -d -f "$TMP/dvipa.conf" -S "$TMP/sock" 2>>"$TMP/log" &
	pid=$!
	for _ in $(seq 100); do
		ip netns exec $P-host "$B/dvipactl" -S "$TMP/sock" status >/dev/null 2>&1 && return
		sleep 0.05
	done
	echo "dvipad did not start: $(cat "$TMP/log")" >&2
	exit 1
}
bench() { ip netns exec $P-host "$B/dvipa-bench" "$TMP/sock" "$@"; }

echo "dvipa benchmark, $(nproc) cores, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "dvipad config: PROBE COUNT 2 INTERVAL 100 (defaults), ANNOUNCE COUNT 3 INTERVAL 500"
start_dvipad ""
bench activate "$N_ACT" 198.18.0.1
bench fresh 20 198.18.1.0
bench takeover "$N_TAKEOVER" 198.18.2.1
bench many "$N_MANY" 198.18.100.0 "$pid"
echo "daemon RSS after the 10,000: $(awk '/VmRSS/{print $2, $3}' /proc/$pid/status)"
bench rps 3 198.18.0.1
ip netns exec $P-host env LD_PRELOAD="$B/libdvipa-preload.so" DVIPA_SOCKET="$TMP/sock" \
	"$B/dvipa-bench" "$TMP/sock" shimbind "${N_SHIMBIND:-200}" 198.18.3.1
echo "preload shim overhead on addresses outside every range (ns per call):"
ip netns exec $P-host "$B/preload-bench" -s "$B/libdvipa-preload.so" -S "$TMP/sock" 2>&1 | sed 's/^/  /' ||
	echo "  (preload-bench failed)"
# Last, with a BINDWATCH range: it sets ip_nonlocal_bind in the namespace,
# after which every bind() there succeeds.
start_dvipad "VIPARANGE DEFINE 198.19.0.0/16 BINDWATCH"
bench bindwatch "${N_BINDWATCH:-100}" 198.19.1.1
