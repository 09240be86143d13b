# shellcheck shell=bash
# Helpers shared by the benchmarks (bench/keepalived.sh, bench/cluster.sh,
# bench/corosync-stability.sh). measure_event expects $TMP (a scratch
# directory) and $PROBE (bench/tcp-probe, built).

# lan_up PREFIX HOST=ADDR...: network namespaces PREFIX-br, with a bridge
# br0, and PREFIX-HOST for each HOST, whose eth0 is on the bridge (port
# v-HOST) with ADDR/24.
lan_up() {
	local p=$1 h
	shift
	ip netns add "$p-br"
	ip -n "$p-br" link set lo up
	ip -n "$p-br" link add br0 type bridge
	ip -n "$p-br" link set br0 up
	for h in "$@"; do
		ip netns add "$p-${h%%=*}"
		ip -n "$p-${h%%=*}" link set lo up
		ip -n "$p-br" link add "v-${h%%=*}" type veth peer name eth0 netns "$p-${h%%=*}"
		ip -n "$p-br" link set "v-${h%%=*}" master br0 up
		ip -n "$p-${h%%=*}" addr add "${h#*=}/24" dev eth0
		ip -n "$p-${h%%=*}" link set eth0 up
	done
}

# kill_in PREFIX NS...: kill what runs in PREFIX-NS (after SIGTERM and a
# short grace if GRACEFUL is set), and remove the shared memory a killed
# corosync leaves behind (/dev/shm/qb-PID-*: IPC rings; qb-corosync-PID-*:
# its 8 MiB blackbox): it is RAM.
kill_in() {
	local p=$1 n pids all=
	shift
	for n in "$@"; do all="$all $(ip netns pids "$p-$n" 2>/dev/null)"; done
	[ -n "${all// /}" ] || return 0
	if [ -n "${GRACEFUL:-}" ]; then
		kill $all 2>/dev/null || true
		sleep 0.2
	fi
	kill -9 $all 2>/dev/null || true
	wait 2>/dev/null || true
	for n in $all; do rm -rf /dev/shm/qb-"$n"-* /dev/shm/qb-corosync-"$n"-*; done
	return 0
}

# lan_down PREFIX NS...: kill_in, then delete the namespaces.
lan_down() {
	local p=$1 n
	kill_in "$@"
	shift
	for n in "$@"; do ip netns del "$p-$n" 2>/dev/null; done
	return 0
}

# wait_for SECONDS COMMAND...: poll every 10 ms until COMMAND succeeds
# (its output is dropped); 1 and a message on timeout.
wait_for() {
	local until=$((${EPOCHREALTIME/./} + $1 * 1000000))
	shift
	until "$@" >/dev/null 2>&1; do
		if [ "${EPOCHREALTIME/./}" -gt $until ]; then
			echo "timed out waiting for: $*" >&2
			return 1
		fi
		sleep 0.01
	done
}

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
