#!/bin/bash
# dvipa at scale (issue 15): prints a table of figures (not a test).
# One dvipad (optimized build, default PROBE and LEASE) in a network
# namespace whose eth0 is a veth on a bridge, one client, pipelined:
#   IPv4: for each of COUNTS (default 1000 4096 10000 16384 65536) that many
#     new addresses activated, then released (the client closes; timed
#     until sweeps of UDP datagrams find none of them answering); time per
#     activation (the cost curve); with the largest held, daemon RSS and CPU
#     over CPU_SECONDS; then the largest count again, each address released
#     by a request of its own (the cost of one release must not grow with
#     what the client holds). Each phase also says how long dvipad ran and
#     how long it waited for a CPU: on a shared machine the difference is
#     the load's.
#   IPv6: N6 (default 10000) new addresses activated, then released, and
#     again released a request each
#   restart: 65,536 (the largest count) held, dvipad killed with -9 and
#     started again: time until it answers, with the leftovers removed
#
# Environment: COUNTS, N6, CPU_SECONDS (default 30), ROUTED (1: both ranges
# are ROUTED ones, a local route and an nftables set, not an address per
# VIPA), RESTART (0: skip the restart), BUILD (build directory,
# default build-bench, made here as bench/run.sh makes it), PERF (a file:
# `perf record -g` of dvipad during the IPv4 and IPv6 runs goes there).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_build build-bench disabled
require "$B/dvipad" "$B/dvipactl" "$B/dvipa-bench"

COUNTS=${COUNTS:-1000 4096 10000 16384 65536}
N6=${N6:-10000}
CPU_SECONDS=${CPU_SECONDS:-30}
MAX=$(printf '%s\n' $COUNTS | sort -n | tail -1)
ROUTED=${ROUTED:-0}
RESTART=${RESTART:-1}
routed=
[ "$ROUTED" = 1 ] && routed=" ROUTED"

pid=
bench_lan dvscale
# /15: the counts use new addresses each (their probes included).
cat > "$TMP/dvipa.conf" <<CONF
NODE bench
INTERFACE eth0
VIPADYNAMIC
  VIPARANGE DEFINE 198.18.0.0/15$routed
  VIPARANGE DEFINE fd00:5ca1::/64$routed
ENDVIPADYNAMIC
CONF
IN_HOST=(ip netns exec "$P-host")
# dvipa-bench tells an active address from a released one by the ICMP
# error a datagram to it gets (port unreachable; a ROUTED range refuses
# its inactive addresses with admin-prohibited): the kernel's rate limits
# (per namespace) would hold most of them back.
"${IN_HOST[@]}" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=1000000 \
	net.ipv4.icmp_msgs_burst=1000000 net.ipv6.icmp.ratelimit=0
started() { "${IN_HOST[@]}" "$B/dvipactl" -S "$TMP/sock" status; }
start_dvipad() {
	rm -f "$TMP/sock"
	"${IN_HOST[@]}" "$B/dvipad" -d -f "$TMP/dvipa.conf" -S "$TMP/sock" 2>>"$TMP/log" &
	pid=$!
	wait_for 600 started || setup_failed "dvipad does not answer: $(tail -5 "$TMP/log")"
}
n_addrs() { ip -n "$P-host" -o addr show dev eth0 | wc -l; }

echo "dvipa scale benchmark${routed:+ (ranges$routed)}, $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)," \
	"$(date -u +%Y-%m-%dT%H:%MZ)"
start_dvipad
if [ -n "${PERF:-}" ]; then
	perf record -q -g -o "$PERF" -p "$pid" 2>"$TMP/perf.err" &
	perf=$!
fi
"${IN_HOST[@]}" "$B/dvipa-bench" "$TMP/sock" scale "$pid" "$CPU_SECONDS" 198.18.0.1 $COUNTS
"${IN_HOST[@]}" "$B/dvipa-bench" "$TMP/sock" scale "$pid" 0 fd00:5ca1::1 "$N6"
if [ -n "${PERF:-}" ]; then
	kill -INT "$perf"
	wait "$perf" || true
fi

[ "$RESTART" = 1 ] || exit 0
# Restart: hold MAX, kill -9 dvipad (its client goes with it), start again.
# From 198.19.0.0: 65,536 addresses from 198.19.0.1 ended outside the /15.
# Holding 65,536 took longer than 10 min on a loaded 2-core machine.
"${IN_HOST[@]}" "$B/dvipa-bench" "$TMP/sock" hold "$MAX" 198.19.0.0 1 0 >"$TMP/hold" &
holder=$!
wait_for 1800 grep -q ready "$TMP/hold" || setup_failed "the $MAX addresses are not held"
# The shell's "Killed" job reports are noise here.
{
	kill -9 "$pid" "$holder"
	wait "$pid" "$holder" || true
} 2>/dev/null
left=$(n_addrs)
t0=${EPOCHREALTIME/./}
start_dvipad
t1=${EPOCHREALTIME/./}
if [ "$ROUTED" = 1 ]; then
	# No address per VIPA: the set the earlier dvipad filled is replaced
	# at start, in the transaction that loads the tables.
	echo "restart after kill -9 with $MAX held in the ROUTED set: $(((t1 - t0) / 1000)) ms until dvipad answers," \
		"$(($(n_addrs) - 1)) addresses on eth0"
else
	echo "restart after kill -9 with $((left - 1)) addresses left: $(((t1 - t0) / 1000)) ms until dvipad answers," \
		"$(($(n_addrs) - 1)) addresses left then"
fi
