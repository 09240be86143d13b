# shellcheck shell=bash
# Helpers shared by the failover benchmarks (bench/keepalived.sh,
# bench/cluster.sh). Expects $TMP (a scratch directory) and $PROBE
# (bench/tcp-probe, built).

# stats FILE: n p50 p99 max over the numbers in FILE (nearest rank).
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 }
		function rank(p,  r) { r = int(p * NR); if (r < p * NR) r++; return v[r < 1 ? 1 : r] }
		END { if (NR) printf "%4d %9.1f %9.1f %9.1f", NR, rank(0.5), rank(0.99), v[NR];
		      else printf "%4d %9s %9s %9s", 0, "-", "-", "-" }'
}

# measure_event NS ADDR BANNER COMMAND...: start the prober in namespace NS,
# run COMMAND (the event) and print the ms from the event until a connect
# to ADDR:8080 is answered with BANNER. The prober is running before the
# event; the event time is taken just before COMMAND.
measure_event() {
	local ns=$1 addr=$2 banner=$3 t0 ms pid
	shift 3
	rm -f "$TMP/pin" "$TMP/pout"
	mkfifo "$TMP/pin" "$TMP/pout"
	ip netns exec "$ns" "$PROBE" -T 15000 "$addr" 8080 "$banner" - <"$TMP/pin" >"$TMP/pout" &
	pid=$!
	exec 5>"$TMP/pin" 6<"$TMP/pout"
	read -r -u 6 ms
	t0=${EPOCHREALTIME/./}000
	echo "$t0" >&5
	"$@"
	read -r -u 6 ms
	exec 5>&- 6<&-
	wait "$pid" || true
	echo "$ms"
}
